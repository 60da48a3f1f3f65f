"""A memory hierarchy for routed experts: hot in HBM, warm in a second tier, cold in the placement tier, and a
dynamic HBM cache that remembers recently used experts (docs/model.md s.12).

Pure, vectorized functions: every argument may be a number or a numpy array (one axis per grid dimension), like
the kernel's. Sums over experts are unrolled Python loops over *classes* of experts -- ``(p, warm, cold)``: a
per-token pick probability ``p`` and how many experts with that probability live in the warm and in the cold tier
(fractional counts weight a boundary expert) -- so uniform routing is one class and Zipf or measured routing one
class per rank.

The routing process (s.12.2): each of ``B`` sequences keeps its previous step's ``k`` experts with probability
``reuse`` and otherwise draws ``k`` fresh distinct experts, expert ``i`` with probability ``p_i``. For one
sequence and one expert this is a two-state Markov chain whose stationary probability is ``p_i``:

    P(picked at t | picked at t-1) = reuse + (1 - reuse) p_i,   P(picked at t | not at t-1) = (1 - reuse) p_i

so a run of ``n >= 1`` steps without the expert has probability ``z_i(n) = (1 - p_i) (1 - (1 - reuse) p_i)^(n-1)``
and, over ``B`` independent sequences, the batch leaves it untouched ``n`` steps running with ``Z_i(n) = z_i(n)^B``
(``Z_i(0) = 1``). The dynamic cache is LRU over the experts outside the static HBM set; its residency follows the
characteristic-time (Che) approximation: an expert is resident iff it was touched within the last ``tau`` steps,
``tau`` solving ``sum_i n_i (1 - Z_i(tau)) = C`` (experts touched in the same step are evicted in random order,
which makes ``Z_i`` linear between integer ``tau``). :mod:`dse.traces` simulates the same process and cache.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

#: Characteristic time (steps) standing in for "every expert ever touched stays resident".
TAU_MAX = 1e12
_BISECTIONS = 64


def classes_by_rank(probs, hbm_count, warm_count):
    """Experts ranked hottest first (``probs[i]``: rank i's pick probability) -> ``[(p, warm, cold)]``.

    The ``h = hbm_count`` hottest experts are static in HBM, the next ``w = warm_count`` live in the warm tier:
    ``warm_i = clip(h + w - i, 0, 1) - clip(h - i, 0, 1)``, ``cold_i = 1 - clip(h + w - i, 0, 1)`` (s.12.1)."""
    out = []
    for i, p in enumerate(probs):
        hot = np.clip(hbm_count - i, 0.0, 1.0)
        hot_or_warm = np.clip(hbm_count + warm_count - i, 0.0, 1.0)
        out.append((p, hot_or_warm - hot, 1.0 - hot_or_warm))
    return out


def uniform_classes(top_k, n_experts, hbm_count, warm_count):
    """Uniform routing: one class, ``p = k / E``, ``w`` warm and ``E - h - w`` cold experts."""
    p = top_k / np.maximum(n_experts, 1)
    return [(p, warm_count, np.maximum(n_experts - hbm_count - warm_count, 0.0))]


def untouched_run(p, batch, reuse, n):
    """``Z(n) = [(1 - p) (1 - (1 - reuse) p)^(n - 1)]^B`` for integer ``n >= 1``, 1 for ``n = 0``: the probability
    that none of ``B`` sequences picks the expert in ``n`` consecutive steps (stationary chain)."""
    n = np.asarray(n, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_z = np.log1p(-np.minimum(p, 1.0)) + np.maximum(n - 1.0, 0.0) * np.log1p(-(1.0 - reuse) * np.minimum(p, 1.0))
        z = np.exp(batch * np.where(np.isnan(log_z), -np.inf, log_z))
    return np.where(n <= 0, 1.0, z)


def _interpolated(p, batch, reuse, tau, lag):
    """``Z(floor(tau) + lag)`` and ``Z(floor(tau) + lag + 1)`` with the weight ``r = tau - floor(tau)``."""
    n = np.floor(tau)
    return untouched_run(p, batch, reuse, n + lag), untouched_run(p, batch, reuse, n + lag + 1), tau - n


def resident(p, batch, reuse, tau):
    """P(touched within the last ``tau`` steps) = ``1 - [(1 - r) Z(n) + r Z(n + 1)]``, ``n = floor(tau)``."""
    z0, z1, r = _interpolated(p, batch, reuse, tau, 0)
    return 1.0 - ((1.0 - r) * z0 + r * z1)


def missed(p, batch, reuse, tau):
    """P(touched now and not resident) = ``(1 - r) [Z(n) - Z(n+1)] + r [Z(n+1) - Z(n+2)]`` (``tau = 0``:
    ``1 - (1 - p)^B``, today's touch probability)."""
    z0, z1, r = _interpolated(p, batch, reuse, tau, 0)
    z2 = untouched_run(p, batch, reuse, np.floor(tau) + 2)
    return (1.0 - r) * (z0 - z1) + r * (z1 - z2)


#: Classes are stacked along a leading axis (one numpy call for all) up to this many elements, else looped over.
STACK_MAX = 4_000_000


def _stacked(classes, *others):
    """``[(p, warm, cold)]`` -> one ``(p, warm, cold)`` of arrays with a leading class axis (broadcast with the
    ``others`` too), when small enough (None otherwise): the sums over classes become one reduction."""
    arrays = [np.asarray(x, float) for cls in classes for x in cls] + [np.asarray(x, float) for x in others]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    if len(classes) * max(int(np.prod(shape)), 1) > STACK_MAX:
        return None
    return tuple(np.stack([np.broadcast_to(np.asarray(cls[j], float), shape) for cls in classes]) for j in range(3))


def _over_classes(classes, term, *others):
    """``sum_c term(p_c, warm_c, cold_c)``, stacked or looped (``others``: the other arrays ``term`` reads)."""
    stacked = _stacked(classes, *others) if len(classes) > 1 else None
    if stacked is None:
        return sum(term(p, w, c) for p, w, c in classes)
    p, w, c = stacked
    return term(p, w, c).sum(axis=0)


def lru_horizon(classes, batch, reuse, slots):
    """The LRU cache's characteristic time ``tau`` (steps): ``sum_c (warm_c + cold_c) resident_c(tau) = slots``,
    solved by bisection on ``log(1 + tau)`` for every grid point at once; 0 without slots, ``TAU_MAX`` where
    every expert that can be touched fits."""
    stacked = _stacked(classes, batch, reuse, slots) if len(classes) > 1 else None
    if stacked is not None:
        classes = [stacked]                    # one class of arrays: the class axis is summed below

    def occupied(tau):
        total = sum((w + c) * resident(p, batch, reuse, tau) for p, w, c in classes)
        return total.sum(axis=0) if stacked is not None else total

    slots = np.asarray(slots, float)
    shape = np.broadcast_shapes(np.shape(occupied(0.0)), slots.shape)
    lo, hi = np.zeros(shape), np.full(shape, np.log1p(TAU_MAX))
    fits_all = occupied(TAU_MAX) <= slots
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        over = occupied(np.expm1(mid)) > slots
        hi, lo = np.where(over, mid, hi), np.where(over, lo, mid)
    tau = np.where(fits_all, TAU_MAX, np.expm1(0.5 * (lo + hi)))
    return np.where(slots <= 0, 0.0, tau)


def fetches(classes, batch, reuse, slots):
    """Expected experts fetched per MoE layer and step from the warm and from the cold tier (s.12.2):
    ``sum_c warm_c missed_c(tau)`` and ``sum_c cold_c missed_c(tau)``, ``tau`` the LRU horizon."""
    tau = lru_horizon(classes, batch, reuse, slots) if np.any(np.asarray(slots) > 0) else 0.0
    warm = _over_classes(classes, lambda p, w, c: w * missed(p, batch, reuse, tau), batch, reuse, tau)
    cold = _over_classes(classes, lambda p, w, c: c * missed(p, batch, reuse, tau), batch, reuse, tau)
    return warm, cold


def dynamic_slots(slots, n_experts, hbm_count):
    """Dynamic cache slots that can be used: at most the experts outside the static HBM set."""
    return np.minimum(slots, np.maximum(n_experts - hbm_count, 0.0))


def prefetch_overfetch(prefetch, accuracy):
    """Extra fetches of predictive prefetching (s.12.3): with accuracy ``a`` a share ``1 - a`` of the prefetched
    experts is wrong (fetched for nothing) and the same share is fetched again on demand: ``prefetch (1 - a)``."""
    return prefetch * (1.0 - accuracy)


def copy_time(warm_bytes, cold_bytes, warm_bw, cold_bw, link_bw, warm_link_bw, shared, hbm_write_bw):
    """Seconds to copy one MoE layer's experts (s.12.4): each tier's devices stream at their bandwidth; over a
    shared link (``shared = 1``) both share it, else each tier has its own link; copies that land in HBM (staged)
    are capped by its write bandwidth (accounting=paper: half of HBM's, as the tool; the direct path: none).

        t = max(warm / min(warm_bw, own), cold / min(cold_bw, link), shared (warm + cold) / link,
                (warm + cold) / hbm_write_bw),  own = link if shared else warm_link

    Without warm bytes this is ``cold / min(link, tier, hbm_write_bw)``."""
    own = shared * link_bw + (1 - shared) * warm_link_bw
    t_warm = warm_bytes / np.minimum(warm_bw, own)
    t_cold = cold_bytes / np.minimum(cold_bw, link_bw)
    total = warm_bytes + cold_bytes
    return np.maximum(np.maximum(t_warm, t_cold), np.maximum(shared * total / link_bw, total / hbm_write_bw))


#: Workload fields of the hierarchy and their neutral values (a workload without them is today's model).
NEUTRAL = dict(warm_fraction=0.0, expert_reuse=0.0, dynamic_cache_experts=0.0, prefetch_accuracy=1.0,
               warm_read_pj_per_bit=0.0, warm_bw_gbps=1e30, warm_idle_w_per_gpu=0.0, warm_capacity_gb=0.0,
               warm_usd_per_gb=0.0, warm_link_shared=1.0, warm_link_bw_gbps=1e30, warm_link_pj_per_bit=0.0)


def settings(w):
    """The hierarchy fields of a workload namespace, neutral where absent."""
    return SimpleNamespace(**{k: getattr(w, k, v) for k, v in NEUTRAL.items()})


def offload(fetched, warm, touched, busiest, w, link, tier, sizes):
    """The step's expert copies split by tier (s.12.4), per MoE layer: ``fetched`` experts of which ``warm`` from
    the warm tier. ``sizes``: expert_bytes, router_bytes, router_offloaded (the busiest GPU's router copy),
    hbm_write_bw (B/s: the cap a copy landing in HBM sees; inf for the direct path) and first_byte_s (the cold
    tier's read latency, e.g. a Flash page read, exposed once when the busiest GPU copies anything from it).
    Returns warm / cold experts fetched with the wrong prefetches (``x (1 + overfetch)``), the busiest GPU's copy
    time ``t_copy`` (overlappable), its copied bytes ``busiest_bytes`` and ``t_miss`` (the demand fetches of
    mispredicted experts, exposed)."""
    h = settings(w)
    over = prefetch_overfetch(w.prefetch, h.prefetch_accuracy)
    over = over if np.any(over) else 0.0       # neutral: no prefetch dimension enters the fetched bits
    cold = fetched - warm
    busiest_cold = busiest * np.where(touched > 0, cold / np.maximum(touched, 1e-30), 0.0)
    busiest_warm = busiest * np.where(touched > 0, warm / np.maximum(touched, 1e-30), 0.0)
    warm_bytes = busiest_warm * sizes.expert_bytes
    cold_bytes = busiest_cold * sizes.expert_bytes + sizes.router_offloaded * sizes.router_bytes
    t_copy = copy_time(warm_bytes, cold_bytes, h.warm_bw_gbps * 1e9, tier.bw_gbps * tier.devices_per_gpu * 1e9,
                       link.bw_gbps * 1e9, h.warm_link_bw_gbps * 1e9, h.warm_link_shared, sizes.hbm_write_bw)
    # the first expert waits for the tier's read latency; the rest stream behind it. Expected experts below one
    # stand for the chance that a copy happens at all (at most the expectation)
    if np.any(sizes.first_byte_s):         # a tier without a read latency (DRAM, accounting=paper): nothing added
        t_copy = t_copy + sizes.first_byte_s * np.minimum(busiest_cold, 1.0)
    return SimpleNamespace(warm=warm * (1 + over), cold=cold * (1 + over), t_copy=t_copy, t_miss=over * t_copy,
                           busiest_bytes=(warm_bytes + cold_bytes) * (1 + over))


def held(m, w, tier, n_moe, expert_bytes):
    """Bytes of experts held per tier beyond today's (s.12.6): the warm tier's ``n_moe E warm_fraction`` experts
    and the dynamic cache's ``n_moe min(C, E (1 - f))`` experts in HBM (offloaded placements only)."""
    h = settings(w)
    warm = n_moe * m.n_experts * h.warm_fraction * tier.offloaded * expert_bytes
    dynamic = n_moe * dynamic_slots(h.dynamic_cache_experts, m.n_experts, w.hbm_cache_fraction * m.n_experts)
    return warm, dynamic * tier.offloaded * expert_bytes


def warm_energy(warm_bits, w, link):
    """Warm-tier copy energy (J): ``warm_read`` = bits x the warm tier's read pJ/bit, ``warm_link`` = bits x its
    link's pJ/bit (the offload link's when shared) (s.12.4)."""
    h = settings(w)
    link_pj = h.warm_link_shared * link.pj_per_bit + (1 - h.warm_link_shared) * h.warm_link_pj_per_bit
    return {"warm_read": warm_bits * h.warm_read_pj_per_bit * 1e-12, "warm_link": warm_bits * link_pj * 1e-12}


def warm_idle_w(w, tier):
    """Idle power per GPU of a warm tier that holds experts (0 when always on: counted once) (s.12.6)."""
    h = settings(w)
    return tier.offloaded * h.warm_idle_w_per_gpu * (np.asarray(h.warm_fraction) > 0)


def warm_capacity(w, out):
    """(bytes held, capacity GB per GPU, USD per GB) of the warm tier, for :func:`dse.capacity.capacity`."""
    h = settings(w)
    return out.warm_tier_bytes, h.warm_capacity_gb, h.warm_usd_per_gb
