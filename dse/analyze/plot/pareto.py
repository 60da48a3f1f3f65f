"""The Pareto front of a search's trials, with the designs on it labelled (dse.plot)."""
from __future__ import annotations

import numpy as np

from dse.analyze.plot.style import (MIN_FONT_PT, PLACEMENT_COLORS, PLACEMENT_MARKERS, display, figure, label,
                                    placement_label, plain, plain_ticks, styled)


# ---------------------------------------------------------------- Pareto front


def limit_text(name: str, lo: float, hi: float) -> str:
    """A constraint in words and display units: step_latency <= 0.05 -> "latency per output token <= 50 ms"."""
    text, unit, scale = display(name)
    sep = "" if unit in ("%", "") else " "
    if hi < float("inf"):
        return f"{text} <= {plain(hi * scale)}{sep}{unit}"
    return f"{text} >= {plain(lo * scale)}{sep}{unit}"


def _bounds(ds) -> dict:
    """{parameter: (low, high) or [choices]} of a search's space (trials.nc / pareto.nc ``search_bounds``)."""
    import json

    try:
        return json.loads(ds.attrs.get("search_bounds", "{}"))
    except ValueError:
        return {}


def front_variables(ds) -> tuple[list[str], dict]:
    """What a front (the trials with ``pareto``, or a pareto.nc) says about the search's parameters: the names that
    vary along it, and {name: (value, bound)} of those with one value on every front design, ``bound`` "lower
    bound" / "upper bound" where that value is the end of the parameter's range (the front sits on it: the
    answer holds only for that value), else "" ."""
    bounds = _bounds(ds)
    on = np.asarray(ds["pareto"].values, bool) if "pareto" in ds and "trial" in ds["pareto"].dims else None
    varying, fixed = [], {}
    for name in bounds:
        if name not in ds.variables or set(ds[name].dims) - {"trial"}:
            continue
        values = np.atleast_1d(ds[name].values)
        if on is not None and values.size == on.size:
            values = values[on]
        if values.size == 0:
            continue
        distinct = list(dict.fromkeys(v.item() if hasattr(v, "item") else v for v in values))
        b = bounds[name]
        at = _at_bound(distinct, b) if len(distinct) > 1 else None
        if at is not None:   # a continuous parameter pressed against a bound on the whole front
            lo_v, hi_v = min(distinct), max(distinct)
            fixed[name] = (f"{plain(lo_v)}-{plain(hi_v)}", at)
            continue
        if len(distinct) > 1:
            varying.append(name)
            continue
        v = distinct[0]
        where = ""
        if isinstance(b, list) and len(b) == 2 and all(isinstance(t, (int, float)) for t in b) and \
                isinstance(v, (int, float)) and not isinstance(v, bool) and b[0] < b[1]:
            where = "lower bound" if np.isclose(v, b[0], rtol=1e-9) else "upper bound" if np.isclose(
                v, b[1], rtol=1e-9) else ""
        fixed[name] = (v, where)
    return varying, fixed


#: How close to a bound (share of the range; of its logarithm for a range over a decade) every front value must be
#: for the front to sit on that bound.
NEAR_BOUND = 0.02


def _at_bound(values, bound) -> str | None:
    """"lower bound" / "upper bound" when every (numeric) value lies within NEAR_BOUND of that end of the range."""
    if not (isinstance(bound, list) and len(bound) == 2 and all(isinstance(t, (int, float)) for t in bound)):
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None
    lo, hi = float(bound[0]), float(bound[1])
    if not lo < hi:
        return None
    log = lo > 0 and hi / lo >= 10
    f = (lambda x: np.log(x)) if log else (lambda x: x)
    span = f(hi) - f(lo)
    where = [(f(float(v)) - f(lo)) / span for v in values]
    if all(w <= NEAR_BOUND for w in where):
        return "lower bound"
    if all(w >= 1 - NEAR_BOUND for w in where):
        return "upper bound"
    return None


