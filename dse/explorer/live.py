"""Live mode's computation, without any widget: settings -> the numbers and figures the page shows.

:class:`Settings` is what the page's widgets hold (presets, placements, batches, parameter overrides, serving
targets); :func:`compute` turns them into a :class:`View` with ``dse.evaluate``, the break-even closed form of
:mod:`dse.analyze.breakeven` and ``dse.max_batch``, exactly as a user would call them (the page's ``Python call``
is that call). :func:`command_line` and :func:`python_call` write the same settings as a ``dse`` command line and a
``dse.evaluate`` call. Everything here raises :class:`dse.errors.DseError` with the API's own one-line message.
"""
from __future__ import annotations

import functools
import io
import logging
import math
from dataclasses import dataclass, field

import numpy as np

from dse.config.params import PARAMS
from dse.errors import DseError

log = logging.getLogger("dse.explore")

#: Numeric parameters shown first (the questions of the paper); every other numeric parameter is under "more".
PRIMARY = ("flash_read_pj_per_bit", "hbm_cache_fraction", "context_len", "routing_skew", "link_bw_gbps",
           "link_pj_per_bit", "idle_w", "weight_bytes", "kv_bytes")
#: Parameters that are not a plain number widget (lists, presets, requests: set elsewhere on the page).
NOT_NUMERIC = ("batch", "prompt_len", "output_len")
#: Categorical parameters with fixed choices offered as selects ("more" section).
CHOICES = ("prefetch", "offload_path", "attention_parallel", "fused_attention", "boundary", "compute_precision",
           "batching")
#: The per-placement numbers of the page's table: (variable, label, display unit, scale).
NUMBERS = (("energy_per_token", "energy per token", "mJ", 1e3),
           ("offload_share", "offload share", "%", 100.0),
           ("step_latency", "step latency", "ms", 1e3),
           ("tokens_per_s", "tokens/s", "1/s", 1.0),
           ("hbm_fill", "HBM fill", "%", 100.0),
           ("offload_fill", "offload-tier fill", "%", 100.0),
           ("fits", "fits", "", 1.0),
           ("capacity_cost_usd", "capacity cost", "$k", 1e-3))
SERVING = (("max_batch", "largest batch", "", 1.0),
           ("limited_by", "limited by", "", 1.0),
           ("energy_per_output_token", "energy per output token at it", "mJ", 1e3),
           ("tokens_per_s_per_gpu", "tokens/s per GPU at it", "1/s", 1.0))
REQUESTS = (("ttft", "TTFT", "ms", 1e3),
            ("tpot", "TPOT", "ms", 1e3),
            ("energy_per_output_token", "energy per output token", "mJ", 1e3),
            ("energy_per_request", "energy per request", "J", 1.0))
#: Significant digits of every number shown (the browser test reads them back at this precision).
DIGITS = 6


def numeric_params() -> list[str]:
    """Every numeric canonical parameter the page has a widget for, the primary ones first."""
    rest = [n for n, p in PARAMS.items() if not p.categorical and n not in PRIMARY and n not in NOT_NUMERIC]
    return [*PRIMARY, *rest]


@functools.lru_cache(maxsize=64)
def _composed(model: str, system: str, accounting: str, gpu: str | None = None, link: str | None = None):
    """The composed presets; ``gpu`` / ``link`` replace the system's GPU / offload link preset (as dse.evaluate's
    ``gpu=`` / ``link=`` do)."""
    from dse.config import presets

    tree = presets.compose(model=model, system=system, overrides=(f"accounting={accounting}",))
    if gpu:
        tree["system"]["gpu"] = presets.preset("gpu", gpu)
    if link:
        tree["system"]["offload_link"] = presets.preset("link", link)
    return tree


def system_parts(system: str, model: str = "mixtral-8x7b", accounting: str = "paper") -> dict:
    """The GPU and offload link presets a system is built from: {"gpu": name, "link": name}."""
    s = _composed(model, system, accounting)["system"]
    return {"gpu": str(s["gpu"].get("name")), "link": str(s["offload_link"].get("name"))}


