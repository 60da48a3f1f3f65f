"""The largest batch that meets TPOT / TTFT service-level targets and fits in memory (docs/model.md "Requests"):
a vectorized bisection over batch on every grid point, using the request model of :mod:`dse.model.requests`."""
from __future__ import annotations

import numpy as np

from dse.model.params import DseError
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

    from dse.run import cf, engine


    tpot_slo_s, ttft_slo_s = _check_slo("tpot_slo_s", tpot_slo_s), _check_slo("ttft_slo_s", ttft_slo_s)
    if isinstance(batch_max, bool) or not isinstance(batch_max, (int, np.integer)) or batch_max < 1:
        raise DseError(f"batch_max={batch_max!r} out of range: allowed an integer in [1, inf)")
    if params.get("batch") is not None:
        raise DseError("batch: max_batch searches the batch itself; leave batch out")
    params = {k: v for k, v in params.items() if v is not None and k != "batch"}
    grid = engine.resolve(study, model=model, system=system, accounting=accounting, cfg=cfg, batch=1, **params)
    if "ttft" not in grid.variables:
        raise DseError("max_batch needs requests: give prompt_len and output_len (or a profile)")
    inputs = {k: v for k, v in grid.whole().items() if k != "pre"}
    shape = tuple(grid.sizes[d] for d in grid.dims)

    def at(batch, energy=False):
        """The request outputs at a batch per point; the search needs times only (no tiled traffic)."""
        w = _with(inputs["w"], batch=batch.astype(float), latency_only=not energy)
        out = grid.compute(**{**inputs, "w": w})
        names = ("tpot", "ttft", "fits", "hbm_fill") + (tuple(VARIABLES) if energy else ())
        return {k: np.broadcast_to(np.asarray(out[k]), shape) for k in names}

    def ok(o):
        good = o["fits"].copy()
        if tpot_slo_s is not None:
            good &= o["tpot"] <= tpot_slo_s
        if ttft_slo_s is not None:
            good &= o["ttft"] <= ttft_slo_s
        return good

    # the upper end: HBM fill is affine in the batch (weights + KV per sequence), so memory bounds it in one step
    one, two = at(np.ones(shape)), at(np.full(shape, 2.0))
    per_seq = two["hbm_fill"] - one["hbm_fill"]
    with np.errstate(divide="ignore", invalid="ignore"):
        mem = np.where(per_seq > 0, np.floor((1.0 - one["hbm_fill"]) / per_seq) + 1.0, float(batch_max))
    hi = np.clip(np.nan_to_num(mem, nan=float(batch_max), posinf=float(batch_max)) + 2.0, 1.0, float(batch_max))
    lo = np.where(ok(one), 1.0, 0.0)                     # largest batch known to pass
    hi = np.where(lo > 0, hi + 1.0, 1.0)                 # smallest batch known (or taken) to fail
    while np.any(hi - lo > 1):
        active = hi - lo > 1
        mid = np.where(active, np.floor((lo + hi) / 2), np.maximum(lo, 1.0))
        good = ok(at(mid))
        lo = np.where(active & good, mid, lo)
        hi = np.where(active & ~good, mid, hi)
    best = at(np.maximum(lo, 1.0), energy=True)
    # what stops the next batch: the first failing constraint at lo + 1 (memory first, then TPOT, then TTFT)
    o = at(np.minimum(lo + 1.0, float(batch_max)))
    code = np.where(~o["fits"], 3, 0)
    if tpot_slo_s is not None:
        code = np.where((code == 0) & (o["tpot"] > tpot_slo_s), 1, code)
    if ttft_slo_s is not None:
        code = np.where((code == 0) & (o["ttft"] > ttft_slo_s), 2, code)
    code = np.where(lo >= batch_max, 4, code)

    coords = {d: grid.coords[d] for d in grid.dims}
    data = {"max_batch": lo.astype(np.int64), "limited_by": np.asarray(LIMITS)[code],
            "meets_slo": lo > 0, **{k: best[k] for k in VARIABLES}}
    ds = xr.Dataset({k: (grid.dims, np.array(v)) for k, v in data.items()}, coords=coords,
                    attrs={**grid.attrs, "title": "dse largest batch under latency targets",
                           "tpot_slo_s": tpot_slo_s if tpot_slo_s is not None else "none",
                           "ttft_slo_s": ttft_slo_s if ttft_slo_s is not None else "none", "batch_max": batch_max})
    for k, (units, long_name) in cf.variables(MAX_BATCH_VARIABLES).items():
        ds[k].attrs.update(units=units, long_name=long_name)
    for d in grid.dims:
        ds[d].attrs.update(grid.coord_attrs.get(d, {}))
    return ds
