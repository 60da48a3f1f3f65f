"""One matrix product on one GPU: roofline time and the bytes it moves through HBM, L2 and L1.

docs/model.md s.3.2. A product C[m, n] = A[m, k] B[k, n] (A the activations, B the
weights or the KV cache) is computed tile by tile. Through a memory level whose tiles one level down are
``t_m x t_n``, it moves

    traffic = ceil(m / t_m) * k * n  (B re-read once per row tile)
            + ceil(n / t_n) * m * k  (A re-read once per column tile)
            + m * n                  (C written once)

values. L1 traffic uses the register tile (16 x 16 on the paper's GPUs); L2 traffic uses the L1-resident tile
and HBM traffic the L2-resident tile, each the tile that minimises the traffic among those that fit the cache
(the paper authors' tool, LLMSimulator + SSD-offloading patch, ``src/hardware/tile.h``, ``getOptimalTiles`` and
``computeCacheTraffic``: L1 tiles from a fixed candidate list with a k-slice of 32, L2 tiles multiples of the L1
tile with a k-slice of k/64). At decode sizes the HBM term is "weights once, inputs once, outputs once"; the L1
term grows as ceil(m/16) times the weights, which dominates on-chip energy at large batch.

Time is the roofline of the operation alone: ``max(2 m k n / peak, (m k + k n + m n) bytes / bandwidth)``
(``src/hardware/linear_impl.cpp``, ``LinearExecutionGPU``).

Tile choices depend only on (m, n, k) and the cache sizes, so they are found once per distinct shape and cached;
everything else is numpy arithmetic that broadcasts over open grids.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from dse.model.lowdim import per_distinct, remembered

#: L1 tile edge candidates and the L1 k-slice of the authors' tool (tile.h, getOptimalTiles).
L1_TILE_CANDIDATES = (8, 16, 32, 64, 128, 192, 256, 320, 384, 448, 512)
L1_TILE_K = 32
#: The L2 k-slice is k / L2_K_SPLIT (tile.h, getOptimalTiles).
L2_K_SPLIT = 64


def _traffic(m, n, k, tm, tn, pa, pw):
    """Bytes through a level whose tiles below are tm x tn (A, C in pa bytes per value, B in pw)."""
    return np.ceil(m / tm) * k * n * pw + np.ceil(n / tn) * m * k * pa + m * n * pa


def _l1_tiles(m, n, k, pa, pw, l1_bytes):
    """The L1-resident tile (tm1, tn1) minimising L2 traffic, elementwise over 1-D arrays.

    For each row edge tm (ascending, as the tool's loop) the best column edge is the largest candidate that fits,
    since traffic never grows with tn; among column edges with the same traffic the tool keeps the first (smallest)
    one, which we pick too (it sets the multiples the L2 tile may take).
    """
    cands = np.asarray(L1_TILE_CANDIDATES, float)
    best = np.full(np.shape(m), np.inf)
    tm1, tn1 = np.ones_like(best), np.ones_like(best)
    for tm in cands:
        tme = np.minimum(m, tm)
        room = (l1_bytes - tme * L1_TILE_K * pa) / (L1_TILE_K * pw + tme * pa)   # widest column tile that fits
        i = np.searchsorted(cands, room, side="right") - 1
        fits = i >= 0
        widest = np.minimum(n, cands[np.maximum(i, 0)])
        tiles = np.ceil(n / widest)
        tne = np.minimum(n, cands[np.minimum(np.searchsorted(cands, n / tiles, side="left"), len(cands) - 1)])
        cost = _traffic(m, n, k, tme, tne, pa, pw)
        better = fits & (cost < best)
        best = np.where(better, cost, best)
        tm1, tn1 = np.where(better, tme, tm1), np.where(better, tne, tn1)
    return tm1, tn1


@functools.lru_cache(maxsize=65536)
def _l2_tiles_searched(m, n, k, pa, pw, l2_bytes, tm1, tn1):
    """The L2-resident tile when the whole product does not fit L2: multiples of the L1 tile (or the whole
    dimension); for a given tm2 the traffic falls with tn2, so only the largest tn2 that fits is tried."""
    tk2 = max(1.0, float(int(k / L2_K_SPLIT)))
    if int(m / tm1) > _MANY_OPTIONS:  # a prefill's many rows: the same search, vectorized over the row edges
        return _l2_tiles_vectorized(m, n, k, pa, pw, l2_bytes, tm1, tn1, tk2)
    tm_options = sorted({min(m, tm1 * i) for i in range(1, max(1, int(m / tm1)) + 1)} | {m})
    best, tm2, tn2 = float(_traffic(m, n, k, tm1, tn1, pa, pw)), tm1, tn1
    for tm in tm_options:
        room = (l2_bytes - tm * tk2 * pa) / (tk2 * pw + tm * pa)
        if room >= n:
            tn = n
        else:
            tn = math.floor(room / tn1) * tn1
            if tn < tn1:
                continue
        cost = float(_traffic(m, n, k, tm, tn, pa, pw))
        if cost < best:
            best, tm2, tn2 = cost, tm, tn
    return tm2, tn2


#: Above this many candidate row edges the L2 search runs vectorized (identical result: the first minimum).
_MANY_OPTIONS = 64


def _l2_tiles_vectorized(m, n, k, pa, pw, l2_bytes, tm1, tn1, tk2):
    """:func:`_l2_tiles_searched` over all row edges at once: the first (smallest) row edge of least traffic, kept
    only where it is strictly below the L1 tile's traffic -- what the loop's strict improvements pick."""
    # a row edge fits only while the widest column tile it leaves room for is at least min(n, tn1) wide; that room
    # falls with the row edge, so edges past this bound are never taken (the search below still checks each)
    r = min(n, tn1)
    bound = (l2_bytes - r * tk2 * pw) / (tk2 * pa + r * pa)
    count = max(1, min(int(m / tm1), int(max(bound, 0.0) / tm1) + 2))
    tm = np.unique(np.append(np.minimum(m, tm1 * np.arange(1, count + 1, dtype=float)), m))
    room = (l2_bytes - tm * tk2 * pa) / (tk2 * pw + tm * pa)
    tn = np.where(room >= n, n, np.floor(room / tn1) * tn1)
    ok = (room >= n) | (tn >= tn1)
    cost = np.where(ok, _traffic(m, n, k, tm, np.where(ok, tn, 1.0), pa, pw), np.inf)
    best = float(_traffic(m, n, k, tm1, tn1, pa, pw))
    i = int(np.argmin(cost))
    if cost[i] < best:
        return float(tm[i]), float(tn[i])
    return tm1, tn1


def _tile_search(m, n, k, pa, pw, l1_bytes, l2_bytes):
    """(tm1, tn1, tm2, tn2) for 1-D arrays of distinct product shapes (empty products: tiles of 1)."""
    empty = (m <= 0) | (n <= 0) | (k <= 0)
    m, n, k = (np.where(empty, 1.0, x) for x in (m, n, k))
    tm1, tn1 = _l1_tiles(m, n, k, pa, pw, l1_bytes)
    # the whole product in L2 moves each operand once: the least possible traffic, so the best tile where it fits
    tk2 = np.maximum(1.0, np.floor(k / L2_K_SPLIT))
    whole = m * tk2 * pa + n * tk2 * pw + m * n * pa <= l2_bytes
    tm2, tn2 = m.copy(), n.copy()
    for i in np.flatnonzero(~whole):
        tm2[i], tn2[i] = _l2_tiles_searched(*(float(x[i]) for x in (m, n, k, pa, pw, l2_bytes, tm1, tn1)))
    return tuple(np.where(empty, 1.0, t) for t in (tm1, tn1, tm2, tn2))


@remembered()
def _tile_arrays(m, n, k, pa, pw, l1_bytes, l2_bytes):
    """The tiles elementwise over broadcast arrays (each distinct shape searched once)."""
    return per_distinct(_tile_search, m, n, k, pa, pw, l1_bytes, l2_bytes)


class Gemm:
    """``count`` products C[m, n] = A[m, k] B[k, n] on one GPU (A, C activations; B weights or KV cache).

    Attributes (per GPU, all ``count`` products together): ``flops``; ``b_bytes`` / ``a_bytes`` the B-operand and
    activation bytes the roofline charges (each operand once); ``hbm_b_bytes`` the tiled HBM traffic of the B
    operand, ``hbm_a_read`` / ``hbm_a_write`` of the activations (A with its re-reads; C); ``l2_bytes``,
    ``l1_bytes``. ``a_in`` / ``c_out`` (0 or 1) say whether A comes from / C goes to HBM (0 when a fused kernel
    keeps it on chip). ``register_row_tiles`` (optional) replaces ceil(m / register tile) by its expectation when
    m is a random token count (routed experts): the register tile is fixed, so the ceiling of a random m matters,
    while the cache tiles are chosen for the m at hand (their re-reads are taken at the mean m).
    """

    def __init__(self, m, k, n, *, count, pa, pw, g, a_in=1.0, c_out=1.0, register_row_tiles=None, traffic=True):
        l1, l2, reg = g.l1_kib * 1024.0, g.l2_mib * 1024.0 * 1024.0, g.register_tile
        if not traffic:  # the roofline only (dse.model.requests's batch search): no tiles, no cache traffic
            present = (k * n > 0) * 1.0
            self.flops = 2.0 * m * k * n * count
            self.b_bytes = k * n * pw * count
            self.a_bytes = (m * k * a_in * present + m * n * c_out * present) * pa * count
            self.hbm_b_bytes = self.hbm_a_read = self.hbm_a_write = self.l2_bytes = self.l1_bytes = 0.0
            return
        tm1, tn1, tm2, tn2 = _tile_arrays(m, n, k, pa, pw, l1, l2)
        reg_rows = np.ceil(m / reg) if register_row_tiles is None else register_row_tiles
        weights = k * n * pw
        present = (k * n > 0) * 1.0                 # an empty product (no shared expert, ...) moves nothing
        a_values, c_values = m * k * a_in * present, m * n * c_out * present
        self.flops = 2.0 * m * k * n * count
        self.b_bytes = weights * count
        self.a_bytes = (a_values + c_values) * pa * count
        self.hbm_b_bytes = np.ceil(m / tm2) * weights * count
        self.hbm_a_read = np.ceil(n / tn2) * a_values * pa * count
        self.hbm_a_write = c_values * pa * count
        self.l2_bytes = (np.ceil(m / tm1) * weights + (np.ceil(n / tn1) * m * k + m * n) * pa * present) * count
        self.l1_bytes = (reg_rows * weights + (np.ceil(n / reg) * m * k + m * n) * pa * present) * count


class Softmax:
    """The softmax over ``scores`` attention scores on one GPU: FLOPs, and (unfused) a read and a write of the
    scores in the roofline time. The authors' tool charges it time only, no HBM energy (attention_gen_impl.cpp);
    so do we: its HBM traffic is the score product's output and the context product's input."""

    def __init__(self, scores, *, pa, fused):
        self.flops = SOFTMAX_FLOPS * scores
        self.a_bytes = 2.0 * scores * pa * (1 - fused)
        self.b_bytes = self.hbm_b_bytes = self.hbm_a_read = self.hbm_a_write = self.l2_bytes = self.l1_bytes = 0.0


#: FLOPs per score of the softmax, as the authors' tool counts them (attention_gen_impl.cpp).
SOFTMAX_FLOPS = 7.0
