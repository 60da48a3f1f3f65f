"""What it would take for Flash-resident experts to match a model's own HBM baseline (Mixtral, DeepSeek-R1).

Left: the break-even Flash read energy e* versus batch for several variants of the target (the paper's staged
copies over NVLink-C2C gen 5; copies streamed directly to the GPU; faster links) and for the DDR reference.
Right: why the paper's setup never breaks even: the target's excess energy over the reference with Flash reads
free, per Flash bit read (pJ/bit), by component; the components sum to -e*.

    python -m analysis.what_it_takes [out_dir]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from analysis.parity import hbf_read_pj_per_bit, today_of
from analysis import common
from analysis.style import (COMPONENT_COLORS, COMPONENT_LABELS, HBF_COLOR, TODAY_COLOR, batch_axis, new_figure,
                            plain_ticks, styled)
from dse.analyze.breakeven import PJ


def excess_per_flash_bit(be: xr.Dataset) -> xr.DataArray:
    """Target (Flash reads free) minus reference energy per token, by component, per Flash bit read (pJ/bit)."""
    return _squeeze(be.excess_energy_per_token / be.flash_read_bits_per_token / PJ, ("component", "batch"))


def _squeeze(da: xr.DataArray, keep) -> xr.DataArray:
    return da.squeeze([d for d in da.dims if d not in keep and da.sizes[d] == 1], drop=True)


SERIES = [("#000000", "o"), ("#0072B2", "s"), ("#009E73", "^"), ("#56B4E9", "D"), ("#E69F00", "v")]


def _free_x(ax, y: float, ymin: float, ymax: float, width: float = 0.33, height: float = 0.09) -> float:
    """The left end (axes fraction) of a label ``width`` wide hanging under height ``y`` that no plotted point
    falls into (the left edge if none is free)."""
    top = (y - ymin) / (ymax - ymin)
    xlo, xhi = ax.get_xlim()
    log = ax.get_xscale() == "log"

    def frac(x):
        return (np.log(x) - np.log(xlo)) / (np.log(xhi) - np.log(xlo)) if log else (x - xlo) / (xhi - xlo)

    pts = [(frac(x), (v - ymin) / (ymax - ymin)) for line in ax.lines
           for x, v in zip(np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float))
           if np.isfinite(x) and np.isfinite(v) and (x > 0 or not log)]
    for start in np.linspace(0.01, 1.0 - width, 12):
        if not any(start - 0.03 <= px <= start + width + 0.03 and top - height - 0.04 <= py <= top + 0.01
                   for px, py in pts):
            return float(start)
    return 0.01


@styled
def plot_what_it_takes(cases: dict, why: str, *, title: str | None = None):
    """``cases``: label -> break-even Dataset over batch. Lines: e* versus batch (gid ``estar|<label>``); a line
    identical to an earlier one is drawn dashed with open markers and its legend entry says so.
    Bars: :func:`excess_per_flash_bit` of ``cases[why]`` stacked by component (gid ``excess|<component>|<batch>``),
    positive parts upward from 0 and negative parts downward. The e* axis spans the data (where the story is);
    today's SSD and the projected HBF read energies are marked, with an arrow when off the scale."""
    fig, axes = new_figure(ncols=2, width="two", height=3.4, gridspec_kw={"width_ratios": [1.15, 1]})
    ax, bx = axes[0]
    today = max(today_of(be) for be in cases.values())
    hbf = hbf_read_pj_per_bit()
    drawn = {}
    for (label, be), (color, marker) in zip(cases.items(), SERIES * 2):
        e = _squeeze(be.breakeven_flash_read_pj_per_bit, ("batch",))
        kw = dict(color=color, marker=marker, ms=4)
        same = [k for k, v in drawn.items() if v.shape == e.shape and np.allclose(v, e.values, rtol=1e-6)]
        text = label + (" (on the line above)" if same else "")
        if same:
            kw.update(ls=(0, (3, 2)), mfc="none", ms=6)
        (line,) = ax.plot(e.batch.values, e.values, label=text, **kw)
        line.set_gid(f"estar|{label}")
        drawn[label] = e.values
    values = np.concatenate([np.atleast_1d(v) for v in drawn.values()])
    lo, hi = min(float(np.nanmin(values)), 0.0), max(float(np.nanmax(values)), hbf)
    pad = 0.08 * (hi - lo)
    ax.set_ylim(lo - pad, hi + 2.5 * pad)
    ax.axhline(hbf, color=HBF_COLOR, ls="--", lw=1.0)
    free = _free_x(ax, hbf, lo - pad, hi + 2.5 * pad)   # where no line passes just under the HBF line
    ax.text(free, hbf, f" projected HBF, {hbf:g}", transform=ax.get_yaxis_transform(), ha="left", va="top",
            fontsize=8, color="k", zorder=10, bbox=dict(fc="w", ec="none", alpha=0.85, pad=0.3))
    if today > hi + 2.5 * pad:
        ax.text(0.02, 0.98, f"\u2191 today's SSD, {today:g}, off the scale", transform=ax.transAxes, ha="left",
                va="top", fontsize=8)
    else:
        ax.axhline(today, color=TODAY_COLOR, ls=":", lw=1.0, label=f"today's SSD ({today:g} pJ/bit)")
    ax.axhline(0.0, color="k", lw=0.8)
    ax.axhspan(ax.get_ylim()[0], 0.0, color="0.9", lw=0, zorder=0)
    ax.text(0.98, 0.03, "never breaks even (e* <= 0)", transform=ax.transAxes, ha="right", va="bottom", fontsize=8)
    batches_all = sorted({int(b) for be in cases.values() for b in np.atleast_1d(be.batch.values)})
    batch_axis(ax, batches_all)
    ax.set_ylabel("break-even Flash read energy e* (pJ/bit)")
    ax.set_title("(a) Flash must read at <= e* (vs HBM unless noted)")
    plain_ticks(ax, "y")

    ex = excess_per_flash_bit(cases[why]).transpose("component", "batch")
    batches = ex.batch.values
    x = np.arange(len(batches))
    up, down = np.zeros(len(batches)), np.zeros(len(batches))
    for c in [str(c) for c in ex.component.values]:
        v = ex.sel(component=c).values
        if not np.any(np.abs(v) > 1e-9 * float(np.abs(ex).max())):
            continue  # no difference from the reference (rounding only)
        bottom = np.where(v >= 0, up, down)
        bars = bx.bar(x, v, 0.7, bottom=bottom, color=COMPONENT_COLORS.get(c), label=COMPONENT_LABELS.get(c, c))
        for bar, b in zip(bars, batches):
            bar.set_gid(f"excess|{c}|{b}")
        up, down = np.where(v >= 0, up + v, up), np.where(v < 0, down + v, down)
    total = ex.sum("component").values
    pts = bx.scatter(x, total, color="k", zorder=5, s=14, label="total = -e*")
    pts.set_gid("excess_total")
    bx.axhline(0.0, color="k", lw=0.8)
    bx.set_xticks(x, [str(b) for b in batches], rotation=90 if len(batches) > 6 else 0)
    bx.set_xlim(-0.6, len(batches) - 0.4)
    bx.grid(axis="x", visible=False)
    bx.set_xlabel("batch (sequences)")
    bx.set_ylabel("excess energy (pJ per Flash bit)")
    bx.set_title("(b) why the paper's case never breaks even")
    handles, labels = ax.get_legend_handles_labels()
    h2, l2 = bx.get_legend_handles_labels()
    fig.legend(handles + h2, labels + l2, loc="outside lower center", ncol=2)
    fig.suptitle(title or "What it would take for Flash to match the HBM baseline")
    return fig


