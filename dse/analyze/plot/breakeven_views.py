"""Break-even views: the parity plot of the paper's Fig. 6 and maps of e* over two dimensions (dse.plot)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from dse.cf import named
from dse.analyze.plot.style import (MIN_FONT_PT, NEVER_COLOR, ONE_COLUMN, TODAY_COLOR, _fixed_note, _pick, _squeeze,
                                    figure, finish, label, legend, model_name, placement_label, plain, plain_ticks,
                                    style, styled)
from dse.analyze.plot.views import lines


# ---------------------------------------------------------------- break-even


def _be_title(be) -> str:
    """"Llama-4 Maverick on SSD vs Llama-3-70B in HBM", or "Mixtral-8x7B: SSD vs DDR" for one model."""
    import json

    def side(which):
        try:
            p = json.loads(be.attrs.get(f"{which}_settings", "{}")).get("placement")
        except ValueError:
            p = None
        dim = "placement" if which == "target" else "reference_placement"
        if dim in be.coords:          # the placements the result holds (a target's Flash tiers only)
            p = [str(v) for v in np.atleast_1d(be[dim].values)]
        if isinstance(p, (list, tuple)):
            return model_name(be.attrs.get(f"{which}_model", which)), " / ".join(map(placement_label, p))
        return model_name(be.attrs.get(f"{which}_model", which)), placement_label(p or ("ssd" if which == "target"
                                                                                         else "hbm"))
    (tm, tp), (rm, rp) = side("target"), side("reference")
    return f"{tm}: {tp} vs {rp}" if tm == rm else f"{tm} on {tp} vs {rm} in {rp}"


def today_of(be) -> float:
    t = np.unique(np.atleast_1d(be.today_flash_read_pj_per_bit.values))
    if t.size != 1:
        raise ValueError("today's Flash read energy differs across the grid: select one placement/system first")
    return float(t[0])


def hbf_read_pj_per_bit() -> float:
    """The projected High-Bandwidth Flash read energy of the hbf tier preset."""
    from dse.config import presets

    return float(presets.preset("tier", "hbf")["read_pj_per_bit"])


@styled
def parity(be, flash_read_pj_per_bit=None, *, title: str | None = None, width="one", ax=None):
    """The paper's Fig. 6: target / reference energy per token versus Flash read energy on a linear axis, one
    line per batch, the parity line, and the break-even energies e* marked with their values.

    Lines carry gids ``ratio|batch=<b>``; the e* dots gid ``breakeven``; the parity line is dashed at 1."""
    from dse.analyze.breakeven import FLASH, energy_ratio

    today = today_of(be)
    flash = np.asarray(flash_read_pj_per_bit if flash_read_pj_per_bit is not None
                       else np.linspace(0.0, 1.1 * today, 67), dtype=float)
    r = energy_ratio(be, flash)
    r = _squeeze(r, ("batch", FLASH))
    extra = [d for d in r.dims if d not in ("batch", FLASH)]
    if extra:
        raise ValueError(f"parity: select one value of {extra} first")
    if ax is None:
        fig, axes = figure(width, 2.9)
        ax = axes[0, 0]
    fig = ax.figure
    batches = [int(b) for b in r.batch.values] if "batch" in r.dims else [None]
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(len(batches), 1)))
    e = be.breakeven_flash_read_pj_per_bit.where(be.breaks_even)
    e = _squeeze(e, ("batch",))
    _ratio_lines(ax, flash, r, e, batches, colors)
    _mark_breakeven(ax, flash, e, today)
    ax.set_xlim(flash.min(), flash.max())
    ylo = min(0.0, float(np.nanmin(r.values)))
    ax.set_ylim(ylo, float(np.nanmax(r.values)) * 1.05)
    ax.set_xlabel("Flash read energy (pJ/bit)")
    ax.set_ylabel("energy / reference energy")
    plain_ticks(ax, "x")
    plain_ticks(ax, "y")
    ax.set_title(title or _be_title(be))
    if len(batches) > 4:
        _batch_colorbar(fig, ax, batches, colors, e)
    legend(ax, ncol=2)
    return fig


def _ratio_lines(ax, flash, r, e, batches, colors) -> None:
    """One energy-ratio line per batch (gid ``ratio|batch=<b>``), labelled with its e* unless a colour bar names
    the batches."""
    for b, c in zip(batches, colors):
        y = r.sel(batch=b).values if b is not None else r.values
        eb = float(e.sel(batch=b)) if b is not None and "batch" in e.dims else float(e)
        text = (f"batch {b}" if b is not None else "ratio") + (f", e* = {eb:.3g}" if np.isfinite(eb) else ", never")
        many = len(batches) > 4        # many batches: a colour bar names them, the legend stays small
        (line,) = ax.plot(flash, y, color=c, label="_nolegend_" if many else text)
        line.set_gid(f"ratio|batch={b}")


def _mark_breakeven(ax, flash, e, today: float) -> None:
    """The parity line, the e* dots (gid ``breakeven``) with their values, and today's SSD read energy."""
    ax.axhline(1.0, color="k", ls="--", lw=0.9, label="parity")
    xs = np.atleast_1d(e.values).astype(float)
    ok = np.isfinite(xs) & (xs >= flash.min()) & (xs <= flash.max())
    pts = ax.scatter(xs[ok], np.ones(ok.sum()), color="k", zorder=5, s=14, label="break-even e*")
    pts.set_gid("breakeven")
    for xv in dict.fromkeys(f"{v:.3g}" for v in xs[ok]):   # one label per distinct value (batches may share e*)
        xv = float(xv)
        ax.annotate(f"{xv:.3g}", (xv, 1.0), xytext=(0, 5), textcoords="offset points", rotation=90, ha="center",
                    va="bottom", fontsize=MIN_FONT_PT, bbox=dict(fc="w", ec="none", pad=0.5, alpha=0.85), zorder=6)
    ax.axvline(today, color=TODAY_COLOR, lw=0.9, ls=":")
    ax.annotate(f"today's SSD, {today:g}", (today, 0.03), xycoords=ax.get_xaxis_transform(), xytext=(-3, 0),
                textcoords="offset points", ha="left", va="bottom", rotation=90, rotation_mode="anchor",
                fontsize=MIN_FONT_PT, bbox=dict(fc="w", ec="none", pad=0.5, alpha=0.85))