def fixed_note(fixed: dict) -> str:
    """``same on the whole front: gpu = b200, flash_read_pj_per_bit = 1 (its lower bound)``; "" if none."""
    if not fixed:
        return ""
    parts = [f"{n} = {plain(v) if isinstance(v, float) else v}" + (f" (its {b}: the front sits on it)" if b else "")
             for n, (v, b) in fixed.items()]
    return "same on the whole front: " + ", ".join(parts)


#: Parameters :func:`design_label` writes in its own words; any other that varies along a front is added as name=value.
LABELLED = ("n_gpus", "gpu", "placement", "hbm_cache_fraction", "warm_fraction", "dynamic_cache_experts",
            "offload_path", "batch", "tp", "dp", "ep")


def design_label(ds, i: int) -> str:
    """A front point's configuration: ``8xB200 ddr 12.5% B=64``."""
    def v(name):
        if name not in ds.variables:
            return None
        a = ds[name]
        return a.values[i].item() if "trial" in a.dims else a.values.item()

    parts = []
    n, gpu = v("n_gpus"), v("gpu")
    if gpu is not None:
        g = str(gpu).replace("-sxm", "").upper()
        parts.append(f"{int(n)}x{g}" if n is not None else g)
    p = v("placement")
    if p is not None:
        parts.append(str(p))
        c = v("hbm_cache_fraction")
        if str(p) != "hbm" and c:
            parts.append(f"{100 * c:.3g}%")
        warm, slots = v("warm_fraction"), v("dynamic_cache_experts")
        if str(p) != "hbm" and warm:
            parts.append(f"+{100 * warm:.3g}% warm")
        if str(p) != "hbm" and slots:
            parts.append(f"LRU {int(slots)}")
        path = v("offload_path")
        if str(p) != "hbm" and path == "direct":
            parts.append("direct")
    b = v("batch")
    if b is not None:
        parts.append(f"B={int(b)}")
    if "pareto" in ds.variables:   # every other parameter that varies along the front
        varying, _ = front_variables(ds)
        for name in varying:
            if name not in LABELLED:
                val = v(name)
                parts.append(f"{name.rsplit('.', 1)[-1]}={plain(val) if isinstance(val, float) else val}")
    return " ".join(parts)


@styled
def pareto(ds, objectives=("energy_per_token", "capacity_cost_usd"), *, mark: dict | None = None,
           exact: dict | None = None, title: str | None = None, max_labels: int = 12):
    """A search's trials: energy per token versus capacity cost, the front coloured by placement and labelled
    with its configuration, dominated and infeasible trials muted, the paper's fixed scenarios (``mark``) and the
    exact front (``exact``, dashed); a right panel with the hypervolume history normalised to the exact front
    (<= 1) when it is known. Front points carry gid ``front``; the normalised history ``hypervolume``."""
    import textwrap

    yname, xname = objectives[0], objectives[1]
    has_hv = "hypervolume" in ds and ds.attrs.get("method") != "exhaustive"   # an enumeration has no progress
    fig, axes = figure("two", 3.6, ncols=2 if has_hv else 1,
                       gridspec_kw={"width_ratios": [2.4, 1]} if has_hv else None)
    ax = axes[0, 0]
    scale = (display(xname)[2], display(yname)[2])
    x, y = ds[xname].values * scale[0], ds[yname].values * scale[1]
    front = _trials(ax, ds, x, y, exact, scale)
    if mark is not None:
        _marks(ax, mark, scale)
    for axis, v in (("x", x), ("y", y)):
        v = v[np.isfinite(v) & (v > 0)]
        if len(v) and v.max() / v.min() > 20:
            getattr(ax, f"set_{axis}scale")("log")
    ax.set_xlabel(label(xname, ds[xname]))
    ax.set_ylabel(label(yname, ds[yname]))
    if front.size:
        _zoom(ax, x[front], y[front], mark, scale)
    plain_ticks(ax, "x")
    plain_ticks(ax, "y")
    label_points(ax, [(x[i], y[i], design_label(ds, int(i))) for i in front], max_labels)
    note = fixed_note(front_variables(ds)[1]) if "pareto" in ds.variables else ""
    fig.suptitle(textwrap.fill(title or "energy per token vs capacity cost", 110)
                 + (f"\n{textwrap.fill(note, 110)}" if note else ""))
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.2, markerscale=1.0)
    if has_hv:
        _hypervolume_panel(axes[0, 1], ds, exact)
    return fig


