"""dse against published measurements of LLM serving energy (reference/validation/measurements.csv).

Each row is a public measurement: hardware, model, precision, lengths, concurrency, the measured value and its
boundary (``gpu``: GPU boards, e.g. NVML; ``node``: the server's wall power, e.g. MLPerf's power division). dse
predicts the energy per output token at the row's own boundary with the node preset of its hardware
(``hgx-h100``, ``hgx-h200``, ``hgx-b200``), the model's preset, the row's precision (weight bytes), GPUs and
concurrency: the energy per output token of its requests (continuous batching with the prefill chunks fused into
the decode steps, docs/model.md s.11.5; a prompt length not published counts as one token), the experts in HBM. A
row that publishes its throughput but not its concurrency runs at the batch where dse's throughput reaches it.
Each row runs on its source's serving engine (dse/conf/engine: ``vllm`` for ML.ENERGY v3 and MLPerf, ``vllm-0.5``
for ML.ENERGY v2). Nothing is fitted to these rows one by one: every constant comes from the presets (their sources
and evidence grades are in dse/conf), except each fitted engine's (:data:`FIT_GRIDS`; ``serving_efficiency``: the
fraction of the GPUs' achievable rates it attains; ``layer_overhead_us``: its fixed GPU time per layer and step, and
``fp8_layer_overhead_us`` more where products compute in fp8; ``host_us_per_sequence``: its host time per sequence
and step; ``active_power_fraction``: the boards' power floor while it runs), fitted to the energy and the step time
of every other of that engine's rows in one table (:data:`FIT_TABLES`: vllm on the rest of the ML.ENERGY v3 sweep,
reference/validation/mlenergy_v3_sweep.csv; vllm-0.5 on measurements.csv; ``--fit``; one set for all nodes, GPUs
and models) and checked on every other row. Rows dse has no preset for are listed as skipped. ``--fit`` also fits
the sglang engine's time per layer on half of its measured steps.

    python -m analysis.validation [--out DIR]      # or: dse validate [--out DIR]
    dse validate --fit                             # the fit of the serving-engine constants
    dse validate --table reference/validation/mlenergy_v3_sweep.csv   # the vllm engine's fit and check halves
"""
from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from dse.errors import DseError

TABLE = Path(__file__).resolve().parents[2] / "reference" / "validation" / "measurements.csv"
#: A row's GPU (its hardware column, any spelling that names it: "h100-sxm", "NVIDIA H100 SXM5 80GB") -> the node
#: preset that carries it (gh200 first: "gh200" contains "h200").
SYSTEMS = {"gh200": "gh200", "h100": "hgx-h100", "h200": "hgx-h200", "b200": "hgx-b200"}
#: Published model names -> dse model presets (the same architecture; "proxy" where only a sibling exists).
MODELS = {"deepseek-r1-0528": "deepseek-r1", "deepseek-v3.1": "deepseek-r1", "mixtral-8x7b": "mixtral-8x7b",
          "mixtral-8x7b-instruct-v0.1": "mixtral-8x7b", "mixtral-8x22b-instruct-v0.1": "mixtral-8x22b",
          "qwen3-235b-a22b-instruct-2507": "qwen3-235b-a22b",
          "qwen3-235b-a22b-thinking-2507": "qwen3-235b-a22b", "gpt-oss-120b": "gpt-oss-120b",
          "llama-4-maverick-17b-128e-instruct": "llama4-maverick", "qwen3-30b-a3b-instruct-2507": "qwen3-30b-a3b",
          "qwen3-30b-a3b-thinking-2507": "qwen3-30b-a3b",
          "llama2-70b": "llama2-70b"}
WEIGHT_BYTES = {"bf16": 2.0, "bfloat16": 2.0, "fp16": 2.0, "float16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5,
                "mxfp4": 0.5, "nvfp4": 0.5, "int4": 0.5}
#: Measured units -> J per output token, given the output length and the throughput (tokens/s) of the row.
UNITS = {"J/output_token": lambda v, out, tput: v, "J/token": lambda v, out, tput: v,
         "J/request": lambda v, out, tput: v / out, "kJ/request": lambda v, out, tput: v * 1e3 / out,
         "Wh/request": lambda v, out, tput: v * 3600.0 / out,
         "W": lambda v, out, tput: v / tput if tput else math.nan,
         "kW": lambda v, out, tput: v * 1e3 / tput if tput else math.nan}