def _batch_colorbar(fig, ax, batches, colors, e) -> None:
    """A colour bar naming many batches, and a legend entry counting those that never break even."""
    import matplotlib as mpl

    bounds = np.arange(len(batches) + 1) - 0.5
    sm = mpl.cm.ScalarMappable(norm=mpl.colors.BoundaryNorm(bounds, len(batches)),
                               cmap=mpl.colors.ListedColormap(colors))
    cb = fig.colorbar(sm, ax=ax, pad=0.02, ticks=np.arange(len(batches)))
    shown = [str(b) if k % max(1, len(batches) // 6) == 0 else "" for k, b in enumerate(batches)]
    cb.ax.set_yticklabels(shown)
    cb.ax.tick_params(labelsize=MIN_FONT_PT, length=2)
    cb.set_label("batch (sequences)")
    never = [str(b) for b, v in zip(batches, np.atleast_1d(e.values).astype(float)) if not np.isfinite(v)]
    if never:
        ax.plot([], [], color="none", label=f"never breaks even: {len(never)} of {len(batches)} batches")


#: The classes of a break-even map: e* <= 0 (never), below the projected HBF, between HBF and today's SSD, above.
MAP_CLASSES = (("never breaks even", NEVER_COLOR), ("needs Flash better than HBF", "#F2D0C4"),
               ("HBF suffices", "#9ECAE1"), ("today's SSD suffices", "#3182BD"))


def map_classes(e, today: float, hbf: float):
    """0..3 per cell: never (e* NaN or <= 0), 0 < e* < HBF, HBF <= e* < today's SSD, e* >= today."""
    e = np.asarray(e, float)
    return np.where(~np.isfinite(e) | (e <= 0), 0, np.where(e < hbf, 1, np.where(e < today, 2, 3)))


@styled
def breakeven_map(be, x: str = "batch", y: str | None = None, *, title: str | None = None, width="one",
                  ax=None, legend_: bool = True, never: str | None = None, note: str | None = None):
    """e* over two grid dimensions, every cell labelled with its value ("never" where Flash never breaks even),
    coloured by what it takes: never / better than projected HBF / HBF suffices / today's SSD suffices.
    The mesh carries gid ``map|<title>``; its array is e* with never masked, row-major over (y, x)."""
    import matplotlib.colors as mcolors
    from matplotlib.patches import Patch

    e = be.breakeven_flash_read_pj_per_bit.where(be.breaks_even)
    dims = [d for d in e.dims if e.sizes[d] > 1]
    y = y or next(d for d in dims if d != x)
    e, fixed = _pick(e, (x, y))
    e = e.transpose(y, x)
    v = np.asarray(e.values, float)
    today, hbf = today_of(be), hbf_read_pj_per_bit()
    cls = map_classes(v, today, hbf)
    if ax is None:
        fig, axes = figure(width, 2.9)
        ax = axes[0, 0]
    fig = ax.figure
    ny, nx = v.shape
    cell_pt = ax.get_position().width * fig.get_figwidth() * 72 / max(nx, 1)
    never = never if never is not None else ("never" if cell_pt > 34 else "\u2013")
    cmap = mcolors.ListedColormap([c for _, c in MAP_CLASSES])
    ax.pcolormesh(np.arange(nx + 1) - 0.5, np.arange(ny + 1) - 0.5, cls, cmap=cmap, vmin=-0.5, vmax=3.5,
                  edgecolors="w", linewidth=0.8)
    mesh = ax.pcolormesh(np.arange(nx + 1) - 0.5, np.arange(ny + 1) - 0.5, np.ma.masked_invalid(v), alpha=0.0)
    name = title or _be_title(be)
    mesh.set_gid(f"map|{name}")
    for j in range(ny):
        for i in range(nx):
            ax.text(i, j, never if cls[j, i] == 0 else plain(v[j, i]), ha="center", va="center",
                    fontsize=MIN_FONT_PT, color="w" if cls[j, i] == 3 else "k")
    ax.set_xticks(np.arange(nx), [str(t) for t in e[x].values])
    ax.set_yticks(np.arange(ny), [str(t) for t in e[y].values])
    ax.set_xlim(-0.5, nx - 0.5)     # exactly the cells: no empty band, no clipped row, ticks beside their cells
    ax.set_ylim(-0.5, ny - 0.5)
    ax.grid(False)
    for s in ax.spines.values():
        s.set_visible(False)
    ax.tick_params(length=0)
    ax.set_xlabel(label(x, e[x]))
    ax.set_ylabel(label(y, e[y]))
    fixed_note = _fixed_note(fixed)
    ax.set_title(name + (f"\n{fixed_note}" if fixed_note else ""))
    if legend_:
        handles = [Patch(color=c, label=t) for t, c in MAP_CLASSES]
        if never != "never":
            handles[0].set_label(f"{never}: never breaks even")
        handles[2].set_label(f"HBF ({hbf:g} pJ/bit) suffices")
        handles[3].set_label(f"today's SSD ({today:g} pJ/bit) suffices")
        fig.legend(handles=handles, loc="outside lower center", ncol=1 if fig.get_figwidth() <= ONE_COLUMN + 0.01
                   else 2, title="e* (pJ/bit) in each cell" + (f"\n{note}" if note else ""))
    return fig


def breakeven_view(be, *, title: str | None = None):
    """The view of a break-even result: Fig. 6 parity lines over batch (batch the only dimension), a map of e*
    (two dimensions), else e* versus its one dimension."""
    e = be.breakeven_flash_read_pj_per_bit
    dims = [d for d in e.dims if e.sizes[d] > 1]
    if dims == ["batch"] or not dims:
        return parity(be, title=title)
    if len(dims) >= 2:
        x, y = ("batch", next(d for d in dims if d != "batch")) if "batch" in dims else (dims[0], dims[1])
        return breakeven_map(be, x, y, title=title)
    fig = lines(be, named(e.where(be.breaks_even), "breakeven_flash_read_pj_per_bit"), dims[0], hue=None,
                title=title or _be_title(be))
    with style():
        ax = fig.axes[0]
        ax.axhline(today_of(be), color=TODAY_COLOR, ls=":", lw=0.9, label="today's SSD")
        legend(ax)
    return finish(fig)
