"""The exact Pareto front of a whole grid, streamed through dask block by block (docs/scale.md).

First the front of a few evenly spaced sub-grids (the *seed*, :mod:`dse.search.prune`) is computed; its points are
feasible grid points. Every block of the grid is then evaluated on its own (the variables the question needs:
objectives, constrained variables and ``fits``); its feasible points that no seed point dominates and no other
point of the block dominates are kept (moocore's non-dominated filter); the blocks' fronts are merged by a tree
reduction (``SPLIT_EVERY`` fronts at a time, the union filtered again). A point dominated by a grid point is not on
the grid's front, and the union of the blocks' fronts holds every point of the grid's front, so the result is the
grid's exact front. Memory holds the blocks in flight and fronts of about the front's size, not the grid (docs/
scale.md s.5: without the seed, points tied with a block's front points filled the merges); any dask scheduler
runs it (threads, or a distributed cluster's workers, which get the resolved grid once each).
"""
from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass

import numpy as np
import xarray as xr

from dse.errors import DseError
from dse.run.grid import index_length
from .pareto import nondominated
from .prune import SEED_POINTS, candidates, nondominated_pruned, seed_boxes

#: Grid points per block (32 MiB per float64 variable over the block): numpy's loops dominate the Python per block.
BLOCK_POINTS = 1 << 22
#: Fronts merged by one task of the tree reduction.
SPLIT_EVERY = 8
#: The seed's sub-grids hold at most 1 / SEED_SHARE of a grid's points (a small grid is not evaluated twice).
SEED_SHARE = 16
log = logging.getLogger("dse")


@dataclass(frozen=True)
class Question:
    """Objectives (minimized) and constraints ``{variable: (min, max)}`` of a front; ``fits`` where the grid has it."""

    objectives: tuple
    constraints: dict
    fits: bool

    @property
    def names(self) -> list:
        return list(dict.fromkeys([*self.objectives, *self.constraints, *(["fits"] if self.fits else [])]))


def question(grid, objectives, constraints) -> Question:
    """Check objectives and constraints against the grid's variables: one-line errors before any work."""
    point = [n for n in grid.variables if n not in grid.stacks]
    if isinstance(objectives, str) or not objectives or not all(isinstance(o, str) for o in objectives):
        raise DseError(f"objectives={objectives!r}: a list of variable names (allowed: {', '.join(point)})")
    for name in [*objectives, *(constraints or {})]:
        if name not in point:
            raise DseError(f"{name!r} is not a variable with one value per grid point (allowed: {', '.join(point)})")
    bounds = {}
    for name, spec in (constraints or {}).items():
        if not isinstance(spec, dict) or not spec or set(spec) - {"min", "max"}:
            raise DseError(f"constraints.{name}={spec!r}: allowed {{min: number, max: number}} (one or both)")
        for key, v in spec.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
                raise DseError(f"constraints.{name}.{key}={v!r} is not a number")
        bounds[name] = (float(spec.get("min", -math.inf)), float(spec.get("max", math.inf)))
    return Question(tuple(objectives), bounds, "fits" in grid.variables)


def _open(grid, data: dict, name: str) -> np.ndarray:
    """A block's variable (over its own dims) with a length-1 axis for each block dim it does not depend on."""
    dims = grid.layout[name][0]
    a = np.asarray(data[name])
    return a.reshape([a.shape[dims.index(d)] if d in dims else 1 for d in grid.dims])


def _at(a: np.ndarray, where: tuple) -> np.ndarray:
    """An open array's values at block positions ``where`` (index arrays), gathered without broadcasting it."""
    return a[tuple(w if n > 1 else 0 for w, n in zip(where, a.shape))] if a.ndim else np.full(len(where[0]), a)


def _positions(b, where: np.ndarray) -> np.ndarray:
    """Grid positions along a dimension of block positions ``where`` (a box's slice or index list)."""
    return b.start + where if isinstance(b, slice) else np.asarray(b)[where]


