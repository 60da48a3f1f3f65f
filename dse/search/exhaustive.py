"""``search.method``: the exact front of a discrete space by enumerating it (:mod:`dse.search.front`), Optuna, or
``auto`` -- enumerate when the space's point count times a measured cost per point fits ``search.budget_s``.

An Optuna run writes trials.nc, pareto.nc, trials.csv and the figure; an exhaustive run evaluates every point of
the space and keeps only its exact front: pareto.nc, pareto.csv and the figure (no trials.nc: there are no trials
beyond the front). Front points with exactly the same objectives are one design, written once with
``equivalent_designs`` (how many points of the space it stands for).
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np

from dse.errors import DseError
from dse.search import points, report
from .front import Question, front_of_grid
from .pareto import Normalizer
from .space import Space

METHODS = ("auto", "optuna", "exhaustive")
#: Points of the sub-space timed to estimate an exhaustive run's cost per point.
PROBE_POINTS = 1 << 17
log = logging.getLogger("dse")


def check(search: dict) -> tuple[str, float]:
    """search.method and search.budget_s: one-line errors."""
    method = search.get("method", "auto")
    if method not in METHODS:
        raise DseError(f"search.method={method!r}: allowed {', '.join(METHODS)}")
    budget = search.get("budget_s", 60.0)
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget < math.inf:
        raise DseError(f"search.budget_s={budget!r}: a number of seconds > 0")
    max_enumerate(search)
    return method, float(budget)


def max_enumerate(search: dict) -> int:
    """``search.max_enumerate``: the most points an enumeration may visit (exhaustive, auto, validate)."""
    n = search.get("max_enumerate", 2_000_000)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise DseError(f"search.max_enumerate={n!r}: allowed an integer >= 1")
    return n


def _question(grid, space: Space) -> Question:
    return Question(tuple(space.objectives), dict(space.constraints), "fits" in grid.variables)


def choose(search: dict, space: Space, base: dict) -> tuple[str, dict]:
    """The method to run and why: ``auto`` measures the cost per point on a sub-space of about PROBE_POINTS."""
    method, budget = check(search)
    values = space.discrete_values()
    if method == "exhaustive" and values is None:
        cont = [n for n, d in space.distributions.items() if getattr(d, "step", 1) is None]
        raise DseError(f"search.method=exhaustive: the space is not discrete ({cont[0]} is a float without step)")
    if method == "exhaustive" and space.size() > max_enumerate(search):
        raise DseError(f"search.method=exhaustive: the space has {space.size():,} points, over "
                       f"search.max_enumerate={max_enumerate(search):,}; raise it or use search.method=optuna")
    if method != "auto":
        return method, {}
    if values is None:
        return "optuna", {"reason": "continuous space"}
    if space.size() > max_enumerate(search):
        return "optuna", {"reason": f"{space.size()} points, over search.max_enumerate"}
    probe, room = {}, PROBE_POINTS
    for name, vals in values.items():
        probe[name] = vals[:max(1, min(len(vals), room))]
        room = max(1, room // len(probe[name]))
    n_probe = math.prod(len(v) for v in probe.values())
    t0 = time.perf_counter()
    grid = points.resolve_values(base, space, probe)
    front_of_grid(grid, _question(grid, space), progress=False)
    per_point = (time.perf_counter() - t0) / n_probe
    estimate = space.size() * per_point
    why = {"points": space.size(), "s_per_point": per_point, "estimate_s": estimate, "budget_s": budget}
    log.info("search.method=auto: %d points x %.3g s = %.3g s estimated (budget %g s)", space.size(), per_point,
             estimate, budget)
    return ("exhaustive" if estimate <= budget else "optuna"), why


def distinct_designs(F: np.ndarray, params: dict) -> tuple[list[int], list[int], list[str]]:
    """Front points with exactly the same objectives are one design for the question (e.g. experts in HBM at
    every ``hbm_cache_fraction``, which means nothing there): the first of each, how many each stands for, and
    the parameters that differ within such groups."""
    _, inverse, counts = np.unique(F, axis=0, return_inverse=True, return_counts=True)
    inverse = np.asarray(inverse).ravel()
    keep, seen = [], set()
    for i, g in enumerate(inverse):
        if g not in seen:
            seen.add(g)
            keep.append(i)
    moot = [name for name, v in params.items()
            if any(len({str(v[j]) for j in np.flatnonzero(inverse == g)}) > 1 for g in np.flatnonzero(counts > 1))]
    return keep, [int(counts[inverse[i]]) for i in keep], moot


def run_exhaustive(cfg: dict, base: dict, space: Space, run_dir: Path, why: dict) -> dict:
    """Enumerate the space, keep its exact feasible front, write the search outputs for the front's points."""
    from dse.analyze.plot import limit_text
    from dse.analyze.figure_switch import figures_wanted

    search = cfg["search"]
    values = space.discrete_values()
    grid = points.resolve_values(base, space, values)
    front = front_of_grid(grid, _question(grid, space), progress=bool(search.get("progress", True)))
    n = front.sizes["point"]
    if n == 0:
        raise DseError("search: no feasible point in the whole space (loosen search.constraints)")
    params = {name: (front[name].values.tolist() if name in front.coords else [vals[0]] * n)
              for name, vals in values.items()}
    keep, equivalent, moot = distinct_designs(np.stack([front[o].values for o in space.objectives], 1), params)
    params = {name: [v[i] for i in keep] for name, v in params.items()}
    n = len(keep)
    ds = points.evaluate_trials(base, space, params)
    F, C, _ = points.metrics(ds, space, ["trial"])
    ds = report.trials_dataset(base, space, np.arange(n), params, F, C, Normalizer(F))
    ds["equivalent_designs"] = ("trial", np.asarray(equivalent, dtype=np.int64))
    ds["equivalent_designs"].attrs.update(units="1", long_name="designs of the space with exactly these objectives "
                                          f"(they differ only in {', '.join(moot) or '-'}); one is shown")
    ds.attrs.update(method="exhaustive", n_points=int(front.attrs["n_points"]),
                    n_feasible=int(front.attrs["n_feasible"]), equivalent_in=", ".join(moot))
    mark = report.marks(search["mark_study"], space) if search.get("mark_study") else None
    limits = ", ".join(limit_text(k, lo, hi) for k, (lo, hi) in space.constraints.items())
    title = f"{search['name']}: exact front of {front.attrs['n_points']:,} points; {limits}"
    exact = dict(F=F, params=[{k: v[i] for k, v in params.items()} for i in range(n)])
    outputs = report.write(run_dir, ds, space, mark, exact, title, figure=figures_wanted(cfg.get("plot", True)),
                           trials=False)
    return dict(method="exhaustive", **why, n_points=int(front.attrs["n_points"]),
                feasible=int(front.attrs["n_feasible"]), pareto_size=n, wall_s=float(front.attrs["wall_s"]),
                points_per_s=float(front.attrs["points_per_s"]), outputs={k: str(v) for k, v in outputs.items()})
