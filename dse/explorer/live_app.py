"""Live mode's page (Panel): preset pickers, parameter widgets, and the views of :mod:`dse.explorer.live`."""
from __future__ import annotations

import logging
import time

import panel as pn

from dse.config.params import PARAMS
from dse.errors import DseError
from dse.explorer import live
from dse.explorer.live import NUMBERS, REQUESTS, SERVING, Settings, fmt

log = logging.getLogger("dse.explore")

CSS = """
.dse-table table {border-collapse: collapse; font-size: 13px;}
.dse-table th, .dse-table td {border-bottom: 1px solid #ddd; padding: 2px 8px; text-align: right;}
.dse-table th:first-child, .dse-table td:first-child {text-align: left;}
"""


def _presets(group: str):
    from dse.config.catalog import describe

    return {p.name: p for p in describe(group)}


def _preset_note(p) -> str:
    return f"<small><b>{p.name}</b> &mdash; {p.description}. <i>Evidence: {p.grade}</i></small>"


def _label(name: str) -> str:
    p = PARAMS[name]
    unit = f" [{p.units}]" if p.units and p.units not in ("1", "bool") else ""
    return f"{name}{unit}"


def table_html(table_id: str, rows, columns, cells, caption: str = "") -> str:
    """An HTML table whose cells carry ``data-row`` / ``data-col`` (the browser test reads them back)."""
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = []
    for key, label in rows:
        tds = "".join(f'<td data-row="{key}" data-col="{c}">{cells(key, c)}</td>' for c in columns)
        body.append(f"<tr><th>{label}</th>{tds}</tr>")
    cap = f"<caption style='caption-side: top; text-align: left'>{caption}</caption>" if caption else ""
    return f'<table id="{table_id}">{cap}<tr><th></th>{head}</tr>{"".join(body)}</table>'


