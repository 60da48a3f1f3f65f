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
#: Limits on what a trace may hold or a simulation may draw (memory and time stay bounded; one-line errors beyond).
MAX_EXPERTS = 2**20                 # routed experts per layer (dse.config.rules.MAX_EXPERTS)
MAX_VALUES = 5 * 10**7              # expert ids in one generated layer (steps x batch x top_k) or in a file
MAX_STEPS = 10**6                   # steps replayed through the caches
MAX_REPLAY_WORK = 5 * 10**8         # steps x experts replayed
MAX_FILE_BYTES = 2 * 2**30          # a trace file


# ------------------------------------------------------------------------------------------------ validation
def _int(name: str, value, lo: int = 0, hi: float = float("inf")) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        bound = f"an integer in [{lo}, {int(hi)}]" if hi != float("inf") else f"an integer >= {lo}"
        raise DseError(f"traces: {name}={value!r}: allowed {bound}")
    return int(value)


def _share(name: str, value) -> float:
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating))
            or not 0 <= value <= 1):
        raise DseError(f"traces: {name}={value!r}: allowed a number in [0, 1]")
    return float(value)


def check_probabilities(p) -> np.ndarray:
    """Pick probabilities: a flat list of finite numbers in [0, 1] summing to an integer top_k >= 1 (at most the
    number of non-zero entries, and at most :data:`MAX_EXPERTS` experts)."""
    try:
        p = np.asarray(p, dtype=float)
    except (TypeError, ValueError):
        raise DseError("traces: p: expected a flat list of pick probabilities") from None
    if p.ndim != 1 or not 1 <= len(p) <= MAX_EXPERTS:
        raise DseError(f"traces: p: expected a flat list of 1 .. {MAX_EXPERTS} pick probabilities")
    bad = np.flatnonzero(~np.isfinite(p) | (p < 0) | (p > 1))
    if len(bad):
        raise DseError(f"traces: p[{bad[0]}]={p[bad[0]]}: allowed pick probabilities in [0, 1] (use "
                       "pick_probabilities to turn weights into them)")
    k = round(float(p.sum()))
    if k < 1 or abs(p.sum() - k) > 1e-6 * max(k, 1) or k > np.count_nonzero(p):
        raise DseError(f"traces: p sums to {p.sum():.6g}: allowed an integer top_k >= 1 (each token picks top_k "
                       "distinct experts; pick_probabilities scales weights to it)")
    return p


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


def generate(p, batch, steps, reuse=0.0, seed=0):
    """One MoE layer's routing trace: int array (steps, batch, top_k) of expert ids (the process above)."""
    p = check_probabilities(p)
    batch, steps = _int("batch", batch, 1), _int("steps", steps, 1)
    reuse = _share("reuse", reuse)
    k = round(float(p.sum()))
    if steps * batch * max(k, len(p)) > MAX_VALUES:
        raise DseError(f"traces: steps={steps} x batch={batch} x top_k={k} (or experts) is over {MAX_VALUES:,} "
                       "values: draw fewer steps or sequences")
    rng = np.random.default_rng(_int("seed", seed))
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
        raise DseError(f"traces: policy={policy!r}: allowed lru or lfu")
    touch, tiers = np.asarray(touch), np.asarray(tiers)
    if touch.ndim != 2 or touch.dtype != bool:
        raise DseError("traces: touch: expected a boolean array (steps, n_experts)")
    if tiers.shape != (touch.shape[1],) or not np.isin(tiers, (0, 1, 2)).all():
        raise DseError(f"traces: tiers: expected one tier (0, 1 or 2) per expert ({touch.shape[1]})")
    _int("slots", slots, 0, touch.shape[1])
    _int("warmup", warmup, 0, max(len(touch) - 1, 0))
    if len(touch) > MAX_STEPS or touch.size > MAX_REPLAY_WORK:
        raise DseError(f"traces: {len(touch):,} steps x {touch.shape[1]:,} experts: allowed at most {MAX_STEPS:,} "
                       f"steps and {MAX_REPLAY_WORK:,} in all")
    rng = np.random.default_rng(_int("seed", seed))
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
    n_experts = _int("n_experts", n_experts, 1, MAX_EXPERTS)
    hbm_count = _int("hbm_count", hbm_count, 0, n_experts)
    warm_count = _int("warm_count", warm_count, 0, n_experts - hbm_count)
    ranking = np.arange(n_experts) if ranking is None else np.asarray(ranking)
    if sorted(ranking.tolist()) != list(range(n_experts)):
        raise DseError(f"traces: ranking: expected every expert id 0 .. {n_experts - 1} once")
    tiers = np.full(n_experts, 2)
    tiers[ranking[:hbm_count]] = 0
    tiers[ranking[hbm_count:hbm_count + warm_count]] = 1
    return tiers


