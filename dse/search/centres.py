"""Which points the local search (:mod:`.local`) polls: the feasible front, and the runners-up.

The front of a mixed space often runs through a few combinations of the nominal categoricals (GPU type, tier,
offload path), each over a stretch of the ordered variables. A combination reaches the front only near its own
best settings, which polls of the front never visit when they lie several moves from every front point (a larger
GPU pays off only at a larger batch and cache). So each combination's own front is polled too: its points that the
whole front dominates (the runners-up), nearest the front first. The distance is the additive epsilon: how much a
point would have to improve in every objective (normalized to the front) to be dominated by no front point.
"""
from __future__ import annotations

import moocore
import numpy as np

from .pareto import Normalizer


def epsilon(P: np.ndarray, front: np.ndarray) -> np.ndarray:
    """For each row p of ``P``: the least e such that p - e (in every objective) no row of ``front`` dominates,
    max over front points f of min over objectives of p - f (<= 0 for a point on or below the front)."""
    P, front = np.asarray(P, dtype=float), np.asarray(front, dtype=float)
    if len(P) == 0 or len(front) == 0:
        return np.zeros(len(P))
    return np.max(np.min(P[:, None, :] - front[None, :, :], axis=2), axis=1)


def split(params: list[dict], F: np.ndarray, nominal: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feasible points ``params`` with objectives ``F`` -> indices of the front (one per distinct objective vector),
    indices of the runners-up (the fronts of each combination of the ``nominal`` variables' values, less the
    front) and the runners-up's epsilon (normalized objectives)."""
    F = np.asarray(F, dtype=float)
    none = np.zeros(0, dtype=int)
    if len(F) == 0:
        return none, none, np.zeros(0)
    on_front = np.asarray(moocore.is_nondominated(F, keep_weakly=False), dtype=bool)
    front = np.flatnonzero(on_front)
    if not nominal:
        return front, none, np.zeros(0)
    _, groups = np.unique([repr(tuple(p[n] for n in nominal)) for p in params], return_inverse=True)
    within = np.asarray(moocore.is_nondominated_within_sets(F, groups, keep_weakly=False), dtype=bool)
    runners = np.flatnonzero(within & ~on_front)
    norm = Normalizer(F[front])
    return front, runners, epsilon(norm(F[runners]), norm(F[front]))