#: The run's own settings stated by its source (not fitted): MLPerf v4.1 NVIDIA H200 "MaxQ" caps each GPU at 500 W
#: and serves one model copy per GPU (closed/NVIDIA/configs/mixtral-8x7b/Offline/__init__.py, power_limit = 500).
#: MLPerf v5.1 Lenovo B200 llama2-70b: one model copy per GPU at the boards' own 1000 W
#: (closed/Lenovo/configs/SR680a_V3_B200SXMx8/<scenario>/llama2-70b.py, tensor_parallelism = 1; power_settings.txt).
#: ML.ENERGY v3 launches vLLM with ``--tensor-parallel-size N`` (and ``--enable-expert-parallel`` for the MoE models)
#: unless a config names a data-parallel size, which none of these do (ml-energy/benchmark
#: mlenergy/benchmark/llm/benchmark.py and configs/vllm/<task>/<model>/<gpu>/monolithic.config.yaml): tensor-parallel
#: attention, MLA's included (dse's ``auto`` would serve DeepSeek data-parallel).
RUN_SETTINGS = {"mlperf41-": dict(power_limit_w=500.0, tp=1, ep=1, dp=8),
                "mlperf51-llama2-70b-": dict(tp=1, ep=1, dp=8),
                "mle3-": dict(attention_parallel="tp"), "v3-": dict(attention_parallel="tp")}


@dataclass
class Row:
    id: str
    source: str
    hardware: str
    n_gpus: int
    model: str
    precision: str
    prompt_len: float
    output_len: float
    concurrency: float | None
    measured_j_per_token: float
    boundary: str
    throughput_tok_s: float | None = None
    pue: float | None = None      # a facility row's own PUE (optional column; else the default's)
    engine: str = ""              # the serving engine that ran it (optional column; else from its source)
    predicted_j_per_token: float = math.nan
    predicted_step_s: float = math.nan     # dse's mean step (its tpot), beside :func:`measured_step`
    skipped: str = ""

    @property
    def ratio(self) -> float:
        return self.predicted_j_per_token / self.measured_j_per_token


#: The columns a measurements table must have (``pue`` and ``notes`` are optional).
COLUMNS = ("id", "source", "hardware", "n_gpus", "model", "precision", "prompt_len", "output_len", "concurrency",
           "throughput_tok_s", "measured_value", "measured_unit", "boundary")


def _num(x: str) -> float | None:
    return float(x) if x not in ("", None) else None


#: A table's numeric columns -> (lower bound, whether the bound itself is allowed); empty cells are "not published".
RANGES = {"n_gpus": (1.0, True), "prompt_len": (0.0, True), "output_len": (0.0, False), "concurrency": (0.0, False),
          "throughput_tok_s": (0.0, False), "measured_value": (0.0, False), "pue": (1.0, True)}


def _check_ranges(path, r: dict) -> None:
    """Each number of a row finite and within :data:`RANGES`, else a one-line error naming the row and column."""
    for col, (low, inclusive) in RANGES.items():
        try:
            x = _num(r.get(col) or "")
        except ValueError:
            continue          # not a number: read()'s own message
        if x is not None and not (math.isfinite(x) and (x >= low if inclusive else x > low)):
            raise DseError(f"{path}: row {r['id']}: {col}={r[col]}; allowed: a finite number "
                           f"{'>=' if inclusive else '>'} {low:g}")


