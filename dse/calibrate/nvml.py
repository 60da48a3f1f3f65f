"""The board energy source: NVML's total-energy counter, read-only."""
from __future__ import annotations

import time

from dse.errors import DseError

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
