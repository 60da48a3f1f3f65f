"""dse-calibrate: measure a GPU's board-level energy per bit and per FLOP, and write a GPU preset from it.

Method (docs/model.md section 9): NVML's total-energy counter (mJ, whole board) is read at the start and end of
windows of at least 10 s. Idle power is measured first, after the CUDA context is up (clocks raised); each
activity's *dynamic* energy is its window energy minus idle power x window time, divided by the bits moved or
FLOPs done. Activities: HBM read stream (sum of a bf16 tensor), device-to-device copy (read + write counted),
pinned host-to-device copy (GPU side only: the host's DRAM and PCIe end are not on this board's counter),
bf16 GEMM. The achieved bandwidths and FLOP rate come from the same windows.

The only seam is the energy/clock source (``read_energy_mj()``, ``now()``, ``sleep(s)``, ``info()``): NVML
and ``time.monotonic`` by default, a scripted fake in the unit tests. The tool only reads NVML; it never sets
clocks or power limits. Heavy modules (pynvml, torch or cupy, yaml) are imported lazily: ``import
dse.calibrate`` needs neither Hydra nor xarray, so it runs on a bare GPU machine.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .params import DseError

GIB = 2**30
PJ = 1e-12
MIN_WINDOW_S, MAX_WINDOW_S = 10.0, 600.0
TARGET_STEP_S = 0.1          # iterations are launched in batches of ~0.1 s between synchronisations
IDLE_TICK_S = 0.1
METHOD = ("NVML total-energy counter (nvmlDeviceGetTotalEnergyConsumption) over {w:g} s windows; "
          "dynamic = window energy - idle power x window time (idle measured with a CUDA context up)")
#: Probe result keys (the layout of reference/h200_energy_probe_*.json).
READ, COPY, H2D, GEMM = "hbm_read_sum", "hbm_copy_rw", "h2d_pinned", "gemm_bf16"
CONF_DIR = Path(os.environ.get("DSE_CONF_DIR", Path(__file__).resolve().parent / "conf"))


# ----------------------------------------------------------------------------------- measurement arithmetic
@dataclass(frozen=True)
class Window:
    """One measurement window: iterations done, seconds elapsed, board joules spent."""
    iters: int
    seconds: float
    joules: float

    @property
    def avg_w(self) -> float:
        return self.joules / self.seconds


def dynamic_joules(w: Window, idle_w: float) -> float:
    """Energy above idle: E - P_idle x t."""
    return w.joules - idle_w * w.seconds


def summarize(w: Window, idle_w: float, units_per_iter: float, unit: str) -> dict:
    """Rates and energies of one activity window. ``unit`` is "bit" (bits moved per iteration) or "flop"."""
    units = w.iters * units_per_iter
    out = {"iters": w.iters, "seconds": w.seconds, "joules": w.joules, "avg_W": w.avg_w}
    if unit == "bit":
        out["GBps"] = units / 8 / w.seconds / 1e9
        out["dyn_pJ_per_bit"] = dynamic_joules(w, idle_w) / units / PJ
        out["total_pJ_per_bit"] = w.joules / units / PJ
    elif unit == "flop":
        out["TFLOPs"] = units / w.seconds / 1e12
        out["dyn_pJ_per_flop"] = dynamic_joules(w, idle_w) / units / PJ
        out["total_pJ_per_flop"] = w.joules / units / PJ
    else:
        raise ValueError(f"unit={unit!r}: allowed bit, flop")
    return out


def measure(source, step: Callable[[], None], sync: Callable[[], None], window_s: float,
            iters_per_step: int = 1) -> Window:
    """Run ``step`` (``iters_per_step`` iterations at a time, then ``sync``) until ``window_s`` has passed."""
    sync()
    e0, t0 = source.read_energy_mj(), source.now()
    n, t1 = 0, t0
    while t1 - t0 < window_s:
        for _ in range(iters_per_step):
            step()
        n += iters_per_step
        sync()
        t1 = source.now()
    e1 = source.read_energy_mj()
    if e1 < e0:
        raise DseError(f"the energy counter went backwards ({e0} -> {e1} mJ): driver reloaded? measure again")
    return Window(n, t1 - t0, (e1 - e0) / 1e3)


def iters_per_step(source, step: Callable[[], None], sync: Callable[[], None], warmup: int = 3) -> int:
    """Warm up, then size launch batches to ~TARGET_STEP_S so synchronisation gaps stay negligible."""
    step()
    sync()
    t0 = source.now()
    for _ in range(warmup):
        step()
    sync()
    per_iter = max((source.now() - t0) / warmup, 1e-9)
    return int(min(max(math.ceil(TARGET_STEP_S / per_iter), 1), 10_000))


# ---------------------------------------------------------------------------------------- energy source
class NvmlSource:
    """Board energy from NVML (read-only calls) and time from ``time.monotonic``."""

    def __init__(self, index: int = 0):
        try:
            import pynvml
        except ImportError as e:
            raise DseError(f"NVML is not available ({e}): dse-calibrate needs an NVIDIA GPU, its driver and "
                           "nvidia-ml-py (pip install 'dse[calibrate]')") from None
        self.nvml = pynvml
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
        except Exception as e:  # noqa: BLE001 - NVMLError subclasses; any failure means no usable NVML
            raise DseError(f"NVML could not start ({_text(e)}): dse-calibrate needs an NVIDIA GPU and its driver") from None
        if not 0 <= index < count:
            self.close()
            raise DseError(f"--device={index} out of range: NVML sees {count} GPU(s), allowed [0, {count - 1}]")
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        try:
            self.read_energy_mj()
        except Exception as e:  # noqa: BLE001
            self.close()
            raise DseError(f"this GPU has no NVML total-energy counter ({_text(e)}): Volta or newer is needed") from None

    def match_pci(self, bus_id: str | None) -> None:
        """Follow the GPU the workloads run on: CUDA and NVML may number GPUs differently."""
        if not bus_id:
            return
        for i in range(self.nvml.nvmlDeviceGetCount()):
            h = self.nvml.nvmlDeviceGetHandleByIndex(i)
            if _text(self.nvml.nvmlDeviceGetPciInfo(h).busId).lower()[-12:] == bus_id.lower()[-12:]:
                self.handle = h
                return

    def read_energy_mj(self) -> float:
        return float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def info(self) -> dict:
        n, h = self.nvml, self.handle
        out = {"gpu": _text(n.nvmlDeviceGetName(h)), "driver": _text(n.nvmlSystemGetDriverVersion()),
               "power_limit_W": n.nvmlDeviceGetEnforcedPowerLimit(h) / 1e3,
               "memory_total_bytes": int(n.nvmlDeviceGetMemoryInfo(h).total)}
        try:  # identifies the board: boards of one model differ (docs/model.md s.9 vs this repo's reference/)
            out["uuid"] = _text(n.nvmlDeviceGetUUID(h))
        except Exception:  # noqa: BLE001
            pass
        try:
            out["sm_clock_MHz"] = n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM)
            out["sm_clock_max_MHz"] = n.nvmlDeviceGetMaxClockInfo(h, n.NVML_CLOCK_SM)
        except Exception:  # noqa: BLE001 - clocks are informative only
            pass
        return out

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


def _text(x) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


# ------------------------------------------------------------------------------------------- workloads
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


# -------------------------------------------------------------------------------------------- the probe
def calibrate(source, backend, window_s: float = 12.0, read_gib: float = 8.0, h2d_gib: float = 2.0,
              gemm_n: int = 8192, log: Callable[[str], None] = lambda s: None) -> dict:
    """Measure idle power and the four activities; returns a probe dict in the reference JSON's layout."""
    check_window(window_s)
    read_bytes = int(read_gib * GIB)
    free = getattr(backend, "free_bytes", lambda: None)()
    if free is not None:  # small GPUs: shrink the stream (its buffer, or the copy's two halves, must fit)
        read_bytes = min(read_bytes, int(free * 0.4)) // 4 * 4
    probe = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             **source.info(), "backend": getattr(backend, "version", type(backend).__name__),
             "window_s": window_s, "method": METHOD.format(w=window_s)}

    def idle() -> float:
        tick = lambda: source.sleep(IDLE_TICK_S)  # noqa: E731
        return measure(source, tick, backend.sync, window_s).avg_w

    probe["idle_W"] = idle_w = idle()
    log(f"idle (CUDA context up): {idle_w:.1f} W")
    results, what = {}, {}
    for key, nbytes in ((READ, read_bytes), (COPY, read_bytes), (H2D, int(h2d_gib * GIB)), (GEMM, 0)):
        wl = backend.workload(key, nbytes, gemm_n)
        try:
            k = iters_per_step(source, wl.step, backend.sync)
            w = measure(source, wl.step, backend.sync, window_s, k)
        finally:
            wl.release()
        results[key] = summarize(w, idle_w, wl.units_per_iter, wl.unit)
        what[key] = wl.what
        log(f"{key}: {_line(results[key])}")
    if "dyn_pJ_per_bit" in results[H2D]:
        results[H2D]["dyn_pJ_per_bit_gpu_side"] = results[H2D].pop("dyn_pJ_per_bit")
        results[H2D]["total_pJ_per_bit_gpu_side"] = results[H2D].pop("total_pJ_per_bit")
    probe["results"], probe["activities"] = results, what
    probe["idle_after_W"] = idle()
    log(f"idle after: {probe['idle_after_W']:.1f} W")
    return probe


