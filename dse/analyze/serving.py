"""The largest batch that meets TPOT / TTFT service-level targets and fits in memory (docs/model.md "Requests"):
a vectorized bisection over batch on every grid point, using the request model of :mod:`dse.model.requests`."""
from __future__ import annotations

import numpy as np

from dse.errors import DseError
from dse.model.kernel import NO_POWER_LIMIT_W
from dse.model.requests import VARIABLES, _with

LIMITS = ("none", "tpot", "ttft", "memory", "batch_max")
MAX_BATCH_VARIABLES = {
    "max_batch": ("sequences", "largest batch meeting the TPOT and TTFT targets and fitting in memory (0: none)"),
    "limited_by": ("", "what stops a larger batch: tpot, ttft, memory, or batch_max (the search's upper end)"),
    "meets_slo": ("1", "1 where batch 1 already meets the targets (else max_batch is 0 and the values are batch 1's)"),
    **VARIABLES,   # every request output, at that batch
}


def _check_slo(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
            0 < value < np.inf):
        raise DseError(f"{name}={value!r} out of range: allowed a number of seconds in (0, inf)")
    return float(value)


def _check_inputs(tpot_slo_s, ttft_slo_s, batch_max, params: dict):
    """The targets and the search's upper end, checked before any work; the grid parameters without batch."""
    slo = _check_slo("tpot_slo_s", tpot_slo_s), _check_slo("ttft_slo_s", ttft_slo_s)
    if isinstance(batch_max, bool) or not isinstance(batch_max, (int, np.integer)) or batch_max < 1:
        raise DseError(f"batch_max={batch_max!r} out of range: allowed an integer in [1, inf)")
    if params.get("batch") is not None:
        raise DseError("batch: max_batch searches the batch itself; leave batch out")
    return slo, {k: v for k, v in params.items() if v is not None and k != "batch"}


class _Search:
    """The grid's request outputs at a batch per point, and whether they meet the targets."""

    def __init__(self, grid, tpot_slo_s, ttft_slo_s):
        self.grid, self.tpot, self.ttft = grid, tpot_slo_s, ttft_slo_s
        self.inputs = {k: v for k, v in grid.whole().items() if k != "pre"}
        self.shape = tuple(grid.sizes[d] for d in grid.dims)
        # a board power limit makes the times depend on the energy (the throttle): then the whole traffic is needed
        self.throttles = bool(np.any(np.asarray(self.inputs["g"].power_limit_w) < NO_POWER_LIMIT_W))

    def at(self, batch, energy=False) -> dict:
        """The outputs at ``batch`` (one value per point); without a power limit the search needs times only (no
        tiled traffic)."""
        w = _with(self.inputs["w"], batch=batch.astype(float), latency_only=not (energy or self.throttles))
        out = self.grid.compute(**{**self.inputs, "w": w})
        names = ("tpot", "ttft", "fits", "hbm_fill") + (tuple(VARIABLES) if energy else ())
        return {k: np.broadcast_to(np.asarray(out[k]), self.shape) for k in names}

    def ok(self, o: dict):
        good = o["fits"].copy()
        if self.tpot is not None:
            good &= o["tpot"] <= self.tpot
        if self.ttft is not None:
            good &= o["ttft"] <= self.ttft
        return good

    def largest(self, batch_max: int):
        """Integer bisection on every point at once; the upper end first narrowed by memory (HBM fill is affine in
        the batch: weights + KV per sequence)."""
        one, two = self.at(np.ones(self.shape)), self.at(np.full(self.shape, 2.0))
        per_seq = two["hbm_fill"] - one["hbm_fill"]
        with np.errstate(divide="ignore", invalid="ignore"):
            mem = np.where(per_seq > 0, np.floor((1.0 - one["hbm_fill"]) / per_seq) + 1.0, float(batch_max))
        hi = np.clip(np.nan_to_num(mem, nan=float(batch_max), posinf=float(batch_max)) + 2.0, 1.0, float(batch_max))
        lo = np.where(self.ok(one), 1.0, 0.0)                # largest batch known to pass
        hi = np.where(lo > 0, hi + 1.0, 1.0)                 # smallest batch known (or taken) to fail
        while np.any(hi - lo > 1):
            active = hi - lo > 1
            mid = np.where(active, np.floor((lo + hi) / 2), np.maximum(lo, 1.0))
            good = self.ok(self.at(mid))
            lo = np.where(active & good, mid, lo)
            hi = np.where(active & ~good, mid, hi)
        return lo

    def limit(self, lo, batch_max: int):
        """What stops the next batch: the first failing constraint at lo + 1 (memory, then TPOT, then TTFT)."""
        o = self.at(np.minimum(lo + 1.0, float(batch_max)))
        code = np.where(~o["fits"], 3, 0)
        if self.tpot is not None:
            code = np.where((code == 0) & (o["tpot"] > self.tpot), 1, code)
        if self.ttft is not None:
            code = np.where((code == 0) & (o["ttft"] > self.ttft), 2, code)
        return np.asarray(LIMITS)[np.where(lo >= batch_max, 4, code)]


def max_batch(study=None, *, tpot_slo_s=None, ttft_slo_s=None, batch_max: int = 65536, model=None, system=None,
              accounting=None, cfg=None, **params):
    """The largest batch meeting ``tpot <= tpot_slo_s`` and ``ttft <= ttft_slo_s`` (s; None: no target) and fitting
    in memory (``fits``), at every point of the other dimensions, with what limits it and the request metrics at it.

    Parameters are those of :func:`dse.evaluate` (requests: ``prompt_len`` and ``output_len``, or ``profile``), less
    ``batch``. Every grid point runs its own integer bisection over ``1 .. batch_max`` (the upper end first narrowed
    by the memory the KV cache leaves), all points at once; TPOT, TTFT and memory all grow with the batch, so the
    answer equals a scan of every batch (tests/test_serving.py checks it against one).
    """
    import xarray as xr

    from dse import cf
    from dse.run import engine

    (tpot_slo_s, ttft_slo_s), params = _check_inputs(tpot_slo_s, ttft_slo_s, batch_max, params)
    grid = engine.resolve(study, model=model, system=system, accounting=accounting, cfg=cfg, batch=1, **params)
    if "ttft" not in grid.variables:
        raise DseError("max_batch needs requests: give prompt_len and output_len (or a profile)")
    search = _Search(grid, tpot_slo_s, ttft_slo_s)
    lo = search.largest(batch_max)
    best = search.at(np.maximum(lo, 1.0), energy=True)
    data = {"max_batch": lo.astype(np.int64), "limited_by": search.limit(lo, batch_max),
            "meets_slo": lo > 0, **{k: best[k] for k in VARIABLES}}
    ds = xr.Dataset({k: (grid.dims, np.array(v)) for k, v in data.items()},
                    coords={d: grid.coords[d] for d in grid.dims},
                    attrs={**grid.attrs, "title": "dse largest batch under latency targets",
                           "tpot_slo_s": tpot_slo_s if tpot_slo_s is not None else "none",
                           "ttft_slo_s": ttft_slo_s if ttft_slo_s is not None else "none", "batch_max": batch_max})
    for k, (units, long_name) in cf.variables(MAX_BATCH_VARIABLES).items():
        ds[k].attrs.update(units=units, long_name=long_name)
    for d in grid.dims:
        ds[d].attrs.update(grid.coord_attrs.get(d, {}))
    return ds
