"""The project's figure style: paper column widths, >= 8 pt text, one colour-blind-safe colour per placement and
energy component, human labels with units, plain-number ticks (dse.plot)."""
from __future__ import annotations

import functools

import matplotlib

if "matplotlib.pyplot" not in __import__("sys").modules:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402



ONE_COLUMN = 3.5      # in: one column of an IEEE two-column paper (CAL, ISCA)
TWO_COLUMN = 7.16     # in: the full text width
MIN_FONT_PT = 8.0     # smallest text at the saved (print) size
DPI = 300

#: Okabe-Ito (colour-blind safe): one fixed colour per expert placement / memory tier, in every figure.
PLACEMENT_COLORS = {"hbm": "#0072B2", "ddr": "#E69F00", "ssd": "#D55E00", "hbf": "#CC79A7", "cxl": "#009E73",
                    "lpddr": "#56B4E9"}
PLACEMENT_MARKERS = {"hbm": "o", "ddr": "s", "ssd": "^", "hbf": "D", "cxl": "v", "lpddr": "P"}
PLACEMENT_LABELS = {"hbm": "HBM", "ddr": "DDR", "ssd": "SSD", "hbf": "HBF", "cxl": "CXL", "lpddr": "LPDDR"}
#: Paul Tol's muted palette (colour-blind safe, 10 colours, and Tol's light blue): one per energy component
#: (dse.model.kernel.COMPONENTS order).
COMPONENT_COLORS = {"hbm_weights": "#332288", "hbm_kv": "#88CCEE", "hbm_activations": "#44AA99",
                    "offload_read": "#CC6677", "offload_link": "#DDCC77", "offload_hbm_write": "#882255",
                    "warm_read": "#AA4499", "warm_link": "#6699CC",
                    "compute": "#117733", "onchip": "#999933", "background": "#BBBBBB",
                    "node_other": "#5F4B3A", "psu_loss": "#A6761D", "facility": "#7F7F7F"}
COMPONENT_LABELS = {"hbm_weights": "HBM weight reads", "hbm_kv": "KV-cache reads",
                    "hbm_activations": "HBM activations", "offload_read": "offload-tier reads",
                    "offload_link": "offload link", "offload_hbm_write": "HBM write of copies",
                    "warm_read": "warm-tier reads", "warm_link": "warm-tier link",
                    "compute": "compute", "onchip": "on-chip (L2 + L1)", "background": "static power",
                    "node_other": "rest of the node", "psu_loss": "PSU losses", "facility": "facility (PUE)"}
#: Reference lines shared by the break-even figures.
TODAY_COLOR, HBF_COLOR, NEVER_COLOR = "#000000", "#CC79A7", "0.85"

RC = {
    "font.size": 8, "axes.titlesize": 8.5, "axes.labelsize": 8, "xtick.labelsize": 8, "ytick.labelsize": 8,
    "legend.fontsize": 8, "legend.title_fontsize": 8, "figure.titlesize": 9, "font.family": "DejaVu Sans",
    "axes.linewidth": 0.6, "lines.linewidth": 1.3, "lines.markersize": 4, "xtick.major.width": 0.6,
    "ytick.major.width": 0.6, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.alpha": 0.3, "grid.linewidth": 0.5, "legend.frameon": False, "legend.handlelength": 1.6,
    "savefig.dpi": DPI, "svg.fonttype": "none", "figure.constrained_layout.use": True,
    "axes.prop_cycle": matplotlib.cycler(color=["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
                                                "#000000", "#F0E442"]),
    "axes.formatter.useoffset": False, "axes.formatter.limits": (-4, 6), "axes.autolimit_mode": "round_numbers",
}