PAPER_CASE = "SSD, staged via HBM (paper)"


def what_it_takes_results(study: str) -> dict:
    """Break-even results for one paper study (Mixtral or DeepSeek-R1): Flash target variants against the
    model's own HBM baseline, and against its DDR offload."""
    from dse.analyze.breakeven import breakeven

    hbm = {"study": study, "placement": "hbm"}
    ssd = {"study": study, "placement": "ssd"}
    return {
        PAPER_CASE: breakeven(ssd, hbm),
        "SSD, direct to the GPU": breakeven({**ssd, "offload_path": "direct"}, hbm),
        "Flash, direct, 1.8 TB/s link (2 x C2C gen 5)": breakeven({**ssd, "offload_path": "direct"}, hbm,
                                                                  link_bw_gbps=1800.0),
        "Flash, direct, 3.6 TB/s link (4 x C2C gen 5)": breakeven({**ssd, "offload_path": "direct"}, hbm,
                                                                  link_bw_gbps=3600.0),
        "SSD, staged (paper), vs experts in DDR": breakeven(ssd, {"study": study, "placement": "ddr"}),
    }


STUDIES = {"paper-fig45-mixtral": "Mixtral-8x7B on 4 x H100", "paper-fig45-deepseek": "DeepSeek-R1 on 32 x H100"}


def figures(args):
    for study, name in STUDIES.items():
        title = f"{name}: what it would take for experts on Flash to match HBM"
        yield f"what_it_takes_{study}", plot_what_it_takes(what_it_takes_results(study), PAPER_CASE, title=title)


def main(argv=None) -> list[Path]:
    return common.main(figures, __doc__, argv)


if __name__ == "__main__":
    main()