def flash_tiers(system: str, model: str = "mixtral-8x7b", accounting: str = "paper") -> list[str]:
    """The keys of the system's Flash tiers (``kind: flash``)."""
    tiers = _composed(model, system, accounting)["system"]["tiers"]
    return [k for k, t in tiers.items() if str(t.get("kind")) == "flash"]


def tiers(system: str, model: str = "mixtral-8x7b", accounting: str = "paper") -> dict[str, dict]:
    """The system's offload tiers: key -> its config (name, kind, numbers)."""
    return dict(_composed(model, system, accounting)["system"]["tiers"])


@functools.lru_cache(maxsize=None)
def tier_preset(name: str) -> dict:
    """A tier preset's file (dse/conf/tier/<name>.yaml) as a dict."""
    import yaml

    from dse.config.presets import CONF_DIR, check_preset

    check_preset("tier", name)
    return yaml.safe_load((CONF_DIR / "tier" / f"{name}.yaml").read_text()) or {}


def tier_presets(kind: str) -> list[str]:
    """The tier presets of one kind (memory or flash)."""
    from dse.config.presets import presets

    return [n for n in presets("tier") if str(tier_preset(n).get("kind")) == str(kind)]


def tier_settings(slot: str, name: str, s: "Settings") -> dict:
    """The dotted settings that put tier preset ``name`` in the system's tier ``slot``: each of its numbers
    (``system.tiers.<slot>.<leaf>``); the system's own per-slot numbers (devices per GPU) stay."""
    from dse.config import presets

    tree = _composed(s.model, s.system, s.accounting)
    out = {}
    for leaf, value in tier_preset(name).items():
        if leaf in ("name", "kind", "provenance") or isinstance(value, (dict, list, str, bool)) or value is None:
            continue
        path = f"system.tiers.{slot}.{leaf}"
        try:
            presets.get_path(tree, path)
        except DseError:
            continue
        if leaf == "read_pj_per_bit" and "flash_read_pj_per_bit" in s.params and \
                str(tier_preset(name).get("kind")) == "flash":
            continue     # the Flash read energy set on the page wins
        out[path] = value
    return out


def preset_value(name: str, model: str, system: str, accounting: str, gpu: str | None = None,
                 link: str | None = None):
    """A parameter's value in the composed presets (``flash_read_pj_per_bit``: the first Flash tier's), or None
    where the presets leave it unset."""
    from dse.config import presets

    tree = _composed(model, system, accounting, gpu, link)
    path = PARAMS[name].path
    if path == "flash.read_pj_per_bit":
        keys = flash_tiers(system, model, accounting)
        return float(tree["system"]["tiers"][keys[0]]["read_pj_per_bit"]) if keys else None
    try:
        value = presets.get_path(tree, path)
    except DseError:
        return None
    return value if not isinstance(value, dict) else None


@dataclass
class Settings:
    """What the live page's widgets hold."""
    model: str = "mixtral-8x7b"
    system: str = "hgx-h200"
    accounting: str = "paper"
    placement: tuple = ("hbm", "ddr", "ssd", "hbf")
    batch: tuple = (1, 4, 16, 64, 256)
    at_batch: int = 64                      # the batch of the tables
    params: dict = field(default_factory=dict)   # canonical name -> value, only those differing from the presets
    tiers: dict = field(default_factory=dict)    # tier slot -> tier preset, only those differing from the system's
    reference: str = "hbm"                  # break-even reference placement
    profile: str | None = "sharegpt"        # request profile (None: prompt_len / output_len below)
    prompt_len: int | None = None           # tokens per request's prompt and output, without a profile
    output_len: int | None = None
    tpot_ms: float | None = 50.0
    ttft_s: float | None = 5.0

    def tier_overrides(self) -> dict:
        out = {}
        for slot, name in self.tiers.items():
            out.update(tier_settings(slot, name, self))
        return out

    def evaluate_kwargs(self) -> dict:
        return dict(model=self.model, system=self.system, accounting=self.accounting,
                    placement=list(self.placement), batch=[int(b) for b in self.batch], **self.params,
                    **self.tier_overrides())

    def has_requests(self) -> bool:
        return bool(self.profile) or (self.prompt_len is not None and self.output_len is not None)

    def request_kwargs(self) -> dict:
        req = {"profile": self.profile} if self.profile else \
            {k: v for k, v in (("prompt_len", self.prompt_len), ("output_len", self.output_len)) if v is not None}
        return {k: v for k, v in self.params.items()} | self.tier_overrides() | req


