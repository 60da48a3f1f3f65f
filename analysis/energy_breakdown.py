"""Per-token energy stacked by component versus batch, one bar per expert placement (the paper's Figs. 4/5).

    python -m analysis.energy_breakdown [out_dir]     # Mixtral-8x7B and DeepSeek-R1, paper setups
"""
from __future__ import annotations

import sys

import numpy as np
import xarray as xr

from analysis.style import COMPONENT_COLORS, COMPONENT_LABELS, PLACEMENT_LABELS, new_figure, out_dir_from_argv, save


def per_token_components(ds: xr.Dataset, normalize: str | None = "hbm") -> xr.DataArray:
    """Energy per generated token by component (J), or relative to the ``normalize`` placement's total."""
    e = ds.energy / ds.batch
    if normalize is not None and "placement" in ds.dims and normalize in ds.placement.values:
        e = e / ds.energy_per_token.sel(placement=normalize, drop=True)
    return e


def plot_energy_breakdown(ds: xr.Dataset, *, normalize: str | None = "hbm", title: str | None = None):
    """Grouped stacked bars: for each batch one bar per placement, stacked by energy component.

    Each bar segment carries the gid ``placement|component|batch``. With ``normalize`` (a placement present in
    the dataset) every batch is scaled by that placement's total, as in the paper; ``None`` plots J per token.
    """
    if "batch" not in ds.dims:
        raise ValueError("plot_energy_breakdown needs a dataset with a batch dimension")
    if "placement" not in ds.dims:
        ds = ds.expand_dims(placement=[str(ds.attrs.get("placement", "experts"))])
    e = per_token_components(ds, normalize)
    relative = normalize is not None and normalize in ds.placement.values
    placements = [str(p) for p in ds.placement.values]
    batches = ds.batch.values
    fig, axes = new_figure(width=max(6.4, 0.75 * len(batches) * max(1, len(placements) / 2)), height=4.6)
    ax = axes[0, 0]
    width = 0.8 / len(placements)
    x0 = np.arange(len(batches))
    for i, p in enumerate(placements):
        x = x0 + (i - (len(placements) - 1) / 2) * width
        bottom = np.zeros(len(batches))
        for c in [str(c) for c in ds.component.values]:
            h = e.sel(placement=p, component=c).transpose("batch").values
            bars = ax.bar(x, h, width * 0.92, bottom=bottom, color=COMPONENT_COLORS.get(c),
                          label=COMPONENT_LABELS.get(c, c) if i == 0 else "_nolegend_")
            for bar, b in zip(bars, batches):
                bar.set_gid(f"{p}|{c}|{b}")
            bottom = bottom + h
        for xi, top in zip(x, bottom):
            ax.text(xi, top, PLACEMENT_LABELS.get(p, p)[0], ha="center", va="bottom", fontsize=6)
    ax.set_xticks(x0, [str(b) for b in batches])
    ax.set_xlabel("batch (sequences per decode step)")
    if relative:
        ax.set_ylabel(f"energy per token relative to experts in {PLACEMENT_LABELS.get(normalize, normalize)} (1)")
    else:
        ax.set_ylabel("energy per generated token (J)")
    letters = ", ".join(f"{PLACEMENT_LABELS.get(p, p)[0]} = {PLACEMENT_LABELS.get(p, p)}" for p in placements)
    ax.set_title(title or f"Energy per token by component: {ds.attrs.get('model', '')} on "
                          f"{ds.attrs.get('system', '')}\n(experts in {letters})", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="component", title_fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return fig


def main(argv=sys.argv) -> list:
    import dse

    out = out_dir_from_argv(argv)
    paths = []
    for study in ("paper-fig45-mixtral", "paper-fig45-deepseek"):
        paths += save(plot_energy_breakdown(dse.evaluate(study)), out, f"energy_breakdown_{study}")
    print("\n".join(map(str, paths)))
    return paths


if __name__ == "__main__":
    main()