def _line(r: dict) -> str:
    rate = f"{r['GBps']:.1f} GB/s" if "GBps" in r else f"{r['TFLOPs']:.1f} TFLOP/s"
    e = {k: v for k, v in r.items() if k.startswith("dyn_")}
    return f"{rate}, {r['avg_W']:.1f} W, " + ", ".join(f"{k} {v:.4g}" for k, v in e.items())


def check_window(window_s: float) -> None:
    if not (MIN_WINDOW_S <= window_s <= MAX_WINDOW_S):
        raise DseError(f"--window-s={window_s:g} out of range: allowed [{MIN_WINDOW_S:g}, {MAX_WINDOW_S:g}] "
                       "(NVML's counter needs long windows)")


# --------------------------------------------------------------------------------- probe -> presets
def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def derived(probe: dict) -> dict:
    """The model's constants from a probe: board-level dynamic pJ/bit, pJ/FLOP, idle W, achieved rates.

    HBM write is what a copy costs beyond its read: a copy of N bits counts 2N bits moved at c pJ/bit, so
    read + write = 2c and write = 2c - read. The host -> device copy's GPU side pays the link and the HBM
    write; the link's share is that minus the HBM write (the host's DRAM and PCIe end are not measured).
    """
    try:
        r = probe["results"]
        read = r[READ]["dyn_pJ_per_bit"]
        copy = r[COPY]["dyn_pJ_per_bit"]
        out = {"idle_w": probe["idle_W"], "hbm_read_pj_per_bit": read, "hbm_write_pj_per_bit": 2 * copy - read,
               "flop_pj": r[GEMM]["dyn_pJ_per_flop"], "peak_tflops": r[GEMM]["TFLOPs"],
               "hbm_bw_gbps": r[READ]["GBps"], "copy_pj_per_bit": copy}
        if H2D in r:
            out["h2d_gbps"] = r[H2D]["GBps"]
            out["h2d_pj_per_bit"] = r[H2D]["dyn_pJ_per_bit_gpu_side"]
            out["link_pj_per_bit"] = out["h2d_pj_per_bit"] - out["hbm_write_pj_per_bit"]
    except (KeyError, TypeError) as e:
        raise DseError(f"probe JSON lacks {e}: expected idle_W and results.{{{READ},{COPY},{GEMM}}}") from None
    for key in ("idle_w", "hbm_read_pj_per_bit", "hbm_write_pj_per_bit", "flop_pj", "link_pj_per_bit"):
        if key in out and out[key] < 0:
            raise DseError(f"derived {key}={out[key]:.4g} is negative: the measurement is too noisy; measure "
                           "again with a longer --window-s")
    return out


