"""Pareto local search: propose the untried neighbours of the current feasible front.

Design spaces here are mostly discrete, and their fronts sit where constraints bind (the largest batch
that meets the latency limit, the largest HBM cache that fits). A genetic sampler reaches the
neighbourhood of such points quickly but rarely the exact point; one step in each variable from every front
point finds it. Each batch gives a share of its trials to these neighbours (queued with
``Study.enqueue_trial``, so they are ordinary trials that the sampler also learns from) and the rest to the
sampler; once the front's neighbourhood has been tried, the whole batch goes to the sampler again.

Neighbours of a point, one variable at a time: a categorical with non-numeric choices -> every other choice;
numeric choices, an int or a stepped float -> the adjacent values; a log int -> about x/÷ sqrt(2);
a continuous float -> +/- 1/16 and 1/128 of its range (in log space for a log float) and either bound.
"""
from __future__ import annotations

import math

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution


def _numeric(choices) -> bool:
    return all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices)


def _moves(value, d: BaseDistribution) -> list:
    if isinstance(d, CategoricalDistribution):
        choices = list(d.choices)
        if not _numeric(choices):
            return [c for c in choices if c != value]
        ordered = sorted(choices)
        i = ordered.index(value)
        return [ordered[j] for j in (i - 1, i + 1) if 0 <= j < len(ordered)]
    if isinstance(d, IntDistribution):
        if d.log:
            cand = {int(round(value / math.sqrt(2))), int(round(value * math.sqrt(2))), value - 1, value + 1}
        else:
            cand = {value - d.step, value + d.step}
        return sorted(v for v in cand if d.low <= v <= d.high and v != value)
    if isinstance(d, FloatDistribution):
        if d.step is not None:
            cand = [value - d.step, value + d.step]
            cand = [float(np.round(d.low + round((v - d.low) / d.step) * d.step, 12)) for v in cand]
        elif d.log:   # a coarse and a fine step, and the bounds (fronts often sit on one)
            cand = [value * f ** s for f in ((d.high / d.low) ** (1 / 16), (d.high / d.low) ** (1 / 128))
                    for s in (-1, 1)] + [d.low, d.high]
        else:
            cand = [value + s * (d.high - d.low) / n for n in (16, 128) for s in (-1, 1)] + [d.low, d.high]
        slack = 1e-9 * max(abs(d.low), abs(d.high))
        cand = [min(max(v, d.low), d.high) for v in cand if d.low - slack <= v <= d.high + slack]
        return sorted({v for v in cand if v != value})
    return []


def _ordered(d: BaseDistribution) -> bool:
    return not isinstance(d, CategoricalDistribution) or _numeric(d.choices)


def neighbours(params: dict, dists: dict[str, BaseDistribution]) -> list[dict]:
    """Points one move away from ``params``: one variable to a neighbouring value, or two ordered variables
    in opposite directions (one up, one down: trades such as tp x 2 with dp / 2, or batch for cache)."""
    moves = {name: _moves(params[name], d) for name, d in dists.items()}
    out = [{**params, name: v} for name, vs in moves.items() for v in vs]
    ordered = [n for n, d in dists.items() if _ordered(d)]
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            for va in moves[a]:
                for vb in moves[b]:
                    if (va > params[a]) != (vb > params[b]):
                        out.append({**params, a: va, b: vb})
    return out


def key(params: dict, names) -> tuple:
    return tuple((round(v, 12) if isinstance(v, float) else v) for v in (params[n] for n in names))


class LocalSearch:
    """Remembers every point tried (or queued) and proposes untried neighbours of a front."""

    def __init__(self, dists: dict[str, BaseDistribution], seed: int):
        self.dists = dists
        self.names = list(dists)
        self.tried: set[tuple] = set()
        self.rng = np.random.default_rng(seed)

    def mark(self, params: dict) -> None:
        self.tried.add(key(params, self.names))

    def is_tried(self, params: dict) -> bool:
        return key(params, self.names) in self.tried

    def proposals(self, front: list[dict], k: int) -> list[dict]:
        """Up to ``k`` untried neighbours of the ``front`` points, in random (seeded) order."""
        if k <= 0 or not front:
            return []
        out, seen = [], set()
        for i in self.rng.permutation(len(front)):
            for p in neighbours(front[i], self.dists):
                kp = key(p, self.names)
                if kp not in self.tried and kp not in seen:
                    seen.add(kp)
                    out.append(p)
        return [out[i] for i in self.rng.permutation(len(out))[:k]]

    def random_untried(self, k: int, attempts: int = 50) -> list[dict]:
        """Up to ``k`` uniformly drawn points not tried yet (fallback when the sampler only repeats itself)."""
        out, seen = [], set()
        for _ in range(attempts * k):
            if len(out) >= k:
                break
            p = {n: self._draw(d) for n, d in self.dists.items()}
            kp = key(p, self.names)
            if kp not in self.tried and kp not in seen:
                seen.add(kp)
                out.append(p)
        return out

    def _draw(self, d: BaseDistribution):
        r = self.rng
        if isinstance(d, CategoricalDistribution):
            return d.choices[r.integers(len(d.choices))]
        if isinstance(d, IntDistribution):
            return int(d.low + d.step * r.integers((d.high - d.low) // d.step + 1))
        if d.step is not None:
            return float(np.round(d.low + d.step * r.integers(int(round((d.high - d.low) / d.step)) + 1), 12))
        if d.log:
            return float(np.exp(r.uniform(np.log(d.low), np.log(d.high))))
        return float(r.uniform(d.low, d.high))