#: Display names and units for dse's variables and coordinates: name -> (label, unit shown, scale from dse units).
# A data table: one row per variable (label, display unit, scale); same-shape rows are data, not repeated logic.
DISPLAY = {
    "energy_per_token": ("energy per token", "J", 1.0),
    "step_energy": ("energy per decode step", "J", 1.0),
    "step_latency": ("latency per output token", "ms", 1e3),
    "energy_per_output_token": ("energy per output token", "J", 1.0),
    "energy_per_request": ("energy per request", "J", 1.0),
    "ttft": ("time to first token (TTFT)", "ms", 1e3),
    "tpot": ("time per output token (TPOT)", "ms", 1e3),
    "tokens_per_s_per_gpu": ("throughput per GPU", "tokens/s", 1.0),
    "tokens_per_s": ("throughput", "tokens/s", 1.0),
    "capacity_cost_usd": ("capacity cost", "$k", 1e-3),   # one $: plain text (a text with two writes \$)
    "offload_share": ("offload share of step energy", "%", 100.0),
    "hbm_fill": ("HBM fill", "%", 100.0),
    "offload_fill": ("offload-tier fill", "%", 100.0),
    "batch": ("batch", "sequences", 1.0),
    "flash_read_pj_per_bit": ("Flash read energy", "pJ/bit", 1.0),
    "breakeven_flash_read_pj_per_bit": ("break-even Flash read energy e*", "pJ/bit", 1.0),
    "link_bw_gbps": ("offload link bandwidth", "GB/s", 1.0),
    "top_k": ("experts per token (top-k)", "", 1.0),
    "n_experts": ("routed experts per layer", "", 1.0),
    "context_len": ("context length", "tokens", 1.0),
    "hbm_cache_fraction": ("experts cached in HBM", "%", 100.0),
    "warm_fraction": ("experts in the warm tier", "%", 100.0),
    "expert_reuse": ("expert reuse between steps", "", 1.0),
    "dynamic_cache_experts": ("LRU expert cache", "experts per layer", 1.0),
    "prefetch_accuracy": ("prefetch accuracy", "%", 100.0),
    "placement": ("expert placement", "", 1.0),
    "n_gpus": ("GPUs", "", 1.0),
}


def style():
    """A context in which matplotlib uses the project style (what every dse.plot function draws inside)."""
    return plt.rc_context(RC)


def styled(fn):
    """Decorator: draw ``fn`` inside :func:`style`, then fix tick sizes so later redraws keep the style."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with style():
            fig = fn(*args, **kwargs)
            finish(fig)
        return fig
    return wrapper


def finish(fig):
    """Pin tick label sizes (ticks created later at draw time read rcParams) to the style's size."""
    for ax in fig.axes:
        ax.tick_params(labelsize=RC["xtick.labelsize"])
    return fig


def figure(width: str | float = "one", height: float | None = None, nrows: int = 1, ncols: int = 1, **kw):
    """A Figure one column (``"one"``, 3.5 in) or two columns (``"two"``, 7.16 in) wide; axes as a 2-D array."""
    w = {"one": ONE_COLUMN, "two": TWO_COLUMN}.get(width, width)
    h = height if height is not None else (2.6 if w <= ONE_COLUMN else 2.9)
    with style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(float(w), float(h)), squeeze=False, **kw)
    return fig, axes


# ---------------------------------------------------------------- labels and ticks


def display(name: str, da=None) -> tuple[str, str, float]:
    """(label, unit, scale) of a variable or coordinate: the DISPLAY table, else its CF attributes."""
    if name in DISPLAY:
        return DISPLAY[name]
    attrs = getattr(da, "attrs", {}) if da is not None else {}
    long_name = str(attrs.get("long_name", name.replace("_", " ")))
    readable = None
    if long_name.endswith("]") and " [" in long_name:
        long_name, readable = long_name[:-1].rsplit(" [", 1)
    unit = readable or str(attrs.get("units", "") or "")
    return long_name, ("" if unit == "1" else unit), 1.0


def label(name: str, da=None, unit: str | None = None) -> str:
    """A human axis label with its unit in parentheses: ``latency per output token (ms)``."""
    text, u, _ = display(name, da)
    u = u if unit is None else unit
    return f"{text} ({u})" if u else text


def plain(v: float, _pos=None) -> str:
    """A plain number for a tick: 1, 20, 0.5, 2,000 (no 2x10^1)."""
    if v == 0 or not np.isfinite(v):
        return "0"
    if abs(v) >= 1e3:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def plain_ticks(ax, axis: str = "y"):
    """Plain-number tick labels on a (log or linear) axis: 1, 2, 5, 10, 20 ... instead of 2x10^1."""
    a = getattr(ax, f"{axis}axis")
    if a.get_scale() == "log":
        lo, hi = sorted(getattr(ax, f"get_{axis}lim")())
        decades = np.log10(hi / lo) if lo > 0 else 3
        subs = (1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)
        a.set_major_locator(mticker.LogLocator(base=10, subs=subs))
        a.set_minor_locator(mticker.LogLocator(base=10, subs=np.arange(2, 10)))
        a.set_minor_formatter(mticker.NullFormatter())
    a.set_major_formatter(mticker.FuncFormatter(plain))


