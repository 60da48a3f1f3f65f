"""How many distinct routed experts one decode step touches (docs/model.md s.3.1).

Every function here is elementwise over its array arguments: numpy arrays, xarray DataArrays (numpy- or
dask-backed) and dask arrays all work, because only ufuncs, arithmetic and Python loops over small integer
ranges are used.  Sums over experts or over per-GPU expert slots are unrolled Python loops, which keeps the
extra axis out of the caller's broadcasting.
"""
from __future__ import annotations

import numpy as np


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