def _trials(ax, ds, x, y, exact, scale):
    """Infeasible and dominated trials muted, the exact front dashed, the search's front coloured by placement;
    returns the front's trial indices in order of x."""
    feas, par = ds["feasible"].values.astype(bool), ds["pareto"].values.astype(bool)
    ax.scatter(x[~feas], y[~feas], s=4, marker="x", color="0.85", lw=0.5, label="infeasible", zorder=1)
    ax.scatter(x[feas & ~par], y[feas & ~par], s=5, color="0.65", lw=0, label="dominated", zorder=2)
    if exact is not None and len(exact["F"]):
        E = exact["F"][np.argsort(exact["F"][:, 1])]
        ax.step(E[:, 1] * scale[0], E[:, 0] * scale[1], where="post", ls="--", color="k", lw=0.8,
                label="exact front", zorder=3)
    front = np.flatnonzero(par)
    front = front[np.argsort(x[front])]
    ax.step(x[front], y[front], where="post", color="0.3", lw=0.9, zorder=3)
    pl = ds["placement"].values if "placement" in ds.variables and ds["placement"].dims == ("trial",) else None
    if pl is not None:
        for p in dict.fromkeys(pl[front]):
            sel = front[pl[front] == p]
            ax.scatter(x[sel], y[sel], s=22, color=PLACEMENT_COLORS.get(str(p), "k"), edgecolor="k", lw=0.4,
                       marker=PLACEMENT_MARKERS.get(str(p), "o"), label=f"front: {placement_label(p)}", zorder=5)
    pts = ax.scatter(x[front], y[front], s=0, zorder=0)
    pts.set_gid("front")
    return front


def _marks(ax, mark: dict, scale):
    """The paper's fixed scenarios as stars (open where they miss the limits)."""
    for p in PLACEMENT_MARKERS:
        sel = np.array([i for i, lab in enumerate(mark["labels"]) if lab.get("placement") == p], dtype=int)
        if not sel.size:
            continue
        fx, fy, ok = mark["F"][sel, 1] * scale[0], mark["F"][sel, 0] * scale[1], mark["feasible"][sel]
        paper = mark.get("system_label") or "paper"
        ax.scatter(fx, fy, s=70, marker="*", facecolor=np.where(ok, PLACEMENT_COLORS[p], "none").tolist(),
                   edgecolor="k" if ok.all() else PLACEMENT_COLORS[p], lw=0.7, zorder=4,
                   label=f"{paper}: {placement_label(p)}" + ("" if ok.all() else " (open: misses limits)"))


def _zoom(ax, fx, fy, mark, scale):
    """Zoom on the front (the question) and the marks, with room for the front's labels; muted trials may run off
    the axes."""
    for axis, v in (("x", fx), ("y", fy)):
        lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
        if mark is not None:
            mv = (mark["F"][:, 1] * scale[0]) if axis == "x" else (mark["F"][:, 0] * scale[1])
            lo, hi = min(lo, float(np.nanmin(mv))), max(hi, float(np.nanmax(mv)))
        if getattr(ax, f"get_{axis}scale")() == "log" and lo > 0:
            getattr(ax, f"set_{axis}lim")(lo / 1.3, hi * (2.2 if axis == "x" else 1.3))
        else:
            span = hi - lo or abs(hi) or 1.0
            getattr(ax, f"set_{axis}lim")(lo - 0.05 * span, hi + (0.45 if axis == "x" else 0.08) * span)