def simulate(p, batch, reuse, slots=0, hbm_count=0, warm_count=0, steps=4000, warmup=200, policy="lru", seed=0):
    """Monte-Carlo fetches per step (warm, cold) of the process and caches above, experts ranked by ``p``. Every
    argument is checked first (one-line errors, before any drawing)."""
    p = check_probabilities(p)
    E = len(p)
    _int("batch", batch, 1)
    _share("reuse", reuse)
    _int("slots", slots, 0, E)
    hbm_count = _int("hbm_count", hbm_count, 0, E)
    _int("warm_count", warm_count, 0, E - hbm_count)
    steps, warmup = _int("steps", steps, 1, MAX_STEPS), _int("warmup", warmup, 0, MAX_STEPS)
    if policy not in ("lru", "lfu"):
        raise DseError(f"traces: policy={policy!r}: allowed lru or lfu")
    if (steps + warmup) * E > MAX_REPLAY_WORK or steps + warmup > MAX_STEPS:
        raise DseError(f"traces: steps + warmup = {steps + warmup:,} x {E:,} experts: allowed at most "
                       f"{MAX_STEPS:,} steps and {MAX_REPLAY_WORK:,} in all")
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

    n_experts = _int("n_experts", n_experts, 1, MAX_EXPERTS)
    if not isinstance(layers, dict) or not layers:
        raise DseError("traces: layers: expected {layer: (steps, batch, top_k) expert ids}, at least one layer")
    layers = {_int("layer", int(k) if isinstance(k, np.integer) else k): np.asarray(v) for k, v in layers.items()}
    k = next(iter(layers.values())).shape[-1] if next(iter(layers.values())).ndim == 3 else 0
    for layer, sets in layers.items():
        if sets.ndim != 3 or sets.shape[2] != k or k < 1 or sets.dtype.kind not in "iu":
            raise DseError(f"traces: layer {layer}: expected an integer array (steps, batch, top_k={k})")
        if sets.size and (sets.min() < 0 or sets.max() >= n_experts):
            raise DseError(f"traces: layer {layer}: expert ids must be in 0 .. n_experts-1 = {n_experts - 1}")
        if (np.sort(sets, axis=2)[..., 1:] == np.sort(sets, axis=2)[..., :-1]).any():
            raise DseError(f"traces: layer {layer}: a token picks the same expert twice (top_k distinct experts)")
    lines = ["# dse expert trace v1", f"# n_experts={n_experts} top_k={k}"]
    for layer, sets in layers.items():
        for t, b in np.ndindex(*sets.shape[:2]):
            lines.append(" ".join(map(str, (t, b, layer, *sets[t, b]))))
    return write_text(Path(path), "\n".join(lines) + "\n", "trace", flag="another path")


def read(path) -> Trace:
    """Read a trace file (format above); a malformed line is refused in one line naming it."""
    import os

    from dse.files import read_user_text

    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
        raise DseError(f"traces: path={path!r}: allowed the path of a trace file")
    text = read_user_text(path, "trace file", MAX_FILE_BYTES).splitlines()
    head = next((HEADER.match(line) for line in text if HEADER.match(line)), None)
    if head is None:
        raise DseError(f"{path}: missing header line '# n_experts=<E> top_k=<k>'")
    E, k = int(head.group(1)), int(head.group(2))
    if not 1 <= E <= MAX_EXPERTS or not 1 <= k <= E:
        raise DseError(f"{path}: header n_experts={E} top_k={k}: allowed 1 <= top_k <= n_experts <= {MAX_EXPERTS}")
    rows = []
    for no, line in enumerate(text, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 3 + k or not all(f.isdigit() for f in fields):
            raise DseError(f"{path}:{no}: expected 'step sequence layer' and {k} expert ids (non-negative integers)")
        row = [int(f) for f in fields]
        if len(set(row[3:])) != k:
            raise DseError(f"{path}:{no}: a token picks the same expert twice (top_k={k} distinct experts)")
        rows.append(row)
        if len(rows) * (3 + k) > MAX_VALUES:
            raise DseError(f"{path}: over {MAX_VALUES:,} values; split the trace")
    if not rows:
        raise DseError(f"{path}: no trace lines")
    return Trace(E, k, _to_layers(np.array(rows), E, k, path))


def _to_layers(rows, E, k, path):
    if rows[:, 3:].max() >= E:
        raise DseError(f"{path}: expert id {rows[:, 3:].max()} out of range: allowed 0 .. n_experts-1 = {E - 1}")
    layers = {}
    for layer in np.unique(rows[:, 2]):
        r = rows[rows[:, 2] == layer]
        steps, batch = int(r[:, 0].max()) + 1, int(r[:, 1].max()) + 1
        if len(r) != steps * batch or len(np.unique(r[:, 0] * batch + r[:, 1])) != len(r):
            raise DseError(f"{path}: layer {layer} does not have every sequence 0..{batch - 1} at every step "
                           f"0..{steps - 1} exactly once")
        sets = np.empty((steps, batch, k), np.int64)
        sets[r[:, 0], r[:, 1]] = r[:, 3:]
        layers[int(layer)] = sets
    return layers
