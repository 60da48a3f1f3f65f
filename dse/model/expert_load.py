"""How many touched experts the busiest expert-parallel GPU holds (docs/model.md s.3.5).

With expert parallelism the ``E`` routed experts of a MoE layer are split over ``ep`` GPUs (groups of
``ceil(E/ep)`` or ``floor(E/ep)`` experts) and the layer waits for the GPU holding the most touched experts.
The per-GPU counts are not independent: they share one set of touched experts, so they are negatively
correlated (with exactly one expert touched, the busiest GPU holds exactly one). We compute

    E[max_g X_g] = sum_N P(N) * E[max_g X_g | N touched],

1. ``P(N)``, the law of the number of distinct experts touched by ``B`` tokens. Under uniform routing each
   token picks ``k`` distinct experts uniformly, so the count is a Markov chain over tokens: from ``n``
   touched, a token adds ``x ~ Hypergeometric(E, E - n, k)`` new ones. This is exact. Under skewed routing
   (Zipf or measured frequencies) ``N`` is taken on the two integers around its expectation
   ``U = sum_i 1 - (1 - p_i)^B`` with the weights that give mean ``U`` (exact whenever ``U`` is an integer,
   e.g. one token with top-1; an approximation that neglects the spread of ``N`` otherwise).
2. ``E[max | N]``: by symmetry of uniform routing the touched set, given its size ``N``, is a uniformly random
   ``N``-subset, so the group counts are multivariate hypergeometric. ``P(all groups <= c | N)`` follows from
   a dynamic programme over groups (each group's count, given ``r`` items left among ``R`` experts, is
   Hypergeometric(R, group size, r)); ``E[max | N] = sum_{c >= 0} (1 - P(all <= c | N))``. Under skewed
   routing we keep this conditional law, i.e. assume expert popularity is independent of the GPU an expert
   sits on (documented assumption).

Both tables depend only on a few integers (E, k, ep, and B), so they are computed once per combination,
cached, and looked up for whole grids.
"""
from __future__ import annotations

import functools
import threading

import numpy as np
from scipy.special import gammaln

from dse.model.lowdim import per_distinct, remembered

#: Stop propagating the touched-count chain once P(all experts touched) is this close to 1.
_SATURATED = 1.0 - 1e-15


def _log_comb(n, k):
    n, k = np.asarray(n, float), np.asarray(k, float)
    ok = (k >= 0) & (k <= n)
    out = gammaln(n + 1) - gammaln(np.where(ok, k, 0) + 1) - gammaln(np.where(ok, n - k, 0) + 1)
    return np.where(ok, out, -np.inf)


def _hypergeom_pmf(x, total, good, draws):
    """P(x good items among ``draws`` drawn without replacement from ``total`` of which ``good`` are good)."""
    with np.errstate(invalid="ignore"):
        lp = _log_comb(good, x) + _log_comb(total - good, draws - x) - _log_comb(total, draws)
    return np.where(np.isfinite(lp), np.exp(lp), 0.0)


def group_sizes(n_experts: int, ep: int) -> list[int]:
    """Experts per GPU when ``n_experts`` are spread as evenly as possible over ``ep`` GPUs."""
    q, r = divmod(int(n_experts), int(ep))
    return [q + 1] * r + [q] * (int(ep) - r)


@functools.lru_cache(maxsize=64)
def max_given_touched(n_experts: int, ep: int) -> np.ndarray:
    """``E[max over GPUs of touched experts | N touched]`` for N = 0..E (a uniformly random N-subset)."""
    E = int(n_experts)
    sizes = group_sizes(E, ep)
    N = np.arange(E + 1)
    expected = np.zeros(E + 1)
    # remaining experts before each group, and each group's count law given r items left (rows r, cols x)
    r = np.arange(E + 1)
    laws, remaining = [], E
    for s in sizes:
        x = np.arange(s + 1)
        laws.append(_hypergeom_pmf(x[None, :], remaining, s, r[:, None]))
        remaining -= s
    # P(max <= c | N) for each c; E[max | N] = sum_c (1 - P(max <= c | N)). With f[N, r] = P(the groups so far each
    # <= c, r items left | N touched), a group maps f to f @ M, M[r, r - x] = law[r, x] (x <= c): the last column of
    # the product over the groups, M_1 M_2 ... e_0, is found right to left, one vector per group
    for c in range(max(sizes)):
        v = np.zeros(E + 1)
        v[0] = 1.0
        for s, law in zip(sizes[::-1], laws[::-1]):
            w = np.zeros(E + 1)
            for x in range(min(c, s) + 1):
                w[x:] += law[x:, x] * v[: E + 1 - x]
            v = w
        expected += 1.0 - v
    expected[N == 0] = 0.0
    return expected


