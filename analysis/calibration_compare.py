"""Figure: the paper's conclusions under paper constants vs board-level measured GPU constants.

    python analysis/calibration_compare.py [--results results/calibration_compare] [--out results/calibration_compare]

Reads the recipe's netCDF files if present (sweeps/calibration_sweep.py), else computes them (seconds), and
writes calibration_compare.png and .svg.
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a file: analysis/ lives beside dse/
from analysis import common  # noqa: E402
from dse.analyze import plot  # noqa: E402

#: constants -> (colour, marker, legend text): black / blue / green (Okabe-Ito), distinct in grey print too
SHOWN = {"paper": ("#000000", "o", "paper constants (DRAM-only 4.2 pJ/bit, MAC-only)"),
         "measured": ("#0072B2", "s", "board-level, H200 reference probe"),
         "calibrated": ("#009E73", "^", "board-level, this repo's dse-calibrate run")}
MODELS = {"mixtral": ("-", "Mixtral-8x7B"), "deepseek": ("--", "DeepSeek-R1")}


@plot.styled
def figure(results: dict[str, xr.Dataset]):
    """Four panels, two paper columns wide: SSD/HBM energy ratio, SSD copy share, Fig. 6 break-even Flash energy,
    cumulative steps. Colour = set of constants, line style = model; one legend under the panels."""
    fig, ax = plot.figure("two", 5.6, nrows=2, ncols=2)
    (a, b), (c, d) = ax
    for model, (ls, mlabel) in MODELS.items():
        ds = results[model]
        for const, (color, marker, _) in SHOWN.items():
            sel = ds.sel(constants=const)
            a.plot(sel.batch, sel.ssd_hbm_ratio, ls, color=color, marker=marker, ms=3, mfc="none" if ls == "--"
                   else color)
            b.plot(sel.batch, 100 * sel.offload_share.sel(placement="ssd"), ls, color=color, marker=marker, ms=3,
                   mfc="none" if ls == "--" else color)
    for axis, ylabel, title in ((a, "energy per token, SSD / HBM", "(a) SSD offloading penalty"),
                                (b, "SSD copy share of step energy (%)", "(b) share spent copying experts")):
        plot.batch_axis(axis, results["mixtral"].batch.values)
        axis.set_ylabel(ylabel)
        axis.set_title(title)
        plot.plain_ticks(axis, "y")

    f6 = results["fig6"]
    for const, (color, marker, _) in SHOWN.items():
        e = f6.breakeven_flash_pj_per_bit.sel(constants=const)
        c.plot(f6.batch, np.where(e > 0, e, np.nan), "-", color=color, marker=marker, ms=4)
    today = float(f6.attrs.get("flash_read_pj_per_bit_today", 102.4))
    c.axhline(today, color="0.4", ls=":", lw=1.0)
    c.text(f6.batch.values[-1], today, f"today's SSD, {today:g}", ha="right", va="bottom", fontsize=8)
    c.set_yscale("log")
    c.set_xticks(f6.batch.values, [str(v) for v in f6.batch.values])
    c.set_xlabel("batch (sequences)")
    c.set_ylabel("break-even e* (pJ/bit)")
    c.set_title("(c) Maverick on Flash vs Llama-3-70B in HBM")
    plot.plain_ticks(c, "y")

    labels = [str(x) for x in results["mixtral"].constants.values]
    x = np.arange(len(labels))
    for i, (model, (ls, mlabel)) in enumerate(MODELS.items()):
        peak = results[model].ssd_hbm_ratio.max("batch")
        bars = d.bar(x + (i - 0.5) * 0.38, peak, 0.38, color=["0.35", "0.75"][i], label=mlabel)
        d.bar_label(bars, fmt="%.1f", fontsize=8, padding=1)
    d.set_xticks(x, labels, rotation=30, ha="right", rotation_mode="anchor")
    d.set_xlim(-0.6, len(labels) - 0.4)
    d.grid(axis="x", visible=False)
    d.set_ylim(0, float(max(results[m].ssd_hbm_ratio.max() for m in MODELS)) * 1.18)
    d.set_ylabel("peak SSD / HBM energy per token")
    d.set_title("(d) cumulative steps: paper to measured")

    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color=col, marker=m, label=text) for col, m, text in SHOWN.values()]
    handles += [Line2D([], [], color="k", ls=ls, label=name) for ls, name in MODELS.values()]
    handles += [Patch(color=["0.35", "0.75"][i], label=f"{name} (d)") for i, (_, name) in enumerate(MODELS.values())]
    fig.legend(handles=handles, loc="outside lower center", ncol=3)
    fig.suptitle("How the paper's conclusions move from DRAM-only / MAC-only to board-level measured constants")
    return fig


def load_or_compute(directory: Path) -> dict[str, xr.Dataset]:
    names = ("mixtral", "deepseek", "fig6")
    if all((directory / f"{n}.nc").is_file() for n in names):
        return {n: xr.load_dataset(directory / f"{n}.nc", engine="h5netcdf") for n in names}
    from dse.analyze import calibration as cc

    return cc.compare()


def figures(args):
    yield "calibration_compare", figure(load_or_compute(Path(args.results)))


def main(argv=None) -> list[Path]:
    return common.main(figures, __doc__, argv, out="results/calibration_compare", options=lambda p: p.add_argument(
        "--results", default="results/calibration_compare", help="directory of the recipe's .nc files"))


if __name__ == "__main__":
    main()
