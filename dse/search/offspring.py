"""NSGA-II offspring for mostly discrete design spaces (Optuna's ``child_generation_strategy`` hook).

Optuna's default NSGA-II mutation redraws a variable uniformly from its whole range, so an ordered variable
(batch 1 ... 1024, a GPU count, a cache fraction in steps) jumps anywhere. Here a mutated variable steps to a
neighbouring value (see :func:`dse.search.local._moves`) and only sometimes redraws; nominal categoricals
(GPU type, tier) take another choice. Parents come from binary tournaments under constrained domination
(feasible first, then smaller total violation, then Pareto dominance), as in Deb's NSGA-II; crossover is
uniform.
"""
from __future__ import annotations

import numpy as np

from .local import _moves


def _violation(t) -> float:
    return sum(v for v in t.constraints.values() if v > 0)


def _dominates(a, b) -> bool:
    va, vb = _violation(a), _violation(b)
    if va != vb:
        return va < vb
    x, y = np.asarray(a.values), np.asarray(b.values)
    return bool(np.all(x <= y) and np.any(x < y))


class OrdinalOffspring:
    def __init__(self, seed: int, crossover_prob: float = 0.9, swapping_prob: float = 0.5,
                 step_prob: float = 0.8):
        self.rng = np.random.RandomState(seed)
        self.crossover_prob, self.swapping_prob, self.step_prob = crossover_prob, swapping_prob, step_prob

    def _tournament(self, parents):
        a, b = (parents[i] for i in self.rng.randint(len(parents), size=2))
        return b if _dominates(b, a) else a

    def __call__(self, study, search_space: dict, parent_population: list) -> dict:
        p0 = self._tournament(parent_population)
        child = {k: p0.params[k] for k in search_space if k in p0.params}
        if self.rng.rand() < self.crossover_prob:
            p1 = self._tournament(parent_population)
            for k in child:
                if k in p1.params and self.rng.rand() < self.swapping_prob:
                    child[k] = p1.params[k]
        rate = 1.0 / max(1, len(search_space))
        for k, d in search_space.items():
            if k not in child or self.rng.rand() >= rate:
                continue
            moves = _moves(child[k], d)
            if moves and self.rng.rand() < self.step_prob:
                child[k] = moves[self.rng.randint(len(moves))]
            else:
                del child[k]          # redrawn uniformly by the sampler
        return child
