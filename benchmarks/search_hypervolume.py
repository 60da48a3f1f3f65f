"""Benchmark: dse-search on the DeepSeek-R1 capacity space (81,600 discrete points) against its exact front.

Runs the default search (NSGA-II with ordinal offspring + Pareto local search, 2,000 trials, default SQLite
storage) for several seeds with search.validate=true, and in the same process two baselines with the same
budget: NSGA-II without local search, and random sampling. Prints, per run, the hypervolume ratio to the exact
front (linear and log10 normalization), wall time and trials per second, and the exhaustive evaluation's time.

    PYTHONPATH=. python benchmarks/search_hypervolume.py [--seeds 0 1 2] [--trials 2000]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from dse.search import compose, run


def one(label: str, overrides: list[str], workdir: Path) -> dict:
    d = workdir / label
    d.mkdir(parents=True)
    t0 = time.perf_counter()
    s = run(compose("deepseek-r1-capacity", ["search.validate=true", "search.progress=false", *overrides]), d)
    v = s["validation"]
    row = dict(label=label, trials=s["trials_in_study"], hv=v["hypervolume_ratio"], hv_log=v["hypervolume_ratio_log10"],
               search_s=s["wall_s"], trials_per_s=s["trials_per_s"], total_s=time.perf_counter() - t0,
               exhaustive_s=v["exhaustive_wall_s"], points=v["n_points"], front=v["exact_front_size"])
    print(f"{label:34s} trials={row['trials']:5d}  HV ratio {row['hv']:.4f} (log10 {row['hv_log']:.4f})  "
          f"search {row['search_s']:6.1f} s = {row['trials_per_s']:5.1f} trials/s  "
          f"(exhaustive: {row['points']} points in {row['exhaustive_s']:.2f} s)", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--trials", type=int, default=2000)
    args = ap.parse_args()
    n = [f"search.n_trials={args.trials}"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = [one(f"nsga2+local seed={s} (sqlite)", [*n, f"search.seed={s}"], work) for s in args.seeds]
        base = []
        for s in args.seeds:
            j = f"search.storage=journal:{work}/j{s}.log"
            base.append(one(f"nsga2 seed={s} (journal)", [*n, f"search.seed={s}", "search.local_search=0", j], work))
            base.append(one(f"random seed={s} (journal)", [*n, f"search.seed={s}", "search.local_search=0",
                                                            "search.sampler=random", j.replace("/j", "/r")], work))
    hv = [r["hv"] for r in rows]
    print(f"\ndefault search: HV ratio min {min(hv):.4f} mean {sum(hv) / len(hv):.4f} over {len(hv)} seeds "
          f"(target >= 0.99 in <= 2000 trials); {sum(r['trials_per_s'] for r in rows) / len(rows):.1f} trials/s")
    for kind in ("nsga2 seed", "random seed"):
        b = [r["hv"] for r in base if r["label"].startswith(kind)]
        print(f"baseline {kind.split()[0]:7s} (no local search): HV ratio min {min(b):.4f} mean {sum(b) / len(b):.4f}")


if __name__ == "__main__":
    main()
