"""Validation: the exact Pareto front of a discrete space by exhaustive grid evaluation, and the search's
hypervolume as a fraction of it.

The grid goes through :func:`dse.evaluate` (the vectorized sweep path) in blocks of at most ``BLOCK``
points (split along the first variable's values), so memory stays bounded for large spaces.
"""
from __future__ import annotations

import time

import numpy as np

from dse.errors import DseError
from dse.search import points
from .pareto import Normalizer, nondominated
from .space import Space

BLOCK = 400_000


def exact_front(base: dict, space: Space, max_points: int) -> dict:
    """Evaluate every point of the discrete space; return its feasible Pareto front (objectives and params)."""
    values = space.discrete_values()
    if values is None:
        cont = [n for n, d in space.distributions.items() if getattr(d, "step", 1) is None]
        raise DseError(f"search.validate: the space is not discrete ({cont[0]} is a float without step)")
    n_points = space.size()
    if n_points > max_points:
        raise DseError(f"search.validate: the space has {n_points} points; enumerating allows at most "
                       f"search.max_enumerate={max_points}")
    t0 = time.perf_counter()
    names = list(values)
    first = names[0]
    per_value = n_points // len(values[first])
    step = max(1, BLOCK // max(per_value, 1))
    fronts, n_feasible = [], 0
    for i in range(0, len(values[first]), step):
        block = {**values, first: values[first][i:i + step]}
        ds = points.evaluate_grid(base, space, block)
        F, C, _ = points.metrics(ds, space, names)
        feasible = np.all(C <= 0, axis=1)
        n_feasible += int(feasible.sum())
        idx = np.flatnonzero(feasible)
        keep = idx[nondominated(F[idx])]
        shape = [len(block[n]) for n in names]
        coords = np.unravel_index(keep, shape)
        fronts.append((F[keep], [{n: block[n][c[j]] for n, c in zip(names, coords)} for j in range(len(keep))]))
    F = np.concatenate([f for f, _ in fronts]) if fronts else np.zeros((0, len(space.objectives)))
    P = [p for _, ps in fronts for p in ps]
    mask = nondominated(F)
    return dict(F=F[mask], params=[p for p, m in zip(P, mask) if m], n_points=n_points,
                n_feasible=n_feasible, wall_s=time.perf_counter() - t0)


def compare(F_search: np.ndarray, F_exact: np.ndarray) -> dict:
    """Hypervolume of the search's feasible points over the exact front's (normalized to the exact front)."""
    if len(F_exact) == 0:
        raise DseError("search.validate: no feasible point in the whole space (loosen search.constraints)")
    out = {}
    for key, log in (("", False), ("_log10", True)):
        norm = Normalizer(F_exact, log=log)
        hv_exact = norm.hypervolume(F_exact)
        hv_search = norm.hypervolume(F_search) if len(F_search) else 0.0
        out[f"hypervolume_ratio{key}"] = hv_search / hv_exact if hv_exact > 0 else float("nan")
        out[f"hypervolume_exact{key}"] = hv_exact
        out[f"hypervolume_search{key}"] = hv_search
    out["reference_point"] = [Normalizer.REF] * F_exact.shape[1]
    out["normalization"] = ("objectives scaled so the exact front spans [0, 1] (linear; *_log10: in log10), "
                            "reference point 1.1 in each")
    return out
