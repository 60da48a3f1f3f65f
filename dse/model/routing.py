"""How many distinct routed experts one decode step touches (docs/model.md s.3.1).

Every function here is elementwise over its array arguments: numpy arrays, xarray DataArrays (numpy- or
dask-backed) and dask arrays all work, because only ufuncs, arithmetic and Python loops over small integer
ranges are used.  Sums over experts or over per-GPU expert slots are unrolled Python loops, which keeps the
extra axis out of the caller's broadcasting.
"""
from __future__ import annotations

import numpy as np

from dse.errors import DseError
from dse.model import expert_load, hierarchy


def touched_uniform(batch, top_k, n_experts):
    """Expected distinct experts touched by ``batch`` tokens, uniform routing: U = E (1 - (1 - k/E)^B)."""
    e = np.maximum(n_experts, 1)
    return n_experts * (1.0 - (1.0 - top_k / e) ** batch)


def _zipf_probabilities(top_k, n_experts, skew, n_max):
    """Per-rank pick probabilities p_i = k w_i / sum(w), w_i = (i+1)^-s, for ranks i < n_max.

    Ranks at or beyond ``n_experts`` get probability 0 (so ``n_experts`` may itself be an array). Probabilities
    are capped at 1 (a token cannot pick one expert twice); the cap only binds for extreme skew.
    """
    weights = [(i + 1.0) ** (-skew) * (i < n_experts) for i in range(n_max)]
    total = sum(weights)
    return [np.minimum(top_k * w / total, 1.0) for w in weights]


def touched_zipf(batch, top_k, n_experts, skew, n_max, cached=0.0):
    """Expected distinct experts touched under Zipf(skew) popularity, and how many of them are not cached.

    ``cached`` is the number of hottest experts held in HBM (fractional counts weight the boundary rank).
    Returns ``(touched, touched_uncached)``; skew = 0 reproduces :func:`touched_uniform`.
    """
    return _touched_by_rank(_zipf_probabilities(top_k, n_experts, skew, n_max), batch, cached)


def touched_measured(batch, frequencies, cached=0.0):
    """Expected distinct experts touched for a measured per-expert pick-probability vector.

    ``frequencies`` are per-expert probabilities that one token picks that expert (they sum to top_k); they
    are sorted hottest first so that ``cached`` counts the hottest experts.
    """
    return _touched_by_rank(np.sort(np.asarray(frequencies, dtype=float))[::-1], batch, cached)


def _touched_by_rank(probs, batch, cached):
    """sum_i 1 - (1 - p_i)^B over experts ranked hottest first, and the same over those beyond the ``cached``
    hottest (a fractional count weights the boundary rank)."""
    touched = 0.0
    uncached = 0.0
    for i, p in enumerate(probs):
        t = 1.0 - (1.0 - p) ** batch
        touched = touched + t
        uncached = uncached + t * np.clip(i + 1.0 - cached, 0.0, 1.0)
    return touched, uncached


# ------------------------------------------------------------------------------ measured routing, the plan, a step's experts
def routing_probabilities(frequencies, top_k: int, n_experts: int) -> np.ndarray:
    """Measured routing frequencies -> per-token pick probabilities of each expert.

    ``frequencies`` are non-negative per-expert counts or shares (any positive finite scale gives the same
    probabilities: they are divided by their largest entry before any sum). Each token picks ``top_k``
    *distinct* experts, so expert i is picked with probability p_i <= 1 and sum p_i = top_k. The frequencies are
    scaled to sum to top_k; an expert whose share would exceed 1 is picked by every token (p_i = 1) and the rest
    of the mass is shared out among the others in proportion to their frequencies (repeated until no p_i > 1).
    A vector with fewer than top_k non-zero entries cannot give top_k distinct experts and is refused.
    """
    name = "workload.routing_frequencies"
    try:
        f = np.asarray(frequencies, dtype=float)
    except (TypeError, ValueError):
        raise DseError(f"{name}: expected a list of {n_experts} non-negative numbers") from None
    if f.ndim != 1:
        raise DseError(f"{name}: expected a flat list of {n_experts} non-negative numbers")
    if len(f) != n_experts:
        raise DseError(f"{name} has {len(f)} entries; model.n_experts is {n_experts}")
    bad = np.flatnonzero(~np.isfinite(f) | (f < 0))
    if len(bad):
        raise DseError(f"{name}[{bad[0]}]={f[bad[0]]}: allowed finite numbers >= 0")
    if f.max(initial=0.0) > 0:   # scale to a largest entry of 1 first: any positive finite scale gives the same
        f = f / f.max()          # shares (a sum of 1e308s overflows, 1e-320s are subnormal)
    nonzero = int(np.count_nonzero(f))
    if nonzero < top_k:
        raise DseError(f"{name}: {nonzero} experts have a non-zero frequency; top_k={top_k} distinct experts "
                       "per token need at least top_k")
    p = np.zeros_like(f)
    if top_k == 0:
        return p
    full = np.zeros(len(f), dtype=bool)
    for _ in range(len(f) + 1):
        rest = ~full
        p[full] = 1.0
        mass = f[rest].sum()
        p[rest] = f[rest] * ((top_k - full.sum()) / mass) if mass > 0 else 0.0
        over = rest & (p > 1.0)
        if not over.any():
            break
        full |= over
    return np.minimum(p, 1.0)


