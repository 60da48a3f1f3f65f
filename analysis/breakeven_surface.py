"""The break-even surface over Flash read energy x offload-link bandwidth: target / reference energy per token as
colour, and the break-even curve e*(link bandwidth) where it equals 1.

    python -m analysis.breakeven_surface [out_dir]
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.colors as mcolors
import matplotlib.ticker as mticker
import numpy as np
import xarray as xr

from analysis import common
from analysis.parity import hbf_read_pj_per_bit, today_of
from analysis.style import HBF_COLOR, model_name, new_figure, plain, plain_ticks, styled
from dse.analyze.breakeven import FLASH, energy_ratio

LINK = "link_bw_gbps"


def parity_norm(values):
    """A colour scale over exactly the ratios shown (no unused half), logarithmic on each side of parity, with
    1 (parity) at the diverging colour map's white centre; a side without values gets a small margin."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v) & (v > 0)]
    lo = min(float(np.log10(v.min())) if v.size else -0.05, -0.05)
    hi = max(float(np.log10(v.max())) if v.size else 0.05, 0.05)

    def forward(r):
        x = np.log10(np.clip(np.asarray(r, float), 1e-300, None))
        return np.where(x < 0, 0.5 * (x - lo) / -lo, 0.5 + 0.5 * x / hi)

    def inverse(t):
        t = np.asarray(t, float)
        return 10.0 ** np.where(t < 0.5, lo + t / 0.5 * -lo, (t - 0.5) / 0.5 * hi)

    return mcolors.FuncNorm((forward, inverse), vmin=10.0 ** lo, vmax=10.0 ** hi)


def ratio_ticks(vmin: float, vmax: float) -> list[float]:
    """1, 2, 5 per decade within [vmin, vmax], parity (1) always among them."""
    ticks = [m * 10.0 ** k for k in range(int(np.floor(np.log10(vmin))), int(np.ceil(np.log10(vmax))) + 1)
             for m in (1, 2, 5)]
    ticks = [t for t in ticks if vmin <= t <= vmax]
    if len(ticks) > 7:
        ticks = [t for t in ticks if np.isclose(np.log10(t) % 1, 0) or np.isclose(t, 1)]
    return sorted(set(ticks) | {1.0})


