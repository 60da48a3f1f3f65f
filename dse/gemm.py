"""One matrix product on one GPU: roofline time and the bytes it moves through HBM, L2 and L1.

docs/model.md, "One cost model per operation". A product C[m, n] = A[m, k] B[k, n] (A the activations, B the
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

#: L1 tile edge candidates and the L1 k-slice of the authors' tool (tile.h, getOptimalTiles).
L1_TILE_CANDIDATES = (8, 16, 32, 64, 128, 192, 256, 320, 384, 448, 512)
L1_TILE_K = 32
#: The L2 k-slice is k / L2_K_SPLIT (tile.h, getOptimalTiles).
L2_K_SPLIT = 64


def _traffic(m, n, k, tm, tn, pa, pw):
    """Bytes through a level whose tiles below are tm x tn (A, C in pa bytes per value, B in pw)."""
    return np.ceil(m / tm) * k * n * pw + np.ceil(n / tn) * m * k * pa + m * n * pa


@functools.lru_cache(maxsize=65536)
def _tiles(m: float, n: float, k: float, pa: float, pw: float, l1_bytes: float, l2_bytes: float):
    """(tm1, tn1, tm2, tn2): the L1- and L2-resident tiles minimising traffic that fit their caches."""
    if min(m, n, k) <= 0:
        return 1.0, 1.0, 1.0, 1.0
    best, tm1, tn1 = math.inf, L1_TILE_CANDIDATES[0], L1_TILE_CANDIDATES[0]
    for tm in L1_TILE_CANDIDATES:
        tme = min(m, tm)
        for tn in L1_TILE_CANDIDATES:
            tne = min(n, tn)
            if tme * L1_TILE_K * pa + tne * L1_TILE_K * pw + tme * tne * pa > l1_bytes:
                continue
            cost = _traffic(m, n, k, tme, tne, pa, pw)
            if cost < best:
                best, tm1, tn1 = cost, tme, tne
    # L2 tiles: multiples of the L1 tile (or the whole dimension). For a given tm2 the traffic falls with tn2,
    # so only the largest tn2 that fits needs trying.
    tk2 = max(1.0, float(int(k / L2_K_SPLIT)))
    tm_options = sorted({min(m, tm1 * i) for i in range(1, max(1, int(m / tm1)) + 1)} | {m})
    best2, tm2, tn2 = _traffic(m, n, k, tm1, tn1, pa, pw), tm1, tn1
    for tm in tm_options:
        room = (l2_bytes - tm * tk2 * pa) / (tk2 * pw + tm * pa)    # largest tn that fits with this tm
        if room >= n:
            tn = n
        else:
            tn = math.floor(room / tn1) * tn1
            if tn < tn1:
                continue
        cost = _traffic(m, n, k, tm, tn, pa, pw)
        if cost < best2:
            best2, tm2, tn2 = cost, tm, tn
    return tm1, tn1, tm2, tn2


def _tile_arrays(m, n, k, pa, pw, l1_bytes, l2_bytes):
    """The tiles elementwise over broadcast arrays (each distinct shape searched once)."""
    arrays = np.broadcast_arrays(*(np.asarray(a, float) for a in (m, n, k, pa, pw, l1_bytes, l2_bytes)))
    shape = arrays[0].shape
    flat = np.stack([a.ravel() for a in arrays], axis=1)
    keys, inverse = np.unique(flat, axis=0, return_inverse=True)
    tiles = np.array([_tiles(*map(float, key)) for key in keys]).reshape(len(keys), 4)
    tiles = np.maximum(tiles, 1.0)  # empty products (m, n or k = 0) move nothing whatever the tile
    return tuple(tiles[inverse.ravel(), i].reshape(shape) for i in range(4))


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

    def __init__(self, m, k, n, *, count, pa, pw, g, a_in=1.0, c_out=1.0, register_row_tiles=None):
        l1, l2, reg = g.l1_kib * 1024.0, g.l2_mib * 1024.0 * 1024.0, g.register_tile
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

    def time(self, peak_flops, bw):
        return np.maximum(self.flops / peak_flops, (self.b_bytes + self.a_bytes) / bw)


class Softmax:
    """The softmax over ``scores`` attention scores on one GPU: FLOPs, and (unfused) a read and a write of the
    scores in the roofline time. The authors' tool charges it time only, no HBM energy (attention_gen_impl.cpp);
    so do we: its HBM traffic is the score product's output and the context product's input."""

    def __init__(self, scores, *, pa, fused):
        self.flops = SOFTMAX_FLOPS * scores
        self.a_bytes = 2.0 * scores * pa * (1 - fused)
        self.b_bytes = self.hbm_b_bytes = self.hbm_a_read = self.hbm_a_write = self.l2_bytes = self.l1_bytes = 0.0

    def time(self, peak_flops, bw):
        return np.maximum(self.flops / peak_flops, self.a_bytes / bw)


#: FLOPs per score of the softmax, as the authors' tool counts them (attention_gen_impl.cpp).
SOFTMAX_FLOPS = 7.0