def _values(x) -> np.ndarray:
    return np.asarray(getattr(x, "values", x))


def plan(m, s, w, routing_frequencies) -> dict:
    """How expected experts are counted over the whole grid: the mode and the loop bounds (so that every block
    of a chunked grid runs the same loops and gives the same numbers)."""
    k, E = m.top_k, m.n_experts
    freqs = None
    if routing_frequencies is not None:
        if np.ndim(_values(E)):
            raise DseError("workload.routing_frequencies: model.n_experts cannot be a dimension with measured routing")
        if np.ndim(_values(k)):
            raise DseError("workload.routing_frequencies: model.top_k cannot be a dimension with measured routing")
        freqs = routing_probabilities(routing_frequencies, int(_values(k)), int(_values(E)))
        mode = "measured"
    elif np.ndim(_values(w.routing_skew)) == 0 and float(_values(w.routing_skew)) == 0.0:
        mode = "uniform"
    else:
        mode = "zipf"
    with_hierarchy = any(np.any(_values(x) > 0) for x in (w.warm_fraction, w.dynamic_cache_experts))   # s.12
    return dict(mode=mode, freqs=freqs, n_max=int(np.max(_values(E))), with_hierarchy=with_hierarchy)


def expected_experts(m, s, w, mode, freqs, n_max, with_hierarchy=False):
    """Expected touched / uncached experts per MoE layer, the busiest EP GPU's touched experts and, with a warm tier
    or a dynamic cache, the experts fetched from the warm tier (docs/model.md s.12)."""
    touched, uncached, busiest = _routing_flat(m, s, w, mode, freqs, n_max)
    if not with_hierarchy:
        return touched, uncached, busiest, 0.0
    warm, cold = _hierarchy_fetches(m, w, mode, freqs, n_max)
    return touched, warm + cold, busiest, warm


def _hierarchy_fetches(m, w, mode, freqs, n_max):
    """Experts fetched per MoE layer from the warm and the cold tier (:func:`dse.model.hierarchy.fetches`)."""
    k, E = m.top_k, m.n_experts
    hot, warm = w.hbm_cache_fraction * E, w.warm_fraction * E
    if mode == "uniform":
        classes = hierarchy.uniform_classes(k, E, hot, warm)
    else:
        probs = np.sort(freqs)[::-1] if mode == "measured" else _zipf_probabilities(k, E, w.routing_skew, n_max)
        classes = hierarchy.classes_by_rank(probs, hot, warm)
    slots = hierarchy.dynamic_slots(w.dynamic_cache_experts, E, hot)
    return hierarchy.fetches(classes, w.batch, w.expert_reuse, slots)


def _routing_flat(m, s, w, mode, freqs, n_max):
    """Today's routing: touched and uncached experts (static HBM cache only), busiest GPU."""
    B, k, E, f = w.batch, m.top_k, m.n_experts, w.hbm_cache_fraction
    if mode == "measured":
        touched, uncached = touched_measured(B, freqs, cached=f * E)
        busiest = expert_load.busiest(B, k, E, s.ep, lambda b, _k, _e: 1 - (1 - np.sort(freqs)[::-1]) ** b)
    elif mode == "uniform":
        touched = touched_uniform(B, k, E)
        uncached = touched * (1 - f)
        busiest = expert_load.busiest(B, k, E, s.ep)
    else:
        touched, uncached = touched_zipf(B, k, E, w.routing_skew, n_max, cached=f * E)
        skews = np.broadcast_to(np.asarray(w.routing_skew, float), np.shape(w.routing_skew))
        busiest = _zipf_busiest(B, k, E, s.ep, skews, n_max)
    return touched, uncached, busiest


def _zipf_busiest(B, k, E, ep, skew, n_max):
    """The busiest-GPU load under Zipf routing, one skew value at a time (skew is at most a short dimension)."""
    shape = np.broadcast_shapes(*(np.shape(x) for x in (B, k, E, ep, skew)))
    out = np.zeros(shape)
    skew_b = np.broadcast_to(skew, shape)
    for value in np.unique(skew_b):
        probs = lambda b, kk, e, v=value: 1 - (1 - np.array(_zipf_probabilities(kk, e, v, int(e)))) ** b
        out = np.where(skew_b == value, expert_load.busiest(B, k, E, ep, probs), out)
    return out
