"""dse against published measurements (reference/validation/measurements.csv, dse.analyze.validation)."""
import csv
import statistics

import numpy as np
import pytest

from dse.analyze import validation
from dse.config import presets


@pytest.fixture(scope="module")
def rows():
    return validation.run()


def test_the_table_is_read_as_published():
    """Units converted by hand from the table's own columns: J/request / output tokens, W / tokens per second."""
    table = {r["id"]: r for r in csv.DictReader(open(validation.TABLE))}
    got = {r.id: r for r in validation.read()}
    mle2 = table["mle2-mixtral-h100x4-bs128"]                  # 247.97 J per request of 373.5 output tokens
    assert got[mle2["id"]].measured_j_per_token == pytest.approx(247.97 / 373.5, rel=1e-9)
    mlperf = table["mlperf41-mixtral-h200x8-offline"]          # 6154.8 W at 48987.9 tokens/s
    assert got[mlperf["id"]].measured_j_per_token == pytest.approx(6154.8 / 48987.9, rel=1e-9)
    assert got[mlperf["id"]].boundary == "node"


def test_the_halves_alternate_within_each_engine_in_its_own_table_and_cover_three_gpus_and_two_moe_models(rows):
    done = [r for r in rows if not r.skipped]
    assert len(done) >= 10 and len({r.hardware for r in done}) >= 3 and len({r.model for r in done}) >= 2
    for engine, table in validation.FIT_TABLES.items():
        mine_rows = validation.read(table)
        fit, report = validation.halves(mine_rows, table)
        assert not {r.id for r in fit} & {r.id for r in report}
        mine = [r.id for r in mine_rows if r.engine == engine and not validation._skip_reason(r)]   # file order
        assert len(mine) >= 10, engine
        assert [r.id for r in fit if r.engine == engine] == mine[0::2]
        assert [r.id for r in report if r.engine == engine] == mine[1::2]
    # measurements.csv: the vllm engine is fitted elsewhere (the sweep), so every one of its rows here checks it
    fit = validation.halves(rows)[0]
    assert not [r for r in fit if r.engine == "vllm"] and [r for r in fit if r.engine == "vllm-0.5"]
    # ML.ENERGY v3 (vLLM 0.11) and MLPerf (TensorRT-LLM) rows run on vllm, ML.ENERGY v2 (vLLM 0.5.4) on vllm-0.5
    assert {r.engine for r in rows if r.id.startswith(("mle3-", "mlperf"))} == {"vllm"}
    assert {r.engine for r in rows if r.id.startswith("mle2-")} == {"vllm-0.5"}


def test_the_sweep_and_the_table_share_no_row():
    """The vllm engine is fitted on half the sweep and checked on measurements.csv: no configuration is in both (the
    same GPUs, model and precision at the same published energy per token), so the check is out of sample."""
    table = list(csv.DictReader(open(validation.TABLE)))
    sweep = list(csv.DictReader(open(validation.SWEEP)))
    assert len(sweep) >= 190
    for r in sweep:
        twins = [t["id"] for t in table if (t["hardware"], t["n_gpus"], t["model"], t["precision"])
                 == (r["hardware"], r["n_gpus"], r["model"], r["precision"])
                 and abs(float(t["measured_value"]) / float(r["measured_value"]) - 1) < 1e-3]
        assert not twins, (r["id"], twins)


def test_the_measured_step_is_concurrency_over_throughput():
    """ML.ENERGY v2 Mixtral-8x7B at max_num_seqs 128: 127.7 requests in flight at 1307.1 output tokens/s, one token
    each per step: 97.7 ms a step (by hand)."""
    row = {r.id: r for r in validation.read()}["mle2-mixtral-h100x4-bs128"]
    assert validation.measured_step(row) == pytest.approx(127.7 / 1307.1, rel=1e-12)
    assert validation._batch(row) == 128


