"""dse.calibrate: measure a GPU's board-level energy per bit and per FLOP, and write a GPU preset from it.

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

Modules: :mod:`.measure` (window arithmetic), :mod:`.nvml` (the energy source), :mod:`.backends` (the four
activities with torch or cupy), :mod:`.probe` (the measurement sequence), :mod:`.presets` (probe -> GPU and link
presets); the command line is :mod:`dse.cli.dse_calibrate`.
"""
from __future__ import annotations

GIB = 2**30
PJ = 1e-12
MIN_WINDOW_S, MAX_WINDOW_S = 10.0, 600.0
TARGET_STEP_S = 0.1          # iterations are launched in batches of ~0.1 s between synchronisations
IDLE_TICK_S = 0.1
METHOD = ("NVML total-energy counter (nvmlDeviceGetTotalEnergyConsumption) over {w:g} s windows; "
          "dynamic = window energy - idle power x window time (idle measured with a CUDA context up)")
#: Probe result keys (the layout of reference/h200_energy_probe_*.json).
READ, COPY, H2D, GEMM = "hbm_read_sum", "hbm_copy_rw", "h2d_pinned", "gemm_bf16"