def _where(probe: dict, label: str) -> str:
    bits = [label, probe.get("gpu", "GPU not recorded")]
    if probe.get("driver"):
        bits.append(f"driver {probe['driver']}")
    if probe.get("date"):
        bits.append(probe["date"][:10])
    return ", ".join(bits)


def gpu_preset(probe: dict, name: str, base: dict | None = None, price_usd: float | None = None,
               label: str = "dse-calibrate") -> dict:
    """A GPU preset (dse/conf/gpu schema) from a probe. Capacity and price come from ``base`` (a preset)
    or NVML's memory total / ``price_usd``: a power measurement gives neither."""
    d = derived(probe)
    where = _where(probe, label)
    src = lambda what: {"source": f"{where}: {what}", "evidence": "measured"}  # noqa: E731
    board = "board-level figures include the SMs, L2 and on-chip network"
    prov = {
        "peak_tflops": src(f"achieved rate of {GEMM} ({probe.get('activities', {}).get(GEMM, 'bf16 GEMM 8192^3')})"),
        "hbm_bw_gbps": src(f"achieved rate of {READ} (HBM read stream)"),
        "hbm_capacity_gb": None,
        "idle_w": src("idle board power with a CUDA context up (clocks raised), NVML energy / window time"),
        "hbm_read_pj_per_bit": src(f"{READ} dynamic pJ/bit ({board})"),
        "hbm_write_pj_per_bit": {"source": f"{where}: 2 x {COPY} dynamic pJ/bit (read + write counted) "
                                           f"- HBM read = 2 x {d['copy_pj_per_bit']:.4g} - {d['hbm_read_pj_per_bit']:.4g}",
                                 "evidence": "derived"},
        "flop_pj": src(f"{GEMM} dynamic pJ/FLOP"),
        "l2_pj_per_bit": {"source": "included in the board-level HBM pJ/bit", "evidence": "derived"},
        "l1_pj_per_bit": {"source": "included in the board-level HBM pJ/bit", "evidence": "derived"},
        "price_usd": None,
    }
    base = base or {}
    base_prov = base.get("provenance", {}) or {}
    if "hbm_capacity_gb" in base:
        capacity = float(base["hbm_capacity_gb"])
        prov["hbm_capacity_gb"] = base_prov.get("hbm_capacity_gb") or {"source": f"from {base.get('name')}",
                                                                         "evidence": "assumption"}
    elif probe.get("memory_total_bytes"):
        capacity = round(probe["memory_total_bytes"] / 1e9, 1)
        prov["hbm_capacity_gb"] = src("NVML memory total")
    else:
        raise DseError("hbm_capacity_gb: the probe has no memory_total_bytes; pass --base (a GPU preset)")
    if price_usd is not None:
        price = float(price_usd)
        prov["price_usd"] = {"source": "given with --price-usd", "evidence": "assumption"}
    elif "price_usd" in base:
        price = float(base["price_usd"])
        prov["price_usd"] = base_prov.get("price_usd") or {"source": f"from {base.get('name')}", "evidence": "assumption"}
    else:
        raise DseError("price_usd: a measurement gives no price; pass --price-usd or --base (a GPU preset)")
    hbm_usd_per_gb = float(base.get("hbm_usd_per_gb", 0.0))
    prov["hbm_usd_per_gb"] = base_prov.get("hbm_usd_per_gb") or {
        "source": f"from {base.get('name') or 'no base preset'} (a measurement gives no price)", "evidence": "assumption"}
    # cache geometry: a power probe does not measure it; take the base preset's (or the H100 values of the
    # authors' tool, flagged as an assumption)
    geometry = {"register_tile": 16, "l1_kib": 256.0, "l2_mib": 50.0}
    for key, default in geometry.items():
        geometry[key] = base.get(key, default)
        prov[key] = base_prov.get(key) or {"source": f"{'from ' + base['name'] if key in base else 'H100 value'}"
                                                     " (a power probe does not measure cache geometry)",
                                           "evidence": "assumption"}
    return {
        "name": name,
        "peak_tflops": round(d["peak_tflops"], 1),
        "hbm_bw_gbps": round(d["hbm_bw_gbps"], 1),
        "hbm_capacity_gb": capacity,
        "idle_w": round(d["idle_w"], 1),
        "hbm_read_pj_per_bit": _sig(d["hbm_read_pj_per_bit"]),
        "hbm_write_pj_per_bit": _sig(d["hbm_write_pj_per_bit"]),
        "flop_pj": _sig(d["flop_pj"]),
        "l2_pj_per_bit": 0.0,
        "l1_pj_per_bit": 0.0,
        **geometry,
        "price_usd": price,
        "hbm_usd_per_gb": hbm_usd_per_gb,
        "provenance": prov,
    }


