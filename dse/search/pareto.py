"""Pareto fronts and hypervolume (all objectives minimized).

``nondominated`` and the 2-objective ``hypervolume`` are plain numpy; 3 or more objectives go through
Optuna's WFG implementation (``optuna._hypervolume``, private), wrapped here behind this one function.
"""
from __future__ import annotations

import numpy as np


def nondominated(F: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``F`` (n x k) that no other row dominates (<= everywhere, < somewhere).

    Equal rows do not dominate each other, so duplicates of a front point are all kept.
    """
    F = np.asarray(F, dtype=float)
    n = len(F)
    if n == 0:
        return np.zeros(0, dtype=bool)
    if F.shape[1] == 2:  # sort by f0 then f1; a row is dominated iff an earlier distinct row has f1 <= its f1
        order = np.lexsort((F[:, 1], F[:, 0]))
        f0, f1 = F[order, 0], F[order, 1]
        best = np.minimum.accumulate(f1)
        prev_best = np.concatenate([[np.inf], best[:-1]])
        keep = f1 < prev_best
        # rows equal to the row that set the running best are not dominated by it
        same = np.zeros(n, dtype=bool)
        same[1:] = (f0[1:] == f0[:-1]) & (f1[1:] == f1[:-1])
        for i in range(1, n):
            if same[i] and keep[i - 1]:
                keep[i] = True
        mask = np.zeros(n, dtype=bool)
        mask[order] = keep
        return mask
    order = np.lexsort(F.T[::-1])
    front: list[int] = []
    for i in order:
        if front:
            P = F[front]
            if np.any(np.all(P <= F[i], axis=1) & np.any(P < F[i], axis=1)):
                continue
        front.append(i)
    mask = np.zeros(n, dtype=bool)
    mask[front] = True
    return mask


def hypervolume(F: np.ndarray, ref) -> float:
    """Volume dominated by the rows of ``F`` and bounded by the reference point ``ref`` (rows beyond it count 0)."""
    F = np.asarray(F, dtype=float)
    ref = np.asarray(ref, dtype=float)
    F = F[np.all(F < ref, axis=1)] if len(F) else F.reshape(0, len(ref))
    if len(F) == 0:
        return 0.0
    F = np.unique(F[nondominated(F)], axis=0)
    if F.shape[1] == 2:
        F = F[np.argsort(F[:, 0])]           # f1 then decreases along the front
        widths = np.diff(np.append(F[:, 0], ref[0]))
        return float(np.sum(widths * (ref[1] - F[:, 1])))
    from optuna._hypervolume import compute_hypervolume

    return float(compute_hypervolume(F, ref, assume_pareto=True))


class Normalizer:
    """Scales objectives so that the reference front spans [0, 1] in each (linear, or in log10 with ``log``).

    The reference point is 1.1 in every normalized objective (the usual 10 % beyond the reference nadir).
    """

    REF = 1.1

    def __init__(self, front: np.ndarray, log: bool = False):
        front = np.asarray(front, dtype=float)
        self.log = log
        f = self._t(front)
        self.ideal, self.nadir = f.min(axis=0), f.max(axis=0)
        self.span = np.where(self.nadir > self.ideal, self.nadir - self.ideal, 1.0)

    def _t(self, F):
        return np.log10(np.maximum(F, 1e-300)) if self.log else F

    def __call__(self, F: np.ndarray) -> np.ndarray:
        return (self._t(np.asarray(F, dtype=float)) - self.ideal) / self.span

    def hypervolume(self, F: np.ndarray) -> float:
        F = np.asarray(F, dtype=float)
        if len(F) == 0:
            return 0.0
        return hypervolume(self(F), np.full(F.shape[1], self.REF))
