"""Target over reference energy per token versus Flash read energy, with the parity line (the paper's Fig. 6).

    python -m analysis.parity [out_dir]     # Llama-4 Maverick on SSD over Llama-3-70B in HBM, batch 1-4
"""
from __future__ import annotations

import sys

import numpy as np
import xarray as xr

from analysis.style import new_figure, out_dir_from_argv, save
from dse.break_even import FLASH, energy_ratio


def hbf_read_pj_per_bit() -> float:
    """The projected High-Bandwidth Flash read energy of the hbf tier preset."""
    from dse import config

    return float(config.preset("tier", "hbf")["read_pj_per_bit"])


def today_of(be: xr.Dataset) -> float:
    today = be.today_flash_read_pj_per_bit
    if today.ndim:
        raise ValueError("today's Flash read energy differs across the grid: select one placement/system first")
    return float(today)


def plot_parity(be: xr.Dataset, flash_read_pj_per_bit=None, *, title: str | None = None):
    """One line per batch: target / reference energy per token at each Flash read energy (affine closed form).

    ``be`` is a :func:`dse.break_even.breakeven` result with a batch dimension. The dashed line is parity; dots
    mark the break-even energies e* (gid ``breakeven``); lines carry gids ``ratio|batch=<b>``.
    """
    today = today_of(be)
    flash = np.asarray(flash_read_pj_per_bit if flash_read_pj_per_bit is not None
                       else today * np.geomspace(0.02, 1.25, 64), dtype=float)
    ratio = energy_ratio(be, flash)
    ratio = ratio.squeeze([d for d in ratio.dims if d not in ("batch", FLASH) and ratio.sizes[d] == 1], drop=True)
    extra = [d for d in ratio.dims if d not in ("batch", FLASH)]
    if extra:
        raise ValueError(f"plot_parity: select one value of {extra} first")
    fig, axes = new_figure(width=7.0, height=4.8)
    ax = axes[0, 0]
    batches = ratio.batch.values if "batch" in ratio.dims else [None]
    for b in batches:
        y = ratio.sel(batch=b).values if b is not None else ratio.values
        (line,) = ax.plot(flash, y, lw=1.8, label=f"batch {b}")
        line.set_gid(f"ratio|batch={b}")
    ax.axhline(1.0, color="k", ls="--", lw=1, label="parity (target = reference)")
    e_star = be.breakeven_flash_read_pj_per_bit.where(be.breaks_even)
    xs = np.atleast_1d(e_star.values)
    ok = np.isfinite(xs) & (xs >= flash.min()) & (xs <= flash.max())
    pts = ax.scatter(xs[ok], np.ones(ok.sum()), color="k", zorder=5, s=22, label="break-even e*")
    pts.set_gid("breakeven")
    ax.axvline(today, color="tab:red", lw=1, ls=":", label=f"today's SSD ({today:g} pJ/bit)")
    hbf = hbf_read_pj_per_bit()
    if flash.min() <= hbf <= flash.max():
        ax.axvline(hbf, color="tab:purple", lw=1, ls=":", label=f"projected HBF ({hbf:g} pJ/bit)")
    ax.axvspan(0.1 * today, today, color="0.5", alpha=0.08, lw=0, label="the paper's sweep (0.1-1 x today)")
    ax.set_xscale("log")
    ax.set_xlabel("Flash read energy (pJ/bit)")
    sec = ax.secondary_xaxis("top", functions=(lambda e: e / today, lambda f: f * today))
    sec.set_xlabel("fraction of today's SSD read energy (1)")
    tgt, ref = be.attrs.get("target_model", "target"), be.attrs.get("reference_model", "reference")
    ax.set_ylabel(f"energy per token: {tgt} / {ref} (1)")
    ax.set_title(title or f"{tgt} with experts on Flash vs {ref}: parity needs Flash read energy <= e*", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3, which="both")
    return fig


def main(argv=sys.argv) -> list:
    from dse.break_even import breakeven

    be = breakeven({"study": "paper-fig6-maverick"}, {"study": "paper-fig6-llama3"})
    paths = save(plot_parity(be), out_dir_from_argv(argv), "parity_maverick_ssd_vs_llama3_hbm")
    print("\n".join(map(str, paths)))
    return paths


if __name__ == "__main__":
    main()
