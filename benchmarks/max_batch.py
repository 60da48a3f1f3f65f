"""dse.max_batch throughput: the largest batch meeting TPOT / TTFT targets on >= 10^5 grid points at once (every
point its own integer bisection over batch), against a per-point loop (dse.max_batch on one point at a time, as a
simulator plus batch search would do), measured in the same run on a random sample of the same points and
extrapolated to the whole grid; the sampled points' answers are checked equal to the grid's.

    python benchmarks/max_batch.py                 # 10^5 points
    python benchmarks/max_batch.py --loop-points 10
"""
from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dse  # noqa: E402

# placement x offload link x HBM bandwidth x peak FLOP rate x prompt x output: 4 x 25 x 10 x 10 x 5 x 2 = 10^5
GRID = {
    "placement": ["hbm", "ddr", "ssd", "hbf"],
    "link_bw_gbps": {"start": 32.0, "stop": 900.0, "num": 25, "log": True},
    "hbm_bw_gbps": {"start": 2000.0, "stop": 8000.0, "num": 10},
    "peak_tflops": {"start": 400.0, "stop": 2500.0, "num": 10},
    "prompt_len": [512, 1024, 1660, 4096, 5900],
    "output_len": [373, 499],
}
BASE = dict(model="mixtral-8x7b", system="8xh200-c2c", tpot_slo_s=0.05, ttft_slo_s=2.0, batch_max=4096)


def main(loop_points: int) -> None:
    t = time.perf_counter()
    mb = dse.max_batch(**BASE, **GRID)
    grid_s = time.perf_counter() - t
    n = math.prod(mb.sizes.values())
    counts = {k: int((mb.limited_by == k).sum()) for k in ("tpot", "ttft", "memory", "batch_max")}
    print(f"dse.max_batch: {n:,} grid points {dict(mb.sizes)} in {grid_s:.1f} s "
          f"({n / grid_s:,.0f} points/s); limited by {counts}")

    rng = random.Random(0)
    values = {k: mb[k].values for k in GRID}
    sample = [{k: rng.randrange(len(v)) for k, v in values.items()} for _ in range(loop_points)]
    t = time.perf_counter()
    for idx in sample:
        one = dse.max_batch(**BASE, **{k: values[k][i].item() for k, i in idx.items()})
        assert int(one.max_batch) == int(mb.max_batch.isel(idx)), idx
    loop_s = (time.perf_counter() - t) / loop_points
    print(f"per-point loop: {loop_s * 1e3:.0f} ms per point over {loop_points} sampled points (answers equal) -> "
          f"{loop_s * n / 3600:.1f} h for the grid")
    print(f"speed-up: {loop_s * n / grid_s:,.0f}x")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loop-points", type=int, default=20)
    main(ap.parse_args().loop_points)
