"""Measurement windows: energy above idle, rates and energies per bit or FLOP, launch batching (docs/model.md s.9)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from dse.calibrate import PJ, TARGET_STEP_S
from dse.errors import DseError

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