@pytest.mark.parametrize("engine", list(validation.FIT_GRIDS))
def test_each_fitted_engine_carries_the_fit_of_its_fit_half(engine):
    """An engine preset's constants are what the documented fit (energy and step time, least squares of the log
    ratios) gives on the fit half of its table: not tuned by hand, not fitted on the rows they are checked on."""
    table = validation.FIT_TABLES[engine]
    fit_half = validation.halves(validation.read(table), table)[0]
    got = validation.fit(fit_half, engine)
    p = presets.preset("engine", engine)
    grid = validation.FIT_GRIDS[engine]
    for key in grid:
        assert p[key] in grid[key], key
        assert p["provenance"][key]["evidence"] == "fitted"
    assert p["fp8_layer_overhead_us"] == pytest.approx(got["fp8_layer_overhead_us"], abs=1e-9)
    # the preset is a least-squares point of the grid: its objective is the grid's minimum (up to float noise, so
    # that a near-tie resolved differently on another CPU cannot fail this)
    mine = [r for r in fit_half if r.engine == engine]
    keys = list(grid) + ["fp8_layer_overhead_us"]
    at_preset = sum(float(x) for x in validation.squares(mine, **{k: p[k] for k in keys}))
    at_best = sum(float(x) for x in validation.squares(mine, **{k: got[k] for k in keys}))
    assert at_preset == pytest.approx(at_best, rel=1e-9)
    # and the fit predicts its own steps: no trading a long step against a low power
    assert got["rms_log_step"] < 0.25 and got["rms_log_energy"] < 0.25


def test_the_fp8_split_is_what_the_fit_finds_where_it_has_fp8_rows():
    """vllm's fit half holds fp8 rows (DeepSeek, Qwen3-235B FP8, Llama-4-Maverick FP8) beside 16-bit and mxfp4
    ones and puts fp8 products' fixed time per layer above the others'; vllm-0.5's rows are all bf16 Mixtral: there is
    nothing to fit an fp8 time on and it is 0."""
    assert presets.preset("engine", "vllm")["fp8_layer_overhead_us"] > 0
    assert presets.preset("engine", "vllm-0.5")["fp8_layer_overhead_us"] == 0
    table = validation.FIT_TABLES["vllm-0.5"]
    assert not [r for r in validation.halves(validation.read(table), table)[0]
                if r.engine == "vllm-0.5" and validation.fp8_path(r)]


def test_every_row_against_the_measurements(rows):
    """The issue's target on measurements.csv: every row within 1.5x of its measurement and the median within 1.25x,
    the rows no constant was fitted on (all of the vllm engine's, half of vllm-0.5's) the same (docs/model.md
    "Validation" gives the numbers)."""
    fit_ids = {r.id for r in validation.halves(rows)[0]}
    done = [r for r in rows if not r.skipped]
    for group in (done, [r for r in done if r.id not in fit_ids]):
        ratios = [r.ratio for r in group]
        assert len(ratios) >= 10 and 1 / 1.25 <= statistics.median(ratios) <= 1.25
        assert all(1 / 1.5 <= x <= 1.5 for x in ratios), [(r.id, round(r.ratio, 2)) for r in group]
        assert all(r.predicted_j_per_token > 0 for r in group)


def test_the_published_sweep_check_half():
    """The rest of the ML.ENERGY v3 sweep of the models dse has presets for (reference/validation/mlenergy_v3_sweep.csv,
    written by analysis/mlenergy_v3_table.py): on the half the vllm engine was not fitted on, the median within
    1.25x and nine in ten rows within 1.5x (docs/model.md "Validation" gives the numbers)."""
    sweep = validation.run(validation.SWEEP)
    table = {r["id"]: r for r in csv.DictReader(open(validation.SWEEP))}
    assert len(table) == len(sweep) >= 190                    # unique ids: a configuration published twice kept apart
    assert not [r.id for r in sweep if r.skipped]
    fit_ids = {r.id for r in validation.halves(sweep, validation.SWEEP)[0]}
    check = [r for r in sweep if r.id not in fit_ids]
    ratios = [r.ratio for r in check]
    assert len(check) >= 95 and 1 / 1.25 <= statistics.median(ratios) <= 1.25
    assert sum(1 / 1.5 <= x <= 1.5 for x in ratios) >= 0.9 * len(ratios)
    assert len({r.hardware for r in check}) >= 2 and len({r.model for r in check}) >= 5