def read(path: Path = TABLE) -> list[Row]:
    import io

    from dse.files import read_user_text

    rows = []
    table = list(csv.DictReader(io.StringIO(read_user_text(path, "measurements table", 64 << 20), newline="")))
    missing = [c for c in COLUMNS if table and c not in table[0]]
    if missing:
        raise DseError(f"{path}: missing column(s) {', '.join(missing)}; required: {', '.join(COLUMNS)}")
    for r in table:
        unit = r["measured_unit"]
        if unit not in UNITS:
            raise DseError(f"{path}: row {r['id']}: measured_unit={unit!r}; allowed: {', '.join(UNITS)}")
        _check_ranges(path, r)
        try:
            out = _num(r["output_len"]) or 1.0
            value, tput = float(r["measured_value"]), _num(r["throughput_tok_s"])
            rows.append(Row(r["id"], r["source"], r["hardware"], int(float(r["n_gpus"])), r["model"],
                            r["precision"], _num(r["prompt_len"]) or 0.0, out, _num(r["concurrency"]),
                            UNITS[unit](value, out, tput), r["boundary"], tput, _num(r.get("pue") or ""),
                            _engine(r.get("engine") or r["source"] + " " + r.get("notes", "")) or r.get("engine", "")))
        except (TypeError, ValueError) as err:
            raise DseError(f"{path}: row {r['id']}: {err} (numbers expected in n_gpus, prompt_len, output_len, "
                           "concurrency, throughput_tok_s, measured_value, pue)") from None
    return rows


#: Words in a row's source or notes -> the engine preset that ran it (the first that matches). ML.ENERGY v3 runs
#: vLLM 0.11, its v2 (2024) vLLM 0.5.4; MLPerf's closed submissions TensorRT-LLM, whose large-batch rows share the
#: vllm preset's fit.
ENGINES = {"ml.energy leaderboard v2": "vllm-0.5", "sglang": "sglang",
           "inferencemax": "sglang", "inferencex": "sglang", "ml.energy": "vllm", "vllm": "vllm", "mlperf": "vllm",
           "tensorrt": "vllm"}


def _engine(text: str) -> str:
    """The engine preset of a row by its source, notes or ``engine`` column (empty: the node preset's own). A vLLM
    version before 0.6 (whose CPU-overhead work made the host no longer the bottleneck) is ``vllm-0.5``; a preset's
    own name is taken as it is."""
    import re

    from dse.config import presets

    key = text.lower().strip()
    if key in presets.presets("engine"):
        return key
    version = re.search(r"vllm[\s_-]*v?(\d+)\.(\d+)", key)
    if version:
        return "vllm-0.5" if (int(version[1]), int(version[2])) < (0, 6) else "vllm"
    return next((engine for word, engine in ENGINES.items() if word in key), "")


def _system(hardware: str) -> str | None:
    """The node preset of a row's GPU; PCIe and NVL cards (other boards, power and memory) have none."""
    key = hardware.lower()
    if "pcie" in key or "nvl" in key:
        return None
    return next((system for gpu, system in SYSTEMS.items() if gpu in key), None)


def _model(name: str) -> str | None:
    """The dse model preset of a published model name (``org/`` prefixes and case ignored; a preset's own name is
    accepted)."""
    from dse.config import presets

    key = name.lower().split("/")[-1]
    if key in MODELS:
        return MODELS[key]
    return key if key in presets.presets("model") else None


def _skip_reason(row: Row) -> str:
    from dse.config import presets

    system, model = _system(row.hardware), _model(row.model)
    if system is None or model is None:
        return f"no preset for {row.hardware if system is None else row.model}"
    if row.precision.lower() not in WEIGHT_BYTES:
        return f"precision {row.precision!r} unknown (known: {', '.join(WEIGHT_BYTES)})"
    engines = presets.presets("engine")
    if row.engine and row.engine not in engines:
        return f"engine {row.engine!r} unknown (known: {', '.join(engines)})"
    if row.concurrency is None and not row.throughput_tok_s:
        return "neither concurrency nor throughput published"
    return ""


#: Batches tried where a row publishes its throughput but not its concurrency (:func:`_batch`).
BATCHES = sorted({round(2 ** (i / 8)) for i in range(8 * 16 + 1)})


def _evaluate(row: Row, batch=None, **extra):
    from dse.run.engine import evaluate

    settings = dict(tp=row.n_gpus, ep=row.n_gpus, dp=1, **({"pue": row.pue} if row.pue else {}),
                    **({"engine": row.engine} if row.engine else {}))
    for prefix, more in RUN_SETTINGS.items():
        if row.id.startswith(prefix):
            settings.update(more)
    return evaluate(model=_model(row.model), system=_system(row.hardware), placement="hbm",
                    batch=_batch(row) if batch is None else batch,
                    prompt_len=max(round(row.prompt_len), 1), output_len=max(round(row.output_len), 1),
                    weight_bytes=WEIGHT_BYTES[row.precision.lower()], boundary=row.boundary, **settings, **extra)


