"""Expert routing traces: generate them, replay them through expert caches, read and write them (docs/model.md
s.12.5). The Monte-Carlo counterpart of :mod:`dse.hierarchy`'s analytic reuse / residency model.

**Process** (:func:`generate`). ``batch`` sequences decode ``steps`` tokens through one MoE layer. At each step a
sequence keeps its previous ``top_k`` experts with probability ``reuse`` and otherwise draws ``top_k`` distinct
experts whose inclusion probabilities are exactly ``p_i`` (systematic sampling over a freshly permuted expert
order, so that any ``p_i <= 1`` summing to ``top_k`` is reproduced exactly).

**Caches** (:func:`replay`). Experts are in the static HBM set, the warm tier or the cold tier (``tiers``: 0, 1, 2
per expert). A dynamic HBM cache of ``slots`` experts holds non-static experts: ``lru`` keeps the most recently
used (experts of one step in random order), ``lfu`` the most often used so far (ties at random). Every touched
expert that is neither static nor resident is fetched from its tier.

**File format** (:func:`read`, :func:`write`): UTF-8 text, one line per (step, sequence, layer)::

    # dse expert trace v1          <- optional comment lines start with '#'
    # n_experts=256 top_k=8        <- required header: expert count and experts per token
    0 0 3 17 42 ...                <- step sequence layer, then the top_k expert ids (0 .. n_experts-1)

Every (step, sequence) pair present must be present for every layer and every sequence at every step.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dse.errors import DseError

HEADER = re.compile(r"#\s*n_experts\s*=\s*(\d+)\s+top_k\s*=\s*(\d+)")


def pick_probabilities(weights, top_k):
    """Per-expert weights -> pick probabilities ``p_i <= 1`` summing to ``top_k`` (the rule of
    :func:`dse.model.routing.routing_probabilities`)."""
    from .routing import routing_probabilities

    return routing_probabilities(weights, int(top_k), len(weights))


def zipf_probabilities(n_experts, top_k, skew):
    """Zipf(skew) pick probabilities over ranks ``0 .. E-1`` (:func:`dse.model.routing._zipf_probabilities`)."""
    from .routing import _zipf_probabilities

    return np.array(_zipf_probabilities(top_k, n_experts, skew, int(n_experts)), float)


def sample_sets(p, shape, rng):
    """Sets of ``k = sum(p)`` distinct experts with inclusion probabilities ``p`` -> int array (*shape, k), where
    ``shape = (steps, n)``: each step orders the experts at random and draws its ``n`` sets systematically."""
    p = np.asarray(p, float)
    k, E = int(round(p.sum())), len(p)
    steps, n = shape
    order = np.argsort(rng.random((steps, E)), axis=1)
    cum = np.cumsum(p[order], axis=1)
    cum *= k / cum[:, -1:]
    # one sorted axis: step t's cumulative sums and points shifted by (k + 1) t
    shift = (k + 1.0) * np.arange(steps)[:, None]
    points = rng.random((steps, n, 1)) + np.arange(k)[None, None, :] + shift[:, :, None]
    slot = np.searchsorted((cum + shift).ravel(), points.reshape(steps, -1).ravel(), side="right")
    slot = np.clip(slot.reshape(steps, n, k) - E * np.arange(steps)[:, None, None], 0, E - 1)
    return np.take_along_axis(order, slot.reshape(steps, n * k), axis=1).reshape(steps, n, k)


def generate(p, batch, steps, reuse, seed=0):
    """One MoE layer's routing trace: int array (steps, batch, top_k) of expert ids (the process above)."""
    rng = np.random.default_rng(seed)
    draws = sample_sets(p, (steps, batch), rng)
    fresh = rng.random((steps, batch)) >= reuse
    fresh[0] = True
    last = np.maximum.accumulate(np.where(fresh, np.arange(steps)[:, None], 0), axis=0)   # latest fresh draw
    return draws[last, np.arange(batch)[None, :]]


def touched(sets, n_experts):
    """(steps, batch, k) expert ids -> boolean (steps, n_experts): the experts the batch touches each step."""
    steps = sets.shape[0]
    out = np.zeros((steps, n_experts), bool)
    out[np.repeat(np.arange(steps), sets.shape[1] * sets.shape[2]), sets.reshape(-1)] = True
    return out


def replay(touch, tiers, slots, policy="lru", warmup=0, seed=0):
    """Replay a touch matrix (steps, E) through the caches -> mean fetches per step from the warm and the cold
    tier, after ``warmup`` steps."""
    if policy not in ("lru", "lfu"):
        raise DseError(f"policy={policy!r}: allowed lru or lfu")
    rng = np.random.default_rng(seed)
    tiers = np.asarray(tiers)
    dynamic = tiers > 0
    score = np.full(tiers.shape, -np.inf)       # LRU: last use (step + random tie-break); LFU: uses + tie-break
    cache = np.zeros(tiers.shape, bool)
    fetched = np.zeros((len(touch), 2))
    for t, now in enumerate(touch):
        need = now & dynamic & ~cache
        fetched[t] = np.count_nonzero(need & (tiers == 1)), np.count_nonzero(need & (tiers == 2))
        used = now & dynamic
        tie = rng.random(int(used.sum()))
        if policy == "lru":
            score[used] = t + tie
        else:
            score[used] = np.where(np.isfinite(score[used]), np.floor(score[used]), 0.0) + 1.0 + 0.5 * tie
        cache = _top(score, slots)
    return fetched[warmup:].mean(axis=0)


