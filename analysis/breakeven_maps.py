"""Maps of the break-even Flash read energy e* over two grid dimensions (batch x top-k, batch x n_experts), one
panel per comparison, each cell labelled with e* and coloured by what it takes (never / better than the projected
High-Bandwidth Flash / HBF suffices / today's SSD suffices). A comparison whose e* is the same everywhere (SSD
against DDR: e* is DDR's read energy) is stated in one line instead of a flat panel.

    python -m analysis.breakeven_maps [out_dir]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from analysis import common
from analysis.style import new_figure, style
from dse.analyze import plot


def breakeven_grid(be: xr.DataArray | xr.Dataset, x: str, y: str) -> xr.DataArray:
    """e* (pJ/bit) on the (y, x) grid, NaN where Flash never breaks even; other dimensions must be singletons."""
    e = be.breakeven_flash_read_pj_per_bit.where(be.breaks_even)
    e = e.squeeze([d for d in e.dims if d not in (x, y) and e.sizes[d] == 1], drop=True)
    extra = [d for d in e.dims if d not in (x, y)]
    if extra or x not in e.dims or y not in e.dims:
        raise ValueError(f"breakeven map needs exactly the dimensions ({y}, {x}); the result has {list(e.dims)}")
    return e.transpose(y, x)


def plot_breakeven_maps(cases: dict, x: str = "batch", y: str = "top_k", *, title: str | None = None):
    """One :func:`dse.plot.breakeven_map` panel per case (label -> break-even Dataset). A case whose e* is the
    same in every cell carries no information as a map: it is said in one line under the panels instead.
    Meshes carry gid ``map|<label>``; their arrays are e* with never masked, row-major over (y, x)."""
    grids = {label: breakeven_grid(be, x, y) for label, be in cases.items()}
    flat = {label: g for label, g in grids.items()
            if np.isfinite(g.values).all() and np.ptp(g.values) <= 5e-3 * np.abs(g.values).max()}
    shown = {label: be for label, be in cases.items() if label not in flat} or dict(cases)
    flat = {k: v for k, v in flat.items() if k not in shown}
    with style():
        widths = [grids[label].sizes[x] + 1.2 for label in shown]     # equal cells; room for the y ticks
        fig, axes = new_figure(ncols=len(shown), width="two" if len(shown) > 1 else "one",
                               height=3.3 + 0.15 * len(flat), gridspec_kw={"width_ratios": widths})
        note = "\n".join(f"{label}: e* = {float(g.mean()):.3g} pJ/bit in every cell (no map)"
                         for label, g in flat.items())
        for k, (ax, (label, be)) in enumerate(zip(axes[0], shown.items())):
            plot.breakeven_map(be, x, y, title=label, ax=ax, legend_=k == 0, note=note or None)
            if k:
                ax.set_ylabel("")
        if title:
            fig.suptitle(title)
    return plot.finish(fig)


BATCHES = {"maverick": [1, 2, 3, 4, 8], "mixtral": [1, 16, 256, 1024], "deepseek": [4, 64, 256, 1024]}
MIX, DS = "paper-fig45-mixtral", "paper-fig45-deepseek"
#: label: (target, reference, the reference is the same model (architecture sweeps apply to both), batches,
#: {map dimension: values})
MAP_CASES = {
    "Llama-4 Maverick on SSD\nvs Llama-3-70B in HBM": (
        {"study": "paper-fig6-maverick"}, {"study": "paper-fig6-llama3"}, False, BATCHES["maverick"],
        dict(top_k=[1, 2, 4, 8], n_experts=[16, 32, 64, 128, 256])),
    "Mixtral-8x7B: Flash\n(direct) vs HBM": (
        {"study": MIX, "placement": "ssd", "offload_path": "direct"}, {"study": MIX, "placement": "hbm"},
        True, BATCHES["mixtral"], dict(top_k=[1, 2, 4, 8], n_experts=[8, 16, 32, 64])),
    "DeepSeek-R1: Flash\n(direct) vs HBM": (
        {"study": DS, "placement": "ssd", "offload_path": "direct"}, {"study": DS, "placement": "hbm"},
        True, BATCHES["deepseek"], dict(top_k=[2, 4, 8, 16], n_experts=[64, 128, 256, 512])),
    "Mixtral and DeepSeek-R1 on SSD vs their experts in DDR": (   # flat: e* is DDR's read energy (one line)
        {"study": MIX, "placement": "ssd"}, {"study": MIX, "placement": "ddr"},
        True, BATCHES["mixtral"], dict(top_k=[1, 2, 4, 8], n_experts=[8, 16, 32, 64])),
}


def map_results(which: str, cases: dict = MAP_CASES) -> dict:
    """Break-even results for the maps over batch x ``which`` ('top_k' or 'n_experts')."""
    from dse.analyze.breakeven import breakeven

    out = {}
    for label, (target, reference, same_model, batches, sweeps) in cases.items():
        sweep = {which: sweeps[which]}
        if same_model:
            out[label] = breakeven(target, reference, batch=batches, **sweep)
        else:  # another model: the architecture sweep is the target's alone
            out[label] = breakeven({**target, **sweep}, reference, batch=batches)
    return out


def figures(args):
    for which in ("top_k", "n_experts"):
        yield f"breakeven_map_batch_x_{which}", plot_breakeven_maps(map_results(which), "batch", which)


def main(argv=None) -> list[Path]:
    return common.main(figures, __doc__, argv)


if __name__ == "__main__":
    main()
