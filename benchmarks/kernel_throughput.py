"""Kernel throughput: grid points per second of one vectorized dse.evaluate versus a per-point Python loop.

Both paths evaluate the same points (a sample of the grid for the loop); the ratio comes from one run.
Usage: python benchmarks/kernel_throughput.py [--loop-points N]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import dse

GRID = dict(
    model="deepseek-r1",
    system="8xh200-c2c",
    placement=["hbm", "ddr", "ssd", "hbf"],
    batch=list(range(1, 257)),
    flash_read_pj_per_bit=list(np.linspace(1.0, 200.0, 100)),
    hbm_cache_fraction=[0.0, 0.25, 0.5, 0.75],
    context_len=[512, 1024, 4096, 16384],
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loop-points", type=int, default=40)
    args = parser.parse_args()

    dse.evaluate(model="deepseek-r1", system="8xh200-c2c")  # compose presets once (cached) for both paths
    t0 = time.perf_counter()
    ds = dse.evaluate(**GRID)
    e = ds.energy_per_token.values  # force
    t_grid = time.perf_counter() - t0
    n_grid = e.size

    rng = np.random.default_rng(0)
    dims = [d for d in ds.energy_per_token.dims]
    idx = [{d: int(rng.integers(ds.sizes[d])) for d in dims} for _ in range(args.loop_points)]
    t0 = time.perf_counter()
    worst = 0.0
    for point in idx:
        kw = {d: ds[d].values[i].item() for d, i in point.items()}
        one = dse.evaluate(model="deepseek-r1", system="8xh200-c2c", **kw).energy_per_token.item()
        worst = max(worst, abs(one / float(ds.energy_per_token.isel(point)) - 1))
    t_loop = time.perf_counter() - t0

    grid_rate = n_grid / t_grid
    loop_rate = args.loop_points / t_loop
    print(f"vectorized grid: {n_grid:,} points in {t_grid:.2f} s = {grid_rate:,.0f} points/s")
    print(f"per-point loop : {args.loop_points} points in {t_loop:.2f} s = {loop_rate:,.1f} points/s")
    print(f"speed-up       : {grid_rate / loop_rate:,.0f}x   (max relative difference {worst:.1e})")


if __name__ == "__main__":
    main()