def _batch(row: Row) -> int:
    """The row's concurrency; where only its throughput is published, the smallest batch at which dse's own
    throughput (output tokens/s over the row's GPUs, the presets' serving-engine constants) reaches it, among the
    batches that fit in HBM (where none does: the one of the highest throughput that fits)."""
    if row.concurrency is not None:
        return max(round(row.concurrency), 1)
    ds = _evaluate(row, batch=BATCHES)
    tput = (ds.tokens_per_s_per_gpu * row.n_gpus).where(ds.fits.astype(bool))
    reach = tput.where(tput >= row.throughput_tok_s, drop=True)
    if reach.sizes["batch"]:
        return int(reach.batch.min())
    return int(tput.idxmax("batch")) if bool(tput.notnull().any()) else BATCHES[0]


def predict(row: Row) -> Row:
    row.skipped = _skip_reason(row)
    if not row.skipped:
        ds = _evaluate(row)
        row.predicted_j_per_token = float(ds.energy_per_output_token)
        row.predicted_step_s = float(ds.tpot)
    return row


def halves(rows: list[Row], table: Path = TABLE) -> tuple[list[Row], list[Row]]:
    """The rows dse can predict, split in file order within each engine fitted on ``table`` (:data:`FIT_TABLES`):
    every other row of such an engine fits its constants (``fit``), the rest report; rows of any other engine only
    report."""
    fitted_here = {e for e, t in FIT_TABLES.items() if Path(table).resolve() == t.resolve()}
    done = [r for r in rows if not _skip_reason(r)]
    seen: dict[str, int] = {}
    fit = []
    for r in done:
        if r.engine in fitted_here:
            seen[r.engine] = seen.get(r.engine, 0) + 1
            if seen[r.engine] % 2:
                fit.append(r)
    fit_ids = {r.id for r in fit}
    return fit, [r for r in done if r.id not in fit_ids]


#: The published sweep of ML.ENERGY v3 (vLLM 0.11) beside the repository's table: the configurations of the models
#: dse has presets for that measurements.csv does not hold (analysis/mlenergy_v3_table.py).
SWEEP = TABLE.with_name("mlenergy_v3_sweep.csv")
#: The table each fitted engine's constants are fitted on (on every other of its rows there): vllm on the sweep (195
#: rows over 2 GPUs, 8 models, 1 to 8 GPUs and batches of 8 to 4096; the rest of the sweep and all of measurements.csv
#: then check it, TensorRT-LLM's MLPerf rows included), vllm-0.5 on measurements.csv (the only table of its runs).
FIT_TABLES = {"vllm": SWEEP, "vllm-0.5": TABLE}
#: The engines' fitted constants (system.serving_efficiency, active_power_fraction, host_us_per_sequence,
#: layer_overhead_us; fp8_layer_overhead_us comes out of the same fit, :func:`fit`) and the grid of each; vllm-0.5's
#: (ML.ENERGY v2's host-bound vLLM 0.5.4, whose steps spend most of their time on the host) spans wider host and
#: per-layer times.
FIT_GRIDS = {
    "vllm": dict(serving_efficiency=[round(0.30 + 0.02 * i, 2) for i in range(36)],
                 active_power_fraction=[round(0.02 * i, 2) for i in range(46)],
                 host_us_per_sequence=[10.0 * i for i in range(21)],
                 layer_overhead_us=[20.0 * i for i in range(21)]),
    "vllm-0.5": dict(serving_efficiency=[round(0.30 + 0.05 * i, 2) for i in range(15)],
                     active_power_fraction=[round(0.02 * i, 2) for i in range(26)],
                     host_us_per_sequence=[20.0 * i for i in range(41)],
                     layer_overhead_us=[100.0 * i for i in range(31)]),
}


