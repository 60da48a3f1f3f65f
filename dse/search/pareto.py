"""Pareto fronts and hypervolume (all objectives minimized), through moocore (maintained, tested C code for any
number of objectives: https://multi-objective.github.io/moocore/python/).
"""
from __future__ import annotations

import moocore
import numpy as np


def nondominated(F: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``F`` (n x k) that no other row dominates (<= everywhere, < somewhere).

    Equal rows do not dominate each other, so duplicates of a front point are all kept.
    """
    F = np.asarray(F, dtype=float)
    if len(F) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(F, maximise=False, keep_weakly=True), dtype=bool)


def hypervolume(F: np.ndarray, ref) -> float:
    """Volume dominated by the rows of ``F`` and bounded by the reference point ``ref`` (rows beyond it count 0)."""
    F = np.asarray(F, dtype=float)
    ref = np.asarray(ref, dtype=float)
    F = F[np.all(F < ref, axis=1)] if len(F) else F.reshape(0, len(ref))
    if len(F) == 0:
        return 0.0
    return float(moocore.hypervolume(F, ref=ref))


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