def link_preset(probe: dict, name: str, label: str = "dse-calibrate") -> dict:
    """An offload-link preset (dse/conf/link schema) from the pinned host -> device copy.

    The GPU side of that copy pays the link and the HBM write; dse charges the HBM write separately
    (``hbm_write_pj_per_bit``), so the link gets the rest. Link + HBM write = the measured GPU-side figure.
    """
    d = derived(probe)
    if "h2d_gbps" not in d:
        raise DseError(f"probe JSON lacks results.{H2D}: no link preset can be derived")
    where = _where(probe, label)
    return {
        "name": name,
        "bw_gbps": round(d["h2d_gbps"], 1),
        "pj_per_bit": _sig(d["link_pj_per_bit"]),
        "provenance": {
            "bw_gbps": {"source": f"{where}: achieved rate of {H2D} (pinned host -> device copy)",
                        "evidence": "measured"},
            "pj_per_bit": {"source": f"{where}: {H2D} dynamic pJ/bit, GPU side only ({d['h2d_pj_per_bit']:.4g}), "
                                     f"minus the HBM write ({d['hbm_write_pj_per_bit']:.4g}) charged separately; "
                                     "the host's DRAM read and PCIe end are not included",
                           "evidence": "derived"},
        },
    }


def load_gpu_preset(name_or_path: str) -> dict:
    """A GPU preset by name (dse/conf/gpu/<name>.yaml) or by path, read as plain YAML (no Hydra needed)."""
    import yaml

    path = Path(name_or_path)
    if not path.suffix:
        path = CONF_DIR / "gpu" / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (CONF_DIR / "gpu").glob("*.yaml"))
        raise DseError(f"--base={name_or_path!r} not found: give a YAML path or one of {', '.join(known)}")
    return yaml.safe_load(path.read_text())


