"""The four calibration activities (HBM read, device copy, pinned host-to-device copy, bf16 GEMM) with torch or cupy."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from dse.calibrate import COPY, GEMM, GIB, H2D, READ
from dse.errors import DseError

@dataclass
class Workload:
    """One activity: ``step`` runs one iteration moving ``units_per_iter`` bits (or doing that many FLOPs)."""
    key: str
    what: str
    unit: str
    units_per_iter: float
    step: Callable[[], None]
    release: Callable[[], None] = field(default=lambda: None)


class TorchBackend:
    """The four activities with PyTorch (bf16)."""

    def __init__(self, index: int = 0):
        import torch

        if not torch.cuda.is_available() or torch.cuda.device_count() <= index:
            raise DseError("torch sees no CUDA GPU: dse-calibrate needs an NVIDIA GPU")
        self.torch = torch
        self.dev = torch.device("cuda", index)
        torch.cuda.set_device(self.dev)
        torch.empty(1, device=self.dev)  # create the CUDA context (clocks come up)
        self.version = f"torch {torch.__version__}"
        p = torch.cuda.get_device_properties(self.dev)
        bus = getattr(p, "pci_bus_id", None)
        self.pci_bus_id = (f"{getattr(p, 'pci_domain_id', 0):08x}:{bus:02x}:{getattr(p, 'pci_device_id', 0):02x}.0"
                           if bus is not None else None)

    def sync(self) -> None:
        self.torch.cuda.synchronize(self.dev)

    def free_bytes(self) -> int:
        return int(self.torch.cuda.mem_get_info(self.dev)[0])

    def _release(self, *names):
        def release():
            for n in names:
                self.__dict__.pop(n, None)
            self.torch.cuda.empty_cache()
        return release

    def workload(self, key: str, nbytes: int, gemm_n: int) -> Workload:
        t, dev = self.torch, self.dev
        if key == READ:
            self.x = t.randn(nbytes // 2, dtype=t.bfloat16, device=dev)
            return Workload(key, f"sum of a {nbytes / GIB:g} GiB random-normal bf16 tensor", "bit", nbytes * 8.0,
                            lambda: self.x.sum(), self._release("x"))
        if key == COPY:
            self.a = t.randn(nbytes // 4, dtype=t.bfloat16, device=dev)
            self.b = t.empty_like(self.a)
            return Workload(key, f"copy of a {nbytes / 2 / GIB:g} GiB random-normal bf16 tensor (read + write counted)", "bit",
                            nbytes * 8.0, lambda: self.b.copy_(self.a), self._release("a", "b"))
        if key == H2D:
            self.h = t.randint(0, 256, (nbytes,), dtype=t.uint8).pin_memory()
            self.d = t.empty(nbytes, dtype=t.uint8, device=dev)
            return Workload(key, f"pinned host -> device copy of {nbytes / GIB:g} GiB of random bytes", "bit", nbytes * 8.0,
                            lambda: self.d.copy_(self.h, non_blocking=True), self._release("h", "d"))
        if key == GEMM:
            self.p = t.randn(gemm_n, gemm_n, dtype=t.bfloat16, device=dev)
            self.q = t.randn(gemm_n, gemm_n, dtype=t.bfloat16, device=dev)
            self.r = t.empty_like(self.p)
            return Workload(key, f"bf16 GEMM {gemm_n}^3", "flop", 2.0 * gemm_n**3,
                            lambda: t.matmul(self.p, self.q, out=self.r), self._release("p", "q", "r"))
        raise ValueError(key)


class CupyBackend:
    """The four activities with CuPy. CuPy has no bfloat16: the stream and the GEMM use float16."""

    def __init__(self, index: int = 0):
        import cupy as cp

        try:
            if cp.cuda.runtime.getDeviceCount() <= index:
                raise DseError("cupy sees no CUDA GPU: dse-calibrate needs an NVIDIA GPU")
        except cp.cuda.runtime.CUDARuntimeError as e:
            raise DseError(f"cupy sees no CUDA GPU ({e}): dse-calibrate needs an NVIDIA GPU") from None
        self.cp = cp
        self.device = cp.cuda.Device(index)
        self.device.use()
        cp.empty(1)
        self.version = f"cupy {cp.__version__}"
        self.pci_bus_id = cp.cuda.runtime.deviceGetPCIBusId(index)

    def sync(self) -> None:
        self.device.synchronize()

    def free_bytes(self) -> int:
        return int(self.cp.cuda.runtime.memGetInfo()[0])

    def _release(self, *names):
        def release():
            for n in names:
                self.__dict__.pop(n, None)
            self.cp.get_default_memory_pool().free_all_blocks()
        return release

    def workload(self, key: str, nbytes: int, gemm_n: int) -> Workload:
        cp = self.cp
        if key == READ:
            self.x = cp.ones(nbytes // 2, dtype=cp.float16)
            return Workload(key, f"sum of a {nbytes / GIB:g} GiB fp16 tensor", "bit", nbytes * 8.0,
                            lambda: self.x.sum(), self._release("x"))
        if key == COPY:
            self.a = cp.ones(nbytes // 4, dtype=cp.float16)
            self.b = cp.empty_like(self.a)
            return Workload(key, f"copy of a {nbytes / 2 / GIB:g} GiB fp16 tensor (read + write counted)", "bit",
                            nbytes * 8.0, lambda: cp.copyto(self.b, self.a), self._release("a", "b"))
        if key == H2D:
            import numpy as np

            self.hmem = cp.cuda.alloc_pinned_memory(nbytes)
            self.h = np.frombuffer(self.hmem, np.uint8, nbytes)
            self.h[:] = 1
            self.d = cp.empty(nbytes, dtype=cp.uint8)
            rt = cp.cuda.runtime

            def step():
                rt.memcpyAsync(self.d.data.ptr, self.h.ctypes.data, nbytes, rt.memcpyHostToDevice,
                               cp.cuda.get_current_stream().ptr)
            return Workload(key, f"pinned host -> device copy of {nbytes / GIB:g} GiB", "bit", nbytes * 8.0,
                            step, self._release("h", "hmem", "d"))
        if key == GEMM:
            self.p = cp.random.standard_normal((gemm_n, gemm_n)).astype(cp.float16)
            self.q = cp.random.standard_normal((gemm_n, gemm_n)).astype(cp.float16)
            self.r = cp.empty_like(self.p)
            return Workload(key, f"fp16 GEMM {gemm_n}^3 (cupy has no bf16)", "flop", 2.0 * gemm_n**3,
                            lambda: cp.matmul(self.p, self.q, out=self.r), self._release("p", "q", "r"))
        raise ValueError(key)


def default_backend(index: int = 0):
    """PyTorch if installed, else CuPy; a one-line error if neither."""
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        return TorchBackend(index)
    if importlib.util.find_spec("cupy") is not None:
        return CupyBackend(index)
    raise DseError("neither torch nor cupy is installed: dse-calibrate needs one of them to drive the GPU")