def measured_step(row: Row) -> float | None:
    """A row's mean step (s): its concurrency over its output tokens per second (each sequence in flight gains one
    token a step); None where either is not published."""
    if row.concurrency is None or not row.throughput_tok_s:
        return None
    return row.concurrency / row.throughput_tok_s


def squares(rows: list[Row], **constants):
    """The fit's objective over ``rows``: sum of log(predicted / measured)^2 of the energy per output token and,
    where the row publishes its concurrency and throughput, of the step time. The energy alone leaves power and
    time free to trade against each other (the same product from a long step at low power); the step pins the
    time, the energy then the power. Returns (energy squares, step squares), over the dimensions of any list in
    ``constants``."""
    import numpy as np

    sq_energy = sq_step = 0.0
    for row in rows:
        ds = _evaluate(row, **constants)
        sq_energy = sq_energy + np.log(ds.energy_per_output_token / row.measured_j_per_token) ** 2
        step = measured_step(row)
        if step:
            sq_step = sq_step + np.log(ds.tpot / step) ** 2
    return sq_energy, sq_step


def fp8_path(row: Row) -> bool:
    """Whether the row's products compute in fp8 on its GPU (its step then takes the engine's
    ``fp8_layer_overhead_us`` per layer besides ``layer_overhead_us``)."""
    tpot = _evaluate(row, fp8_layer_overhead_us=[0.0, 1e3]).tpot.values
    return bool(tpot[1] > tpot[0])


def fit(rows: list[Row], engine: str = "vllm") -> dict:
    """An engine's constants by least squares (:func:`squares`) over its rows among ``rows`` (the fit half), on its
    grid in :data:`FIT_GRIDS`: one set for every node, GPU and model the engine ran. The fixed time per layer is
    ``layer_overhead_us`` where products compute in 16 bits and ``layer_overhead_us + fp8_layer_overhead_us`` where
    they compute in fp8 (:func:`fp8_path`): the two groups of rows are fitted over the same grid of their own per-layer
    time, the sums of squares added over both (the fp8 rows' time no less than the others'); an engine with no fp8
    row gets ``fp8_layer_overhead_us`` 0 (nothing to fit it on)."""
    import numpy as np
    import xarray as xr

    mine = [r for r in rows if r.engine == engine]
    if not mine:
        raise DseError(f"no row of the {engine} engine to fit its constants on")
    grid = FIT_GRIDS[engine]
    eight = [r for r in mine if fp8_path(r)]
    groups = {"16": [r for r in mine if r.id not in {e.id for e in eight}], "8": eight}
    zero = xr.DataArray(np.zeros([len(v) for v in grid.values()]), coords=grid, dims=list(grid))
    sq = {k: tuple(zero + x for x in squares(g, fp8_layer_overhead_us=0.0, **grid)) if g else (zero, zero)
          for k, g in groups.items()}
    # the fp8 rows' time per layer on an axis of its own: the sum over both groups spans the grid and that time
    own = {k: ("fp8_total_us" if k == "layer_overhead_us" else k) for k in grid}
    eight_sq = xr.DataArray((sq["8"][0] + sq["8"][1]).transpose(*grid).values, dims=[own[k] for k in grid],
                            coords={own[k]: v for k, v in grid.items()})
    total = (sq["16"][0] + sq["16"][1]) + eight_sq
    total = total.where(total.fp8_total_us >= total.layer_overhead_us)
    at = dict(zip(total.dims, np.unravel_index(int(np.nanargmin(total.values)), total.shape)))
    best = {k: float(total[k].values[i]) for k, i in at.items()}
    total_fp8 = best.pop("fp8_total_us")
    extra = total_fp8 - best["layer_overhead_us"] if eight else 0.0
    at16 = {k: grid[k].index(best[k]) for k in grid}
    at8 = at16 | {"layer_overhead_us": grid["layer_overhead_us"].index(best["layer_overhead_us"] + extra)}
    n_steps = sum(measured_step(r) is not None for r in mine)
    energy = float(sq["16"][0].isel(at16) + sq["8"][0].isel(at8))
    step = float(sq["16"][1].isel(at16) + sq["8"][1].isel(at8))
    return best | {"fp8_layer_overhead_us": extra, "rms_log_energy": math.sqrt(energy / len(mine)),
                   "rms_log_step": math.sqrt(step / max(n_steps, 1))}