def parse_batches(text: str) -> tuple[int, ...]:
    """``"1, 4, 16"`` -> (1, 4, 16); a one-line DseError naming ``batch`` for anything else."""
    parts = [p for p in str(text).replace(";", ",").replace(" ", ",").split(",") if p.strip()]
    if not parts:
        raise DseError("batch: empty list of values")
    out = []
    for p in parts:
        try:
            f = float(p)
        except ValueError:
            raise DseError(f"batch: {p.strip()!r} is not a number") from None
        if not f.is_integer():
            raise DseError(f"batch={f:g}: must be an integer")
        out.append(int(f))
    return tuple(dict.fromkeys(out))


@dataclass
class View:
    """What the page shows for one set of :class:`Settings`."""
    settings: Settings
    ds: object                      # the dse.evaluate Dataset (placement x batch)
    breakeven: object | None        # the break-even Dataset, or None without a Flash placement
    breakeven_note: str             # why there is no break-even table, or ""
    serving: object | None          # dse.max_batch's Dataset, or None
    requests: object | None         # dse.evaluate with requests at at_batch, or None
    serving_note: str
    seconds: dict = field(default_factory=dict)

    def numbers(self) -> dict:
        """{variable: {placement: value}} at the table's batch."""
        at = self.ds.sel(batch=self.settings.at_batch)
        return {v: {str(p): _item(at[v].sel(placement=p)) for p in at.placement.values} for v, *_ in NUMBERS}


def _item(da):
    v = da.values.item() if hasattr(da, "values") else da
    return bool(v) if isinstance(v, (bool, np.bool_)) else (v if isinstance(v, str) else float(v))


def fmt(value, scale: float = 1.0) -> str:
    """A number as the page shows it: DIGITS significant digits (plain, or in e-notation when very small/large)."""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "NO"
    if isinstance(value, str):
        return value
    v = float(value) * scale
    if not math.isfinite(v):
        return "-" if math.isnan(v) else str(v)
    return f"{v:.{DIGITS}g}"


def check(settings: Settings) -> None:
    """Checks the page does before evaluating (the engine checks everything else)."""
    if not settings.placement:
        raise DseError("placement: choose at least one placement")
    if settings.at_batch not in settings.batch:
        settings.at_batch = settings.batch[-1] if settings.batch else 1