def _candidates(grid, data: dict, shape: tuple, q: Question, seed: np.ndarray):
    """A block's feasible points that no seed point dominates (flat block indices), and its feasible count.
    Constraints combine on their own dims (an open mask); only the last step spans the block."""
    ok = True
    for name, (lo, hi) in q.constraints.items():
        v = _open(grid, data, name)
        ok = ok & (v >= lo) & (v <= hi)
    if q.fits:
        ok = ok & _open(grid, data, "fits").astype(bool)
    n_feasible = int(np.count_nonzero(ok)) * (math.prod(shape) // max(1, np.size(ok)))
    if not n_feasible:
        return np.zeros(0, dtype=np.int64), 0
    mask = candidates([_open(grid, data, o) for o in q.objectives], seed, ok)
    if not mask.any():    # most blocks: a quick scan instead of a copy into the block's order
        return np.zeros(0, dtype=np.int64), n_feasible
    return np.flatnonzero(np.broadcast_to(mask, shape)), n_feasible


def block_front(grid, box, q: Question, seed=None):
    """One block's feasible non-dominated points: (objectives n x k, constrained values n x c, flat grid index,
    feasible points counted). ``box``: a slice or an index list per grid dimension. Points a ``seed`` point (rows:
    objective values of feasible grid points) dominates are dropped first (:mod:`dse.search.prune`); values are
    taken at the remaining points only."""
    box = tuple(box)
    data = grid.block(box, q.names)
    shape = tuple(index_length(b, grid.sizes[d]) for d, b in zip(grid.dims, box))
    idx, n_feasible = _candidates(grid, data, shape, q, np.zeros((0, len(q.objectives))) if seed is None else seed)
    where = np.unravel_index(idx, shape) if shape else (idx,)     # a grid without dimensions: one point
    F = np.column_stack([_at(_open(grid, data, o), where) for o in q.objectives]).astype(float)
    keep = nondominated_pruned(F) if len(F) else np.zeros(0, dtype=bool)
    where = tuple(w[keep] for w in where)
    V = np.column_stack([_at(_open(grid, data, c), where) for c in q.constraints] or [np.zeros((len(where[0]), 0))])
    at = tuple(_positions(b, w) for b, w in zip(box, where))
    flat = np.ravel_multi_index(at, tuple(grid.sizes[d] for d in grid.dims)) if grid.dims else np.zeros(len(V), int)
    return F[keep], V.astype(float), np.asarray(flat, dtype=np.int64), n_feasible


def seed_front(grid, q: Question, points: int = SEED_POINTS) -> np.ndarray:
    """Objective values of the front of evenly spaced sub-grids (:func:`dse.search.prune.seed_boxes`): feasible
    grid points, which prune every block (none when ``points`` is 0)."""
    if points < 1:
        return np.zeros((0, len(q.objectives)))
    F = np.concatenate([block_front(grid, box, q)[0] for box in seed_boxes([grid.sizes[d] for d in grid.dims],
                                                                            points)])
    return F[nondominated(F)]


def merge(*fronts):
    """Fronts of disjoint parts of the grid -> the front of their union."""
    F = np.concatenate([f[0] for f in fronts])
    keep = nondominated(F)
    return (F[keep], np.concatenate([f[1] for f in fronts])[keep], np.concatenate([f[2] for f in fronts])[keep],
            sum(f[3] for f in fronts))


def _blocks(grid, block_points: int) -> list[tuple]:
    """Boxes of at most about ``block_points`` points: the grid's last dimensions whole first; a dimension that does
    not fit is cut into chunks of equal length (give or take one)."""
    chunks, room = {}, max(1, int(block_points))
    for d in reversed(grid.dims):
        n = grid.sizes[d]
        pieces = -(-n // min(n, room))
        chunks[d] = tuple(n // pieces + (i < n % pieces) for i in range(pieces))
        room = max(1, room // chunks[d][0])
    return [box for _, box in grid.blocks(grid.chunking(chunks))]


def _graph(grid, q: Question, boxes: list, seed_points: int, token: str) -> tuple[dict, str]:
    """The task graph (a plain dict of dask's tuple tasks: built in milliseconds, where a delayed call per block
    costs ~0.5 ms): the grid and the question as keys of their own (a cluster ships them once per worker), the seed
    front, one task per block, and the tree of merges, ``SPLIT_EVERY`` fronts per task."""
    grid_key, q_key, seed_key = (f"dse-front-{part}-{token}" for part in ("grid", "question", "seed"))
    dsk = {grid_key: grid, q_key: q, seed_key: (seed_front, grid_key, q_key, seed_points)}
    level = [f"dse-front-block-{token}-{i}" for i in range(len(boxes))]
    dsk.update({key: (block_front, grid_key, box, q_key, seed_key) for key, box in zip(level, boxes)})
    depth = 0
    while len(level) > 1:
        depth += 1
        groups = [level[i:i + SPLIT_EVERY] for i in range(0, len(level), SPLIT_EVERY)]
        level = [f"dse-front-merge-{token}-{depth}-{i}" for i in range(len(groups))]
        dsk.update({key: (merge, *group) for key, group in zip(level, groups)})
    return dsk, level[0]


def front_of_grid(grid, q: Question, *, block_points: int = BLOCK_POINTS, scheduler=None, progress: bool = True,
                  seed_points: int | None = None):
    """The exact front of a resolved grid (:func:`pareto_front`'s work) as a Dataset along ``point``; the blocks are
    pruned by the front of sub-grids of about ``seed_points`` points in all (:func:`seed_front`; 0: not pruned;
    default :data:`SEED_POINTS`, at most 1 / :data:`SEED_SHARE` of the grid)."""
    import dask
    from dask.delayed import Delayed

    t0 = time.perf_counter()
    token = uuid.uuid4().hex[:12]
    boxes = _blocks(grid, block_points)
    seed_points = min(SEED_POINTS, grid.points // SEED_SHARE) if seed_points is None else seed_points
    dsk, key = _graph(grid, q, boxes, seed_points, token)
    with _progress(grid.points, len(boxes), f"dse-front-block-{token}", progress):
        F, V, flat, n_feasible = dask.compute(Delayed(key, dsk), scheduler=scheduler)[0]
    return _dataset(grid, q, F, V, flat, n_feasible, time.perf_counter() - t0)


def _progress(points: int, n_blocks: int, prefix: str, enabled: bool):
    """A tqdm bar over the grid's points, advanced as blocks finish (local schedulers; shown after 2 s)."""
    from dask.callbacks import Callback
    from tqdm import tqdm

    bar = tqdm(total=points, unit="pt", unit_scale=points >= 10_000, delay=2.0, disable=not enabled, desc="dse front",
               dynamic_ncols=True)
    per_block = points / max(n_blocks, 1)

    class _Tick(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            if isinstance(key, str) and key.startswith(prefix):
                bar.update(per_block)

        def _finish(self, dsk, state, errored):
            bar.close()

    return _Tick()


def _dataset(grid, q: Question, F, V, flat, n_feasible: int, wall_s: float) -> xr.Dataset:
    """Front points (sorted by the objectives) with their objectives, constrained values and grid coordinates."""
    order = np.lexsort(F.T[::-1]) if len(F) else np.zeros(0, dtype=int)
    F, V, flat = F[order], V[order], flat[order]
    where = np.unravel_index(flat, tuple(grid.sizes[d] for d in grid.dims)) if grid.dims else ()
    coords = {d: ("point", np.asarray(grid.coords[d])[i]) for d, i in zip(grid.dims, where)}
    coords["grid_index"] = ("point", flat)
    ds = xr.Dataset(coords=coords, attrs={k: v for k, v in grid.attrs.items() if k != "config_yaml"})
    for j, name in enumerate(q.objectives):
        ds[name] = ("point", F[:, j], dict(zip(("units", "long_name"), grid.variables[name])))
    for j, name in enumerate(q.constraints):
        if name not in q.objectives:
            ds[name] = ("point", V[:, j], dict(zip(("units", "long_name"), grid.variables[name])))
    ds.attrs.update(objectives=list(q.objectives), constraints=str({k: list(v) for k, v in q.constraints.items()}),
                    n_points=grid.points, n_feasible=int(n_feasible), front_size=len(F), wall_s=wall_s,
                    points_per_s=grid.points / max(wall_s, 1e-9))
    log.info("front: %d points of %d (%d feasible) in %.2f s", len(F), grid.points, n_feasible, wall_s)
    return ds


def pareto_front(objectives, constraints: dict | None = None, *, study: str | None = None, model=None, system=None,
                 accounting: str | None = None, cfg: dict | None = None, max_grid_points: float | None = None,
                 block_points: int = BLOCK_POINTS, scheduler=None, progress: bool = True, **params) -> xr.Dataset:
    """The exact Pareto front (all ``objectives`` minimized) of the feasible points of a whole grid.

    The grid is given as to :func:`dse.evaluate` (``study``, ``model``, ``system``, parameters with lists making
    dimensions). ``constraints``: ``{variable: {"min": x, "max": y}}``; where the grid has ``fits`` (capacity), a
    point must fit too. Blocks of about ``block_points`` points run on ``scheduler`` (dask's: ``"threads"``,
    ``"sync"``, a distributed ``Client``; default: dask's current one). Returns a Dataset along ``point``: the
    objectives, the constrained variables and each grid dimension's coordinate of every front point, sorted by
    the objectives; attributes give the grid's point count, its feasible count and the wall time."""
    from dse.run.engine import resolve

    if isinstance(block_points, bool) or not isinstance(block_points, int) or block_points < 1:
        raise DseError(f"block_points={block_points!r}: an integer >= 1")
    params = {k: v for k, v in params.items() if v is not None or "." in k}
    grid = resolve(study, model=model, system=system, accounting=accounting, cfg=cfg,
                   max_grid_points=max_grid_points, **params)
    return front_of_grid(grid, question(grid, objectives, constraints), block_points=block_points,
                         scheduler=scheduler, progress=progress)
