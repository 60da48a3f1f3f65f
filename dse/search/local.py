"""Pareto local search: poll the untried neighbours of the current feasible front, at a shrinking step.

Design spaces here mostly have fronts where constraints bind (the largest batch that meets the latency limit, the
largest HBM cache that fits). A genetic sampler reaches the neighbourhood of such points quickly but rarely the exact
point; polling the neighbours of every front point finds it. This is a direct multisearch (Custodio, Madeira, Vaz
and Vicente, SIAM J. Optim. 21(3), 2011) in batches: each front point is polled -- every variable moved one step up
and down, and every two ordered variables moved one step each in opposite directions (trades such as tp x 2 with
dp / 2, or batch for cache) -- first at a coarse step (``2**-START_LEVEL`` of the variable's range, in log space for
a log variable, plus both bounds); once every point of its poll has been tried, the step halves, down to
``2**-MAX_LEVEL`` of the range (a point is then converged). A point that a poll finds keeps the poll's step (it is
already close to where its neighbour was refined). Integers and stepped floats snap to their grid and move at least
one grid step; a nominal categorical (GPU type, tier) takes every other choice, a numeric one its adjacent values.

Each batch gives a share of its trials to these polls (queued with ``Study.enqueue_trial``, so they are ordinary
trials that the sampler also learns from): first to the front, the points whose exclusive hypervolume contribution
(in the front's normalized objectives) times the step is largest first -- wide gaps and the front's ends, coarse
steps first. What the front's polls leave goes to the runners-up (:mod:`.centres`): the fronts of each combination
of the nominal categoricals, which reach the whole front only near their own best settings (a larger GPU pays off
only at a larger batch and cache); the combinations take turns (the one given the fewest poll points so far first),
within one the point nearest the front / step first. A point that a poll moves to another combination starts at the
coarse step again. Once every point has converged, the whole batch goes to the sampler again.

:func:`_moves` (one step, used by the sampler's mutation in :mod:`.offspring`): a log int moves by about x/÷ sqrt(2)
or +/- 1; a continuous float by +/- 1/16 and 1/128 of its range (in log space for a log float) or to either bound.
"""
from __future__ import annotations

import math

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from . import centres


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


#: A poll moves an ordered numeric variable by 2**-level of its range; levels START_LEVEL .. MAX_LEVEL (0.1 %).
START_LEVEL, MAX_LEVEL = 3, 10


def _to_unit(value, d) -> float:
    if d.log:
        return (math.log(value) - math.log(d.low)) / (math.log(d.high) - math.log(d.low))
    return (value - d.low) / (d.high - d.low)


def _from_unit(u: float, d) -> float:
    u = min(max(u, 0.0), 1.0)
    if d.log:
        return math.exp(math.log(d.low) + u * (math.log(d.high) - math.log(d.low)))
    return d.low + u * (d.high - d.low)


def _snap(v: float, d):
    """``v`` on the distribution's grid (an int, or low + k step) and within its bounds."""
    if d.step is None:
        return float(min(max(v, d.low), d.high))
    k = round((v - d.low) / d.step)
    v = min(max(d.low + k * d.step, d.low), d.high)
    return int(v) if isinstance(d, IntDistribution) else float(np.round(v, 12))


def _poll_moves(value, d: BaseDistribution, level: int) -> list:
    """One variable's moves in a poll at ``level`` (module doc): up and down by 2**-level of the range, at least one
    grid step; at START_LEVEL also both bounds."""
    if isinstance(d, CategoricalDistribution) or d.high == d.low:
        return _moves(value, d)
    u, h = _to_unit(value, d), 2.0 ** -level
    cand = []
    for s in (-1, 1):
        v = _snap(_from_unit(u + s * h, d), d)
        if v == value and d.step is not None:
            v = value + s * d.step
        cand.append(v)
    if level == START_LEVEL:
        cand += [d.low, d.high]
    return sorted({v for v in cand if d.low <= v <= d.high and v != value})


def neighbours(params: dict, dists: dict[str, BaseDistribution], level: int | None = None) -> list[dict]:
    """Points one move away from ``params``: one variable to a neighbouring value, or two ordered variables
    in opposite directions (one up, one down: trades such as tp x 2 with dp / 2, or batch for cache).
    ``level`` None: the moves of :func:`_moves`; else those of a poll at that level (:func:`_poll_moves`)."""
    moves = {name: (_moves(params[name], d) if level is None else _poll_moves(params[name], d, level))
             for name, d in dists.items()}
    out = [{**params, name: v} for name, vs in moves.items() for v in vs]
    ordered = [n for n, d in dists.items() if _ordered(d)]
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            for va in moves[a]:
                for vb in moves[b]:
                    if (va > params[a]) != (vb > params[b]):
                        out.append({**params, a: va, b: vb})
    return out