def write_atomic(path: str | Path, text: str) -> None:
    """Write to a temporary name in the same directory, then rename: no half-written file ever appears
    (:func:`dse.outputs.atomic_write`)."""
    from .outputs import atomic_write

    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text), key=str(path))


def to_yaml(preset: dict, header: str) -> str:
    import yaml

    body = yaml.safe_dump(preset, sort_keys=False, default_flow_style=None, width=10_000)
    return "".join(f"# {line}\n" for line in header.splitlines()) + body


def header(probe: dict, label: str, kind: str) -> str:
    lines = [f"{kind} preset with board-level constants of {_where(probe, label)}.",
             probe.get("method", METHOD.format(w=probe.get("window_s", 12))) + "."]
    if kind == "GPU":
        lines.append("Board-level figures include SMs, L2 and the on-chip network, so l2/l1 are zero (no double count).")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ CLI
def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dse-calibrate", description=__doc__.split("\n\n")[0])
    p.add_argument("--window-s", type=float, default=12.0, help="seconds per measurement window (10..600)")
    p.add_argument("--device", type=int, default=0, help="CUDA device index")
    p.add_argument("--name", help="preset name (default: <gpu>-calibrated)")
    p.add_argument("--base", help="GPU preset (name or YAML path) for what a measurement cannot give: "
                                  "capacity and price")
    p.add_argument("--price-usd", type=float, help="GPU price (else from --base)")
    p.add_argument("--out", help="write the GPU preset YAML here (default: stdout)")
    p.add_argument("--link-out", help="also write an offload-link preset from the host -> device copy")
    p.add_argument("--json", help="write the raw probe (reference JSON layout) here")
    p.add_argument("--from-json", help="convert an existing probe JSON instead of measuring (no GPU needed)")
    return p


def _checked(args) -> dict | None:
    """Every input check before any work starts."""
    check_window(args.window_s)
    if args.price_usd is not None and not (args.price_usd >= 0):
        raise DseError(f"--price-usd={args.price_usd:g} out of range: allowed [0, inf)")
    for opt in ("out", "link_out", "json"):
        v = getattr(args, opt)
        if v is not None and not Path(v).resolve().parent.is_dir():
            raise DseError(f"--{opt.replace('_', '-')}={v}: directory {Path(v).resolve().parent} does not exist")
    if args.from_json is not None and not Path(args.from_json).is_file():
        raise DseError(f"--from-json={args.from_json}: no such file")
    if args.name is not None and _slug(args.name) != args.name:
        raise DseError(f"--name={args.name!r}: use lowercase letters, digits and dashes")
    base = load_gpu_preset(args.base) if args.base else None
    if base is None and args.price_usd is None:
        raise DseError("a measurement gives no price: pass --base (a GPU preset, e.g. h200-sxm) or --price-usd")
    return base


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    log = lambda s: print(f"dse-calibrate: {s}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        base = _checked(args)
        if args.from_json:
            try:
                probe = json.loads(Path(args.from_json).read_text())
            except (OSError, ValueError) as e:
                raise DseError(f"--from-json={args.from_json}: not a probe JSON ({e})") from None
            label = args.from_json
        else:
            label = "dse-calibrate"
            source = NvmlSource(args.device)
            try:
                backend = default_backend(args.device)
                source.match_pci(backend.pci_bus_id)
                log(f"measuring {source.info()['gpu']} with {backend.version}, {args.window_s:g} s windows "
                    "(clocks and power limits are left as they are)")
                probe = calibrate(source, backend, args.window_s, log=log)
            finally:
                source.close()
            if args.json:  # raw data first: it survives a failed conversion
                write_atomic(args.json, json.dumps(probe, indent=1) + "\n")
        name = args.name or f"{_slug(probe.get('gpu', 'gpu')).removeprefix('nvidia-')}-calibrated"
        preset = gpu_preset(probe, name, base, args.price_usd, label)
        text = to_yaml(preset, header(probe, label, "GPU"))
        link_text = (to_yaml(link_preset(probe, f"{name}-h2d", label), header(probe, label, "Host -> device link"))
                     if args.link_out else None)
        if args.out:
            write_atomic(args.out, text)
        else:
            sys.stdout.write(text)
        if link_text is not None:
            write_atomic(args.link_out, link_text)
    except DseError as e:
        print(f"dse-calibrate: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
