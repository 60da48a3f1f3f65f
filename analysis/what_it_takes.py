"""What it would take for Flash-resident experts to match a model's own HBM baseline (Mixtral, DeepSeek-R1).

Left: the break-even Flash read energy e* versus batch for several variants of the target (the paper's staged
copies over NVLink-C2C gen 5; copies streamed directly to the GPU; faster links) and for the DDR reference.
Right: why the paper's setup never breaks even: the target's excess energy over the reference with Flash reads
free, per Flash bit read (pJ/bit), by component; the components sum to -e*.

    python -m analysis.what_it_takes [out_dir]
"""
from __future__ import annotations

import sys

import numpy as np
import xarray as xr

from analysis.parity import hbf_read_pj_per_bit, today_of
from analysis.style import COMPONENT_COLORS, COMPONENT_LABELS, new_figure, out_dir_from_argv, save
from dse.break_even import PJ


def excess_per_flash_bit(be: xr.Dataset) -> xr.DataArray:
    """Target (Flash reads free) minus reference energy per token, by component, per Flash bit read (pJ/bit)."""
    return _squeeze(be.excess_energy_per_token / be.flash_read_bits_per_token / PJ, ("component", "batch"))


def _squeeze(da: xr.DataArray, keep) -> xr.DataArray:
    return da.squeeze([d for d in da.dims if d not in keep and da.sizes[d] == 1], drop=True)


def plot_what_it_takes(cases: dict, why: str, *, title: str | None = None):
    """``cases``: label -> break-even Dataset over batch. Lines: e* versus batch (gid ``estar|<label>``).
    Bars: :func:`excess_per_flash_bit` of ``cases[why]`` stacked by component (gid ``excess|<component>|<batch>``),
    positive parts upward from 0 and negative parts downward."""
    fig, axes = new_figure(ncols=2, width=6.0, height=4.6, layout="constrained")
    ax, bx = axes[0]
    today = max(today_of(be) for be in cases.values())
    hbf = hbf_read_pj_per_bit()
    for label, be in cases.items():
        e = _squeeze(be.breakeven_flash_read_pj_per_bit, ("batch",))
        (line,) = ax.plot(e.batch.values, e.values, marker="o", ms=3, label=label)
        line.set_gid(f"estar|{label}")
    ax.axhline(today, color="tab:red", ls=":", label=f"today's SSD ({today:g} pJ/bit)")
    ax.axhline(hbf, color="tab:purple", ls="--", label=f"projected HBF ({hbf:g} pJ/bit)")
    ax.axhline(0.0, color="k", lw=0.8)
    lows = [float(be.breakeven_flash_read_pj_per_bit.min()) for be in cases.values()]
    ax.set_ylim(min(min(lows), 0.0) * 1.1 - 2.0, today * 1.15)
    ax.axhspan(ax.get_ylim()[0], 0.0, color="0.85", alpha=0.6, lw=0, label="never breaks even (e* <= 0)")
    ax.set_xscale("log", base=2)
    batches_all = sorted({int(b) for be in cases.values() for b in np.atleast_1d(be.batch.values)})
    ax.set_xticks(batches_all, [str(b) for b in batches_all], fontsize=7)
    ax.set_xlabel("batch (sequences per decode step)")
    ax.set_ylabel("break-even Flash read energy e* (pJ/bit)")
    ax.set_title("e*: Flash must read at <= e* to match the reference", fontsize=9)
    ax.legend(fontsize=6.5, loc="upper left")
    ax.grid(alpha=0.3)

    ex = excess_per_flash_bit(cases[why]).transpose("component", "batch")
    batches = ex.batch.values
    x = np.arange(len(batches))
    up, down = np.zeros(len(batches)), np.zeros(len(batches))
    for c in [str(c) for c in ex.component.values]:
        v = ex.sel(component=c).values
        if not np.any(np.abs(v) > 1e-9 * float(np.abs(ex).max())):
            continue  # no difference from the reference (rounding only)
        bottom = np.where(v >= 0, up, down)
        bars = bx.bar(x, v, 0.8, bottom=bottom, color=COMPONENT_COLORS.get(c), label=COMPONENT_LABELS.get(c, c))
        for bar, b in zip(bars, batches):
            bar.set_gid(f"excess|{c}|{b}")
        up, down = np.where(v >= 0, up + v, up), np.where(v < 0, down + v, down)
    total = ex.sum("component").values
    pts = bx.scatter(x, total, color="k", zorder=5, s=14, label="total = -e*")
    pts.set_gid("excess_total")
    bx.axhline(0.0, color="k", lw=0.8)
    bx.set_xticks(x, [str(b) for b in batches])
    bx.set_xlabel("batch (sequences per decode step)")
    bx.set_ylabel("excess at free Flash reads (pJ per Flash bit)")
    bx.set_title(f"why never: {why}", fontsize=9)
    bx.legend(fontsize=6.5, loc="upper right")
    bx.grid(axis="y", alpha=0.3)
    fig.suptitle(title or "What it would take for Flash to match the HBM baseline", fontsize=10)
    return fig


PAPER_CASE = "SSD, staged via HBM, C2C gen 5 (paper) vs HBM"


def what_it_takes_results(study: str) -> dict:
    """Break-even results for one paper study (Mixtral or DeepSeek-R1): Flash target variants against the
    model's own HBM baseline, and against its DDR offload."""
    from dse.break_even import breakeven

    hbm = {"study": study, "placement": "hbm"}
    ssd = {"study": study, "placement": "ssd"}
    return {
        PAPER_CASE: breakeven(ssd, hbm),
        "SSD, direct to GPU, C2C gen 5 vs HBM": breakeven({**ssd, "offload_path": "direct"}, hbm),
        "Flash, direct, 2 x C2C gen 5 (1.8 TB/s) vs HBM": breakeven({**ssd, "offload_path": "direct"}, hbm,
                                                                    link_bw_gbps=1800.0),
        "Flash, direct, 4 x C2C gen 5 (3.6 TB/s) vs HBM": breakeven({**ssd, "offload_path": "direct"}, hbm,
                                                                    link_bw_gbps=3600.0),
        "SSD, staged (paper) vs DDR": breakeven(ssd, {"study": study, "placement": "ddr"}),
    }


STUDIES = {"paper-fig45-mixtral": "Mixtral-8x7B on 4 x H100", "paper-fig45-deepseek": "DeepSeek-R1 on 32 x H100"}


def main(argv=sys.argv) -> list:
    out = out_dir_from_argv(argv)
    paths = []
    for study, name in STUDIES.items():
        fig = plot_what_it_takes(what_it_takes_results(study), PAPER_CASE,
                                 title=f"{name}: what it would take for experts on Flash to match the HBM baseline")
        paths += save(fig, out, f"what_it_takes_{study}")
    print("\n".join(map(str, paths)))
    return paths


if __name__ == "__main__":
    main()