def test_published_small_batch_steps_leave_a_per_layer_gap_over_the_roofline():
    """The evidence for ``layer_overhead_us`` and ``fp8_layer_overhead_us`` (docs/model.md "The serving engine"): at
    batch 8, every ML.ENERGY v3 series whose products compute in 16 bits or mxfp4 (but the one Qwen3-30B Thinking
    series on one B200, whose steps are 4x its neighbours') runs its decode steps 55-145 us per layer slower than
    dse's roofline, for models of 36 to 94 layers; every fp8 series (DeepSeek-R1 / V3.1, Qwen3-235B FP8,
    Llama-4-Maverick FP8) 145-305 us, about 90 us more at the medians."""
    import re

    from dse.run.engine import evaluate

    neutral = dict(serving_efficiency=1.0, active_power_fraction=0.0, host_us_per_sequence=0.0,
                   layer_overhead_us=0.0, fp8_layer_overhead_us=0.0)
    gaps, layers = {True: [], False: []}, set()
    for path in (validation.TABLE, validation.SWEEP):
        notes = {r["id"]: r["notes"] for r in csv.DictReader(open(path))}
        for r in validation.read(path):
            if (not r.id.startswith(("mle3-", "v3-")) or r.concurrency > 8.5
                    or (r.model.startswith("qwen3-30b") and "thinking" in r.model and r.hardware == "b200"
                        and r.n_gpus == 1)):
                continue
            itl = float(re.search(r"median_itl_ms=([\d.]+)", notes[r.id]).group(1)) * 1e-3
            # the decode step alone at the mean context of a request's life (at batch 8 the fused prefill is small)
            roofline = float(evaluate(model=validation.MODELS[r.model], system=validation.SYSTEMS[r.hardware[:4]],
                                      batch=8, context_len=r.prompt_len + r.output_len / 2, tp=r.n_gpus, ep=r.n_gpus,
                                      weight_bytes=validation.WEIGHT_BYTES[r.precision], **neutral).step_latency)
            n_layers = presets.preset("model", validation.MODELS[r.model])["n_layers"]
            gaps[validation.fp8_path(r)].append((itl - roofline) / n_layers)
            layers.add(n_layers)
    assert len(gaps[False]) >= 15 and len(gaps[True]) >= 10 and min(layers) == 36 and max(layers) == 94
    assert 50e-6 <= min(gaps[False]) and max(gaps[False]) <= 145e-6
    assert 145e-6 <= min(gaps[True]) and max(gaps[True]) <= 305e-6
    assert 60e-6 <= statistics.median(gaps[True]) - statistics.median(gaps[False]) <= 120e-6


def _table(tmp_path, rows, columns=validation.COLUMNS):
    path = tmp_path / "t.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns))
        w.writeheader()
        w.writerows([{k: r.get(k, "") for k in columns} for r in rows])
    return path


def test_a_table_from_elsewhere_in_its_own_spelling(tmp_path):
    """A measurements table kept outside the repository names hardware, models, precisions and units its own way:
    the same measurement spelt differently gets the same prediction; what dse cannot read is a one-line error."""
    base = {r["id"]: r for r in csv.DictReader(open(validation.TABLE))}["mle3-q235i-h100x8-bs128"]
    # 1.4862 J per output token x 863.0 output tokens = 1282.59 J = 1.28259 kJ per request
    other = {**base, "id": "elsewhere", "hardware": "NVIDIA H100 SXM5 80GB", "precision": "BF16",
             "model": "Qwen/Qwen3-235B-A22B-Instruct-2507", "measured_value": str(1.4862 * 863.0 / 1e3),
             "measured_unit": "kJ/request"}
    a, b = validation.run(_table(tmp_path, [base, other]))
    assert not a.skipped and not b.skipped
    assert b.measured_j_per_token == pytest.approx(1.4862, rel=1e-9)
    assert b.predicted_j_per_token == pytest.approx(a.predicted_j_per_token, rel=1e-9)
    with pytest.raises(validation.DseError, match=r"elsewhere: measured_unit='kWh'; allowed: J/output_token"):
        validation.read(_table(tmp_path, [{**other, "measured_unit": "kWh"}]))
    with pytest.raises(validation.DseError, match="missing column.*boundary"):
        validation.read(_table(tmp_path, [other], validation.COLUMNS[:-1]))
    with pytest.raises(validation.DseError, match="row elsewhere: could not convert string to float: 'n/a'"):
        validation.read(_table(tmp_path, [{**other, "measured_value": "n/a"}]))
    with pytest.raises(validation.DseError, match="no such measurements table"):
        validation.read(tmp_path / "none.csv")
    unknown = _table(tmp_path, [{**other, "hardware": "MI300X"}, {**other, "precision": "int3"}])
    skipped = validation.run(unknown)
    assert skipped[0].skipped == "no preset for MI300X" and "precision 'int3'" in skipped[1].skipped


