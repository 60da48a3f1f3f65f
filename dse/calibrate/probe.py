"""The probe: idle power, then each activity over long windows, as a dict in the reference JSON's layout."""
from __future__ import annotations

import datetime
from typing import Callable

from dse.calibrate import COPY, GEMM, GIB, H2D, IDLE_TICK_S, MAX_WINDOW_S, METHOD, MIN_WINDOW_S, READ
from dse.calibrate.measure import iters_per_step, measure, summarize
from dse.errors import DseError

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
