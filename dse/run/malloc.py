"""Keep freed block-sized arrays in the process for reuse (glibc malloc tuning for chunked evaluation).

A chunked evaluation allocates and frees the same few block-sized arrays (about 1 MiB each) for every block. By
default glibc serves allocations above its mmap threshold (128 KiB, adapted at run time) with fresh ``mmap`` pages
and returns them on ``free``: every block then page-faults its arrays in again, and page faults of two threads
serialise on the kernel's memory-map lock. Measured on the 2-core development machine: a block's combine step
(sum of nine energy components, divide by the batch) took 2.2 ms with fresh pages and 1.0 ms with reused memory
(benchmarks/sweep_throughput.py prints the effect on a whole sweep).

:func:`reuse_freed_memory` raises the mmap threshold to 32 MiB and the trim threshold to 1 GiB (``mallopt``), so
freed blocks stay in malloc's arenas and are reused, and keeps every thread on the main arena (``M_ARENA_MAX`` 1):
a worker thread's own arena grows in heaps of at most 64 MiB, which blocks of tens of MiB overflow, so its heaps
were mapped and unmapped block after block (dask on two threads: 6.5e7 points/s before, 7.9e7-8.9e7 after, in
separate runs of benchmarks/sweep_throughput.py on two free cores). The few large allocations per
block make the shared arena's lock cheap. It is process-wide, done once (when a grid is made, before its worker
threads allocate), only under glibc; set ``DSE_MALLOC_TUNING=0`` to leave malloc as it is.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
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
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_B)) and bool(libc.mallopt(M_ARENA_MAX, 1))
    except (OSError, AttributeError):   # not glibc (macOS, musl, Windows): nothing to tune
        return False
    if ok:
        _done.set()
        log.debug("malloc: freed arrays below %d MiB are kept for reuse", MMAP_THRESHOLD_B >> 20)
    return ok
