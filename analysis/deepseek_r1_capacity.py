"""DeepSeek-R1 at equal capacity: the energy-per-token / capacity-cost fronts of all-HBM, today's offload tiers
and projected High-Bandwidth Flash, under a 50 ms per-token latency limit (dse/conf/search/deepseek-r1-capacity).

Runs dse-search three times (the cold-expert tier restricted to: hbm; hbm/ddr/ssd/cxl; all five incl. hbf),
each validated against its exhaustive front, then plots the three fronts with the paper's fixed 32 x H100
scenarios and prints the front points. Writes everything under results/deepseek-r1-capacity/ (the figure:
deepseek_r1_capacity_front.png); the README's figure is refreshed only on purpose, with
``--figure docs/figures/deepseek_r1_capacity_front.png``.

    PYTHONPATH=. python analysis/deepseek_r1_capacity.py [--trials 2000] [--out results/deepseek-r1-capacity]
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from dse.search import compose, report, run  # noqa: E402
from dse.search.space import parse  # noqa: E402
from dse.search.run import _base  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {  # label: cold-expert tiers
    "all experts in HBM": "[hbm]",
    "+ DDR / SSD / CXL offload (today)": "[hbm,ddr,ssd,cxl]",
    "+ High-Bandwidth Flash (projected)": "[hbm,ddr,ssd,cxl,hbf]",
}
COLORS = ["tab:blue", "tab:red", "tab:purple"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--out", default=str(ROOT / "results" / "deepseek-r1-capacity"),
                    help="directory for the three searches and the figure")
    ap.add_argument("--figure", default=None,
                    help="where to write the figure (default: OUT/deepseek_r1_capacity_front.png)")
    args = ap.parse_args()
    fronts = {}
    for i, (label, tiers) in enumerate(VARIANTS.items()):
        d = Path(args.out) / f"variant{i}"
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        cfg = compose("deepseek-r1-capacity", [f"search.space.placement.choices={tiers}", f"search.name=ds-variant{i}",
                                               f"search.n_trials={args.trials}", "search.validate=true",
                                               "search.progress=false", f"search.storage=journal:{d}/journal.log"])
        s = run(cfg, d)
        p = xr.open_dataset(d / "pareto.nc").load()
        fronts[label] = p
        print(f"\n== {label}: {s['trials_in_study']} trials, HV ratio to the exhaustive front "
              f"{s['validation']['hypervolume_ratio']:.4f}")
        cols = ["capacity_cost_usd", "energy_per_token", "step_latency", "n_gpus", "gpu", "placement",
                "offload_path", "batch", "hbm_cache_fraction"]
        df = p[["capacity_cost_usd", "energy_per_token", "step_latency", "n_gpus"]].to_dataframe()[cols]
        df = df.drop_duplicates(subset=["capacity_cost_usd", "energy_per_token"]).sort_values("capacity_cost_usd")
        print(df.to_string(float_format=lambda v: f"{v:.4g}"))
    space = parse(cfg["search"], _base(cfg))
    mark = report.marks("paper-fig45-deepseek", space)

    fig, ax = plt.subplots(figsize=(12, 6))
    for (label, p), c in zip(fronts.items(), COLORS):
        x, y = p.capacity_cost_usd.values, p.energy_per_token.values
        o = np.argsort(x)
        ax.step(x[o], y[o], where="post", color=c, lw=1.6, label=f"front: {label}")
        ax.scatter(x[o], y[o], s=14, color=c, zorder=3)
    for pl, m in report.PAPER_MARKERS.items():
        sel = np.array([i for i, lab in enumerate(mark["labels"]) if lab["placement"] == pl])
        ok = mark["feasible"][sel]
        fx, fy = mark["F"][sel, 1], mark["F"][sel, 0]
        ax.scatter(fx[ok], fy[ok], marker=m, s=60, facecolor=report.PLACEMENT_COLORS[pl], edgecolor="k",
                   label=f"paper, 32 x H100, experts in {pl}: meets limits", zorder=4)
        ax.scatter(fx[~ok], fy[~ok], marker=m, s=60, facecolor="none", edgecolor=report.PLACEMENT_COLORS[pl],
                   label=f"paper, 32 x H100, experts in {pl}: misses limits", zorder=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("capacity cost [USD]: GPUs less their HBM + bytes held x $/GB")
    ax.set_ylabel("energy per generated token [J]")
    ax.set_title("DeepSeek-R1 (paper constants), latency <= 50 ms/token, HBM fill <= 0.9:\n"
                 "GPU type x 8-GPU nodes x cold-expert tier x offload path x HBM cache x batch", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    out = Path(args.figure) if args.figure else Path(args.out) / "deepseek_r1_capacity_front.png"
    report.atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=130, format="png"))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
