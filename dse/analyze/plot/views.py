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
    # relative to a placement only beside others (a lone placement normalised to itself would be all 1.0)
    relative = normalize is not None and normalize in [str(p) for p in e.placement.values] and e.sizes["placement"] > 1
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
    if "fits" in ds:
        f = ds["fits"].sel({d: v for d, v in fixed.items() if d in ds["fits"].dims})
        f = f.isel({d: 0 for d in f.dims if d not in ("batch", "placement")})
        _hatch_unfit(ax, total, f, placements, batches)
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
    short = bar_letters(placements)
    letters = ", ".join(f"{short[p]}: {placement_label(p)}" for p in placements if short[p] != placement_label(p))
    letters = (letters or ", ".join(map(placement_label, placements))) if n > 1 else \
        f"experts in {placement_label(placements[0])}"
    note = _fixed_note({**_size_one(ds), **fixed})
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
            short = bar_letters(placements)[p]
            for xi, top in zip(x, bottom):
                ax.text(xi, top, short, ha="center", va="bottom", fontsize=MIN_FONT_PT,
                        rotation=90 if len(short) > 1 else 0)


def bar_letters(placements) -> dict:
    """The mark over each placement's bar: its initial where the initials differ (H, D, S), else its whole label
    (HBM and HBF share an H)."""
    initials = [placement_label(p)[0] for p in placements]
    unique = len(set(initials)) == len(initials)
    return {p: placement_label(p)[0] if unique else placement_label(p) for p in placements}


def _hatch_unfit(ax, total, fits, placements, batches):
    """Hatch (and outline) every bar whose configuration does not fit its capacity; gid ``unfit|placement|batch``."""
    from matplotlib.patches import Rectangle

    n = len(placements)
    w = 0.84 / n
    first = True
    for i, p in enumerate(placements):
        for j, b in enumerate(batches):
            at = {d: v for d, v in (("placement", p), ("batch", b)) if d in fits.dims}
            if bool(fits.sel(at).values):
                continue
            x = j + (i - (n - 1) / 2) * w
            h = float(total.sel(placement=p, batch=b))
            rect = Rectangle((x - w * 0.45, 0), w * 0.9, h, fill=False, hatch="xxxx", ec="k", lw=0.6,
                             label=UNFIT_LABEL if first else "_nolegend_", zorder=4)
            rect.set_gid(f"unfit|{p}|{b}")
            ax.add_patch(rect)
            first = False


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
    unfit_seen = False
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
        fit = _fits_along(ds, {**fixed, **({hue: h} if hue else {})}, x, xs)
        if fit is not None:
            unfit_seen |= mark_unfit(ax, xs, y, fit, f"unfit|{name}|{h}" if hue else f"unfit|{name}",
                                     UNFIT_LABEL if not unfit_seen else None) is not None
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
    note = _fixed_note({**_size_one(ds), **fixed})
    ax.set_title(title or (_title_of(ds) + (f"\n{note}" if note else "")))
    if hue or reference is not None or unfit_seen:
        legend(ax)
    return fig


def _size_one(ds) -> dict:
    """{dimension: value} of a result's swept dimensions that hold one value (shown in the caption)."""
    if not hasattr(ds, "data_vars"):
        return {}
    return {d: (ds[d].values[0].item() if hasattr(ds[d].values[0], "item") else ds[d].values[0])
            for d in ds.dims if ds.sizes[d] == 1 and d in ds.coords and d not in ("component", "cost_part")}


def _fits_along(ds, at: dict, x: str, xs):
    """``fits`` of a result along ``x`` at the other dimensions' values ``at`` (None where there is no ``fits``)."""
    if not hasattr(ds, "data_vars") or "fits" not in ds:
        return None
    f = ds["fits"]
    f = f.sel({d: v for d, v in at.items() if d in f.dims})
    f = f.isel({d: 0 for d in f.dims if d != x})
    return np.broadcast_to(np.asarray(f.values, bool), (len(xs),)) if x not in f.dims else np.asarray(f.values, bool)


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
            masked_label: str = "never", cmap: str = "viridis", log: bool | None = None, ax=None, fits=None):
    """A map of ``da`` over (y, x) with every cell annotated; NaN cells grey and labelled ``masked_label``.
    The mesh carries gid ``map|<name>``; its array is ``da`` row-major over (y, x) with NaN masked. With ``fits``
    (a result's ``fits``), cells that do not fit are hatched (gid ``unfit|<y>|<x>``) and named in the legend."""
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
    _annotate_cells(ax, v, scale, norm, masked_label)
    if fits is not None:
        _hatch_unfit_cells(fig, ax, fits, fixed, g, x, y, v)
    ax.set_xlim(-0.5, nx - 0.5)     # exactly the cells (the style's round-number limits would add empty bands)
    ax.set_ylim(-0.5, ny - 0.5)
    ax.set_xticks(np.arange(nx), [plain(t) if isinstance(t, (float, np.floating)) else str(t) for t in g[x].values])
    ax.set_yticks(np.arange(ny), [plain(t) if isinstance(t, (float, np.floating)) else str(t) for t in g[y].values])
    ax.grid(False)
    ax.set_xlabel(label(x, da[x] if x in da.coords else None))
    ax.set_ylabel(label(y, da[y] if y in da.coords else None))
    if norm is not None:
        _map_colorbar(fig, ax, mesh, label(name, da, unit))
    note = _fixed_note(fixed)
    if flat:
        note = (note + "; " if note else "") + f"the same {plain(float(fin.mean()) * scale)} {unit} in every cell"
    ax.set_title(title or lab)
    if note:
        ax.set_title((title or lab) + "\n" + note)
    return fig


