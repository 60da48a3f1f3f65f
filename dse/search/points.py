"""Design points through :func:`dse.evaluate` in one vectorized call: a batch of trials, or a whole grid.

A batch of trials is not a rectangular grid. Its numeric parameters go into the engine as arrays along one
``trial`` dimension (each trial its own value); its categorical ones (GPU, placement, offload path: presets
stacked by the engine) as short lists of the values the batch uses, each its own dimension. One call computes
every trial under every combination of those few categories; each trial then picks its own combination out
with pointwise (vectorized) indexing.
"""
from __future__ import annotations

import math

import numpy as np
import xarray as xr

from dse.run.engine import evaluate
from dse.config.params import PARAMS
from .space import Space


def is_categorical(name: str) -> bool:
    """Parameters the engine stacks along their own dimension (presets, placement, offload path, prefetch)."""
    return name in PARAMS and PARAMS[name].categorical


def _unique(values: list) -> list:
    seen = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen


def evaluate_trials(base: dict, space: Space, params: dict[str, list]) -> xr.Dataset:
    """Evaluate trial points (``params``: name -> one value per trial) -> Dataset along dimension ``trial``."""
    n = len(next(iter(params.values())))

    def along(v):
        return xr.DataArray(np.asarray(v), dims=["trial"])

    kwargs, pick = dict(space.fixed), {}
    if space.derive_ep:   # every GPU holds experts
        kwargs["ep"] = along(np.prod([np.broadcast_to(params.get(k, space.layout[k]), n) for k in ("tp", "dp")],
                                     axis=0).astype(int))
    for name, vals in params.items():
        if is_categorical(name):
            kwargs[name] = _unique(vals)
            pick[name] = along(vals)
        else:
            kwargs[name] = along(vals)
    ds = evaluate(cfg=base, **kwargs)
    pick = {k: v for k, v in pick.items() if k in ds.dims}   # one value only: the engine makes no dimension
    if pick:
        ds = ds.sel(pick)
    template = xr.DataArray(np.zeros(n), dims=["trial"])
    ds = ds.map(lambda v: v.broadcast_like(template) if "trial" not in v.dims else v)
    for name, vals in params.items():
        ds.coords[name] = ("trial", np.asarray(vals))
    return ds.transpose("trial", ...)


def evaluate_grid(base: dict, space: Space, values: dict[str, list], chunks: dict | None = None) -> xr.Dataset:
    """Evaluate the full grid of ``values`` (name -> list): one dimension per variable."""
    kwargs = dict(space.fixed)
    kwargs.update({name: list(vals) for name, vals in values.items()})
    if space.derive_ep:   # ep = tp x dp over the tp and dp dimensions
        tp, dp = (xr.DataArray(np.asarray(values[k]), dims=[k], coords={k: values[k]}) if k in values
                  else space.layout[k] for k in ("tp", "dp"))
        kwargs["ep"] = tp * dp
    ds = evaluate(cfg=base, chunks=chunks, **kwargs)
    for name, vals in values.items():   # a category with one value gets no dimension from the engine
        if name not in ds.dims:
            ds = ds.expand_dims({name: list(vals)})
    return ds


#: Above this many combinations of the space's values, each variable's values are checked on their own.
CHECK_COMBINATIONS = 100_000
#: Int variables with at most this many values are checked at every value (else at low and high).
CHECK_INT_VALUES = 64


def check_question(base: dict, space: Space) -> None:
    """Validate every value the search may try with the engine's checks (ranges, presets, tiers, cross-field
    rules such as tp dividing the heads), without evaluating anything: one-line DseError before any storage.

    Categorical values and small int ranges are checked at every value, floats and large int ranges at low and
    high (the rules are monotone in them); combinations are checked together while they number at most
    :data:`CHECK_COMBINATIONS`."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    values = {}
    for name, d in space.distributions.items():
        if isinstance(d, CategoricalDistribution):
            values[name] = list(d.choices)
        elif isinstance(d, IntDistribution) and (d.high - d.low) // d.step + 1 <= CHECK_INT_VALUES:
            values[name] = list(range(d.low, d.high + 1, d.step))
        else:
            values[name] = sorted({d.low, d.high})
    n = math.prod(len(v) for v in values.values())
    groups = [values] if n <= CHECK_COMBINATIONS else [
        {k: (v if k == name else v[:1]) for k, v in values.items()} for name in values]
    for group in groups:
        resolve_values(base, space, group)


def resolve_values(base: dict, space: Space, values: dict):
    """The resolved grid of lists of the space's values (ep = tp x dp where the space derives it)."""
    from dse.run.engine import resolve

    kwargs = dict(space.fixed)
    kwargs.update({name: list(vals) for name, vals in values.items()})
    if space.derive_ep:
        tp, dp = (xr.DataArray(np.asarray(values[k]), dims=[k], coords={k: values[k]}) if k in values
                  else space.layout[k] for k in ("tp", "dp"))
        kwargs["ep"] = tp * dp
    return resolve(cfg=base, max_grid_points=1e300, **kwargs)


def metrics(ds: xr.Dataset, space: Space, dims: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Objectives (n x k) and relative constraint violations (n x c, <= 0 feasible), flattened over ``dims``.

    A violation is (value - max) / |max| or (min - value) / |min| (the larger; the bound itself if it is 0),
    so that constraints in different units add up comparably in the samplers' penalty. A last column ``fits``
    (max(hbm_fill, offload_fill, warm_fill) - 1) makes every configuration that does not fit its capacity infeasible, whatever
    the search's own constraints.
    """
    template = sum(xr.zeros_like(ds[v], dtype=float) for v in [*space.objectives, *space.constraints])
    template = template.transpose(*[d for d in dims if d in template.dims], ...)
    for d in dims:
        if d not in template.dims:
            template = template.expand_dims({d: ds.sizes[d]})
    template = template.transpose(*dims)

    def flat(name):
        return np.asarray(ds[name].broadcast_like(template).transpose(*dims).values, dtype=float).ravel()

    F = np.column_stack([flat(o) for o in space.objectives])
    cols = []
    for name, (lo, hi) in space.constraints.items():
        v = flat(name)
        over = (v - hi) / (abs(hi) if hi not in (0.0, math.inf) else 1.0) if hi < math.inf else np.full_like(v, -np.inf)
        under = (lo - v) / (abs(lo) if lo not in (0.0, -math.inf) else 1.0) if lo > -math.inf else np.full_like(v, -np.inf)
        cols.append(np.maximum(over, under))
    names = list(space.constraints)
    if "hbm_fill" in ds and "offload_fill" in ds:  # always: a configuration that does not fit is infeasible
        fill = np.maximum(flat("hbm_fill"), flat("offload_fill"))
        cols.append((np.maximum(fill, flat("warm_fill")) if "warm_fill" in ds else fill) - 1.0)
        names.append("fits")
    C = np.column_stack(cols) if cols else np.zeros((len(F), 0))
    C = np.where(np.isfinite(C) | (C < 0), C, 1e12)
    return F, C, names