@styled
def plot_breakeven_surface(be: xr.Dataset, flash_read_pj_per_bit=None, *, panel_dim: str = "batch",
                           link_marks: dict | None = None, title: str | None = None):
    """Panels along ``panel_dim`` (e.g. batch), two paper columns wide: colour = target / reference energy per
    token over (Flash pJ/bit, link GB/s), from the affine closed form (blue: Flash cheaper); black line =
    e*(link) (gid ``breakeven|<dim>=<v>``, x = e*, y = link bandwidth, only where Flash breaks even); a panel
    without a crossing says "never breaks even". Meshes carry gid ``surface|<dim>=<v>``; their arrays are the
    ratio, row-major over (link, Flash). ``be`` needs a ``link_bw_gbps`` dimension."""
    import matplotlib.patheffects as pe

    if LINK not in be.dims:
        raise ValueError(f"plot_breakeven_surface needs a break-even result with a {LINK} dimension")
    today = today_of(be)
    flash = np.asarray(flash_read_pj_per_bit if flash_read_pj_per_bit is not None
                       else np.geomspace(0.5, 2 * today, 48), dtype=float)
    ratio = energy_ratio(be, flash)
    ratio = ratio.squeeze([d for d in ratio.dims if d not in (LINK, FLASH, panel_dim) and ratio.sizes[d] == 1], drop=True)
    panels = ratio[panel_dim].values if panel_dim in ratio.dims else [None]
    extra = [d for d in ratio.dims if d not in (LINK, FLASH, panel_dim)]
    if extra:
        raise ValueError(f"plot_breakeven_surface: select one value of {extra} first")
    norm = parity_norm(ratio.values)
    e_star = be.breakeven_flash_read_pj_per_bit.where(be.breaks_even)
    e_star = e_star.squeeze([d for d in e_star.dims if d not in (LINK, panel_dim) and e_star.sizes[d] == 1], drop=True)
    fig, axes = new_figure(ncols=len(panels), width="two", height=2.9, sharey=True)
    hbf = hbf_read_pj_per_bit()
    link = ratio[LINK].values
    mesh = None
    halo = [pe.withStroke(linewidth=2.6, foreground="w")]
    for k, (ax, p) in enumerate(zip(axes[0], panels)):
        r = (ratio.sel({panel_dim: p}) if p is not None else ratio).transpose(LINK, FLASH)
        mesh = ax.pcolormesh(flash, link, r.values, norm=norm, cmap="RdBu_r", shading="nearest")
        mesh.set_gid(f"surface|{panel_dim}={p}")
        e = (e_star.sel({panel_dim: p}) if p is not None and panel_dim in e_star.dims else e_star).transpose(LINK)
        (line,) = ax.plot(e.values, link, color="k", lw=1.6, marker=".", ms=3, label="break-even e*(link)")
        line.set_gid(f"breakeven|{panel_dim}={p}")
        if not np.isfinite(e.values).any():
            ax.text(0.72, 0.12, "never\nbreaks even", transform=ax.transAxes, ha="center", va="center", fontsize=8,
                    path_effects=halo)
        ax.axvline(today, color="k", lw=1.0, ls=":", path_effects=halo, label=f"today's SSD ({today:g} pJ/bit)")
        ax.axvline(hbf, color=HBF_COLOR, lw=1.1, ls="--", path_effects=halo, label=f"projected HBF ({hbf:g} pJ/bit)")
        for name, bw in (link_marks or {}).items():
            ax.axhline(bw, color="0.25", lw=0.7, ls="-.")
            if k == 0:
                ax.text(flash.min() * 1.1, bw, name, fontsize=8, va="bottom", path_effects=halo)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(flash.min(), flash.max())
        ax.set_ylim(link.min(), link.max())
        ax.grid(False)
        ax.set_xlabel("Flash read (pJ/bit)")
        plain_ticks(ax, "x")
        plain_ticks(ax, "y")
        ax.set_title(f"{panel_dim} {p}" if p is not None else "")
    axes[0][0].set_ylabel("offload link per GPU (GB/s)")
    cbar = fig.colorbar(mesh, ax=list(axes[0]), pad=0.02, aspect=30, ticks=ratio_ticks(norm.vmin, norm.vmax))
    cbar.set_label("energy per token, target / reference")
    cbar.ax.yaxis.set_major_formatter(mticker.FuncFormatter(plain))
    cbar.ax.yaxis.set_minor_locator(mticker.NullLocator())
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3)
    tgt, ref = be.attrs.get("target_model", "target"), be.attrs.get("reference_model", "reference")
    fig.suptitle(title or f"Break-even surface: {model_name(tgt)} on Flash vs {model_name(ref)}")
    return fig


def surface_results() -> dict:
    """The two surfaces of the demo: Maverick on SSD vs Llama-3-70B (staged copies, the paper's path), and
    Mixtral on SSD streamed directly to the GPU (no HBM staging) vs Mixtral in HBM ("what it would take")."""
    from dse.analyze.breakeven import breakeven

    return {
        "maverick_ssd_vs_llama3_hbm": breakeven(
            {"study": "paper-fig6-maverick"}, {"study": "paper-fig6-llama3"},
            link_bw_gbps=np.geomspace(100.0, 2000.0, 14).round(1).tolist()),
        # staged copies steal HBM bandwidth equal to the link's in the kernel, so stay well below 3352 GB/s there;
        # the direct path has no such term and may go beyond
        "mixtral_ssd_direct_vs_hbm": breakeven(
            {"study": "paper-fig45-mixtral", "placement": "ssd", "offload_path": "direct"},
            {"study": "paper-fig45-mixtral", "placement": "hbm"},
            batch=[1, 16, 256], link_bw_gbps=np.geomspace(200.0, 8000.0, 14).round(1).tolist()),
    }


LINK_MARKS = {"C2C gen 4": 450.0, "C2C gen 5": 900.0}
TITLES = {
    "maverick_ssd_vs_llama3_hbm": "Llama-4 Maverick, experts on SSD (staged via HBM) vs Llama-3-70B in HBM, 8 x H100",
    "mixtral_ssd_direct_vs_hbm": "Mixtral-8x7B, experts on Flash streamed directly to the GPU vs in HBM, 4 x H100",
}


def figures(args):
    for name, be in surface_results().items():
        yield f"breakeven_surface_{name}", plot_breakeven_surface(be, link_marks=LINK_MARKS, title=TITLES.get(name))


def main(argv=None) -> list[Path]:
    return common.main(figures, __doc__, argv)


if __name__ == "__main__":
    main()