def batch_axis(ax, batches, axis: str = "x"):
    """A log-2 batch axis with a tick at every batch that fits: 1, 4, 16, 64 ..."""
    b = sorted({int(v) for v in np.atleast_1d(batches)})
    getattr(ax, f"set_{axis}scale")("log", base=2)
    shown = b if len(b) <= 8 else b[:: int(np.ceil(len(b) / 8))]
    getattr(ax, f"set_{axis}ticks")(shown, [str(v) for v in shown])
    getattr(ax, f"{axis}axis").set_minor_locator(mticker.NullLocator())
    getattr(ax, f"set_{axis}label")("batch (sequences)")


def legend(ax, *, ncol: int | None = None, title: str | None = None):
    """The legend outside the data: under a one-column figure, right of the axes of a wider one."""
    fig = ax.figure
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    if fig.get_figwidth() <= ONE_COLUMN + 0.01:
        n = ncol or (1 if max(len(t) for t in labels) > 24 else 2)
        return fig.legend(handles, labels, loc="outside lower center", ncol=n, title=title, columnspacing=1.0,
                          handletextpad=0.5)
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.2, title=title)


def placement_label(p) -> str:
    return PLACEMENT_LABELS.get(str(p), str(p))


MODEL_NAMES = {"mixtral-8x7b": "Mixtral-8x7B", "deepseek-r1": "DeepSeek-R1", "deepseek-r1-paper": "DeepSeek-R1",
               "llama3-70b": "Llama-3-70B", "llama4-maverick": "Llama-4 Maverick", "qwen3-235b-a22b": "Qwen3-235B-A22B",
               "kimi-k2": "Kimi K2", "gpt-oss-120b": "gpt-oss-120b"}


def model_name(name) -> str:
    """A model preset's published name: mixtral-8x7b -> Mixtral-8x7B."""
    return MODEL_NAMES.get(str(name), str(name))


def gpu_name(name) -> str:
    """h100-sxm -> H100, b200 -> B200."""
    return str(name).split("-")[0].upper()


def _system_name(ds) -> str:
    """GPU count x GPU type of a result's system, from its resolved config: "4 x H100"."""
    import yaml

    try:
        s = yaml.safe_load(ds.attrs.get("config_yaml", ""))["system"]
        return f"{int(s['tp']) * int(s['dp'])} x {gpu_name(s['gpu']['name'])}"
    except Exception:
        return str(ds.attrs.get("system", ""))


def _workload(ds, key: str, default):
    """A scalar workload setting of a result (not a coordinate): from its resolved config."""
    import json

    import yaml

    try:
        settings = json.loads(ds.attrs.get("settings", "{}"))
        if key in settings:
            return settings[key]
        return yaml.safe_load(ds.attrs.get("config_yaml", ""))["workload"][key]
    except Exception:
        return default


def _title_of(ds) -> str:
    model, system = model_name(ds.attrs.get("model", "")), _system_name(ds)
    return f"{model} on {system}" if model and system else model or system


def _squeeze(da, keep):
    return da.squeeze([d for d in da.dims if d not in keep and da.sizes[d] == 1], drop=True)


def _pick(da, keep):
    """Keep the dimensions ``keep``; the first value of every other (returned as {dim: value} for the title)."""
    da = _squeeze(da, keep)
    fixed = {d: da[d].values[0] for d in da.dims if d not in keep}
    return da.isel({d: 0 for d in fixed}), {d: (v.item() if hasattr(v, "item") else v) for d, v in fixed.items()}


def short_number(v) -> str:
    """A number as people write it: 102.4 (not 102.40000000000002), 0.001, 1,024, 6.1e-05; other values as str."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
        return str(v)
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v):,}" if abs(v) >= 1e4 else str(int(v))
    return f"{float(v):.4g}"


def _fixed_note(fixed: dict) -> str:
    return ", ".join(f"{d} = {placement_label(v) if d == 'placement' else short_number(v)}" for d, v in fixed.items())
