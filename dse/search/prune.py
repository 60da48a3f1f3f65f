"""Removing points that a known set of grid points dominates, before the exact non-dominated filter (docs/scale.md).

The exact front of a grid is filtered block by block (:mod:`dse.search.front`). Two cheap steps shrink what the
filter (moocore) sees, both exact because they only remove points that some *feasible grid point* strictly
dominates (such a point cannot be on the grid's front):

- the **seed**: the front of a few evenly spaced, shifted sub-grids of about :data:`SEED_POINTS` points together
  (:func:`seed_boxes`), computed once; every block drops the points a seed point dominates. It is tested on the
  objectives' own (open) arrays: for each value of the objectives other than the one over the most points, the
  least value of that one among the seed points that are <= there (a staircase, computed at the size of those
  objectives' dims), then one comparison over the block. Blocks far from the front keep nothing;
- the **sample** (:func:`nondominated_pruned`): a block that still has many points first removes those the front of
  an evenly spaced sample of them dominates.
"""
from __future__ import annotations

import math

import numpy as np

from .pareto import nondominated

#: Points of the evenly spaced sub-grids whose front seeds every block's pruning, and the number of sub-grids.
SEED_POINTS, SEED_SHIFTS = 1 << 20, 4
#: Most values the seed's staircase is computed over: seed points x values of the smaller objectives' dims.
STAIRCASE_VALUES = 1 << 22
#: A seed point prunes a point only when it is below it by more than this (relative) in every objective but the
#: one over the most points, and the point exceeds the staircase by more than this there: a seed point evaluated on
#: another box could differ from the same point in its block by rounding, and must not drop its twin.
MARGIN = 1e-9
#: Points of the evenly spaced sample whose front prunes a block's feasible points before the exact filter (at most
#: PRUNE_BY of its front's points prune; blocks of fewer than PRUNE_ABOVE feasible points are filtered directly).
PRUNE_SAMPLE, PRUNE_BY, PRUNE_ABOVE = 1024, 32, 16384


def seed_boxes(sizes: list[int], points: int = SEED_POINTS, shifts: int = SEED_SHIFTS) -> list[tuple]:
    """``shifts`` evenly spaced sub-grids of about ``points / shifts`` points together, as index lists per dimension:
    the dimension with the most values left is halved until one fits; the first holds every dimension's first and
    last values, the others are shifted along every dimension by a fraction (k / shifts) of its spacing, so that
    together they hold ``shifts`` times as many values of each dimension as one sub-grid of the same cost."""
    counts = list(sizes)
    while math.prod(counts) * shifts > points and max(counts) > 2:
        i = counts.index(max(counts))
        counts[i] = max(2, (counts[i] + 1) // 2)
    boxes = []
    for k in range(shifts):
        box = []
        for n, c in zip(sizes, counts):
            at = np.round(np.linspace(0, n - 1, c)).astype(np.int64) + int(k * (n - 1) / max(1, c - 1) / shifts)
            box.append(np.unique(np.minimum(at, n - 1)))   # the last value kept in every one
        if not any(all(np.array_equal(a, b) for a, b in zip(box, other)) for other in boxes):
            boxes.append(tuple(box))       # (a dimension taken whole is not shifted: small grids need one box)
    return boxes


def candidates(objectives: list[np.ndarray], seed: np.ndarray, feasible=True) -> np.ndarray:
    """An open mask (broadcastable to the block): True where the point is ``feasible`` (an open mask) and no ``seed``
    point (rows: objective values of feasible grid points) strictly dominates it. ``objectives``: open arrays, one
    per objective, over the block (length-1 axes where an objective does not vary). Everything but the last
    comparison is computed at the size of the other objectives' and the constraints' dims."""
    big = max(range(len(objectives)), key=lambda j: np.size(objectives[j]))
    bound = np.where(feasible, _staircase(objectives, big, seed), -np.inf)
    return objectives[big] <= bound


def _staircase(objectives: list[np.ndarray], big: int, seed: np.ndarray) -> np.ndarray:
    """Over the dims of the objectives other than ``big``: the least ``big`` objective among the seed points <= the
    point in those objectives (inf where none is), plus the margin (:data:`MARGIN`)."""
    rest = [j for j in range(len(objectives)) if j != big]
    shape = np.broadcast_shapes(*(np.shape(objectives[j]) for j in rest)) if rest else ()
    stair = np.full(shape, np.inf)
    if len(seed) == 0:
        return stair
    seed = seed[np.argsort(seed[:, big], kind="stable")]
    use = max(1, min(len(seed), STAIRCASE_VALUES // max(1, math.prod(shape))))
    for s in seed[np.unique(np.linspace(0, len(seed) - 1, use).astype(int))][::-1]:   # smaller values overwrite
        below = np.ones(shape, dtype=bool)
        for j in rest:
            below &= objectives[j] >= s[j] + MARGIN * abs(s[j])
        stair[below] = s[big]
    return stair + MARGIN * np.abs(stair)


def nondominated_pruned(F: np.ndarray) -> np.ndarray:
    """:func:`nondominated` of many points, faster: the front of an evenly spaced sample of them first removes every
    point one of its points dominates (they are points of the set, so no non-dominated point is removed), then the
    exact filter runs on what is left."""
    if len(F) <= PRUNE_ABOVE:
        return nondominated(F)
    S = F[::len(F) // PRUNE_SAMPLE]
    S = S[nondominated(S)]
    keep = np.ones(len(F), dtype=bool)
    for d in S[::max(1, -(-len(S) // PRUNE_BY))]:
        le = np.ones(len(F), dtype=bool)
        lt = np.zeros(len(F), dtype=bool)
        for j, v in enumerate(d):
            le &= F[:, j] >= v
            lt |= F[:, j] > v
        keep &= ~(le & lt)
    idx = np.flatnonzero(keep)
    mask = np.zeros(len(F), dtype=bool)
    mask[idx[nondominated(F[idx])]] = True
    return mask
