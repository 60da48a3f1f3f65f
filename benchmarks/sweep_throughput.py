"""Sweep throughput: grid points per second of the full kernel through dask (threaded), plain numpy and a per-point
Python loop, on one grid in one process, printed as ratios; then a 10^9-point sweep to Zarr through the CLI in a
child process: its wall time and peak RSS.

    python benchmarks/sweep_throughput.py                 # both parts
    python benchmarks/sweep_throughput.py --no-zarr       # throughput only
    python benchmarks/sweep_throughput.py --zarr-points 1e8

"Full kernel" = every output variable of every grid point evaluated and materialised (energy with its component
dimension, each variable at its own dimensions); each block's energy_per_token is summed as a checksum so the
three ways can be compared.
"""
from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dse.run import engine, layout, schedule, settings  # noqa: E402

# The design space: Flash pJ/bit x HBM pJ/bit x batch x top-k x experts x context x link bandwidth.
GRID = {
    "flash_read_pj_per_bit": {"start": 1.0, "stop": 200.0, "num": 64, "log": True},
    "hbm_read_pj_per_bit": [3.0, 4.2, 6.0, 10.0],
    "batch": {"start": 1, "stop": 1024, "num": 1024},
    "top_k": [1, 2, 4, 8],
    "n_experts": [64, 128, 256],
    "context_len": [1024, 8192, 32768],
    "link_bw_gbps": [64.0, 450.0, 900.0],
}
BASE = dict(model="deepseek-r1", system="8xh200-c2c", placement="ssd")


STACK_DIMS = ("component", "cost_part")


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def cores_available(threads: int) -> float:
    """A control for the machine, not dse: hashing in ``threads`` threads (hashlib releases the GIL) over one thread,
    best of three. About ``threads`` on an idle machine; near 1 when other processes hold the other cores."""
    import hashlib
    from concurrent.futures import ThreadPoolExecutor

    data = os.urandom(16 << 20)
    work = [data] * (2 * threads)
    with ThreadPoolExecutor(threads) as ex:
        one = _best(lambda: [hashlib.sha256(d).digest() for d in work], 3)
        many = _best(lambda: list(ex.map(lambda d: hashlib.sha256(d).digest(), work)), 3)
    return one / many


def memory_bandwidth(threads: int, mib: int = 64) -> tuple[float, float]:
    """A second control: numpy filling arrays of ``mib`` MiB each (beyond the caches: every byte goes to memory) on
    one thread and on ``threads`` (fill releases the GIL): (GiB/s on one, GiB/s on ``threads``), best of three.
    Work whose blocks write more than the caches hold cannot run faster on ``threads`` than this ratio."""
    from concurrent.futures import ThreadPoolExecutor

    arrays = [np.ones(mib << 17) for _ in range(threads)]
    fill = lambda a: [a.fill(1.0) for _ in range(8)]   # noqa: E731
    with ThreadPoolExecutor(threads) as ex:
        one = _best(lambda: fill(arrays[0]), 3)
        many = _best(lambda: list(ex.map(fill, arrays)), 3)
    return 8 * mib / 1024 / one, threads * 8 * mib / 1024 / many