def compute(settings: Settings, *, breakeven: bool = True, serving: bool = True) -> View:
    """The page's numbers for ``settings``; ``breakeven`` / ``serving`` False leave out the break-even table and
    the request metrics with max_batch (the page computes them while their tab is shown)."""
    import time

    from dse.analyze import breakeven as be
    from dse.analyze.serving import max_batch
    from dse.run.engine import evaluate

    check(settings)
    t0 = time.perf_counter()
    ds = evaluate(**settings.evaluate_kwargs())
    if "batch" not in ds.dims:
        ds = ds.expand_dims(batch=[int(settings.batch[0])]) if "batch" not in ds.coords else ds.expand_dims("batch")
    if "placement" not in ds.dims:
        ds = ds.expand_dims("placement") if "placement" in ds.coords else ds.expand_dims(
            placement=[settings.placement[0]])
    seconds = {"evaluate": time.perf_counter() - t0}
    t0 = time.perf_counter()
    flash = [p for p in settings.placement if p in flash_tiers(settings.system, settings.model, settings.accounting)]
    bds, note = None, ""
    if not breakeven:
        note = "not computed"
    elif not flash:
        note = "no Flash placement chosen: add ssd or hbf (a tier of kind flash) to see the break-even Flash energy"
    elif settings.reference not in settings.placement:
        note = f"the reference placement {settings.reference!r} is not among the chosen placements"
    else:
        tgt = be._flash_only(ds.sel(placement=flash))
        ref = ds.sel(placement=settings.reference, drop=True)
        bds = be.closed_form(tgt, be.on_grid(ref, tgt))
    seconds["breakeven"] = time.perf_counter() - t0
    mb = req = None
    snote = ""
    if serving:
        t0 = time.perf_counter()
        kw = dict(model=settings.model, system=settings.system, accounting=settings.accounting,
                  placement=list(settings.placement), **settings.request_kwargs())
        if not settings.has_requests():
            snote = "choose a request profile (or set prompt_len and output_len) for request metrics"
        else:
            req = evaluate(batch=int(settings.at_batch), **kw)
            slo = dict(tpot_slo_s=None if settings.tpot_ms is None else settings.tpot_ms / 1e3,
                       ttft_slo_s=settings.ttft_s)
            mb = max_batch(**kw, **slo)
        seconds["serving"] = time.perf_counter() - t0
    return View(settings, ds, bds, note, mb, req, snote, seconds)


# ---------------------------------------------------------------- figures