class _UniformChain:
    """Law of the number of distinct experts touched after b tokens (uniform top-k routing), b = 0, 1, ..."""

    def __init__(self, n_experts: int, top_k: int):
        E, k = int(n_experts), int(top_k)
        self.E = E
        n = np.arange(E + 1)
        x = np.arange(k + 1)
        self.step = _hypergeom_pmf(x[None, :], E, E - n[:, None], k)  # step[n, x]: x new experts from n touched
        self.transition = np.zeros((E + 1, E + 1))                     # [n + x, n] = step[n, x]: law' = T @ law
        for j in range(k + 1):
            self.transition[n[: E + 1 - j] + j, n[: E + 1 - j]] = self.step[: E + 1 - j, j]
        start = np.zeros(E + 1)
        start[0] = 1.0
        self.laws = [start]
        self.saturated = E == 0 or k == 0
        self.lock = threading.Lock()

    def law(self, b: int) -> np.ndarray:
        with self.lock:  # one chain is shared by the threads evaluating a grid's blocks
            return self._law(b)

    def laws_at(self, batches: np.ndarray) -> np.ndarray:
        """The laws after each of ``batches`` tokens, as rows (a batch past saturation gets the last law)."""
        with self.lock:
            self._law(int(batches.max()))
            last = len(self.laws) - 1
            return np.stack([self.laws[min(int(b), last)] for b in batches])

    def _law(self, b: int) -> np.ndarray:
        if self.saturated and b >= len(self.laws):
            return self.laws[-1]
        while len(self.laws) <= b:
            v = self.laws[-1]
            nxt = self.transition @ v
            self.laws.append(nxt)
            # saturated, or a fixed point (the law stops changing: every later law is this one, exactly)
            if nxt[-1] >= _SATURATED or np.array_equal(nxt, v):
                self.saturated = True
                return nxt
        return self.laws[b]


@functools.lru_cache(maxsize=256)
def _chain(n_experts: int, top_k: int) -> _UniformChain:
    return _UniformChain(n_experts, top_k)


def two_point(mean: float, n_max: int) -> np.ndarray:
    """The law on {floor(mean), floor(mean) + 1} with the given mean (a point mass when mean is an integer)."""
    law = np.zeros(n_max + 1)
    lo = min(int(np.floor(mean)), n_max)
    frac = mean - lo
    law[lo] = 1.0 - frac
    if frac > 0:
        law[lo + 1] = frac
    return law


def busiest_uniform(batch: int, top_k: int, n_experts: int, ep: int) -> float:
    """Expected touched experts on the busiest of ``ep`` GPUs, uniform top-k routing of ``batch`` tokens."""
    if n_experts <= 0 or top_k <= 0 or batch <= 0:
        return 0.0
    return float(_chain(n_experts, top_k).law(int(batch)) @ max_given_touched(n_experts, ep))


def busiest_from_probabilities(touch_probs, ep: int) -> float:
    """Expected busiest-GPU load when expert i is touched with probability ``touch_probs[i]`` (skewed routing)."""
    t = np.asarray(touch_probs, float)
    if t.size == 0:
        return 0.0
    return float(two_point(float(t.sum()), t.size) @ max_given_touched(t.size, ep))