def throughput(repeats: int, loop_points: int, chunk_mb: float, threads: int) -> None:
    t = time.perf_counter()
    grid = engine.resolve(**BASE, **GRID)
    n = grid.points
    chunking = grid.chunking(layout.choose_chunks(grid, chunk_mb))
    names = tuple(grid.variables)
    pieces = [layout.Piece(str(idx), box, names) for idx, box in grid.blocks(chunking)]
    grid.block(pieces[0].box)                    # the parts every block slices: computed once per grid
    once_s = time.perf_counter() - t
    print(f"grid: {n:,} points, {len(grid.dims)} dimensions {dict(grid.sizes)}; {len(pieces)} blocks "
          f"(target chunk {chunk_mb} MiB); resolve + parts once per grid {once_s:.2f} s "
          f"({grid.part_values:,} part values)")
    total = [0.0]
    lock = threading.Lock()

    def consume(piece, data):        # every variable of the block is evaluated; its energy per token summed
        with lock:
            total[0] += float(data["energy_per_token"].sum())

    def with_dask():
        total[0] = 0.0
        schedule.compute(grid, pieces, schedule.evaluate_piece, consume, progress=False, n_workers=threads)

    def one_thread():                # the same blocks and the same work, one after another on this thread
        for piece in pieces:
            consume(piece, schedule.evaluate_piece(grid, piece))

    dask_s, blocks_s = [], []
    for _ in range(repeats):         # interleaved, so both see the same machine load
        dask_s.append(_best(with_dask, 1))
        dask_sum = total[0]
        total[0] = 0.0
        blocks_s.append(_best(one_thread, 1))
    numpy_s = _best(lambda: grid.block(grid.box())["energy_per_token"].sum(), repeats)
    numpy_sum = float(grid.block(grid.box())["energy_per_token"].sum())

    rng = random.Random(0)
    picks = [tuple([rng.randrange(grid.sizes[d])] for d in grid.dims) for _ in range(loop_points)]
    t = time.perf_counter()
    loop_values = [float(grid.block(box)["energy_per_token"].ravel()[0]) for box in picks]
    loop_s = time.perf_counter() - t
    whole = grid.block(grid.box(), ["energy_per_token"])["energy_per_token"]
    reference = [float(whole[tuple(b[0] for b in box)]) for box in picks]

    rate_dask, rate_blocks = n / min(dask_s), n / min(blocks_s)
    rate_numpy, rate_loop = n / numpy_s, loop_points / loop_s
    print(f"dask threaded, {threads} threads:     {rate_dask:.3g} points/s  (best of {repeats}: {min(dask_s):.3f} s)")
    print(f"numpy block by block, 1 thread: {rate_blocks:.3g} points/s  (best of {repeats}: {min(blocks_s):.3f} s; "
          "the same blocks and work)")
    print(f"plain numpy, one call:          {rate_numpy:.3g} points/s  (best of {repeats}: {numpy_s:.3f} s; "
          "whole-grid arrays)")
    print(f"per-point Python loop:          {rate_loop:.3g} points/s  ({loop_points} random points, {loop_s:.2f} s)")
    tiny = tuple(slice(b.start, b.start + 1) for b in pieces[len(pieces) // 2].box)   # all overhead, no numpy work
    python_s = _best(lambda: [grid.block(tiny, list(names)) for _ in range(100)], repeats) / 100
    print(f"Python per block (a 1-point box, every variable): {python_s * 1e3:.2f} ms, of "
          f"{min(blocks_s) / len(pieces) * 1e3:.2f} ms per block")
    print(f"control: sha256 in {threads} threads / 1 thread = {cores_available(threads):.2f} (the cores this run had)")
    block = grid.block(pieces[0].box)
    written = sum(a.nbytes for a in block.values() if 0 not in a.strides) / 2**20
    one_gib_s, many_gib_s = memory_bandwidth(threads)
    print(f"memory: a block's variables take {written:.1f} MiB ({threads} blocks at once: {threads * written:.0f} MiB); "
          f"filling 64 MiB arrays: {one_gib_s:.1f} GiB/s on 1 thread, {many_gib_s:.1f} GiB/s on {threads} = "
          f"{many_gib_s / one_gib_s:.2f}x, the most {threads} threads can gain once blocks outgrow the caches")
    print(f"ratios: dask {threads} threads / numpy 1 thread = {rate_dask / rate_blocks:.2f}; "
          f"dask / one numpy call = {rate_dask / rate_numpy:.2f}; numpy / loop = {rate_numpy / rate_loop:.3g}")
    print(f"checksums agree: dask vs numpy rel. diff {abs(dask_sum / numpy_sum - 1):.1e}; "
          f"loop points equal the grid's (rtol 1e-12): {np.allclose(loop_values, reference, rtol=1e-12, atol=0)}; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


def small_grid(repeats: int, contexts: int = 5) -> None:
    """The acceptance check's grid (1,024 batches x 200 Flash energies x ``contexts`` contexts -- 5 in the check --,
    8 chunks of 128 batches): ``energy_per_token.sum().compute()`` on one and two threads, and where one compute's
    time goes -- building the sum's graph (xarray + dask), optimizing it, the tasks themselves (timed one by one on
    the synchronous scheduler) and the rest (dask's scheduling). Only the tasks can run in parallel, so two threads
    can at best take (build + optimize + rest + tasks / 2): the estimate printed (its parts are timed apart, best
    of several each, so it is rough: a run can beat it)."""
    import dask

    import dse

    lazy = dse.evaluate(model="deepseek-r1", system="8xh200-c2c", placement="ssd", batch=list(range(1, 1025)),
                        flash_read_pj_per_bit=list(np.linspace(1, 200, 200)),
                        context_len=np.geomspace(512, 8192, contexts).round().tolist(), chunks={"batch": 128})
    one = lambda n: lazy.energy_per_token.sum().compute(scheduler="threads", num_workers=n)   # noqa: E731
    one(1)                                     # the parts, once per grid
    t1, t2 = [], []
    for _ in range(repeats * 5):               # interleaved: both see the same machine load
        t1.append(_best(lambda: one(1), 1))
        t2.append(_best(lambda: one(2), 1))
    build = _best(lambda: lazy.energy_per_token.sum(), repeats * 5)
    summed = lazy.energy_per_token.sum().data
    optimize = _best(lambda: dask.optimize(summed), repeats * 5)
    tasks, n_tasks = _task_seconds(summed, repeats * 5)
    serial = build + optimize + max(0.0, min(t1) - build - optimize - tasks)
    print(f"\ncheck grid with {contexts} contexts, energy_per_token.sum().compute(), best of {len(t1)}: 1 thread "
          f"{min(t1) * 1e3:.1f} ms, 2 threads {min(t2) * 1e3:.1f} ms = {min(t1) / min(t2):.2f}x")
    print(f"  one compute: graph build {build * 1e3:.1f} ms + optimize {optimize * 1e3:.1f} ms + scheduling "
          f"{(serial - build - optimize) * 1e3:.1f} ms (serial) + {n_tasks} tasks {tasks * 1e3:.1f} ms; "
          f"two threads at best about {(serial + tasks) / (serial + tasks / 2):.2f}x (Amdahl, from these parts)")
    import dask.array as da
    import xarray as xr

    plain = xr.DataArray(da.from_array(np.random.default_rng(0).random(lazy.energy_per_token.shape),
                                       chunks=lazy.energy_per_token.chunks).map_blocks(_seven_passes, dtype=float),
                         dims=lazy.energy_per_token.dims)
    p1 = _best(lambda: plain.sum().compute(scheduler="threads", num_workers=1), repeats * 5)
    p2 = _best(lambda: plain.sum().compute(scheduler="threads", num_workers=2), repeats * 5)
    print(f"  baseline without dse, the same sum over plain numpy chunks of this shape (seven numpy passes each): "
          f"1 thread {p1 * 1e3:.1f} ms, 2 threads {p2 * 1e3:.1f} ms = {p1 / p2:.2f}x")


def _seven_passes(block: np.ndarray) -> np.ndarray:
    return ((block + 1.0) * 2.0 + block) / 3.0 + block * block - block


def _task_seconds(array, repeats: int) -> tuple[float, int]:
    """The summed run time of a dask array's tasks on the synchronous scheduler (best of ``repeats``), and their
    number."""
    from dask.callbacks import Callback

    spans = {}

    class _Timer(Callback):
        def _pretask(self, key, dsk, state):
            spans[key] = time.perf_counter()

        def _posttask(self, key, result, dsk, state, worker_id):
            spans[key] = time.perf_counter() - spans[key]

    def once():
        spans.clear()
        with _Timer():
            array.compute(scheduler="sync")
        return sum(spans.values())

    return min(once() for _ in range(repeats)), len(spans)


def grid_points(ds) -> int:
    """Points of the swept grid: the product of the grid's dimensions. ``component`` and ``cost_part`` label the
    parts of a stacked variable (energy by component, capacity cost by part); they are not grid dimensions."""
    return math.prod(n for d, n in ds.sizes.items() if d not in STACK_DIMS)


def zarr_sweep(points: float, chunk_mb: float | None, keep: bool, variables: str, compressor: str = "zstd",
               quiet: bool = False) -> tuple[float, float, float]:
    """A sweep of about ``points`` points through the CLI in a child process: (real grid points/s, peak RSS bytes,
    bytes on disk)."""
    num_batch = max(1, round(points / 500_000))     # the other dimensions give 5 x 10^5 points
    overrides = [
        "model=deepseek-r1", "system=8xh200-c2c", "workload.placement=ssd",
        "+grid.flash_read_pj_per_bit={start:1.0,stop:200.0,num:100,log:true}",
        "+grid.hbm_read_pj_per_bit=[3.0,4.2,6.0,10.0,14.0]", f"+grid.batch={{start:1,stop:{num_batch},num:{num_batch}}}",
        "+grid.top_k=[1,2,4,8,16]", "+grid.n_experts=[32,64,128,256]", "+grid.context_len=[1024,4096,16384,65536,131072]",
        "+grid.link_bw_gbps=[32.0,64.0,128.0,256.0,450.0,900.0,1800.0,3600.0,7200.0,14400.0]",
        "output.format=zarr", f"output.compressor={compressor}",
    ] + ([f"dask.chunk_mb={chunk_mb}"] if chunk_mb else [])    # None: dse's default (dse.run.layout.auto_chunk_mb)
    if variables:
        overrides.append(f"output.variables=[{variables}]")
    out = Path(tempfile.mkdtemp(prefix="dse-bench-", dir=os.environ.get("DSE_BENCH_DIR")))
    cmd = [sys.executable, "-m", "dse", *overrides, f"hydra.run.dir={out}", "progress=false"]
    if not quiet:
        print("\n" + " ".join(cmd[1:]))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    t = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, cwd=ROOT)
    rss = 0
    while child.poll() is None:     # the child's own peak (VmHWM), read until it exits
        try:
            status = Path(f"/proc/{child.pid}/status").read_text()
            rss = max(rss, int(status.split("VmHWM:")[1].split()[0]) * 1024)
        except (OSError, IndexError):
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - t
    if child.returncode:
        raise SystemExit(f"the sweep failed ({child.returncode})")
    import xarray as xr

    ds = xr.open_zarr(out / "result.zarr", consolidated=False)
    npts = grid_points(ds)
    on_disk = sum(f.stat().st_size for f in (out / "result.zarr").rglob("*") if f.is_file())
    if not quiet:
        print(f"{npts:,} points to Zarr ({', '.join(ds.data_vars)}): wall {wall:.1f} s ({npts / wall:.3g} real grid "
              f"points/s; target >= 5e7), peak RSS {rss / 2**30:.2f} GiB (target < 1), {on_disk / 1e9:.2f} GB on disk; "
              f"load average {os.getloadavg()[0]:.2f}")
    if keep:
        print(f"kept {out}")
    else:
        shutil.rmtree(out)
    return npts / wall, rss, on_disk


def codec_speeds(repeats: int = 3) -> None:
    """Compression ratio and one core's speed of the codecs behind ``output.compressor`` on real result blocks
    (three 2 MiB chunks of energy_per_token from the 10^8-point sweep's grid)."""
    import numcodecs

    grid = engine.resolve(**BASE, flash_read_pj_per_bit=np.geomspace(1, 200, 100).tolist(),
                          hbm_read_pj_per_bit=[3.0, 4.2, 6.0, 10.0, 14.0], batch=list(range(1, 201)),
                          top_k=[1, 2, 4, 8, 16], n_experts=[32, 64, 128, 256],
                          context_len=[1024, 4096, 16384, 65536, 131072],
                          link_bw_gbps=[32.0, 64.0, 128.0, 256.0, 450.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0])
    pieces = layout.Layout(grid, ["energy_per_token"], 2.0).pieces()
    blocks = [schedule.evaluate_piece(grid, pieces[i]) for i in (len(pieces) // 3, len(pieces) // 2, -1)]
    arrays = [np.ascontiguousarray(a) for b in blocks for a in b.values()]
    raw = sum(a.nbytes for a in arrays)
    numcodecs.blosc.set_nthreads(1)
    codecs = {"zstd level 1": numcodecs.Zstd(level=1), "zstd level -3 (dse's zstd)": numcodecs.Zstd(level=-3),
              "blosc lz4, no shuffle": numcodecs.Blosc("lz4", 1, numcodecs.Blosc.NOSHUFFLE)}
    print(f"\ncodecs on {len(arrays)} result chunks ({raw / 2**20:.0f} MiB), one core:")
    for name, codec in codecs.items():
        t = time.process_time()
        for _ in range(repeats):
            size = sum(len(codec.encode(a)) for a in arrays)
        print(f"  {name:34s} {raw / size:5.2f}x smaller, {raw * repeats / (time.process_time() - t) / 1e9:.2f} GB/s")


def zarr_choices(points: float, variables: str) -> None:
    """The compressor and chunk-size choices, each a whole CLI sweep of ``points`` points (wall time includes
    the process start, the same for all)."""
    codec_speeds()
    print(f"\nZarr choices, {points:.0e} points each (compressor, chunk MiB: points/s, peak RSS, on disk):")
    for compressor in ("zstd", "none"):
        for chunk_mb in (2.0, 8.0, 16.0):
            rate, rss, disk = zarr_sweep(points, chunk_mb, False, variables, compressor, quiet=True)
            print(f"  {compressor:5s} {chunk_mb:4.0f}: {rate:.3g} points/s, {rss / 2**30:.2f} GiB, {disk / 1e9:.2f} GB")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--loop-points", type=int, default=300)
    ap.add_argument("--chunk-mb", type=float, default=2.0,
                    help="block size of the throughput part (2 MiB: every variable of a block, energy's 11 components "
                         "included, stays under glibc's 32 MiB mmap ceiling; sweeps choose theirs for Zarr's sake: "
                         "dse.run.layout.auto_chunk_mb)")
    ap.add_argument("--zarr-chunk-mb", type=float, default=settings.defaults()["dask"]["chunk_mb"],
                    help="chunk MiB of the 10^9-point sweep (default: dse's own choice)")
    ap.add_argument("--zarr-points", type=float, default=1e9)
    ap.add_argument("--zarr-variables", default="energy_per_token,step_latency,offload_read_bits,experts_touched",
                    help="comma-separated variables the Zarr sweep writes ('' = all: ~88 bytes per point)")
    ap.add_argument("--threads", type=int, default=2, help="dask threads (the ratio's numerator)")
    ap.add_argument("--no-zarr", action="store_true")
    ap.add_argument("--no-small", action="store_true", help="skip the acceptance check's small grid")
    ap.add_argument("--choices-points", type=float, default=1e8, help="points of each compressor / chunk trial "
                    "(0: skip the trials)")
    ap.add_argument("--keep", action="store_true", help="keep the Zarr output")
    a = ap.parse_args()
    throughput(a.repeats, a.loop_points, a.chunk_mb, a.threads)
    if not a.no_small:
        small_grid(a.repeats)
        small_grid(a.repeats, contexts=50)   # ten times the work per chunk, the same graph
    if not a.no_zarr:
        if a.choices_points:
            zarr_choices(a.choices_points, a.zarr_variables)
        zarr_sweep(a.zarr_points, a.zarr_chunk_mb, a.keep, a.zarr_variables)