def test_a_table_nothing_can_be_predicted_from(tmp_path, capsys):
    base = {r["id"]: r for r in csv.DictReader(open(validation.TABLE))}["mle3-q235i-h100x8-bs128"]
    path = _table(tmp_path, [{**base, "hardware": "MI300X"}])
    assert validation.main(["--table", str(path), "--out", str(tmp_path / "fig")]) == 0
    assert "no row could be predicted: no parity figure" in capsys.readouterr().out
    assert not (tmp_path / "fig").exists()


def test_a_row_with_throughput_but_no_concurrency(tmp_path):
    """The batch is the smallest (of validation.BATCHES) at which dse's throughput over the row's GPUs reaches the
    published one: here dse's own throughput at batch 128, a power of two in BATCHES."""
    base = {r["id"]: r for r in csv.DictReader(open(validation.TABLE))}["mle3-q235i-h100x8-bs128"]
    row = validation.read(_table(tmp_path, [base]))[0]
    at = validation._evaluate(row, batch=[117, 128])
    tput = (at.tokens_per_s_per_gpu * 8).values
    assert validation.BATCHES[validation.BATCHES.index(117) + 1] == 128
    assert tput[0] < tput[1]
    blind = validation.read(_table(tmp_path, [{**base, "concurrency": "", "throughput_tok_s": str(tput[1] * 0.999)}]))
    assert validation._batch(blind[0]) == 128
    assert validation.predict(blind[0]).predicted_j_per_token == pytest.approx(
        validation.predict(row).predicted_j_per_token, rel=1e-9)
    neither = validation.run(_table(tmp_path, [{**base, "concurrency": "", "throughput_tok_s": ""}]))[0]
    assert neither.skipped == "neither concurrency nor throughput published"


def test_the_sglang_engine_fits_half_its_measured_steps_and_reports_the_rest():
    """SGLang 0.5.8 on 8 x B200, one request in flight (reference/validation/sglang_b200_tpot.csv): the sglang
    preset's fixed time per layer is the fit on every other row, and the rows it was not fitted on come within 1.3x
    of their measured TPOT (Qwen3-235B 6.70 ms, DeepSeek-R1 FP4 5.74 ms); with the vllm engine's time per layer
    (80 us; neither computes in fp8) they would be 1.36-1.72x slow."""
    rows = validation.tpot_rows()
    assert len(rows) == 4
    p = presets.preset("engine", "sglang")
    assert p["layer_overhead_us"] in validation.LAYER_GRID
    best = validation.fit_layer_overhead(rows[0::2])

    def err(layer_us):
        return sum(np.log(float(validation.predict_tpot(r, layer_overhead_us=layer_us)) / (float(r["tpot_ms"]) * 1e-3))
                   ** 2 for r in rows[0::2])

    assert err(p["layer_overhead_us"]) == pytest.approx(err(best), rel=1e-9)   # a least-squares point of the grid
    assert p["provenance"]["layer_overhead_us"]["evidence"] == "fitted"
    for r in rows[1::2]:
        measured = float(r["tpot_ms"]) * 1e-3
        assert 1 / 1.3 <= float(validation.predict_tpot(r)) / measured <= 1.3, r["id"]
        vllm = presets.preset("engine", "vllm")
        slow = float(validation.predict_tpot(r, layer_overhead_us=vllm["layer_overhead_us"],
                                             fp8_layer_overhead_us=vllm["fp8_layer_overhead_us"]))
        assert 1.3 <= slow / measured <= 1.8, r["id"]