class LiveApp:
    """The live page: ``.view`` is the Panel layout; ``.settings()`` the widgets' values as :class:`Settings`;
    ``.refresh()`` recomputes and redraws (what every widget change does)."""

    def __init__(self, settings: Settings | None = None):
        s = settings or Settings()
        self._preset_widgets(s)
        self._request_widgets(s)
        self._parameter_widgets()
        self._output_panes()
        self._reset_presets(initial=s)
        self._watch_widgets()
        self.tabs = self._tabs()
        self.tabs.param.watch(self._on_change, "active")
        self.view = self._layout()
        self.refresh()

    # ------------------------------------------------------------ building the page

    def _preset_widgets(self, s: Settings) -> None:
        """The preset pickers (model, system, accounting, GPU, link) and the placement / tier widgets."""
        self.models, self.systems = _presets("model"), _presets("system")
        self.accountings, self.profiles = _presets("accounting"), _presets("profile")
        self.model = pn.widgets.Select(label="model", options=list(self.models), value=s.model,
                                       css_classes=["dse-model"])
        self.system = pn.widgets.Select(label="system", options=list(self.systems), value=s.system,
                                        css_classes=["dse-system"])
        self.accounting = pn.widgets.Select(label="accounting", options=list(self.accountings), value=s.accounting,
                                            css_classes=["dse-accounting"])
        self.gpus, self.links = _presets("gpu"), _presets("link")
        parts = live.system_parts(s.system, s.model, s.accounting)
        self.gpu = pn.widgets.Select(label="GPU", options=list(self.gpus), value=s.params.get("gpu", parts["gpu"]),
                                     css_classes=["dse-gpu"])
        self.link = pn.widgets.Select(label="offload link", options=list(self.links),
                                      value=s.params.get("link", parts["link"]), css_classes=["dse-link"])
        self.preset_notes = pn.pane.HTML("", sizing_mode="stretch_width")
        self.placement = pn.widgets.CheckBoxGroup(label="placement", options=["hbm"], value=list(s.placement),
                                                  inline=True, css_classes=["dse-placement"])
        self.tier_notes = pn.pane.HTML("", sizing_mode="stretch_width")
        self.tier_presets = {}          # tier slot -> Select of the tier presets of its kind
        self.tier_box = pn.Column(sizing_mode="stretch_width")
        self.tier_grades = _presets("tier")

    def _request_widgets(self, s: Settings) -> None:
        """Batch, reference placement, request profile and the serving targets."""
        self.batch = pn.widgets.TextInput(label="batch [sequences] (list)", value=", ".join(map(str, s.batch)),
                                          css_classes=["dse-batch"])
        self.at_batch = pn.widgets.Select(label="tables at batch", options=list(s.batch), value=s.at_batch,
                                          css_classes=["dse-at-batch"])
        self.reference = pn.widgets.Select(label="break-even reference placement", options=["hbm"], value=s.reference,
                                           css_classes=["dse-reference"])
        self.profile = pn.widgets.Select(label="request profile", options=["(none)", *self.profiles],
                                         value=s.profile or "(none)", css_classes=["dse-profile"])
        self.prompt_len = pn.widgets.IntInput(label="prompt_len [tokens] (without a profile)", value=s.prompt_len,
                                              start=int(PARAMS["prompt_len"].lo), end=int(PARAMS["prompt_len"].hi),
                                              css_classes=["dse-prompt-len"], description=PARAMS["prompt_len"].doc)
        self.output_len = pn.widgets.IntInput(label="output_len [tokens] (without a profile)", value=s.output_len,
                                              start=int(PARAMS["output_len"].lo), end=int(PARAMS["output_len"].hi),
                                              css_classes=["dse-output-len"], description=PARAMS["output_len"].doc)
        self.tpot = pn.widgets.FloatInput(label="TPOT target [ms]", value=s.tpot_ms, start=1e-6,
                                          css_classes=["dse-tpot"])
        self.ttft = pn.widgets.FloatInput(label="TTFT target [s]", value=s.ttft_s, start=1e-9,
                                          css_classes=["dse-ttft"])

    def _parameter_widgets(self) -> None:
        """A numeric input per numeric parameter and a picker per choice parameter (values set by the presets)."""
        self.numeric = {}
        for name in live.numeric_params():
            p = PARAMS[name]
            cls = pn.widgets.IntInput if p.integer else pn.widgets.FloatInput
            lo, hi = p.lo, (p.hi if p.hi is not None and p.hi < 1e300 else None)
            if p.integer:
                lo, hi = int(lo), (None if hi is None else int(hi))
            self.numeric[name] = cls(label=_label(name), value=None, start=lo, end=hi,
                                     description=f"{p.doc}; allowed {p.lo:g} to {p.hi:g}" + (
                                         "; shown: the first Flash tier's preset value; a value set here applies "
                                         "to every Flash tier" if name == "flash_read_pj_per_bit" else ""),
                                     css_classes=[f"dse-{name.replace('_', '-')}"])
        self.choices = {}
        for name in live.CHOICES:
            p = PARAMS[name]
            self.choices[name] = pn.widgets.Select(label=name, options=[str(c).lower() if isinstance(c, bool) else c
                                                                       for c in p.choices],
                                                   description=p.doc, css_classes=[f"dse-{name.replace('_', '-')}"])
        self.defaults: dict = {}

    def _output_panes(self) -> None:
        """The panes that show results (error, status, tables, plots, figures, code) and the export buttons."""
        self.error = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["dse-error"],
                                   sizing_mode="stretch_width")
        self.status = pn.pane.HTML("", css_classes=["dse-status"])
        self.numbers = pn.pane.HTML("", css_classes=["dse-numbers", "dse-table"], stylesheets=[CSS])
        self.breakeven = pn.pane.HTML("", css_classes=["dse-breakeven", "dse-table"], stylesheets=[CSS])
        self.serving = pn.pane.HTML("", css_classes=["dse-serving", "dse-table"], stylesheets=[CSS])
        self.plot_breakdown = pn.pane.Bokeh(None, css_classes=["dse-plot-breakdown"], sizing_mode="stretch_width")
        self.plot_batch = pn.pane.Bokeh(None, css_classes=["dse-plot-batch"], sizing_mode="stretch_width")
        self.fig_breakdown = pn.pane.PNG(None, css_classes=["dse-figure"], sizing_mode="scale_width",
                                         max_width=900)
        self.fig_batch = pn.pane.PNG(None, css_classes=["dse-figure-batch"], sizing_mode="scale_width",
                                     max_width=600)
        self.cli = pn.pane.Markdown("", css_classes=["dse-cli"], sizing_mode="stretch_width")
        self.py = pn.pane.Markdown("", css_classes=["dse-python"], sizing_mode="stretch_width")
        self.last = None        # the last good View
        self._drawn = {}        # view name -> (layout key, data source(s)) of the Bokeh figures shown
        self._busy = False
        self.downloads = [
            pn.widgets.FileDownload(callback=lambda: self._export("png"), filename="dse-explore.png",
                                    label="figure PNG", css_classes=["dse-export-png"]),
            pn.widgets.FileDownload(callback=lambda: self._export("svg"), filename="dse-explore.svg",
                                    label="figure SVG", css_classes=["dse-export-svg"]),
            pn.widgets.FileDownload(callback=lambda: self._export("nc"), filename="dse-explore.nc",
                                    label="data NetCDF", css_classes=["dse-export-nc"]),
            pn.widgets.FileDownload(callback=lambda: self._export("csv"), filename="dse-explore.csv",
                                    label="data CSV", css_classes=["dse-export-csv"]),
        ]

    def _watch_widgets(self) -> None:
        """Preset pickers reset the parameters; every other widget recomputes."""
        for w in (self.model, self.system, self.accounting, self.gpu, self.link):
            w.param.watch(self._on_preset, "value")
        for w in (self.placement, self.batch, self.at_batch, self.reference, self.profile, self.prompt_len,
                  self.output_len, self.tpot, self.ttft,
                  *self.numeric.values(), *self.choices.values()):
            w.param.watch(self._on_change, "value")

    def _tabs(self):
        """The main area's tabs: energy, break-even, serving, paper figures, reproduce."""
        return pn.Tabs(
            ("Energy", pn.Column(self.numbers, self.plot_breakdown, self.plot_batch, sizing_mode="stretch_width")),
            ("Break-even", pn.Column("Break-even Flash read energy e* against the reference placement (at the "
                                     "tables' batch); where e* <= 0 Flash never breaks even, and the reason says why.",
                                     self.breakeven, sizing_mode="stretch_width")),
            ("Serving", pn.Column("Request metrics at the tables' batch, and the largest batch meeting the TPOT / "
                                  "TTFT targets and fitting in memory (dse.max_batch).", self.serving,
                                  sizing_mode="stretch_width")),
            ("Paper figures", pn.Column("The same views drawn by dse.plot, as exported (PNG / SVG) and as in a "
                                        "paper.", self.fig_breakdown, self.fig_batch, sizing_mode="stretch_width")),
            ("Reproduce", pn.Column(self.cli, self.py, "Export the current figure (dse.plot) and data:",
                                    pn.Row(*self.downloads), sizing_mode="stretch_width")),
            dynamic=False, sizing_mode="stretch_width", css_classes=["dse-tabs"])

    def _layout(self):
        """The sidebar (presets, placement, parameters, serving) beside the error, status and tabs."""
        more = pn.Card(*[self.numeric[n] for n in live.numeric_params() if n not in live.PRIMARY],
                       *self.choices.values(), title="more parameters", collapsed=True)
        sidebar = pn.Column(
            "### Presets", self.model, self.system, self.gpu, self.link, self.accounting, self.preset_notes,
            "### Placement", self.placement, self.tier_notes, self.batch, self.at_batch,
            pn.Card(self.tier_box, title="tier presets", collapsed=True, sizing_mode="stretch_width"),
            "### Parameters", *[self.numeric[n] for n in live.PRIMARY], more,
            "### Serving", self.profile, self.prompt_len, self.output_len, self.tpot, self.ttft, self.reference,
            width=340)
        main = pn.Column(self.error, self.status, self.tabs, sizing_mode="stretch_width")
        return pn.Row(sidebar, main, sizing_mode="stretch_width")

    # ------------------------------------------------------------ widget state

    def _reset_presets(self, initial: Settings | None = None, system_changed: bool = False) -> None:
        """After a preset change: placements of the system, each parameter widget at the presets' value (a new
        system brings its own GPU and link)."""
        m, sy, a = self.model.value, self.system.value, self.accounting.value
        self.system_parts = live.system_parts(sy, m, a)
        if system_changed:
            self._busy = True
            try:
                self.gpu.value, self.link.value = self.system_parts["gpu"], self.system_parts["link"]
            finally:
                self._busy = False
        gpu = self.gpu.value if self.gpu.value != self.system_parts["gpu"] else None
        link = self.link.value if self.link.value != self.system_parts["link"] else None
        self.preset_notes.object = "<br>".join(_preset_note(d[k]) for d, k in (
            (self.models, m), (self.systems, sy), (self.gpus, self.gpu.value), (self.links, self.link.value),
            (self.accountings, a)))
        tiers = live.tiers(sy, m, a)
        options = ["hbm", *tiers]
        keep = [p for p in (initial.placement if initial else self.placement.value) if p in options] or ["hbm"]
        self._busy = True
        try:
            self.placement.options = options
            self.placement.value = keep
            self.reference.options = options
            if self.reference.value not in options:
                self.reference.value = "hbm"
            self.tier_notes.object = "<small>" + "<br>".join(
                f"<b>{k}</b>: {t.get('name', k)} ({t.get('kind', '')}), read {t.get('read_pj_per_bit')} pJ/bit, "
                f"{t.get('bw_gbps')} GB/s" for k, t in tiers.items()) + "</small>"
            chosen = dict(initial.tiers) if initial else {}
            self.tier_presets = {}
            for k, t in tiers.items():
                own = str(t.get("name", ""))
                opts = live.tier_presets(str(t.get("kind", "")))
                w = pn.widgets.Select(label=f"tiers.{k} ({t.get('kind', '')})", options=opts,
                                      value=chosen.get(k, own) if chosen.get(k, own) in opts else opts[0],
                                      css_classes=[f"dse-tier-{k}"])
                w.param.watch(self._on_change, "value")
                self.tier_presets[k] = w
            self.system_tiers = {k: str(t.get("name", "")) for k, t in tiers.items()}
            self._tier_notes()
            self.defaults = {n: live.preset_value(n, m, sy, a, gpu, link) for n in [*self.numeric, *self.choices]}
            given = initial.params if initial else {}
            for n, w in self.numeric.items():
                v = given.get(n, self.defaults[n])
                w.value = None if v is None else (int(v) if PARAMS[n].integer else float(v))
            for n, w in self.choices.items():
                d = given.get(n, self.defaults[n])
                d = str(d).lower() if isinstance(d, bool) else d
                w.value = d if d in w.options else w.options[0]
        finally:
            self._busy = False

    def _tier_notes(self) -> None:
        notes = [f"<small><b>{k}</b> = {_preset_note(self.tier_grades[w.value])[7:]}" for k, w in
                 self.tier_presets.items() if w.value in self.tier_grades]
        self.tier_box.objects = [*self.tier_presets.values(), pn.pane.HTML("<br>".join(notes))]

    def settings(self) -> Settings:
        """The widgets' values; parameters only where they differ from the presets."""
        batches = live.parse_batches(self.batch.value)
        params = {}
        for n, w in self.numeric.items():
            if w.value is not None and w.value != self.defaults.get(n):
                params[n] = int(w.value) if PARAMS[n].integer else float(w.value)
        for n, w in self.choices.items():
            d = self.defaults.get(n)
            d = str(d).lower() if isinstance(d, bool) else d
            if w.value != d and d is not None:
                params[n] = {"true": True, "false": False}.get(w.value, w.value)
        at = self.at_batch.value if self.at_batch.value in batches else batches[-1]
        tiers = {k: w.value for k, w in self.tier_presets.items() if w.value != self.system_tiers.get(k)}
        for part, w in (("gpu", self.gpu), ("link", self.link)):
            if w.value != self.system_parts[part]:
                params = {part: w.value, **params}
        return Settings(model=self.model.value, system=self.system.value, accounting=self.accounting.value,
                        tiers=tiers,
                        placement=tuple(p for p in self.placement.options if p in self.placement.value),
                        batch=batches, at_batch=at, params=params, reference=self.reference.value,
                        profile=None if self.profile.value == "(none)" else self.profile.value,
                        prompt_len=self.prompt_len.value, output_len=self.output_len.value,
                        tpot_ms=self.tpot.value, ttft_s=self.ttft.value)

    def set(self, **values) -> None:
        """Set widgets by name (``flash_read_pj_per_bit=20``, ``placement=[...]``, ``batch="1, 8"``,
        ``system="hgx-h200"``, ``gpu="b200"``, ``tiers.ssd="nvme-gen4"``); presets first (they reset the
        parameters to their values), then the rest; one refresh."""
        values = dict(values)
        for group in (("model", "system", "accounting"), ("gpu", "link")):
            given = {k: values.pop(k) for k in group if k in values}
            if given:
                self._busy = True
                try:
                    for k, v in given.items():
                        getattr(self, k).value = v
                finally:
                    self._busy = False
                self._reset_presets(system_changed=group[0] == "model" and not {"gpu", "link"} & set(values))
        self._busy = True
        try:
            for k, v in values.items():
                if k.startswith("tiers."):
                    w = self.tier_presets[k.removeprefix("tiers.")]
                else:
                    w = self.numeric.get(k) or self.choices.get(k) or getattr(self, k)
                w.value = v
        finally:
            self._busy = False
        self._tier_notes()
        self.refresh()

    def _on_preset(self, event) -> None:
        if self._busy:
            return
        self._reset_presets(system_changed=event.obj is self.system)
        self.refresh()

    def _on_change(self, event) -> None:
        if not self._busy:
            if event.obj in self.tier_presets.values():
                self._tier_notes()
            self.refresh()

    # ------------------------------------------------------------ drawing

    def refresh(self) -> float:
        """Recompute and redraw; a bad setting shows the API's one-line error and keeps the last good view.
        Returns the seconds it took."""
        t0 = time.perf_counter()
        try:
            s = self.settings()
            view = live.compute(s, breakeven=self.tabs.active == 1, serving=self.tabs.active == 2)
        except DseError as err:
            log.info("explore: %s", err)
            self.error.object = str(err)
            self.error.visible = True
            return time.perf_counter() - t0
        except Exception as err:  # noqa: BLE001 - a bug must not take the page down: shown and logged
            log.exception("explore: internal error")
            self.error.object = f"internal error: {type(err).__name__}: {err}"
            self.error.visible = True
            return time.perf_counter() - t0
        self.error.visible = False
        self.error.object = ""
        self.last = view
        self._busy = True
        try:
            self.at_batch.options = list(s.batch)
            self.at_batch.value = s.at_batch
        finally:
            self._busy = False
        self._draw_numbers(view)
        self._draw_figure(view)
        self.cli.object = f"**Command line**\n```sh\n{live.command_line(s)}\n```"
        self.py.object = f"**Python**\n```python\n{live.python_call(s)}\n```"
        dt = time.perf_counter() - t0
        self.status.object = (f"<small>{view.ds.sizes['placement'] * view.ds.sizes['batch']} grid points, "
                              f"updated in {dt * 1e3:.0f} ms</small>")
        return dt

    def _draw_numbers(self, view) -> None:
        s = view.settings
        at = view.ds.sel(batch=s.at_batch)
        pls = [str(p) for p in at.placement.values]
        rows = [(v, f"{lab}{' (' + unit + ')' if unit else ''}") for v, lab, unit, _ in NUMBERS]
        scale = {v: sc for v, _, _, sc in NUMBERS}
        self.numbers.object = table_html(
            "dse-numbers", rows, pls, lambda v, p: fmt(live._item(at[v].sel(placement=p)), scale[v]),
            f"{live.title(s)}, batch {s.at_batch}")
        if self.tabs.active != 1:
            pass
        elif view.breakeven is None:
            self.breakeven.object = f"<p class='dse-note'>{view.breakeven_note}</p>"
        else:
            b = view.breakeven.sel(batch=s.at_batch)
            fl = [str(p) for p in b.placement.values] if "placement" in b.dims else [s.placement[0]]

            def cell(v, p):
                x = b[v].sel(placement=p) if "placement" in b[v].dims else b[v]
                return fmt(live._item(x))
            rows = [("breakeven_flash_read_pj_per_bit", "break-even e* (pJ/bit)"),
                    ("today_flash_read_pj_per_bit", "today (pJ/bit)"),
                    ("improvement_needed", "improvement needed (today / e*)"),
                    ("breaks_even", "breaks even"), ("reason", "reason (when it never does)")]
            self.breakeven.object = table_html("dse-breakeven", rows, fl, cell,
                                               f"Flash against {s.reference}, batch {s.at_batch}")
        if self.tabs.active != 2:
            pass
        elif view.serving is None:
            self.serving.object = f"<p class='dse-note'>{view.serving_note}</p>"
        else:
            mb, rq = view.serving, view.requests
            scale = {v: sc for v, _, _, sc in (*SERVING, *REQUESTS)}
            srows = [(f"req:{v}", f"{lab} at batch {s.at_batch} ({unit})") for v, lab, unit, _ in REQUESTS]
            srows += [(v, f"{lab}{' (' + unit + ')' if unit else ''}") for v, lab, unit, _ in SERVING]

            def scell(v, p):
                src, name = (rq, v[4:]) if v.startswith("req:") else (mb, v)
                x = src[name].sel(placement=p) if "placement" in src[name].dims else src[name]
                return fmt(live._item(x), scale[name])
            tgt = (f"TPOT <= {fmt(s.tpot_ms)} ms" if s.tpot_ms else "no TPOT target") + ", " + \
                  (f"TTFT <= {fmt(s.ttft_s)} s" if s.ttft_s else "no TTFT target")
            self.serving.object = table_html("dse-serving", srows, pls, scell,
                                             (f"profile {s.profile}" if s.profile else
                                              f"prompt {s.prompt_len}, output {s.output_len} tokens") + f"; {tgt}")

    def _draw_figure(self, view) -> None:
        """The views of the tab shown: Bokeh on the energy tab, dse.plot's figures on the paper-figures tab."""
        if self.tabs.active == 0:    # same layout: new numbers into the figures' sources; else new figures
            key, data = live.breakdown_data(view)
            drawn = self._drawn.get("breakdown")
            if drawn is not None and key[1:] == drawn[0][1:]:   # same components: new bars and numbers only
                fig, src = drawn[1]
                if key[0] != drawn[0][0]:
                    fig.x_range.factors = list(key[0])
                src.data = data
                self._drawn["breakdown"] = (key, (fig, src))
            else:
                fig, src = live.breakdown_bokeh(view, key, data)
                self.plot_breakdown.object = fig
                self._drawn["breakdown"] = (key, (fig, src))
            key, cols = live.batch_data(view)
            if key == self._drawn.get("batch", (None,))[0]:
                for src, col in zip(self._drawn["batch"][1], cols):
                    src.data = col
            else:
                fig, srcs = live.batch_bokeh(view, key, cols)
                self.plot_batch.object = fig
                self._drawn["batch"] = (key, srcs)
        elif self.tabs.active == 3:
            self.fig_breakdown.object = live.figure_png(live.breakdown_figure(view))
            self.fig_batch.object = live.figure_png(live.batch_figure(view))

    # ------------------------------------------------------------ export

    def _export(self, fmt: str):
        import io

        view = self.last
        if fmt in ("png", "svg"):
            fig = live.breakdown_figure(view) if view.ds.sizes["batch"] * view.ds.sizes["placement"] <= \
                live.BREAKDOWN_MAX else live.batch_figure(view)     # the view dse.plot.auto would choose
            return io.BytesIO(live.figure_bytes(fig, fmt))
        if fmt == "nc":
            return io.BytesIO(live.netcdf_bytes(view.ds))
        return io.BytesIO(live.csv_bytes(view.ds))