def _annotate_cells(ax, v, scale, norm, masked_label: str) -> None:
    """Each cell's value (``masked_label`` where NaN), white on dark colours."""
    ny, nx = v.shape
    for j in range(ny):
        for i in range(nx):
            c = v[j, i]
            dark = np.isfinite(c) and norm is not None and norm(c * scale) < 0.5
            ax.text(i, j, masked_label if not np.isfinite(c) else plain(c * scale), ha="center", va="center",
                    fontsize=MIN_FONT_PT, color="w" if dark else "k")


def _hatch_unfit_cells(fig, ax, fits, fixed, g, x: str, y: str, v) -> None:
    """Hatch the cells that do not fit (gid ``unfit|<y>|<x>``) and name them in the figure's legend."""
    from matplotlib.patches import Rectangle

    ny, nx = v.shape
    f = fits.sel({d: v for d, v in fixed.items() if d in fits.dims})
    f = f.isel({d: 0 for d in f.dims if d not in (x, y)})
    f = np.broadcast_to(np.asarray(f.broadcast_like(g).transpose(y, x).values, bool), v.shape)
    for j in range(ny):
        for i in range(nx):
            if not f[j, i]:
                rect = Rectangle((i - 0.5, j - 0.5), 1, 1, fill=False, hatch="///", ec="0.4", lw=0.0,
                                 label=UNFIT_LABEL if f.all(axis=None) or (j, i) == tuple(np.argwhere(~f)[0])
                                 else "_nolegend_")
                rect.set_gid(f"unfit|{g[y].values[j]}|{g[x].values[i]}")
                ax.add_patch(rect)
    if not f.all():
        fig.legend(handles=[p for p in ax.patches if p.get_label() == UNFIT_LABEL], loc="outside lower center",
                   handlelength=1.2)


def _map_colorbar(fig, ax, mesh, text: str) -> None:
    """The map's colour bar, labelled ``text``, with plain tick labels."""
    cb = fig.colorbar(mesh, ax=ax, pad=0.02)
    cb.set_label(text)
    cb.ax.yaxis.set_major_formatter(mticker.FuncFormatter(plain))
    cb.ax.yaxis.set_minor_formatter(mticker.NullFormatter())
    cb.ax.tick_params(labelsize=RC["ytick.labelsize"])


# ---------------------------------------------------------------- small multiples: every swept dimension shown

#: Most panels of one figure; a larger product of the facet dimensions shows evenly spaced values (endpoints
#: kept) and says so in the caption.
MAX_PANELS = 12
UNFIT_MARKER = dict(marker="x", s=22, color="k", linewidths=1.0, zorder=6)
UNFIT_LABEL = "does not fit (capacity)"
#: Axis labels short enough for a small panel.
SHORT_LABELS = {"energy_per_output_token": "J / output token", "ttft": "TTFT (ms)", "tpot": "TPOT (ms)",
                "energy_per_token": "J / token", "step_latency": "latency (ms)"}


def value_text(dim: str, v) -> str:
    """``top_k = 2``, ``placement = SSD``, ``flash_read_pj_per_bit = 102`` (plain numbers, short names)."""
    if dim == "placement" or dim.endswith("_placement"):
        return f"{dim} = {placement_label(v)}"
    short = dim.rsplit(".", 1)[-1]
    return f"{short} = {plain(v) if isinstance(v, (int, float, np.number)) else v}"


def _spread(n: int, k: int) -> list[int]:
    """``k`` evenly spaced indices of ``n`` values, both ends kept."""
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, max(k, 1))}) if k < n else list(range(n))


