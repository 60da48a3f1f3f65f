"""Figure: the paper's conclusions under paper constants vs board-level measured GPU constants.

    python analysis/calibration_compare.py [--results results/calibration_compare] [--out results/calibration_compare]

Reads the recipe's netCDF files if present (sweeps/calibration_compare.py), else computes them (seconds), and
writes calibration_compare.png and .svg.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

SHOWN = {"paper": ("k", "paper constants (DRAM-only 4.2 pJ/bit, MAC-only)"),
         "measured": ("C3", "board-level, H200 reference probe"),
         "calibrated": ("C1", "board-level, this repo's dse-calibrate run")}
MODELS = {"mixtral": ("-", "Mixtral-8x7B"), "deepseek": ("--", "DeepSeek-R1")}


def figure(results: dict[str, xr.Dataset]):
    """Four panels: SSD/HBM energy ratio, SSD copy share, Fig. 6 break-even Flash energy, cumulative steps."""
    fig, ax = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True)
    (a, b), (c, d) = ax
    for model, (ls, mlabel) in MODELS.items():
        ds = results[model]
        for const, (color, _) in SHOWN.items():
            sel = ds.sel(constants=const)
            a.plot(sel.batch, sel.ssd_hbm_ratio, ls, color=color, label=f"{mlabel}, {const}")
            b.plot(sel.batch, 100 * sel.offload_share.sel(placement="ssd"), ls, color=color,
                   label=f"{mlabel}, {const}")
    for axis, ylabel, title in ((a, "energy per token, SSD / HBM", "(a) SSD offloading penalty"),
                                (b, "SSD copy share of step energy (%)", "(b) share spent copying experts")):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("batch")
        axis.set_ylabel(ylabel)
        axis.set_title(title)
        axis.grid(alpha=0.3)
    a.legend(fontsize=7)

    f6 = results["fig6"]
    for const, (color, label) in SHOWN.items():
        e = f6.breakeven_flash_pj_per_bit.sel(constants=const)
        c.plot(f6.batch, np.where(e > 0, e, np.nan), "o-", color=color, label=label)
    today = float(f6.attrs.get("flash_read_pj_per_bit_today", 102.4))
    c.axhline(today, color="gray", ls=":", label=f"SSD today ({today:g} pJ/bit)")
    c.set_yscale("log")
    c.set_xticks(f6.batch.values)
    c.set_xlabel("batch")
    c.set_ylabel("break-even Flash read energy e* (pJ/bit)")
    c.set_title("(c) Maverick, experts on Flash, vs Llama-3-70B in HBM")
    c.grid(alpha=0.3, which="both")
    c.legend(fontsize=7)

    labels = [str(x) for x in results["mixtral"].constants.values]
    x = np.arange(len(labels))
    for i, (model, (_, mlabel)) in enumerate(MODELS.items()):
        peak = results[model].ssd_hbm_ratio.max("batch")
        bars = d.bar(x + (i - 0.5) * 0.38, peak, 0.38, label=mlabel)
        d.bar_label(bars, fmt="%.1f", fontsize=7)
    d.set_xticks(x, labels, rotation=20, fontsize=8)
    d.set_ylabel("peak SSD / HBM energy per token")
    d.set_title("(d) cumulative steps: paper -> measured constants")
    d.legend(fontsize=7)
    fig.suptitle("How the paper's conclusions move from DRAM-only/MAC-only to board-level measured constants")
    return fig


def load_or_compute(directory: Path) -> dict[str, xr.Dataset]:
    names = ("mixtral", "deepseek", "fig6")
    if all((directory / f"{n}.nc").is_file() for n in names):
        return {n: xr.load_dataset(directory / f"{n}.nc", engine="h5netcdf") for n in names}
    from dse import calibration_compare as cc

    return cc.compare()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default="results/calibration_compare", help="directory of the recipe's .nc files")
    p.add_argument("--out", default="results/calibration_compare", help="directory for the PNG and SVG")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig = figure(load_or_compute(Path(args.results)))
    for ext in ("png", "svg"):
        fig.savefig(out / f"calibration_compare.{ext}", dpi=150)
    print(f"written {out}/calibration_compare.png and .svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
