"""Benchmark: exact front of a >= 10^9-point space, and Optuna on the continuous space it discretises.

The question is dse/conf/search/deepseek-r1-continuous (DeepSeek-R1 on 8-64 GPUs: GPU type, tier, offload path,
nodes, batch 1-1024, and three continuous variables: HBM cache fraction, offload link bandwidth, Flash read
energy). Two ways to answer it, printed side by side:

1. the exact Pareto front of a fine discretisation (``--batches`` geometric batches, ``--fractions`` cache
   fractions, ``--links`` link bandwidths and ``--flash`` Flash energies: 1.17e9 points by default) through
   :func:`dse.search.front.front_of_grid` (blocks through dask pruned by a seed front, moocore per block, tree
   reduction): wall time, points/s and the process's peak RSS right after it, the load average, and as a baseline
   measured in the same run the points/s without the seed pruning on a sub-grid (every ``--baseline-every``-th
   batch), beside the same sub-grid with it (the two fronts compared);
2. Optuna (search.method=optuna, the preset's NSGA-II + local search, :mod:`dse.search.local`) on the continuous
   space for ``--trials`` trials (8,000, the preset's: at 4,000 the fraction is 0.986-0.990 for
   seeds 0-2): its feasible front's hypervolume as a fraction of the fine front's (objectives normalized to the fine
   front, reference point 1.1), the number of evaluations and the wall time.

    PYTHONPATH=. python benchmarks/continuous_search.py [--trials 8000] [--seed 0]
    PYTHONPATH=. python benchmarks/continuous_search.py --tiny          # seconds: a smoke run
    PYTHONPATH=. python benchmarks/continuous_search.py --front-only    # part 1 only
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dse.search import compose, exhaustive, points, run  # noqa: E402
from dse.search.front import front_of_grid  # noqa: E402
from dse.search.pareto import Normalizer, nondominated  # noqa: E402
from dse.search.run import _base  # noqa: E402
from dse.search.space import parse  # noqa: E402

PRESET = "deepseek-r1-continuous"


def fine_values(space, batches: int, fractions: int, links: int, flash: int) -> dict:
    """The discretisation: every categorical and int value; geometric batches, linear fractions, log bandwidths
    and energies over the continuous ranges (both ends included)."""
    d = space.distributions
    batch = sorted(set(np.round(np.geomspace(d["batch"].low, d["batch"].high, batches)).astype(int).tolist()))
    return {
        "gpu": list(d["gpu"].choices), "placement": list(d["placement"].choices),
        "offload_path": list(d["offload_path"].choices), "dp": list(range(d["dp"].low, d["dp"].high + 1)),
        "batch": batch,
        "hbm_cache_fraction": np.linspace(d["hbm_cache_fraction"].low, d["hbm_cache_fraction"].high, fractions).tolist(),
        "link_bw_gbps": np.geomspace(d["link_bw_gbps"].low, d["link_bw_gbps"].high, links).tolist(),
        "flash_read_pj_per_bit": np.geomspace(d["flash_read_pj_per_bit"].low, d["flash_read_pj_per_bit"].high,
                                              flash).tolist(),
    }


def exact(base, space, values) -> tuple[np.ndarray, dict]:
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    grid = points.resolve_values(base, space, values)
    front = front_of_grid(grid, exhaustive._question(grid, space), progress=True)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    F = np.stack([front[o].values for o in space.objectives], 1)
    return F, dict(points=grid.points, wall_s=wall, front_s=front.attrs["wall_s"], rss=rss,
                   feasible=front.attrs["n_feasible"], front=len(F), load=(load, os.getloadavg()[0]))


def baseline(base, space, values, every: int) -> dict:
    """The baseline, measured in the same run: the front of a sub-grid (every ``every``-th batch value) without the
    seed pruning -- each block filtered on its own, all its tied points kept, as before the seed -- and with it
    (the default); the two fronts must be the same points."""
    grid = points.resolve_values(base, space, dict(values, batch=values["batch"][::every]))
    q = exhaustive._question(grid, space)
    runs = {}
    for name, seed_points in (("unseeded", 0), ("seeded", None)):
        t0 = time.perf_counter()
        runs[name] = (front_of_grid(grid, q, progress=False, seed_points=seed_points), time.perf_counter() - t0)
    same = np.array_equal(*(np.sort(front.grid_index.values) for front, _ in runs.values()))
    return dict(points=grid.points, same=same, **{name + "_s": wall for name, (_, wall) in runs.items()})


def optuna_run(trials: int, seed: int, workdir: Path) -> tuple[np.ndarray, dict]:
    overrides = ["search.method=optuna", f"search.n_trials={trials}", f"search.seed={seed}", "search.progress=false",
                 f"search.storage=journal:{workdir}/journal.log"]
    t0 = time.perf_counter()
    summary = run(compose(PRESET, overrides), workdir)
    wall = time.perf_counter() - t0
    import xarray as xr

    with xr.open_dataset(workdir / "trials.nc", engine="h5netcdf") as ds:
        space = parse(compose(PRESET)["search"], _base(compose(PRESET)))
        F = np.stack([ds[o].values for o in space.objectives], 1)[ds.feasible.values]
    return F[nondominated(F)], dict(trials=summary["trials_in_study"], wall_s=wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=8000, help="Optuna trials (the preset's n_trials)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batches", type=int, default=96, help="geometric batch values (73 distinct integers)")
    ap.add_argument("--fractions", type=int, default=65)
    ap.add_argument("--links", type=int, default=32)
    ap.add_argument("--flash", type=int, default=32)
    ap.add_argument("--tiny", action="store_true", help="a small discretisation and 100 trials (a smoke run)")
    ap.add_argument("--front-only", action="store_true", help="part 1 only (the exact front and its baseline)")
    ap.add_argument("--baseline-every", type=int, default=16, help="the baseline's sub-grid: every n-th batch value")
    a = ap.parse_args()
    if a.tiny:
        a.trials, a.batches, a.fractions, a.links, a.flash, a.baseline_every = 100, 6, 3, 2, 2, 2
    cfg = compose(PRESET, ["search.progress=false"])
    base, space = _base(cfg), parse(cfg["search"], _base(cfg))
    values = fine_values(space, a.batches, a.fractions, a.links, a.flash)
    F_exact, ex = exact(base, space, values)
    rate = ex['points'] / ex['wall_s']
    print(f"exact front of the fine discretisation: {ex['points']:,} points ({ex['feasible']:,} feasible) in "
          f"{ex['wall_s']:.1f} s (resolving the grid {ex['wall_s'] - ex['front_s']:.1f} s, the front "
          f"{ex['front_s']:.1f} s) = {rate:.3g} points/s; front {ex['front']} points; "
          f"peak RSS {ex['rss'] / 2**30:.2f} GiB (targets: >= 1e9 points, < 120 s, < 2 GiB); load average "
          f"{ex['load'][0]:.2f} before, {ex['load'][1]:.2f} after, on {os.cpu_count()} cores", flush=True)
    bl = baseline(base, space, values, a.baseline_every)
    print(f"baseline, the sub-grid of one batch value in {a.baseline_every} ({bl['points']:,} points), load average "
          f"{os.getloadavg()[0]:.2f}: without the seed pruning {bl['points'] / bl['unseeded_s']:.3g} points/s, with "
          f"it {bl['points'] / bl['seeded_s']:.3g} points/s ({bl['unseeded_s'] / bl['seeded_s']:.1f}x); the same "
          f"front: {bl['same']}; the whole grid's front (points / its {ex['front_s']:.1f} s) against the baseline: "
          f"{ex['points'] / ex['front_s'] / (bl['points'] / bl['unseeded_s']):.1f}x", flush=True)
    if a.front_only:
        return
    with tempfile.TemporaryDirectory() as tmp:
        F_opt, op = optuna_run(a.trials, a.seed, Path(tmp))
    norm = Normalizer(F_exact)
    ratio = norm.hypervolume(F_opt) / norm.hypervolume(F_exact)
    print(f"Optuna on the continuous space: {op['trials']:,} evaluations in {op['wall_s']:.1f} s; "
          f"hypervolume {ratio:.4f} of the fine exhaustive front's (target >= 0.99)")
    print(f"side by side: exhaustive {ex['points']:,} evaluations, {ex['wall_s']:.1f} s | Optuna {op['trials']:,} "
          f"evaluations, {op['wall_s']:.1f} s | load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
