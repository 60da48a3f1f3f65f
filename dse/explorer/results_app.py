"""Results mode's page (Panel): any dse result (NetCDF, Zarr, a dse-search output directory), a widget per
dimension, the view ``dse.plot.auto`` chooses, and for a search the Pareto front with hover and click."""
from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import panel as pn

from dse.errors import DseError
from dse.explorer import live
from dse.explorer.live_app import CSS, table_html

log = logging.getLogger("dse.explore")
#: A dimension with more values than this gets a range slider instead of a multi-choice.
MAX_CHOICES = 40
#: Variables of a search's trials shown on hover.
HOVER = ("gpu", "n_gpus", "placement", "hbm_cache_fraction", "batch", "tp", "dp", "offload_path",
         "energy_per_token", "capacity_cost_usd", "step_latency")


def locate(path) -> tuple[Path, str]:
    """The dataset file of ``path`` and its kind: ``search`` (a dse-search directory's trials.nc) or ``grid``."""
    p = Path(path)
    if not p.exists():
        raise DseError(f"dse explore: {str(p)!r} does not exist")
    if p.is_dir() and p.suffix != ".zarr":
        for name, kind in (("trials.nc", "search"), ("result.nc", "grid"), ("result.zarr", "grid"),
                           ("breakeven.nc", "grid")):
            if (p / name).exists():
                return p / name, kind
        raise DseError(f"dse explore: {str(p)!r} holds no dse output (trials.nc of dse-search, result.nc, "
                       "result.zarr or breakeven.nc)")
    return p, "grid"


def open_path(path):
    """(dataset, kind, file) of a result path; lazy (dask) for Zarr and NetCDF alike."""
    from dse.run.results import open_results

    file, kind = locate(path)
    ds = open_results(file)
    if "trial" in ds.dims and "pareto" in ds:
        kind = "search"
    return ds, kind, file


def _label(v) -> str:
    return str(v.item() if hasattr(v, "item") else v)