#: Measured single-request steps of the SGLang engine (TPOT at one request): the ``sglang`` engine preset's fixed time
#: per layer is fitted on every other row and reported on the rest.
SGLANG_TABLE = TABLE.with_name("sglang_b200_tpot.csv")
#: The grid ``layer_overhead_us`` is fitted on (us).
LAYER_GRID = [5.0 * i for i in range(61)]


def tpot_rows(path: Path = SGLANG_TABLE) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def predict_tpot(row: dict, **extra):
    """dse's decode step (s) for a TPOT row: the row's node, model, precision and GPUs (tensor-parallel, experts
    spread over the GPUs), its concurrency at the mean context of a request's life, the sglang engine's constants."""
    from dse.run.engine import evaluate

    n = int(row["n_gpus"])
    return evaluate(model=_model(row["model"]), system=_system(row["hardware"]), batch=int(row["concurrency"]),
                    context_len=float(row["prompt_len"]) + float(row["output_len"]) / 2,
                    weight_bytes=WEIGHT_BYTES[row["precision"]], tp=n, ep=n, dp=1, attention_parallel="tp",
                    engine="sglang", **extra).step_latency


def fit_layer_overhead(rows: list[dict]) -> float:
    """The sglang engine's ``layer_overhead_us``: least squares of log(predicted / measured TPOT) over ``rows`` (the
    fit half of :data:`SGLANG_TABLE`) on :data:`LAYER_GRID`."""
    import numpy as np

    sq = sum(np.log(predict_tpot(r, layer_overhead_us=LAYER_GRID) / (float(r["tpot_ms"]) * 1e-3)) ** 2
             for r in rows)
    return float(sq.layer_overhead_us[int(np.argmin(sq.values))])


def run(path: Path = TABLE) -> list[Row]:
    return [predict(r) for r in read(path)]


def _stats(label: str, rows: list[Row]) -> str:
    ratios = sorted(r.ratio for r in rows)
    within = sum(1 / 1.5 <= x <= 1.5 for x in ratios)
    steps = [r.predicted_step_s / measured_step(r) for r in rows if measured_step(r)]
    step_part = (f"; step within 1.5x: {sum(1 / 1.5 <= x <= 1.5 for x in steps)} of {len(steps)}, median "
                 f"{statistics.median(steps):.2f}") if steps else ""
    return (f"{label}: {len(rows)} rows, median ratio {statistics.median(ratios):.2f}, {within} of {len(rows)} "
            f"within 1.5x, range {ratios[0]:.2f}-{ratios[-1]:.2f}{step_part}")


def summary(rows: list[Row], table: Path = TABLE) -> str:
    """The rows of ``table`` with their ratios, the fit and report halves of the engines fitted on it marked
    (:data:`FIT_TABLES`); every other row is out of sample."""
    fit_ids = {r.id for r in halves(rows, table)[0]}
    lines = [f"{'id':40s} {'half':6s} {'boundary':8s} {'measured J/tok':>14s} {'dse J/tok':>10s} {'ratio':>6s} "
             f"{'step ms':>8s} {'dse ms':>8s}"]
    for r in rows:
        half = "fit" if r.id in fit_ids else ("-" if r.skipped else "check")
        if r.skipped:
            lines.append(f"{r.id:40s} {half:6s} {r.boundary:8s} {r.measured_j_per_token:14.4g} {'-':>10s} {'-':>6s}  "
                         f"skipped: {r.skipped}")
        else:
            step = measured_step(r)
            lines.append(f"{r.id:40s} {half:6s} {r.boundary:8s} {r.measured_j_per_token:14.4g} "
                         f"{r.predicted_j_per_token:10.4g} {r.ratio:6.2f} "
                         f"{f'{step * 1e3:8.1f}' if step else '       -'} {r.predicted_step_s * 1e3:8.1f}"
                         + ("" if r.prompt_len else "  *"))
    done = [r for r in rows if not r.skipped]
    if any(not r.prompt_len for r in done):
        lines.append("* prompt length not published: a one-token prompt (no prefill: dse's energy for the row is low)")
    if done:
        where = "; ".join(f"{e} on {t.name}" for e, t in FIT_TABLES.items())
        lines.append(f"{len(done)} rows predicted, {len(rows) - len(done)} skipped. Each fitted engine's constants "
                     f"were fitted on every other of its rows in one table ({where}); 'check' rows were not "
                     "fitted on:")
        lines.append(_stats("  check (not fitted on)", [r for r in done if r.id not in fit_ids]))
        if fit_ids:
            lines.append(_stats("  fit half", [r for r in done if r.id in fit_ids]))
            lines.append(_stats("  all", done))
    return "\n".join(lines)