def figure_png(fig, dpi: int = 110) -> bytes:
    """A figure as PNG bytes at screen resolution (exports use dse.plot's print DPI); the figure is closed."""
    import matplotlib.pyplot as plt

    from dse.analyze.plot import style

    buf = io.BytesIO()
    with style():
        fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def figure_bytes(fig, fmt: str) -> bytes:
    """A figure as PNG (at dse.plot's DPI) or SVG bytes, as ``dse.plot.save`` writes it; the figure is closed."""
    import matplotlib.pyplot as plt

    from dse.analyze.plot import DPI, style

    buf = io.BytesIO()
    with style():
        fig.savefig(buf, format=fmt, dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


#: Bars of the breakdown figure at most (as dse.plot.auto: above, energy per token against batch instead).
BREAKDOWN_MAX = 48


def title(s: Settings) -> str:
    return f"{s.model} on {s.system}"


def breakdown_figure(view: View):
    """The Figs. 4/5 view (dse.plot.breakdown) of the batches and placements, as dse.plot.auto draws it."""
    from dse.analyze import plot

    ds = view.ds
    n = ds.sizes["batch"] * ds.sizes["placement"]
    if n > BREAKDOWN_MAX:   # as dse.plot.auto: too many bars for a breakdown
        keep = np.unique(np.linspace(0, ds.sizes["batch"] - 1, max(1, BREAKDOWN_MAX // ds.sizes["placement"]))
                         .round().astype(int))
        ds = ds.isel(batch=keep)
    return plot.breakdown(ds, title=f"{title(view.settings)}: energy per token by component",
                          width="two" if ds.sizes["batch"] * ds.sizes["placement"] > 6 else "one")


def batch_figure(view: View):
    """Energy per token against batch, one line per placement (dse.plot.lines)."""
    from dse.analyze import plot

    return plot.lines(view.ds, "energy_per_token", "batch", title=title(view.settings))


# ---------------------------------------------------------------- reproducing


def _cli_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def command_line(s: Settings) -> str:
    """The ``dse`` command line that evaluates the same grid (result.nc in Hydra's run directory)."""
    parts = ["dse", f"model={s.model}", f"system={s.system}", f"accounting={s.accounting}"]
    parts.append(f"'grid.placement=[{','.join(s.placement)}]'")
    parts.append(f"'grid.batch=[{','.join(str(int(b)) for b in s.batch)}]'")
    for name, value in s.params.items():
        path = PARAMS[name].path
        if PARAMS[name].preset_group:          # a GPU or link preset: a one-value grid entry
            parts.append(f"'grid.{name}=[{value}]'")
        elif path == "flash.read_pj_per_bit":
            parts += [f"system.tiers.{k}.read_pj_per_bit={_cli_value(value)}"
                      for k in flash_tiers(s.system, s.model, s.accounting)]
        else:
            parts.append(f"{path}={_cli_value(value)}")
    parts += [f"{path}={_cli_value(value)}" for path, value in s.tier_overrides().items()]
    return " ".join(parts)


def _args(kw: dict) -> str:
    """Keyword arguments as Python source; dotted config paths go in one ``**{...}``."""
    plain = ", ".join(f"{k}={v!r}" for k, v in kw.items() if "." not in k)
    dotted = {k: v for k, v in kw.items() if "." in k}
    return plain + (f", **{dotted!r}" if dotted else "")


def python_call(s: Settings) -> str:
    """The ``dse.evaluate`` call of the page (and, with the serving targets, its ``dse.max_batch`` call)."""
    text = f"import dse\nds = dse.evaluate({_args(s.evaluate_kwargs())})"
    req = {k: v for k, v in s.request_kwargs().items()}
    if s.has_requests():
        base = _args(dict(model=s.model, system=s.system, accounting=s.accounting, placement=list(s.placement),
                          **req))
        slo = f"tpot_slo_s={None if s.tpot_ms is None else s.tpot_ms / 1e3!r}, ttft_slo_s={s.ttft_s!r}"
        text += f"\nmb = dse.max_batch({base}, {slo})"
    return text


def csv_bytes(ds) -> bytes:
    """A tidy long table of a dataset's variables: one row per grid point (and component), with units."""
    import pandas as pd

    frames = []
    for name, da in ds.data_vars.items():
        if da.dtype.kind not in "biufU" and da.dtype != object:
            continue
        frame = da.to_dataframe(name="value").reset_index() if da.dims else pd.DataFrame({"value": [da.values.item()]})
        frame.insert(0, "variable", name)
        frame["units"] = da.attrs.get("units", "")
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    cols = ["variable", *[c for c in table.columns if c not in ("variable", "value", "units")], "value", "units"]
    return table[cols].to_csv(index=False).encode()


def netcdf_bytes(ds) -> bytes:
    """The dataset as NetCDF-4 bytes (what dse.open_results reads)."""
    buf = io.BytesIO()
    ds.load().to_netcdf(buf, engine="h5netcdf")
    return buf.getvalue()


# ---------------------------------------------------------------- the page's interactive views (Bokeh)
# Drawn in the browser (the server only sends the numbers), in dse.plot's colours and labels; the exported figures
# are dse.plot's own (breakdown_figure, batch_figure).


#: Colours for energy components that dse.plot.COMPONENT_COLORS does not name (in order of appearance).
EXTRA_COLORS = ("#5F4B3A", "#A6761D", "#7F7F7F", "#E7298A", "#1B9E77")


def breakdown_data(view: View) -> tuple[tuple, dict]:
    """(key, columns) of the breakdown view: the key changes when the figure's layout must (placements, batches,
    components drawn, title); otherwise only the columns are sent."""
    from dse.analyze.plot import placement_label

    ds = view.ds
    e = (ds.energy / ds.batch).transpose("batch", "placement", "component")
    relative = "hbm" in [str(p) for p in ds.placement.values]
    norm = e.sel(placement="hbm").sum("component") if relative else 1.0
    shown = e / norm
    comps = [str(c) for c in e.component.values if float(abs(e.sel(component=c)).max()) > 0]
    factors = [(str(int(b)), placement_label(p)) for b in ds.batch.values for p in ds.placement.values]
    data = {"x": factors}
    for c in comps:
        data[c] = shown.sel(component=c).values.reshape(-1)
        data[c + "_mj"] = e.sel(component=c).values.reshape(-1) * 1e3
    return (tuple(factors), tuple(comps), relative, title(view.settings)), data


def breakdown_bokeh(view: View, key=None, data=None):
    """Energy per token by component for each (batch, placement), stacked, relative to HBM at each batch when HBM
    is among the placements (as dse.plot.breakdown); hover gives each segment's J per token. Returns the figure
    and its data source (the page updates the source while the key stays)."""
    from bokeh.models import ColumnDataSource, FactorRange, HoverTool
    from bokeh.plotting import figure

    from dse.analyze.plot import COMPONENT_COLORS, COMPONENT_LABELS

    if key is None:
        key, data = breakdown_data(view)
    factors, comps, relative, _ = key
    src = ColumnDataSource(data)
    p = figure(x_range=FactorRange(*factors), height=330, sizing_mode="stretch_width", toolbar_location="right",
               tools="pan,wheel_zoom,box_zoom,reset,save",
               y_axis_label="energy per token / HBM" if relative else "energy per token (J)",
               title=f"{title(view.settings)}: energy per token by component")
    extra = iter(EXTRA_COLORS)    # components dse.plot has no colour for yet: distinct, muted
    colors = [COMPONENT_COLORS.get(c) or next(extra, "#777777") for c in comps]
    renderers = p.vbar_stack(comps, x="x", width=0.85, source=src, color=colors,
                             legend_label=[COMPONENT_LABELS.get(c, c) for c in comps], line_width=0)
    for r, c in zip(renderers, comps):
        p.add_tools(HoverTool(renderers=[r], tooltips=[("", "@x"), ("component", COMPONENT_LABELS.get(c, c)),
                                                       ("mJ per token", f"@{{{c}_mj}}{{0.000}}")]))
    p.xaxis.axis_label = "batch (sequences), placement"
    p.xaxis.major_label_orientation = 1.0 if len(factors) > 12 else 0
    p.y_range.start = 0
    p.legend.location = "top_left"
    p.legend.label_text_font_size = "9pt"
    p.add_layout(p.legend[0], "right")
    return p, src


def batch_data(view: View) -> tuple[tuple, list[dict]]:
    """(key, one column dict per placement) of the energy-against-batch view."""
    ds = view.ds
    b = ds.batch.values.astype(float)
    cols = []
    for pl in ds.placement.values:
        y = ds.energy_per_token.sel(placement=pl).transpose("batch").values * 1e3
        cols.append(dict(x=b, y=y, fits=["yes" if f else "NO" for f in
                                         np.broadcast_to(ds.fits.sel(placement=pl).values, b.shape)]))
    return (tuple(str(p) for p in ds.placement.values), tuple(b), title(view.settings)), cols


def batch_bokeh(view: View, key=None, cols=None):
    """Energy per token against batch, one line per placement (log-log), in dse.plot's placement colours.
    Returns the figure and its data sources (one per placement)."""
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure

    from dse.analyze.plot import PLACEMENT_COLORS, placement_label

    if key is None:
        key, cols = batch_data(view)
    b = np.asarray(key[1])
    p = figure(height=300, sizing_mode="stretch_width", x_axis_type="log" if b.max() / b.min() > 8 else "linear",
               y_axis_type="log", x_axis_label="batch (sequences)", y_axis_label="energy per token (mJ)",
               tools="pan,wheel_zoom,box_zoom,reset,save", title=f"{title(view.settings)}: energy per token")
    sources = []
    for pl, col in zip(key[0], cols):
        src = ColumnDataSource(col)
        sources.append(src)
        color = PLACEMENT_COLORS.get(str(pl), "#444")
        p.line("x", "y", source=src, color=color, line_width=2, legend_label=placement_label(pl))
        r = p.scatter("x", "y", source=src, color=color, size=6, legend_label=placement_label(pl))
        p.add_tools(HoverTool(renderers=[r], tooltips=[("placement", placement_label(pl)), ("batch", "@x"),
                                                       ("mJ per token", "@y{0.000}"), ("fits", "@fits")]))
    p.legend.location = "top_right"
    from bokeh.models import NumeralTickFormatter

    p.xaxis.formatter = NumeralTickFormatter(format="0,0")
    p.yaxis.formatter = NumeralTickFormatter(format="0,0.[000]")
    return p, sources