def _contributions(F: np.ndarray) -> np.ndarray:
    """Each front point's exclusive hypervolume contribution, objectives normalized to the front (reference 1.1)."""
    import moocore

    from .pareto import Normalizer

    F = np.asarray(F, dtype=float)
    if len(F) < 2:
        return np.ones(len(F))
    return np.asarray(moocore.hv_contributions(Normalizer(F)(F), ref=np.full(F.shape[1], Normalizer.REF)))


def key(params: dict, names) -> tuple:
    return tuple((round(v, 12) if isinstance(v, float) else v) for v in (params[n] for n in names))


class LocalSearch:
    """Remembers every point tried (or queued) and polls the neighbours of a front (module doc)."""

    def __init__(self, dists: dict[str, BaseDistribution], seed: int):
        self.dists = dists
        self.names = list(dists)
        self.nominal = [n for n, d in dists.items() if not _ordered(d)]
        self.tried: set[tuple] = set()
        self.level: dict[tuple, int] = {}      # a point's poll level (levels only grow: all coarser ones are tried)
        self.spent: dict[tuple, int] = {}      # poll points proposed per combination of the nominal values
        self._polls: dict[tuple, tuple] = {}   # a point's current poll: its level and untried (key, params) pairs
        self.rng = np.random.default_rng(seed)

    def mark(self, params: dict) -> None:
        self.tried.add(key(params, self.names))

    def is_tried(self, params: dict) -> bool:
        return key(params, self.names) in self.tried

    def poll(self, params: dict) -> tuple[int, list[tuple]]:
        """The point's poll level and its untried neighbours there (as (key, params) pairs): the first level (from
        the point's own) at which some neighbour is untried; (MAX_LEVEL + 1, []) once the point has converged."""
        kp = key(params, self.names)
        level, todo = self._polls.get(kp, (self.level.get(kp, START_LEVEL), None))
        while level <= MAX_LEVEL:
            if todo is None:
                todo = [(key(q, self.names), q) for q in neighbours(params, self.dists, level)]
            todo = [(kq, q) for kq, q in todo if kq not in self.tried]
            if todo:
                break
            level, todo = level + 1, None
        self._polls[kp] = (level, todo or [])
        self.level[kp] = level
        return level, todo or []

    def proposals(self, params: list[dict], F: np.ndarray, k: int) -> list[dict]:
        """Up to ``k`` untried neighbours of the feasible points ``params`` (objectives ``F``): from the polls of the
        front, largest hypervolume contribution x step first; what they leave from the polls of the runners-up
        (:mod:`.centres`), those of the combination of nominal values given the fewest poll points so far first,
        then nearest the front / step."""
        if k <= 0 or not params:
            return []
        front, runners, eps = centres.split(params, F, self.nominal)
        polls = {i: self.poll(params[i]) for i in [*front, *runners]}
        step = {i: 2.0 ** (START_LEVEL - level) for i, (level, _) in polls.items()}
        gain = dict(zip(front, _contributions(np.asarray(F)[front])))
        near = dict(zip(runners, eps))
        queues = [sorted(front, key=lambda i: (-gain[i] * step[i], self.rng.random())),
                  sorted(runners, key=lambda i: (self.spent.get(self._combo(params[i]), 0), near[i] / step[i],
                                                  self.rng.random()))]
        out, seen = [], set()
        for queue in queues:
            self._take(queue, params, polls, k, out, seen)
        return out

    def _combo(self, p: dict) -> tuple:
        return tuple(p[n] for n in self.nominal)

    def _take(self, order, params: list, polls: dict, k: int, out: list, seen: set) -> None:
        """Append untried, unseen poll points of the centres in ``order`` to ``out`` until it holds ``k``."""
        for i in order:
            level, todo = polls[i]
            for j in self.rng.permutation(len(todo)):
                if len(out) >= k:
                    return
                kq, q = todo[j]
                if kq not in seen:
                    seen.add(kq)
                    same = all(q[n] == params[i][n] for n in self.nominal)   # another combination: coarse again
                    self.level.setdefault(kq, level if same else START_LEVEL)
                    out.append(q)
                    c = self._combo(params[i])
                    self.spent[c] = self.spent.get(c, 0) + 1

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