def choose_axes(da, x: str | None = None, hue: str | None = None):
    """(x, hue, facet dimensions) of a variable's swept dimensions: x the numeric dimension with the most values
    (batch first among equals), hue the placement (else the dimension with the fewest values), facets the rest."""
    dims = [d for d in da.dims if da.sizes[d] > 1]
    numeric = [d for d in dims if np.issubdtype(np.asarray(da[d].values).dtype, np.number)]
    if x is None:
        pool = numeric or dims
        x = max(pool, key=lambda d: (da.sizes[d], d == "batch")) if pool else None
    rest = [d for d in dims if d != x]
    if hue is None and rest:
        hue = "placement" if "placement" in rest else min(rest, key=lambda d: da.sizes[d])
    return x, hue, [d for d in rest if d != hue]


def _panels(da, facet_dims: list[str], most: int = MAX_PANELS):
    """The facet combinations drawn ({dim: value} each) and a note for any dimension not shown whole."""
    import itertools

    sizes = [da.sizes[d] for d in facet_dims]
    keep = list(sizes)
    while int(np.prod(keep)) > most:   # thin the largest dimension first
        i = int(np.argmax(keep))
        keep[i] = max(2, keep[i] // 2) if keep[i] > 2 else 1
    notes = [f"{k} of {n} values of {d} shown" for d, k, n in zip(facet_dims, keep, sizes) if k < n]
    values = [[da[d].values[i] for i in _spread(n, k)] for d, k, n in zip(facet_dims, keep, sizes)]
    return [dict(zip(facet_dims, combo)) for combo in itertools.product(*values)] or [{}], notes


def mark_unfit(ax, xs, y, fit, gid: str, label: str | None = None):
    """A black x over every point that does not fit its capacity (``fit`` false; on a dense line every few
    points); gid ``unfit|...``."""
    bad = ~np.asarray(fit, bool) & np.isfinite(np.asarray(y, float))
    if len(bad) > 12:
        thin = np.zeros(len(bad), bool)
        thin[:: max(1, len(bad) // 10)] = True
        thin[-1] = True
        bad &= thin
    if not bad.any():
        return None
    pts = ax.scatter(np.asarray(xs)[bad], np.asarray(y, float)[bad], label=label or "_nolegend_", **UNFIT_MARKER)
    pts.set_gid(gid)
    return pts


@styled
def facets(ds, var="energy_per_token", x: str | None = None, hue: str | None = None, *, title: str | None = None,
           variables=None):
    """``var`` versus ``x``, one line per ``hue`` value, in small multiples over every other swept dimension (one
    panel per combination, up to :data:`MAX_PANELS`; the values shown are in each panel's title, the fixed ones in
    the figure's caption). With ``variables`` (several names) each is a column and the combinations are rows.
    Points that do not fit (``fits`` false) carry a black x. Lines: gid ``<var>|<hue>|<panel>``; unfit markers
    ``unfit|<var>|<hue>|<panel>``."""
    names = list(variables) if variables else [var]
    base = ds[names[0]]
    for n in names[1:]:
        base = base + 0 * ds[n] if set(ds[n].dims) - set(base.dims) else base
    fixed = {**_size_one(ds), **{d: base[d].values[0] for d in base.dims if base.sizes[d] == 1}}
    x, hue, facet_dims = choose_axes(base, x, hue)
    ncol_v = len(names)
    panels, notes = _panels(base, facet_dims, MAX_PANELS if ncol_v == 1 else 4)   # rows of several variables: 4
    nrows, ncols = _grid_shape(len(panels), ncol_v)
    width = "two" if ncols > 1 else "one"
    fig, axes = figure(width, 0.9 + 1.55 * nrows + (0.25 if hue else 0), nrows=nrows, ncols=ncols,
                       sharex=True, sharey="col" if ncol_v > 1 else True)
    fits = ds["fits"] if "fits" in ds else None
    hues = list(base[hue].values) if hue else [None]
    unfit_seen = False
    for k in range(nrows * ncols):
        r, c = divmod(k, ncols)
        ax = axes[r, c]
        if ncol_v > 1:
            p, name = panels[r], names[c]
        elif k < len(panels):
            p, name = panels[k], names[0]
        else:
            ax.set_visible(False)
            continue
        da = ds[name]
        lab, unit, scale = display(name, da)
        unfit_seen = _panel_lines(ax, da, base, name, p, x, hue, hues, fits, lab, scale, k == 0, unfit_seen)
        bottom = r == nrows - 1 or (ncol_v == 1 and k + ncols >= len(panels))   # the lowest panel of its column
        _panel_axes(ax, ds, da, base, x, scale, ncols, x_label=bottom)
        _panel_title(ax, p, name, da, lab, unit, by_variable=ncol_v > 1)
    if ncol_v == 1:
        lab, unit, _ = display(names[0], ds[names[0]])
        fig.supylabel(label(names[0], ds[names[0]], unit), fontsize=MIN_FONT_PT)
    note = "; ".join([s for s in (_fixed_note(fixed), *notes) if s])
    fig.suptitle((title or _title_of(ds)) + (f"\n{note}" if note else ""), fontsize=RC["axes.titlesize"])
    _figure_legend(fig, width)
    return fig


def _grid_shape(n_panels: int, ncol_v: int) -> tuple[int, int]:
    """(rows, columns) of the panels: a column per variable when several, else up to 4 panels a row."""
    if ncol_v > 1:
        nrows, ncols = n_panels, ncol_v
    else:
        ncols = min(n_panels, 4)
        nrows = int(np.ceil(n_panels / ncols))
    return nrows, ncols


def _panel_lines(ax, da, base, name: str, p: dict, x: str, hue, hues, fits, lab: str, scale, first: bool,
                 unfit_seen: bool) -> bool:
    """One line per ``hue`` value of panel ``p`` (legend labels on the ``first`` panel only), unfit points
    marked; returns whether an unfit marker has been drawn (this panel's or an earlier one)."""
    key = ",".join(f"{d}={v}" for d, v in p.items())
    for i, h in enumerate(hues):
        sel = {**p, **({hue: h} if hue else {})}
        sel = {d: v for d, v in sel.items() if d in da.dims}
        line_da = da.sel(sel)
        line_da = line_da.isel({d: 0 for d in line_da.dims if d != x})
        xs = line_da[x].values if x in line_da.dims else base[x].values
        y = (line_da.values if x in line_da.dims else np.full(len(xs), float(line_da))) * scale
        kw = dict(color=PLACEMENT_COLORS.get(str(h)), marker=PLACEMENT_MARKERS.get(str(h), "o")) \
            if hue == "placement" else dict(marker="o", color=f"C{i}")
        text = (f"experts in {placement_label(h)}" if hue == "placement" else value_text(hue, h)) if hue else lab
        if len(xs) > 12:   # a dense sweep: the line, with markers on a dozen of its points
            kw["markevery"] = max(1, len(xs) // 10)
        (line,) = ax.plot(xs, y, label=text if first else "_nolegend_", ms=3, **kw)
        line.set_gid(f"{name}|{h}|{key}" if hue else f"{name}|{key}")
        if fits is not None:
            f = fits.sel({d: v for d, v in sel.items() if d in fits.dims})
            f = f.isel({d: 0 for d in f.dims if d != x})
            f = f.broadcast_like(line_da[x]) if x not in f.dims else f
            pts = mark_unfit(ax, xs, y, f.values, f"unfit|{name}|{h}|{key}",
                             UNFIT_LABEL if not unfit_seen else None)
            unfit_seen |= pts is not None
    return unfit_seen


def _panel_axes(ax, ds, da, base, x: str, scale, ncols: int, x_label: bool) -> None:
    """A panel's x axis (its label only where ``x_label``) and a y axis logarithmic over a wide range."""
    if x == "batch":
        batch_axis(ax, base[x].values)
    else:
        _x_axis(ax, ds, x, base[x].values)
        if ax.get_xscale() == "log" and ncols > 2:   # a narrow panel: decades only
            ax.xaxis.set_major_locator(mticker.LogLocator(base=10, subs=(1.0,)))
    if not x_label:
        ax.set_xlabel("")
    yy = np.asarray(da.values, float) * scale
    yy = yy[np.isfinite(yy) & (yy > 0)]
    if yy.size and yy.max() / yy.min() > 30:
        ax.set_yscale("log")
    plain_ticks(ax, "y")


def _panel_title(ax, p: dict, name: str, da, lab: str, unit: str, by_variable: bool) -> None:
    """The panel's title (its facet values) and, with a column per variable, the variable on its y axis."""
    head = ", ".join(value_text(d, v) for d, v in p.items())
    if by_variable:   # a column per variable (named on its axis), a row per combination (in its titles)
        ax.set_title(head or lab, fontsize=MIN_FONT_PT)
        ax.set_ylabel(SHORT_LABELS.get(name, label(name, da, unit)) if head else (f"({unit})" if unit else ""))
    else:
        ax.set_title(head, fontsize=MIN_FONT_PT)


def _figure_legend(fig, width) -> None:
    """One legend under the figure with every distinct label of its panels."""
    handles, labels = [], []
    for ax in fig.axes:
        for h_, l_ in zip(*ax.get_legend_handles_labels()):
            if l_ not in labels:
                handles.append(h_)
                labels.append(l_)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 3 if width == "one" else 5),
                   columnspacing=1.0, handletextpad=0.4)
