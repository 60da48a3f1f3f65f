"""Keep freed block-sized arrays in the process for reuse (glibc malloc tuning for chunked evaluation).

A chunked evaluation allocates and frees the same few block-sized arrays (about 1 MiB each) for every block. By
default glibc serves allocations above its mmap threshold (128 KiB, adapted at run time) with fresh ``mmap`` pages
and returns them on ``free``: every block then page-faults its arrays in again, and page faults of two threads
serialise on the kernel's memory-map lock. Measured on the 2-core development machine: a block's combine step
(sum of nine energy components, divide by the batch) took 2.2 ms with fresh pages and 1.0 ms with reused memory
(benchmarks/sweep_throughput.py prints the effect on a whole sweep).

:func:`reuse_freed_memory` raises the mmap threshold to 32 MiB and the trim threshold to 1 GiB (``mallopt``), so
freed blocks stay in malloc's arenas and are reused. It is process-wide, done once, only under glibc; set
``DSE_MALLOC_TUNING=0`` to leave malloc as it is.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_B = 32 * 2**20    # glibc's largest (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD_B = 2**30

_done = threading.Event()
log = logging.getLogger("dse")


def reuse_freed_memory() -> bool:
    """Tune glibc malloc once (see the module docstring); True when the process's malloc is tuned."""
    if _done.is_set():
        return True
    if os.environ.get("DSE_MALLOC_TUNING", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_B)) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_B))
    except (OSError, AttributeError):   # not glibc (macOS, musl, Windows): nothing to tune
        return False
    if ok:
        _done.set()
        log.debug("malloc: freed arrays below %d MiB are kept for reuse", MMAP_THRESHOLD_B >> 20)
    return ok