def test_rows_run_on_their_sources_engine(tmp_path):
    base = {r["id"]: r for r in csv.DictReader(open(validation.TABLE))}["mle3-q235i-h100x8-bs128"]
    given = validation.read(_table(tmp_path, [{**base, "source": "InferenceMAX (SemiAnalysis)", "notes": ""},
                                              {**base, "source": "a lab's own meter", "notes": ""}]))
    assert [r.engine for r in given] == ["sglang", ""]
    cols = validation.COLUMNS + ("engine",)
    assert validation.read(_table(tmp_path, [{**base, "engine": "roofline"}], cols))[0].engine == "roofline"
    # an engine named by its version: vLLM before 0.6 (host-bound) is vllm-0.5, later vllm; SGLang's name is enough
    spelt = validation.read(_table(tmp_path, [{**base, "engine": e} for e in ("vLLM 0.5.4", "vllm v0.4.2", "vLLM 0.11.1",
                                                                                 "SGLang 0.5.8", "TensorRT-LLM")], cols))
    assert [r.engine for r in spelt] == ["vllm-0.5", "vllm-0.5", "vllm", "sglang", "vllm"]
    noted = validation.read(_table(tmp_path, [{**base, "source": "a lab", "notes": "served with vLLM 0.5.3"}],
                                   validation.COLUMNS + ("notes",)))
    assert noted[0].engine == "vllm-0.5"
    unknown = validation.run(_table(tmp_path, [{**base, "engine": "tgi"}], cols))[0]
    assert unknown.skipped.startswith("engine 'tgi' unknown (known: ") and "sglang" in unknown.skipped


def test_rows_without_a_published_prompt_are_marked(tmp_path):
    """A row whose prompt length is not published is predicted with a one-token prompt, and the table says so."""
    base = {r["id"]: r for r in csv.DictReader(open(validation.TABLE))}["mle3-dsr1-b200x8-bs8"]   # GPQA: 210.4
    rows = validation.run(_table(tmp_path, [base, {**base, "id": "mle3-blind", "prompt_len": ""}]))
    lines = validation.summary(rows, tmp_path / "t.csv").splitlines()
    known, blind = (next(x for x in lines if x.startswith(i)) for i in (base["id"], "mle3-blind"))
    assert not known.endswith("*") and blind.endswith("  *")
    assert any(x.startswith("* prompt length not published") for x in lines)
    # without the prompt's prefill the prediction is lower
    assert rows[1].predicted_j_per_token < rows[0].predicted_j_per_token


def test_the_readme_table_is_what_dse_validate_prints(rows):
    """The README's row-by-row table (a copy for readers) carries every predicted row with dse's current ratio."""
    from pathlib import Path

    readme = (Path(validation.__file__).resolve().parents[2] / "README.md").read_text()
    table = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ml") and len(cells) == 11:
            table[cells[0].rstrip(" *")] = (float(cells[7]), float(cells[9]), cells[10], cells[0].endswith("*"))
    fit_ids = {r.id for r in validation.halves(rows)[0]}
    done = [r for r in rows if not r.skipped]
    assert set(table) == {r.id for r in done}
    for r in done:
        measured, ratio, half, star = table[r.id]
        assert measured == pytest.approx(r.measured_j_per_token, rel=1e-3)
        assert ratio == pytest.approx(r.ratio, abs=0.006), r.id
        assert half == ("fit" if r.id in fit_ids else "check") and star == (not r.prompt_len)


def test_fitting_an_engine_without_rows_is_a_one_line_error(rows):
    mle3 = [r for r in rows if r.id.startswith("mle3-")]
    with pytest.raises(validation.DseError, match="no row of the vllm-0.5 engine"):
        validation.fit(mle3, "vllm-0.5")


@pytest.mark.parametrize("col, value", [("measured_value", "0"), ("output_len", "-3"), ("n_gpus", "0"),
                                        ("concurrency", "nan"), ("pue", "0.9"), ("throughput_tok_s", "inf")])
def test_numbers_out_of_range_are_one_line_errors(tmp_path, col, value):
    """A zero measurement would divide by zero, a negative length give a negative energy: refused before any work."""
    base = {r["id"]: r for r in csv.DictReader(open(validation.TABLE))}["mle3-q235i-h100x8-bs128"]
    cols = validation.COLUMNS + ("pue",)
    with pytest.raises(validation.DseError, match=f"row mle3-q235i-h100x8-bs128: {col}={value}; allowed: a finite"):
        validation.read(_table(tmp_path, [{**base, col: value}], cols))