def parity_figure(rows: list[Row], table: Path = TABLE):
    """Measured versus predicted energy per output token, log-log, with the parity line and the 1.5x band."""
    from dse.analyze import plot

    done = [r for r in rows if not r.skipped]
    with plot.style():
        fig, axes = plot.figure("one", 3.0)
        ax = axes[0, 0]
        xs = [r.measured_j_per_token for r in done]
        ys = [r.predicted_j_per_token for r in done]
        lo, hi = min(xs + ys) / 2, max(xs + ys) * 2
        ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8, label="parity")
        ax.fill_between([lo, hi], [lo / 1.5, hi / 1.5], [lo * 1.5, hi * 1.5], color="0.85", lw=0, label="within 1.5x")
        fit_ids = {r.id for r in halves(rows, table)[0]}
        for boundary, marker in (("gpu", "o"), ("node", "s"), ("facility", "^")):
            for half, face in (("not fitted on", None), ("fit", "none")):
                pts = [(r.measured_j_per_token, r.predicted_j_per_token) for r in done
                       if r.boundary == boundary and (r.id in fit_ids) == (half == "fit")]
                if pts:
                    ax.plot(*zip(*pts), marker, ms=4, ls="none", mfc=face, label=f"{boundary}, {half}",
                            gid=f"rows|{boundary}|{half}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("measured energy per output token [J]")
        ax.set_ylabel("dse [J]")
        plot.plain_ticks(ax, "x")
        plot.plain_ticks(ax, "y")
        plot.legend(ax)
        plot.finish(fig)
    return fig


def main(argv=None) -> int:
    import argparse
    import logging

    from dse.analyze import plot

    ap = argparse.ArgumentParser(prog="dse validate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="outputs/validation", help="directory of validation.png / .svg")
    ap.add_argument("--table", default=str(TABLE), help="measurements CSV (default: the repository's)")
    ap.add_argument("--overwrite", action="store_true", help="replace validation.png / .svg that dse did not write")
    ap.add_argument("--fit", action="store_true", help="fit each engine's constants on the fit half of its rows in "
                    "its own table (vllm: the ML.ENERGY v3 sweep; vllm-0.5: measurements.csv; --table is not read) and "
                    "print them (the engine presets carry the result), and the sglang engine's time per layer")
    args = ap.parse_args(argv)
    if args.fit:
        for engine, table in FIT_TABLES.items():
            fit_half = halves(read(table), table)[0]
            if not any(r.engine == engine for r in fit_half):
                print(f"{engine} engine: no row of it in the fit half of {table.name}")
                continue
            got = fit(fit_half, engine)
            print(f"{engine} engine (fit half of {table.name}): " + " ".join(f"{k}={v:.3g}" for k, v in got.items()))
        print(f"sglang engine: layer_overhead_us={fit_layer_overhead(tpot_rows()[0::2]):g} (fit half of "
              f"{SGLANG_TABLE.name})")
        return 0
    rows = run(Path(args.table))
    print(summary(rows, Path(args.table)))
    if all(r.skipped for r in rows):
        print("no row could be predicted: no parity figure")
        return 0
    fig = parity_figure(rows, Path(args.table))
    bad = plot.problems(fig)
    if bad:
        raise SystemExit("validation figure: " + "; ".join(bad))
    paths = plot.save(fig, args.out, "validation", overwrite=args.overwrite)
    logging.getLogger("dse").info("wrote %s", ", ".join(map(str, paths)))
    return 0