class ResultsApp:
    """The results page of one dataset: ``.view`` the layout, ``.selection()`` the chosen sub-dataset."""

    def __init__(self, path):
        self.ds, self.kind, self.file = open_path(path)
        self.path = str(path)
        self.error = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["dse-error"],
                                   sizing_mode="stretch_width")
        self.figure = pn.pane.PNG(None, css_classes=["dse-figure"], sizing_mode="scale_width", max_width=900)
        self.table = pn.pane.HTML("", css_classes=["dse-values", "dse-table"], stylesheets=[CSS])
        self.code = pn.pane.Markdown("", css_classes=["dse-python"], sizing_mode="stretch_width")
        self.selected = pn.pane.HTML("<p>click a point of the front to see its trial</p>",
                                     css_classes=["dse-trial", "dse-table"], stylesheets=[CSS])
        self.widgets = {}
        if self.kind == "grid":
            for d in self.ds.dims:
                if d in ("component", "cost_part"):
                    continue
                vals = self.ds[d].values if d in self.ds.coords else np.arange(self.ds.sizes[d])
                if len(vals) <= MAX_CHOICES:
                    opts = {_label(v): i for i, v in enumerate(vals)}
                    w = pn.widgets.MultiChoice(label=f"{d} ({len(vals)} values)", options=opts,
                                               value=list(range(len(vals))), css_classes=[f"dse-dim-{d}"])
                else:
                    w = pn.widgets.IntRangeSlider(label=f"{d}: index ({_label(vals[0])} .. {_label(vals[-1])})",
                                                  start=0, end=len(vals) - 1, value=(0, min(len(vals) - 1, 9)),
                                                  css_classes=[f"dse-dim-{d}"])
                w.param.watch(lambda e: self.refresh(), "value")
                self.widgets[d] = w
        self.feasible_only = pn.widgets.Checkbox(label="feasible trials only", value=False,
                                                 css_classes=["dse-feasible"])
        if self.kind == "search":
            self.feasible_only.param.watch(lambda e: self.refresh(), "value")
        self.front = pn.pane.Bokeh(None, css_classes=["dse-front"]) if self.kind == "search" else None
        self.downloads = [
            pn.widgets.FileDownload(callback=lambda f=f: self._export(f), filename=f"dse-explore.{f}",
                                    label=lab, css_classes=[f"dse-export-{f}"])
            for f, lab in (("png", "figure PNG"), ("svg", "figure SVG"), ("nc", "data NetCDF"), ("csv", "data CSV"))]
        head = pn.pane.HTML(f"<h3>{self.file}</h3><small>{self._summary()}</small>", css_classes=["dse-file"])
        side = [head, *self.widgets.values()]
        if self.kind == "search":
            side += [self.feasible_only]
        main = [self.error, self.figure]
        if self.front is not None:
            main += ["### Pareto front (hover: configuration; click: the trial's values)", self.front, self.selected]
        main += ["### Values", self.table, "### Reproduce", self.code, pn.Row(*self.downloads)]
        self.view = pn.Row(pn.Column(*side, width=340), pn.Column(*main, sizing_mode="stretch_width"),
                           sizing_mode="stretch_width")
        self.last = None
        self.refresh()

    def _summary(self) -> str:
        dims = ", ".join(f"{d} {n}" for d, n in self.ds.sizes.items())
        what = f"{self.ds.attrs.get('model', '')} on {self.ds.attrs.get('system', '')}".strip()
        return f"{self.kind}: {what}; dimensions {dims or 'none'}"

    # ------------------------------------------------------------ selection

    def indexers(self) -> dict:
        out = {}
        for d, w in self.widgets.items():
            if isinstance(w, pn.widgets.IntRangeSlider):
                out[d] = list(range(w.value[0], w.value[1] + 1))
            else:
                out[d] = sorted(w.value)
        return out

    def selection(self):
        """The chosen sub-dataset (loaded)."""
        if self.kind == "search":
            ds = self.ds
            if self.feasible_only.value:
                ds = ds.isel(trial=np.flatnonzero(ds["feasible"].values.astype(bool)))
            return ds.load()
        idx = self.indexers()
        empty = [d for d, v in idx.items() if not v]
        if empty:
            raise DseError(f"{empty[0]}: choose at least one value")
        from dse.analyze.figure_switch import MAX_AUTO_POINTS

        n = int(np.prod([len(v) for v in idx.values()])) if idx else 1
        if n > MAX_AUTO_POINTS:
            raise DseError(f"selection of {n:,} grid points: choose at most {MAX_AUTO_POINTS:,} to draw")
        return self.ds.isel(idx).load()

    def python_code(self) -> str:
        text = f"import dse\nds = dse.open_results({str(self.file)!r})"
        if self.kind == "grid":
            full = {d: list(range(self.ds.sizes[d])) for d in self.widgets}
            idx = {d: v for d, v in self.indexers().items() if v != full[d]}
            if idx:
                sel = {d: [self.ds[d].values[i].item() for i in v] for d, v in idx.items()}
                text += f"\nds = ds.sel({', '.join(f'{d}={v!r}' for d, v in sel.items())})"
        elif self.feasible_only.value:
            text += "\nds = ds.where(ds.feasible, drop=True)"
        return text + "\nfig = dse.plot.auto(ds)"

    # ------------------------------------------------------------ drawing

    def refresh(self) -> None:
        from dse.analyze import plot

        try:
            ds = self.selection()
            fig = plot.auto(ds)
        except DseError as err:
            self.error.object, self.error.visible = str(err), True
            return
        except Exception as err:  # noqa: BLE001 - shown in the page, logged; the last good view stays
            log.exception("explore: cannot draw")
            self.error.object, self.error.visible = f"cannot draw: {type(err).__name__}: {err}", True
            return
        self.error.visible = False
        self.last = ds
        self.figure.object = live.figure_png(fig)
        self.code.object = f"```python\n{self.python_code()}\n```"
        self._values(ds)
        if self.front is not None:
            self.front.object = self._front(ds)

    def _values(self, ds) -> None:
        """energy_per_token (or the search's front) of the selection as a table, up to 200 rows."""
        if self.kind == "search":
            front = np.flatnonzero(ds["pareto"].values.astype(bool))
            cols = [c for c in ("energy_per_token", "capacity_cost_usd", "step_latency") if c in ds]
            rows = [(str(int(i)), f"trial {int(ds['trial'].values[i])}") for i in front[:200]]
            self.table.object = table_html("dse-values", rows, cols,
                                           lambda i, c: live.fmt(float(ds[c].values[int(i)])),
                                           f"{len(front)} trials on the Pareto front")
            return
        var = "breakeven_flash_read_pj_per_bit" if "breakeven_flash_read_pj_per_bit" in ds else "energy_per_token"
        s = ds[var].to_series()
        if len(s) > 200:
            s = s.iloc[:200]
        rows = [(str(i), ", ".join(map(str, k if isinstance(k, tuple) else (k,)))) for i, k in enumerate(s.index)]
        vals = list(s.values)
        self.table.object = table_html("dse-values", rows, [var], lambda i, c: live.fmt(vals[int(i)]),
                                       f"{var} ({ds[var].attrs.get('units', '')}) by {', '.join(s.index.names)}")

    def _front(self, ds):
        """A Bokeh scatter of the trials: the front coloured by placement; hover names a point's configuration,
        a click shows its trial's values."""
        from bokeh.models import ColumnDataSource, HoverTool, TapTool
        from bokeh.plotting import figure

        from dse.analyze.plot import PLACEMENT_COLORS, design_label

        x, y = ds["capacity_cost_usd"].values / 1e3, ds["energy_per_token"].values * 1e3
        par = ds["pareto"].values.astype(bool)
        feas = ds["feasible"].values.astype(bool)
        pl = [str(p) for p in ds["placement"].values] if "placement" in ds.variables and \
            ds["placement"].dims == ("trial",) else ["?"] * len(x)
        data = dict(x=x, y=y, trial=ds["trial"].values.astype(int), label=[design_label(ds, i) for i in range(len(x))],
                    color=[PLACEMENT_COLORS.get(p, "#444") if par[i] else ("#bbb" if feas[i] else "#eee")
                           for i, p in enumerate(pl)],
                    size=[9 if f else 4 for f in par], front=["yes" if f else "no" for f in par])
        src = ColumnDataSource(data)
        from bokeh.models import NumeralTickFormatter

        def axis(v):
            v = v[np.isfinite(v) & (v > 0)]
            return "log" if len(v) and v.max() / v.min() > 20 else "linear"
        p = figure(width=640, height=380, x_axis_label="capacity cost ($k)", y_axis_label="energy per token (mJ)",
                   tools="pan,wheel_zoom,box_zoom,reset", x_axis_type=axis(x), y_axis_type=axis(y))
        p.xaxis.formatter = NumeralTickFormatter(format="0,0.[0]")
        p.yaxis.formatter = NumeralTickFormatter(format="0,0.[000]")
        r = p.scatter("x", "y", source=src, color="color", size="size", line_color="#333", line_width=0.3)
        p.add_tools(HoverTool(renderers=[r], tooltips=[("trial", "@trial"), ("design", "@label"),
                                                        ("energy/token", "@y{0.0000} mJ"), ("cost", "@x{0.0} $k"),
                                                        ("on the front", "@front")]))
        p.add_tools(TapTool(renderers=[r]))

        def picked(attr, old, new):
            if new:
                self.show_trial(ds, int(new[0]))
        src.selected.on_change("indices", picked)
        self._source = src
        return p

    def show_trial(self, ds, i: int) -> None:
        """A trial's values (every scalar variable along ``trial``) as a table."""
        names = [v for v in ds.data_vars if ds[v].dims == ("trial",)]
        rows = [(v, v) for v in names]
        self.selected.object = table_html("dse-trial", rows, ["value"],
                                          lambda v, c: live.fmt(live._item(ds[v].isel(trial=i))),
                                          f"trial {int(ds['trial'].values[i])}: {design_label_safe(ds, i)}")

    # ------------------------------------------------------------ export

    def _export(self, fmt: str):
        from dse.analyze import plot

        ds = self.last
        if fmt in ("png", "svg"):
            return io.BytesIO(live.figure_bytes(plot.auto(ds), fmt))
        if fmt == "nc":
            return io.BytesIO(live.netcdf_bytes(ds))
        return io.BytesIO(live.csv_bytes(ds))


def design_label_safe(ds, i: int) -> str:
    from dse.analyze.plot import design_label

    try:
        return design_label(ds, i)
    except Exception:  # noqa: BLE001 - a label is a convenience
        return ""