def _hypervolume_panel(bx, ds, exact):
    """The hypervolume history, normalised to the exact front's (or to the final front's when it is not known)."""
    hv = np.asarray(ds["hypervolume"].values, float)
    ref = exact.get("hypervolume") if exact is not None else None
    final = float(np.nanmax(hv)) if np.isfinite(hv).any() else None
    shown_hv = hv / ref if ref else (hv / final if final else hv)     # <= 1: a fraction of a front's
    (h,) = bx.plot(np.arange(1, len(hv) + 1), shown_hv, color=PLACEMENT_COLORS["hbm"])
    h.set_gid("hypervolume")
    if ref:
        bx.axhline(1.0, color="k", ls="--", lw=0.8)
    bx.set_ylim(0, 1.05)
    bx.set_ylabel("hypervolume / exact front's" if ref else "hypervolume / final front's")
    bx.set_xlim(0, len(hv))
    bx.set_xlabel("completed trials")
    bx.set_title("search progress")
    plain_ticks(bx, "x")

def _crosses(bb, segments) -> bool:
    """Whether a display box touches any of the display-space segments ((x0, y0), (x1, y1)) (sampled)."""
    for (x0, y0), (x1, y1) in segments:
        for t in np.linspace(0.0, 1.0, 24):
            px, py = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
            if bb.x0 - 1 <= px <= bb.x1 + 1 and bb.y0 - 1 <= py <= bb.y1 + 1:
                return True
    return False


def _line_segments(ax) -> list:
    """The display-space segments of the axes' visible lines (the front's steps, the exact front)."""
    segs = []
    for line in ax.lines:
        if not line.get_visible():
            continue
        path = line._get_transformed_path().get_fully_transformed_path()   # steps included
        v = path.vertices
        segs += [(tuple(a), tuple(b)) for a, b in zip(v[:-1], v[1:]) if np.all(np.isfinite([*a, *b]))]
    return segs


def label_points(ax, pts, max_labels: int = 12):
    """Annotate (x, y, text) points, skipping points that sit on an already labelled one, each label placed at
    the first of a few offsets where it overlaps no other label, no plotted line (the front) and stays inside the
    axes (gid ``front_label``)."""
    fig = ax.figure
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    abox = ax.get_window_extent(r)
    segments = _line_segments(ax)
    disp = [ax.transData.transform((px, py)) for px, py, _ in pts]
    keep = []
    for k, d in enumerate(disp):
        if all(np.hypot(*(d - disp[j])) > 6 for j in keep) and np.all(np.isfinite(d)):
            keep.append(k)
    if len(keep) > max_labels:
        keep = [keep[int(round(i))] for i in np.linspace(0, len(keep) - 1, max_labels)]
    marks = [(disp[k] - 4, disp[k] + 4) for k in keep]
    placed = []
    offsets = [(6, 4, "left"), (6, -15, "left"), (-6, 4, "right"), (-6, -15, "right"), (6, 14, "left"),
               (6, -24, "left"), (-6, 14, "right"), (-6, -24, "right"), (12, -5, "left")]
    for k in keep:
        px, py, text = pts[k]
        for dx, dy, ha in offsets:
            t = ax.annotate(text, (px, py), xytext=(dx, dy), textcoords="offset points", ha=ha, va="bottom",
                            fontsize=MIN_FONT_PT, color="0.15", zorder=6,
                            bbox=dict(fc="w", ec="none", alpha=0.75, pad=0.4))
            bb = t.get_window_extent(r)
            inside = abox.x0 <= bb.x0 and bb.x1 <= abox.x1 and abox.y0 <= bb.y0 and bb.y1 <= abox.y1
            clash = any(bb.overlaps(o) for o in placed) or any(
                bb.x0 < hi[0] and bb.x1 > lo[0] and bb.y0 < hi[1] and bb.y1 > lo[1] for lo, hi in marks) or \
                _crosses(bb, segments)
            if inside and not clash:
                t.set_gid("front_label")
                placed.append(bb)
                break
            t.remove()