def _top(score, slots):
    """The ``slots`` experts with the highest finite score."""
    keep = np.zeros(score.shape, bool)
    seen = np.flatnonzero(np.isfinite(score))
    if slots >= len(seen):
        keep[seen] = True
    elif slots > 0:
        keep[seen[np.argpartition(score[seen], -slots)[-slots:]]] = True
    return keep


def tier_map(n_experts, hbm_count, warm_count, ranking=None):
    """Tier of each expert (0 static HBM, 1 warm, 2 cold): the hottest first (``ranking``: expert ids hottest first;
    default ids in order)."""
    ranking = np.arange(n_experts) if ranking is None else np.asarray(ranking)
    tiers = np.full(n_experts, 2)
    tiers[ranking[:hbm_count]] = 0
    tiers[ranking[hbm_count:hbm_count + warm_count]] = 1
    return tiers


def simulate(p, batch, reuse, slots, hbm_count=0, warm_count=0, steps=4000, warmup=200, policy="lru", seed=0):
    """Monte-Carlo fetches per step (warm, cold) of the process and caches above, experts ranked by ``p``."""
    p = np.asarray(p, float)
    sets = generate(p, batch, steps + warmup, reuse, seed)
    tiers = tier_map(len(p), hbm_count, warm_count, np.argsort(-p, kind="stable"))
    return replay(touched(sets, len(p)), tiers, slots, policy, warmup, seed + 1)


@dataclass
class Trace:
    """A routing trace read from a file: ``layers[l]`` is an int array (steps, batch, top_k) of expert ids."""
    n_experts: int
    top_k: int
    layers: dict

    def frequencies(self, layer=None):
        """Per-expert pick probabilities (share of tokens picking each expert; they sum to top_k)."""
        sets = np.concatenate([x.reshape(-1, self.top_k) for key, x in self.layers.items() if layer in (None, key)])
        return np.bincount(sets.ravel(), minlength=self.n_experts) / len(sets)

    def reuse(self, layer=None):
        """Moment estimate of ``expert_reuse``: a sequence's overlap with its previous step's experts is
        ``o = reuse + (1 - reuse) S``, ``S = sum p_i^2 / k``, so ``reuse = (o - S) / (1 - S)``."""
        p = self.frequencies(layer)
        s = float(np.sum(p ** 2) / self.top_k)
        overlaps = [_overlap(x) for key, x in self.layers.items() if layer in (None, key) and len(x) > 1]
        if not overlaps:
            raise DseError("trace: the reuse estimate needs at least two steps")
        return float(np.clip((np.mean(overlaps) - s) / max(1.0 - s, 1e-12), 0.0, 1.0))


def _overlap(sets):
    """Mean share of a sequence's experts also picked at its previous step."""
    prev, now = sets[:-1], sets[1:]
    return float((now[..., :, None] == prev[..., None, :]).any(-1).mean())


def write(path, layers: dict, n_experts: int):
    """Write ``layers`` ({layer: (steps, batch, k) ids}) in the trace format, atomically."""
    from dse.files import write_text

    k = next(iter(layers.values())).shape[2]
    lines = ["# dse expert trace v1", f"# n_experts={n_experts} top_k={k}"]
    for layer, sets in layers.items():
        for t, b in np.ndindex(*sets.shape[:2]):
            lines.append(" ".join(map(str, (t, b, layer, *sets[t, b]))))
    return write_text(Path(path), "\n".join(lines) + "\n", "trace")


def read(path) -> Trace:
    """Read a trace file (format above); a malformed line is refused in one line naming it."""
    text = Path(path).read_text(encoding="utf-8").splitlines()
    head = next((HEADER.match(line) for line in text if HEADER.match(line)), None)
    if head is None:
        raise DseError(f"{path}: missing header line '# n_experts=<E> top_k=<k>'")
    E, k = int(head.group(1)), int(head.group(2))
    rows = []
    for no, line in enumerate(text, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 3 + k or not all(f.isdigit() for f in fields):
            raise DseError(f"{path}:{no}: expected 'step sequence layer' and {k} expert ids (non-negative integers)")
        rows.append([int(f) for f in fields])
    if not rows:
        raise DseError(f"{path}: no trace lines")
    return Trace(E, k, _to_layers(np.array(rows), E, k, path))


def _to_layers(rows, E, k, path):
    if rows[:, 3:].max() >= E:
        raise DseError(f"{path}: expert id {rows[:, 3:].max()} out of range: allowed 0 .. n_experts-1 = {E - 1}")
    layers = {}
    for layer in np.unique(rows[:, 2]):
        r = rows[rows[:, 2] == layer]
        steps, batch = r[:, 0].max() + 1, r[:, 1].max() + 1
        if len(r) != steps * batch or len(np.unique(r[:, 0] * batch + r[:, 1])) != len(r):
            raise DseError(f"{path}: layer {layer} does not have every sequence 0..{batch - 1} at every step "
                           f"0..{steps - 1} exactly once")
        sets = np.empty((steps, batch, k), np.int64)
        sets[r[:, 0], r[:, 1]] = r[:, 3:]
        layers[int(layer)] = sets
    return layers
