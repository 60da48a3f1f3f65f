"""DeepSeek-R1 at equal capacity: the energy-per-token / capacity-cost fronts of all-HBM, today's offload tiers
and projected High-Bandwidth Flash, under a 50 ms per-token latency limit (dse/conf/search/deepseek-r1-capacity).

Runs dse-search three times (the cold-expert tier restricted to: hbm; hbm/ddr/ssd/cxl; all five incl. hbf),
each validated against its exhaustive front, then plots the three fronts with the paper's fixed 32 x H100
scenarios and prints the front points. Writes everything under results/deepseek-r1-capacity/ (the figure:
deepseek_r1_capacity_front.png); docs/findings.md's figure is refreshed only on purpose, with
``--figure docs/figures/deepseek_r1_capacity_front.png``.

    PYTHONPATH=. python analysis/deepseek_r1_capacity.py [--trials 2000] [--out results/deepseek-r1-capacity]
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a file: analysis/ lives beside dse/
from analysis import common  # noqa: E402
from dse.analyze import plot as dplot  # noqa: E402
from dse.search import compose, report, run  # noqa: E402
from dse.search.space import parse  # noqa: E402
from dse.search.run import _base  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {  # label: cold-expert tiers
    "all experts in HBM": "[hbm]",
    "+ DDR / SSD / CXL offload (today)": "[hbm,ddr,ssd,cxl]",
    "+ High-Bandwidth Flash (projected)": "[hbm,ddr,ssd,cxl,hbf]",
}
VARIANT_STYLES = [dict(color="#0072B2", ls="-"), dict(color="#000000", ls="--"), dict(color="#CC79A7", ls=":")]


@dplot.styled
def plot_fronts(fronts: dict, mark: dict | None, *, title: str | None = None, max_labels: int = 14):
    """The fronts (label -> pareto dataset) of energy per token versus capacity cost, two paper columns wide:
    one step line per variant, its points coloured by the tier of the cold experts (the project's colours), the
    paper's fixed scenarios as stars (open: misses the limits), and the front points labelled with their
    configuration ("8xB200 ddr 12.5% B=1024"). Front points carry gid ``front|<label>``."""
    fig, axes = dplot.figure("two", 4.2)
    ax = axes[0, 0]
    scale = dplot.DISPLAY["capacity_cost_usd"][2]
    labelled = []
    for (label, p), style in zip(fronts.items(), VARIANT_STYLES * 2):
        x, y = p.capacity_cost_usd.values * scale, p.energy_per_token.values
        o = np.argsort(x)
        ax.step(x[o], y[o], where="post", lw=1.3, label=f"front: {label}", zorder=3, **style)
        pts = ax.scatter(x[o], y[o], s=0)
        pts.set_gid(f"front|{label}")
        for pl in dict.fromkeys(p.placement.values):
            sel = p.placement.values == pl
            ax.scatter(x[sel], y[sel], s=16, color=dplot.PLACEMENT_COLORS.get(str(pl), "k"), edgecolor="k", lw=0.3,
                       marker=dplot.PLACEMENT_MARKERS.get(str(pl), "o"), zorder=4)
        labelled += [(x[i], y[i], dplot.design_label(p, int(i))) for i in o]
    for pl in dict.fromkeys(str(v) for p in fronts.values() for v in p.placement.values):
        ax.scatter([], [], s=16, color=dplot.PLACEMENT_COLORS.get(pl, "k"), edgecolor="k", lw=0.3,
                   marker=dplot.PLACEMENT_MARKERS.get(pl, "o"), label=f"cold experts in {dplot.placement_label(pl)}")
    if mark is not None:
        for pl in dplot.PLACEMENT_MARKERS:
            sel = np.array([i for i, lab in enumerate(mark["labels"]) if lab.get("placement") == pl], dtype=int)
            if not sel.size:
                continue
            ok = mark["feasible"][sel]
            fx, fy = mark["F"][sel, 1] * scale, mark["F"][sel, 0]
            ax.scatter(fx, fy, marker="*", s=60, facecolor=np.where(ok, dplot.PLACEMENT_COLORS[pl], "none").tolist(),
                       edgecolor=dplot.PLACEMENT_COLORS[pl], lw=0.8, zorder=4,
                       label=f"paper, 32 x H100, {dplot.placement_label(pl)}" + ("" if ok.all() else " (misses limits)"))
    ax.set_yscale("log")
    xs = np.array([v[0] for v in labelled] + ([] if mark is None else list(mark["F"][:, 1] * scale)))
    ax.set_xlim(float(np.nanmin(xs)) * 0.85, float(np.nanmax(xs)) * 1.08)
    dplot.plain_ticks(ax, "x")
    dplot.plain_ticks(ax, "y")
    ax.set_xlabel(dplot.label("capacity_cost_usd").replace("$", r"\$") + r": GPUs less their HBM + bytes held x \$/GB")
    ax.set_ylabel("energy per token (J)")
    dplot.label_points(ax, labelled, max_labels)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.2)
    ax.set_title(title or "DeepSeek-R1 (paper constants), latency <= 50 ms per token, HBM fill <= 90%")
    return fig


def options(ap) -> None:
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--figure", default=None,
                    help="where to write the figure (default: OUT/deepseek_r1_capacity_front.png; SVG beside it)")
    ap.add_argument("--replot", action="store_true", help="redraw from the searches already in OUT")


def figures(args):
    fronts = {}
    for i, (label, tiers) in enumerate(VARIANTS.items()):
        d = Path(args.out) / f"variant{i}"
        cfg = compose("deepseek-r1-capacity", [f"search.space.placement.choices={tiers}", f"search.name=ds-variant{i}",
                                               f"search.n_trials={args.trials}", "search.method=optuna", "search.validate=true",
                                               "search.progress=false", f"search.storage=journal:{d}/journal.log"])
        if not args.replot:
            if d.exists():
                shutil.rmtree(d)
            d.mkdir(parents=True)
            s = run(cfg, d)
            print(f"\n== {label}: {s['trials_in_study']} trials, HV ratio to the exhaustive front "
                  f"{s['validation']['hypervolume_ratio']:.4f}")
        p = xr.open_dataset(d / "pareto.nc").load()
        fronts[label] = p
        cols = ["capacity_cost_usd", "energy_per_token", "step_latency", "n_gpus", "gpu", "placement",
                "offload_path", "batch", "hbm_cache_fraction"]
        df = p[["capacity_cost_usd", "energy_per_token", "step_latency", "n_gpus"]].to_dataframe()[cols]
        df = df.drop_duplicates(subset=["capacity_cost_usd", "energy_per_token"]).sort_values("capacity_cost_usd")
        print(df.to_string(float_format=lambda v: f"{v:.4g}"))
    space = parse(cfg["search"], _base(cfg))
    mark = report.marks("paper-fig45-deepseek", space)
    stem = Path(args.figure).resolve().with_suffix("") if args.figure else "deepseek_r1_capacity_front"
    yield stem, plot_fronts(fronts, mark)


def main(argv=None) -> list[Path]:
    """The searches (unless --replot) and the figure; --out: the directory for both."""
    return common.main(figures, __doc__, argv, out=str(ROOT / "results" / "deepseek-r1-capacity"), options=options)


if __name__ == "__main__":
    main()
