"""The common views of a dse result: energy breakdown, lines, ratios, maps, and the view chosen from a grid's
dimensions (dse.plot)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np

from dse.analyze.plot.style import (COMPONENT_COLORS, COMPONENT_LABELS, MIN_FONT_PT, NEVER_COLOR, PLACEMENT_COLORS,
                                    PLACEMENT_MARKERS, RC, _fixed_note, _pick, _title_of, _workload, batch_axis,
                                    display, figure, label, legend, placement_label, plain, plain_ticks, styled)


# ---------------------------------------------------------------- views


@styled
def breakdown(ds, *, normalize: str | None = "hbm", title: str | None = None, width="two", ax=None):
    """Stacked energy per token by component: for each batch one bar per placement (the paper's Figs. 4/5).

    With ``normalize`` (a placement of the dataset) every batch is scaled by that placement's total, so its bar
    reaches 1; ``None`` plots J per token. Components zero everywhere are left out; those too thin to see carry
    their largest share in the legend. Segments carry the gid ``placement|component|batch``; the letter over each
    bar names its placement.
    """
    e, fixed = _pick(_energy_per_token_by_component(ds), ("batch", "placement", "component"))
    relative = normalize is not None and normalize in [str(p) for p in e.placement.values]
    if relative:
        e = e / e.sel(placement=normalize).sum("component")
    placements = [str(p) for p in e.placement.values]
    batches = [int(b) for b in e.batch.values]
    total = e.sum("component")
    share = (e / total).max(["batch", "placement"])
    components = [str(c) for c in e.component.values if float(np.abs(e.sel(component=c)).max()) > 0]
    if ax is None:
        fig, axes = figure(width, 2.9 if width == "two" else 2.0 + 0.2 * len(components))
        ax = axes[0, 0]
    fig = ax.figure
    n = len(placements)
    _stacked_bars(ax, e, placements, batches, components, share)
    ax.set_xticks(np.arange(len(batches)), [str(b) for b in batches])
    ax.set_xlim(-0.6, len(batches) - 0.4)
    ax.grid(axis="x", visible=False)
    ax.set_xlabel("batch (sequences)")
    top = float(total.max())
    ax.set_ylim(0, top * 1.12)
    if relative:
        ax.set_ylabel(f"energy per token / {placement_label(normalize)}")
    else:
        ax.set_ylabel("energy per token (J)")
        plain_ticks(ax, "y")
    letters = ", ".join(f"{placement_label(p)[0]}: {placement_label(p)}" for p in placements) if n > 1 else \
        f"experts in {placement_label(placements[0])}"
    note = _fixed_note(fixed)
    ax.set_title(title or f"{_title_of(ds)} ({letters}{'; ' + note if note else ''})")
    legend(ax, title="energy component")
    return fig


def _energy_per_token_by_component(ds):
    """Energy per token by component, with batch and placement as dimensions (of length 1 where fixed)."""
    if "batch" in ds.variables:
        e = ds.energy / ds.batch
    else:   # a scalar batch: per token = each component's share of the step times energy per token
        e = ds.energy / ds.energy.sum("component") * ds.energy_per_token
    if "batch" not in e.dims:
        e = e.expand_dims(batch=[int(ds.batch) if "batch" in ds.variables else _workload(ds, "batch", 1)])
    if "placement" not in e.dims:
        p = ds.placement.item() if "placement" in ds.variables else _workload(ds, "placement", "hbm")
        e = e.expand_dims(placement=[str(p)])
    return e


def _stacked_bars(ax, e, placements, batches, components, share):
    """For each batch one bar per placement, stacked by component (gid ``placement|component|batch``), the
    placement's letter over it; a component too thin to see carries its largest share in the legend."""
    n = len(placements)
    w = 0.84 / n
    x0 = np.arange(len(batches))
    for i, p in enumerate(placements):
        x = x0 + (i - (n - 1) / 2) * w
        bottom = np.zeros(len(batches))
        for c in components:
            h = e.sel(placement=p, component=c).transpose("batch").values
            s = float(share.sel(component=c))
            lab = COMPONENT_LABELS.get(c, c) + (f" (max {100 * s:.1g}%)" if s < 0.02 else "")
            bars = ax.bar(x, h, w * 0.9, bottom=bottom, color=COMPONENT_COLORS.get(c, "0.5"), lw=0,
                          label=lab if i == 0 else "_nolegend_")
            for bar, b in zip(bars, batches):
                bar.set_gid(f"{p}|{c}|{b}")
            bottom = bottom + h
        if n > 1:
            for xi, top in zip(x, bottom):
                ax.text(xi, top, placement_label(p)[0], ha="center", va="bottom", fontsize=MIN_FONT_PT)


@styled
def lines(ds, var: str = "energy_per_token", x: str | None = None, *, hue: str | None = None,
          reference: str | None = None, title: str | None = None, width="one", ax=None):
    """``var`` versus ``x`` (a dimension), one line per value of ``hue`` (placement if present); with
    ``reference`` (a value of ``hue``) relative to that line, with a parity line at 1. Lines: gid ``<var>|<hue>``."""
    da = ds[var] if isinstance(var, str) else var
    name = var if isinstance(var, str) else da.name
    dims = [d for d in da.dims if da.sizes[d] > 1]
    x = x or ("batch" if "batch" in dims else dims[0])
    hue = hue if hue is not None else ("placement" if "placement" in dims and x != "placement" else None)
    keep = (x, hue) if hue else (x,)
    da, fixed = _pick(da, keep)
    if reference is not None:
        da = da / da.sel({hue: reference})
    lab, unit, scale = display(name, ds[name] if isinstance(name, str) and name in ds.variables else da)
    scale = 1.0 if reference is not None else scale
    if ax is None:
        fig, axes = figure(width)
        ax = axes[0, 0]
    fig = ax.figure
    xs = da[x].values
    huev = list(da[hue].values) if hue else [None]
    drawn = {}
    for i, h in enumerate(huev):
        y = (da.sel({hue: h}) if hue else da).transpose(x).values * scale
        kw = {}
        if hue == "placement":
            kw = dict(color=PLACEMENT_COLORS.get(str(h)), marker=PLACEMENT_MARKERS.get(str(h), "o"))
        else:
            kw = dict(marker="o")
        text = (f"experts in {placement_label(h)}" if hue == "placement" else f"{hue} = {h}") if hue else lab
        same = [k for k, v in drawn.items() if np.allclose(v, y, rtol=1e-6, equal_nan=True)]
        if same:  # an identical line would hide under the first: say so and draw it dashed with open markers
            text += f" (= {placement_label(same[0]) if hue == 'placement' else same[0]})"
            kw.update(ls=(0, (3, 2)), mfc="none")
        drawn[h] = y
        (line,) = ax.plot(xs, y, label=text, zorder=3 + (len(huev) - i) * 0.01, **kw)
        line.set_gid(f"{name}|{h}" if hue else str(name))
    _x_axis(ax, ds, x, xs)
    y = np.asarray(da.values, float) * scale
    yy = y[np.isfinite(y) & (y > 0)]
    if reference is not None:
        ax.axhline(1.0, color="k", lw=0.8, ls="--", label=f"parity with {placement_label(reference)}", zorder=2)
        ax.set_ylabel(f"{lab} / {placement_label(reference) if hue == 'placement' else reference}")
    else:
        ax.set_ylabel(label(name, da, unit))
    if yy.size and yy.max() / yy.min() > 30:
        ax.set_yscale("log")
    plain_ticks(ax, "y")
    note = _fixed_note(fixed)
    ax.set_title(title or (_title_of(ds) + (f"\n{note}" if note else "")))
    if hue or reference is not None:
        legend(ax)
    return fig


def _x_axis(ax, ds, x: str, xs):
    """Batch as plain powers of two; another swept value labelled, log-scaled over a wide range, a tick at every
    value of a short sweep."""
    if x == "batch":
        batch_axis(ax, xs)
        return
    ax.set_xlabel(label(x, ds[x] if x in ds.variables else None))
    xv = np.asarray(xs)
    if np.issubdtype(xv.dtype, np.number) and np.all(xv > 0) and xv.max() / xv.min() > 30:
        ax.set_xscale("log")
        ax.set_xlim(xv.min() / 1.25, xv.max() * 1.25)
    plain_ticks(ax, "x")
    if np.issubdtype(xv.dtype, np.number) and len(xv) <= (8 if ax.get_xscale() == "linear" else 4):
        ax.set_xticks(xv, [plain(v) for v in xv])
        ax.xaxis.set_minor_locator(mticker.NullLocator())


def ratio(ds, var: str = "energy_per_token", reference: str = "hbm", x: str | None = None, **kw):
    """``var`` relative to a reference placement, one line per placement (versus batch if present)."""
    return lines(ds, var, x, hue="placement", reference=reference, **kw)


@styled
def heatmap(da, x: str, y: str, *, name: str | None = None, title: str | None = None, width="one",
            masked_label: str = "never", cmap: str = "viridis", log: bool | None = None, ax=None):
    """A map of ``da`` over (y, x) with every cell annotated; NaN cells grey and labelled ``masked_label``.
    The mesh carries gid ``map|<name>``; its array is ``da`` row-major over (y, x) with NaN masked."""
    import matplotlib.colors as mcolors

    name = name or str(da.name)
    g, fixed = _pick(da, (x, y))
    g = g.transpose(y, x)
    v = np.asarray(g.values, float)
    fin = v[np.isfinite(v)]
    lab, unit, scale = display(name, da)
    if ax is None:
        fig, axes = figure(width, 2.8 if width == "one" else 3.0)
        ax = axes[0, 0]
    fig = ax.figure
    if log is None:
        log = fin.size > 0 and fin.min() > 0 and fin.max() / fin.min() > 10
    flat = fin.size > 0 and np.ptp(fin) <= 5e-3 * np.abs(fin).max()    # no information in colour
    norm = (mcolors.LogNorm(fin.min(), fin.max()) if log else mcolors.Normalize(fin.min(), fin.max())) \
        if fin.size and not flat else None
    if flat:
        cmap = mcolors.ListedColormap(["#DCE9F5"])
    cm = plt.get_cmap(cmap).with_extremes(bad=NEVER_COLOR)
    ny, nx = v.shape
    mesh = ax.pcolormesh(np.arange(nx + 1) - 0.5, np.arange(ny + 1) - 0.5, np.ma.masked_invalid(v * scale),
                         norm=norm, cmap=cm)
    mesh.set_gid(f"map|{name}")
    for j in range(ny):
        for i in range(nx):
            c = v[j, i]
            dark = np.isfinite(c) and norm is not None and norm(c * scale) < 0.5
            ax.text(i, j, masked_label if not np.isfinite(c) else plain(c * scale), ha="center", va="center",
                    fontsize=MIN_FONT_PT, color="w" if dark else "k")
    ax.set_xticks(np.arange(nx), [str(t) for t in g[x].values])
    ax.set_yticks(np.arange(ny), [str(t) for t in g[y].values])
    ax.grid(False)
    ax.set_xlabel(label(x, da[x] if x in da.coords else None))
    ax.set_ylabel(label(y, da[y] if y in da.coords else None))
    if norm is not None:
        cb = fig.colorbar(mesh, ax=ax, pad=0.02)
        cb.set_label(label(name, da, unit))
        cb.ax.yaxis.set_major_formatter(mticker.FuncFormatter(plain))
        cb.ax.yaxis.set_minor_formatter(mticker.NullFormatter())
        cb.ax.tick_params(labelsize=RC["ytick.labelsize"])
    note = _fixed_note(fixed)
    if flat:
        note = (note + "; " if note else "") + f"the same {plain(float(fin.mean()) * scale)} {unit} in every cell"
    ax.set_title(title or lab)
    if note:
        ax.set_title((title or lab) + "\n" + note)
    return fig
