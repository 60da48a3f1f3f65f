"""Functions of a few low-dimensional grid inputs: evaluated once per distinct value, remembered by content.

Some terms of the kernel (tile choices of a matrix product, the busiest-GPU expectation, expected row tiles)
depend only on a handful of integers -- a batch size, a model's widths, an expert count -- that vary along one or
two short grid dimensions. :func:`per_distinct` evaluates such a term once per distinct combination of its inputs
and scatters the results back over the broadcast shape; :func:`remembered` caches a whole call by the content of
its array arguments, so the blocks of a chunked grid that share those inputs compute them once.
"""
from __future__ import annotations

import functools
import threading
from collections import OrderedDict

import numpy as np


def per_distinct(fn, *arrays):
    """``fn(*columns)`` on the distinct rows of the broadcast ``arrays`` -> tuple of arrays of the broadcast shape.

    ``fn`` receives one 1-D array per input (the distinct combinations) and returns a tuple of 1-D arrays.
    """
    arrays = [np.asarray(a, float) for a in arrays]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    # one integer code per combination: each input's distinct values coded on its own (small) shape, then mixed
    # radix -- sorting integers, not rows of floats, when a grid-sized input (a per-point batch) is among them
    code, radix = np.zeros((1,) * len(shape), np.int64), 1
    for a in arrays:
        values, inverse = np.unique(a, return_inverse=True)
        if radix * len(values) >= 2 ** 62:
            return _per_distinct_rows(fn, arrays, shape)
        code = code + inverse.reshape(a.shape).astype(np.int64) * radix
        radix *= len(values)
    _, first, inverse = np.unique(np.broadcast_to(code, shape).ravel(), return_index=True, return_inverse=True)
    outs = fn(*(np.broadcast_to(a, shape).ravel()[first] for a in arrays))
    return tuple(np.asarray(o)[inverse.ravel()].reshape(shape) for o in outs)


def _per_distinct_rows(fn, arrays, shape):
    """:func:`per_distinct` by sorting rows of values (when the combinations overflow an integer code)."""
    flat = np.stack([np.broadcast_to(x, shape).ravel() for x in arrays], axis=1)
    keys, inverse = np.unique(flat, axis=0, return_inverse=True)
    outs = fn(*keys.T)
    return tuple(np.asarray(o)[inverse.ravel()].reshape(shape) for o in outs)


def remembered(maxsize: int = 4096):
    """Cache a function of numbers and numpy arrays by their content (thread-safe; results are read-only)."""

    def decorate(fn):
        cache: OrderedDict = OrderedDict()
        lock = threading.Lock()

        @functools.wraps(fn)
        def wrapper(*args):
            key = tuple((np.shape(a), np.asarray(a, float).tobytes()) for a in args)
            with lock:
                if key in cache:
                    cache.move_to_end(key)
                    return cache[key]
            out = fn(*args)
            for o in out if isinstance(out, tuple) else (out,):
                if isinstance(o, np.ndarray):
                    o.setflags(write=False)
            with lock:
                cache[key] = out
                if len(cache) > maxsize:
                    cache.popitem(last=False)
            return out

        wrapper.cache_clear = cache.clear
        return wrapper

    return decorate