def busiest(batch, top_k, n_experts, ep, touch_probs=None) -> np.ndarray:
    """Elementwise over broadcast arrays: the expected busiest-GPU load.

    ``touch_probs(b, k, e)`` (optional) returns the per-expert touch probabilities for skewed routing; without
    it routing is uniform. Each distinct (batch, top_k, n_experts, ep) is computed once.
    """
    if touch_probs is None:
        return _busiest_uniform_arrays(batch, top_k, n_experts, ep)

    def distinct(b, k, e, p):
        return (np.array([busiest_from_probabilities(touch_probs(int(round(bb)), int(round(kk)), int(round(ee))),
                                                     max(int(round(pp)), 1)) if ee > 0 else 0.0
                          for bb, kk, ee, pp in zip(b, k, e, p)]),)

    return per_distinct(distinct, batch, top_k, n_experts, ep)[0]


@remembered()
def _busiest_uniform_arrays(batch, top_k, n_experts, ep):
    return per_distinct(_busiest_uniform_distinct, batch, top_k, n_experts, ep)[0]


def _busiest_uniform_distinct(b, k, e, p):
    """:func:`busiest_uniform` on 1-D arrays of distinct combinations: per (top_k, experts, GPUs), the chain's laws
    of the batches asked, as one matrix product (the same numbers as one call per batch)."""
    b, k, e = (np.round(x).astype(np.int64) for x in (b, k, e))
    p = np.maximum(np.round(p).astype(np.int64), 1)
    out = np.zeros(len(b))
    for kk, ee, pp in {(int(x), int(y), int(z)) for x, y, z in zip(k, e, p)}:
        at = (k == kk) & (e == ee) & (p == pp) & (b > 0)
        if ee > 0 and kk > 0 and at.any():
            out[at] = _chain(ee, kk).laws_at(b[at]) @ max_given_touched(ee, pp)
    return (out,)


@remembered()
def expected_row_tiles(batch, top_k, n_experts, tile):
    """E[ceil(X / tile) | X >= 1] for the tokens X one touched expert receives, X ~ Binomial(batch, top_k / E).

    A routed expert's product has as many rows as tokens routed to it; the tiling traffic re-reads its weights
    once per row tile (docs/model.md), so the expectation of the ceiling, not the ceiling of the mean, is the
    expected traffic. Exact for uniform routing (tokens pick an expert independently with probability k/E);
    when the expected number of tiles exceeds ``_MANY_TILES`` the fractional part of X / tile is taken as
    uniform (E[ceil] = E[X] / tile + (tile - 1) / (2 tile)), which is accurate there.
    """
    return per_distinct(_expected_row_tiles, batch, top_k, n_experts, tile)[0]


def _expected_row_tiles(batch, top_k, n_experts, tile):
    """:func:`expected_row_tiles` on 1-D arrays of distinct combinations (elementwise: each element's series stops
    on its own terms)."""
    from scipy.special import bdtrc

    b = np.round(np.asarray(batch, float)).astype(np.int64)
    q = np.clip(np.asarray(top_k, float) / np.maximum(n_experts, 1), 0.0, 1.0)
    t = np.asarray(tile, float)
    mean = b * q
    p_touched = 1.0 - (1.0 - q) ** b
    many = mean / t > _MANY_TILES
    total = np.zeros(np.broadcast_shapes(b.shape, q.shape, t.shape))
    j = 0
    while True:
        edge = np.floor(j * t)
        term = np.where(many | (edge >= b), 0.0, bdtrc(edge, b, q))
        # terms fall with j: dropping each element's terms below the tolerance makes the sum independent of the
        # other elements of the block (any chunking of a grid gives identical numbers)
        term = np.where(term > _NEGLIGIBLE, term, 0.0)
        total = total + term
        j += 1
        if not np.any(term > 0.0) or j > _MANY_TILES * 2 + 64:
            break
    approx = p_touched * ((t - 1.0) / (2.0 * t)) + mean / t
    return (np.where(many, approx, total) / np.maximum(p_touched, 1e-300),)


_MANY_TILES = 256
_NEGLIGIBLE = 1e-17
