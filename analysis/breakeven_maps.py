"""Maps of the break-even Flash read energy e* over two grid dimensions (batch x top-k, batch x n_experts),
one panel per model, with today's SSD and the projected High-Bandwidth Flash read energies as contours.

    python -m analysis.breakeven_maps [out_dir]
"""
from __future__ import annotations

import sys

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from analysis.parity import hbf_read_pj_per_bit, today_of
from analysis.style import new_figure, out_dir_from_argv, save

NEVER_COLOR = "0.82"


def breakeven_grid(be: xr.DataArray | xr.Dataset, x: str, y: str) -> xr.DataArray:
    """e* (pJ/bit) on the (y, x) grid, NaN where Flash never breaks even; other dimensions must be singletons."""
    e = be.breakeven_flash_read_pj_per_bit.where(be.breaks_even)
    e = e.squeeze([d for d in e.dims if d not in (x, y) and e.sizes[d] == 1], drop=True)
    extra = [d for d in e.dims if d not in (x, y)]
    if extra or x not in e.dims or y not in e.dims:
        raise ValueError(f"breakeven map needs exactly the dimensions ({y}, {x}); the result has {list(e.dims)}")
    return e.transpose(y, x)


def plot_breakeven_maps(cases: dict, x: str = "batch", y: str = "top_k", *, title: str | None = None):
    """One panel per case (label -> break-even Dataset): e* as colour (log scale; grey: never breaks even),
    each cell annotated, contours at today's SSD and the projected HBF read energy. Meshes carry gid
    ``map|<label>``; their arrays are e* with NaN masked, row-major over (y, x)."""
    grids = {label: breakeven_grid(be, x, y) for label, be in cases.items()}
    positive = np.concatenate([g.values[np.isfinite(g.values)].ravel() for g in grids.values()] + [np.array([])])
    hbf = hbf_read_pj_per_bit()
    todays = {today_of(be) for be in cases.values()}
    vmin = min([hbf / 3, *positive.tolist()]) if positive.size else hbf / 3
    vmax = max([max(todays) * 1.5, *positive.tolist()])
    norm = mcolors.LogNorm(vmin=vmin, vmax=vmax)
    cmap = plt.get_cmap("viridis").with_extremes(bad=NEVER_COLOR)
    fig, axes = new_figure(ncols=len(grids), width=4.6, height=4.2, layout="constrained")
    mesh = None
    for ax, (label, g) in zip(axes[0], grids.items()):
        nx, ny = g.sizes[x], g.sizes[y]
        values = np.ma.masked_invalid(g.values)
        mesh = ax.pcolormesh(np.arange(nx + 1) - 0.5, np.arange(ny + 1) - 0.5, values, norm=norm, cmap=cmap)
        mesh.set_gid(f"map|{label}")
        filled = np.where(np.isfinite(g.values), g.values, vmin / 10)  # never breaks even: below every level
        if nx > 1 and ny > 1:
            levels = sorted({hbf, *todays})
            ax.contour(np.arange(nx), np.arange(ny), filled, levels=levels, colors=["tab:purple", "tab:red"][:len(levels)],
                       linewidths=1.6, linestyles=["--", "-"][:len(levels)])
        for j in range(ny):
            for i in range(nx):
                v = g.values[j, i]
                ax.text(i, j, "never" if not np.isfinite(v) else f"{v:.3g}", ha="center", va="center", fontsize=6,
                        color="k" if not np.isfinite(v) or norm(v) > 0.5 else "w")
        ax.set_xticks(np.arange(nx), [str(v) for v in g[x].values])
        ax.set_yticks(np.arange(ny), [str(v) for v in g[y].values])
        ax.set_xlabel(f"{x} ({g[x].attrs.get('units') or 'sequences' if x == 'batch' else g[x].attrs.get('units', '')})")
        ax.set_ylabel(f"{y} ({g[y].attrs.get('units') or 'experts'})")
        ax.set_title(label, fontsize=9)
    cbar = fig.colorbar(mesh, ax=list(axes[0]), shrink=0.9, pad=0.02)
    cbar.set_label("break-even Flash read energy e* (pJ/bit)")
    for t in todays:
        cbar.ax.axhline(t, color="tab:red", lw=2)
    cbar.ax.axhline(hbf, color="tab:purple", lw=2, ls="--")
    handles = [Line2D([], [], color="tab:red", lw=1.6, label=f"today's SSD ({', '.join(f'{t:g}' for t in sorted(todays))} pJ/bit)"),
               Line2D([], [], color="tab:purple", lw=1.6, ls="--", label=f"projected HBF ({hbf:g} pJ/bit)"),
               Patch(color=NEVER_COLOR, label="never breaks even (e* <= 0)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8)
    fig.suptitle(title or f"Break-even Flash read energy e* over {x} x {y}: Flash reads must cost <= e* to match the "
                          "reference\n(left of / below the red contour: cheaper Flash than today's SSD is needed)",
                 fontsize=10)
    return fig


BATCHES = {"maverick": [1, 2, 3, 4, 8, 16], "mixtral": [1, 4, 16, 64, 256, 1024], "deepseek": [4, 16, 64, 256, 1024]}
#: label: (target, reference, the reference is the same model (architecture sweeps apply to both), batches,
#: {map dimension: values})
MAP_CASES = {
    "Llama-4 Maverick on SSD vs Llama-3-70B in HBM": (
        {"study": "paper-fig6-maverick"}, {"study": "paper-fig6-llama3"}, False, BATCHES["maverick"],
        dict(top_k=[1, 2, 4, 8], n_experts=[16, 32, 64, 128, 256])),
    "Mixtral-8x7B on SSD vs its experts in DDR": (
        {"study": "paper-fig45-mixtral", "placement": "ssd"}, {"study": "paper-fig45-mixtral", "placement": "ddr"},
        True, BATCHES["mixtral"], dict(top_k=[1, 2, 4, 8], n_experts=[8, 16, 32, 64])),
    "DeepSeek-R1 on SSD vs its experts in DDR": (
        {"study": "paper-fig45-deepseek", "placement": "ssd"}, {"study": "paper-fig45-deepseek", "placement": "ddr"},
        True, BATCHES["deepseek"], dict(top_k=[2, 4, 8, 16], n_experts=[64, 128, 256, 512])),
}


def map_results(which: str, cases: dict = MAP_CASES) -> dict:
    """Break-even results for the maps over batch x ``which`` ('top_k' or 'n_experts')."""
    from dse.break_even import breakeven

    out = {}
    for label, (target, reference, same_model, batches, sweeps) in cases.items():
        sweep = {which: sweeps[which]}
        if same_model:
            out[label] = breakeven(target, reference, batch=batches, **sweep)
        else:  # another model: the architecture sweep is the target's alone
            out[label] = breakeven({**target, **sweep}, reference, batch=batches)
    return out


def main(argv=sys.argv) -> list:
    out = out_dir_from_argv(argv)
    paths = []
    for which in ("top_k", "n_experts"):
        paths += save(plot_breakeven_maps(map_results(which), "batch", which), out, f"breakeven_map_batch_x_{which}")
    print("\n".join(map(str, paths)))
    return paths


if __name__ == "__main__":
    main()
