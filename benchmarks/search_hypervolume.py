"""Benchmark: dse-search on the DeepSeek-R1 capacity space (81,600 discrete points) against its exact front.

For several seeds, runs the default search (dse/conf/search/deepseek-r1-capacity: NSGA-II with ordinal offspring,
50 % Pareto local search, 20 % uniform exploration, batches of 50) for 2,000 trials with search.validate=true,
and prints the hypervolume ratio to the exhaustively computed front (linear and log10 normalization), wall time
and trials per second. In the same process, with the same budget and seeds: NSGA-II alone and random sampling
(the baselines), and one default run on the default SQLite storage (the others use a journal file, whose
writes are faster) for its throughput. The exhaustive evaluation's time is printed for scale.

    PYTHONPATH=. python benchmarks/search_hypervolume.py [--seeds 0 1 2 3 4 5 6 7 8 9] [--trials 2000]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from dse.search import compose, run


def one(label: str, overrides: list[str], workdir: Path) -> dict:
    d = workdir / label.replace(" ", "_").replace("=", "")
    d.mkdir(parents=True)
    t0 = time.perf_counter()
    s = run(compose("deepseek-r1-capacity", ["search.method=optuna", "search.validate=true", "search.progress=false", *overrides]), d)
    v = s["validation"]
    row = dict(label=label, trials=s["trials_in_study"], hv=v["hypervolume_ratio"], hv_log=v["hypervolume_ratio_log10"],
               search_s=s["wall_s"], trials_per_s=s["trials_per_s"], total_s=time.perf_counter() - t0,
               exhaustive_s=v["exhaustive_wall_s"], points=v["n_points"], front=v["exact_front_size"])
    print(f"{label:28s} trials={row['trials']:5d}  HV ratio {row['hv']:.4f} (log10 {row['hv_log']:.4f})  "
          f"search {row['search_s']:6.1f} s = {row['trials_per_s']:5.1f} trials/s;  "
          f"exhaustive {row['points']} points in {row['exhaustive_s']:.2f} s", flush=True)
    return row


def summary(name: str, rows: list[dict]) -> None:
    hv = [r["hv"] for r in rows]
    print(f"{name:34s} HV ratio min {min(hv):.4f}  mean {sum(hv) / len(hv):.4f}  >= 0.99 in {sum(h >= 0.99 for h in hv)}"
          f"/{len(hv)} seeds;  {sum(r['trials_per_s'] for r in rows) / len(rows):5.1f} trials/s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    ap.add_argument("--trials", type=int, default=2000)
    args = ap.parse_args()
    n = [f"search.n_trials={args.trials}"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)

        def journal(tag):
            return f"search.storage=journal:{work}/{tag}.log"

        default = [one(f"default seed={s}", [*n, f"search.seed={s}", journal(f"d{s}")], work) for s in args.seeds]
        nsga = [one(f"nsga2 only seed={s}", [*n, f"search.seed={s}", "search.local_search=0", "search.random_share=0",
                                             journal(f"n{s}")], work) for s in args.seeds]
        rand = [one(f"random seed={s}", [*n, f"search.seed={s}", "search.local_search=0", "search.random_share=0",
                                         "search.sampler=random", journal(f"r{s}")], work) for s in args.seeds]
        sqlite = one(f"default seed={args.seeds[0]} sqlite", [*n, f"search.seed={args.seeds[0]}"], work)
    print()
    summary("default (nsga2 + local + random)", default)
    summary("baseline: nsga2 only", nsga)
    summary("baseline: random sampling", rand)
    print(f"default on SQLite (the default storage): {sqlite['search_s']:.1f} s for {sqlite['trials']} trials = "
          f"{sqlite['trials_per_s']:.1f} trials/s (journal file: "
          f"{sum(r['trials_per_s'] for r in default) / len(default):.1f} trials/s)")
    ex = sum(r["exhaustive_s"] for r in default) / len(default)
    print(f"exhaustive evaluation: {default[0]['points']} points in {ex:.2f} s = {default[0]['points'] / ex:,.0f} points/s "
          f"(one vectorized dse.evaluate grid); exact front: {default[0]['front']} points")


if __name__ == "__main__":
    main()
