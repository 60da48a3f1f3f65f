"""A user's first hour, round two (issue 24): the commands after `make demo`, figures that show every swept dimension
and mark what does not fit, request metrics for request datasets, fronts that name what they sit on, preset groups
and user presets from the command line, Optuna studies other tools read, and the small things (help, --version,
pipes, numbers, units, flags, Zarr metadata, dependency ranges).

Facts asserted here are derived by hand from the presets and the physics, never copied from dse's output."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

import dse  # noqa: E402
from dse.analyze import plot  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FLASH = [1.0, 5.0, 25.0, 100.0, 200.0]


def _cli(*args, env=None, cwd=None, timeout=300):
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env={**os.environ, **(env or {})})


def _gids(fig, prefix):
    out = {}
    for ax in fig.axes:
        for a in [*ax.lines, *ax.collections, *ax.patches]:
            if (a.get_gid() or "").startswith(prefix):
                out[a.get_gid()] = a
    return out


# ------------------------------------------------------------------ 1. make demo says what to type next
def test_make_demo_ends_with_the_next_commands_as_they_run_from_that_shell():
    r = subprocess.run(["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "MAKEFLAGS": ""})
    assert r.returncode == 0, r.stderr
    echoed = [ln.split("echo", 1)[1].strip().strip('"').strip() for ln in r.stdout.splitlines() if ln.startswith("echo")]
    commands = [e.split("#")[0].strip() for e in echoed if e.startswith((".venv/bin/", ". .venv/"))]
    assert ".venv/bin/dse study=paper-fig45-mixtral" in commands
    assert ". .venv/bin/activate" in commands             # the other way: on PATH for that shell
    for c in commands:                                    # every program it names exists where it says
        prog = c.split()[1] if c.startswith(". ") else c.split()[0]
        assert (ROOT / prog).exists(), prog


# ------------------------------------------------------------------ 2. every swept dimension in the figure
@pytest.fixture(scope="module")
def r1_sweep():
    """The issue's sweep, smaller: DeepSeek-R1 (671 B parameters) on 8 x H200, HBM vs SSD, 2 batches, 5 Flash read
    energies, 2 top-k values."""
    return dse.evaluate(model="deepseek-r1", system="8xh200-c2c", placement=["hbm", "ssd"], batch=[1, 64],
                        flash_read_pj_per_bit=FLASH, top_k=[1, 2])


def test_auto_figure_shows_every_swept_value(r1_sweep):
    fig = plot.auto(r1_sweep)
    lines = _gids(fig, "energy_per_token|")
    # one line per placement in a panel per (batch, top_k): 2 x 2 x 2 lines, each over all five Flash energies
    keys = set()
    for gid, line in lines.items():
        _, placement, panel = gid.split("|")
        keys.add((placement, panel))
        np.testing.assert_allclose(line.get_xdata(), FLASH)
    assert len(keys) == 8
    panels = {p for _, p in keys}
    assert panels == {f"batch={b},top_k={k}" for b in (1, 64) for k in (1, 2)}
    titles = " ".join(ax.get_title() for ax in fig.axes)
    assert "top_k = 2" in titles and "batch = 64" in titles
    assert plot.problems(fig) == []
    plt.close(fig)


def test_unfit_configurations_carry_a_marker(r1_sweep):
    # DeepSeek-R1 in bf16 is 671e9 x 2 B = 1,342 GB of weights; 8 H200 hold 8 x 141 GB = 1,128 GB: experts in HBM
    # cannot fit, at any batch; on SSD the experts leave HBM and the rest fits
    fig = plot.auto(r1_sweep)
    unfit = _gids(fig, "unfit|")
    assert unfit and all(g.split("|")[2] == "hbm" for g in unfit)
    assert {g.split("|")[3] for g in unfit} == {f"batch={b},top_k={k}" for b in (1, 64) for k in (1, 2)}
    labels = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert any("does not fit" in t for t in labels)
    plt.close(fig)
    bars = plot.auto(dse.evaluate(model="deepseek-r1", system="8xh200-c2c", placement=["hbm", "ssd"], batch=[1, 8]))
    assert set(_gids(bars, "unfit|")) == {"unfit|hbm|1", "unfit|hbm|8"}      # hatched bars, HBM only
    plt.close(bars)


def test_fixed_values_in_the_caption_with_plain_numbers():
    ds = dse.evaluate("paper-fig45-mixtral", batch=[1, 4], placement=["hbm", "ssd"], top_k=[1, 2],
                      context_len=[1024], flash_read_pj_per_bit=[0.1 + 0.2, 102.4])
    fig = plot.auto(ds)
    caption = fig._suptitle.get_text()
    assert "context_len = 1024" in caption                     # a swept dimension of one value
    texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    assert not any("0000000" in t for t in texts)              # 0.1 + 0.2 shows as 0.3
    plt.close(fig)


# ------------------------------------------------------------------ 9. request metrics
def test_request_dataset_draws_request_metrics():
    ds = dse.evaluate("serving-sharegpt", batch=[1, 16], placement=["hbm", "ssd"])
    fig = plot.auto(ds)
    drawn = {g.split("|")[0] for g in _gids(fig, "")}
    assert {"energy_per_output_token", "ttft", "tpot"} <= drawn
    assert "energy_per_token" not in drawn
    line = _gids(fig, "ttft|ssd|")["ttft|ssd|"]
    np.testing.assert_allclose(line.get_ydata(), ds.ttft.sel(placement="ssd").values * 1e3)   # in ms
    # the first token waits for the prompt (1,660 tokens) to be prefilled: TTFT exceeds TPOT everywhere
    assert bool((ds.ttft > ds.tpot).all())
    assert plot.problems(fig) == []
    plt.close(fig)


@pytest.mark.slow
def test_serving_study_prints_request_metrics(tmp_path):
    r = _cli("dse", "study=serving-sharegpt", "plot=false", f"hydra.run.dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    header = next(ln for ln in out.splitlines() if "TTFT_ms" in ln)
    assert "TPOT" in header and "J_per_output_token" in header


# ------------------------------------------------------------------ 4. the style in a context, mathtext parsed
def test_style_parses_mathtext_and_problems_flag_raw_mathtext():
    with plot.style():
        fig, ax = plt.subplots(figsize=(plot.ONE_COLUMN, 2.5))
        ax.plot([1, 10, 1000], [1, 100, 10000])
        ax.set_yscale("log")
        fig.canvas.draw()
        labels = [t for t in ax.get_yticklabels() if t.get_text()]
        assert labels and all(t.get_parse_math() for t in labels)   # 10^3, not "$\mathdefault{10^{3}}$" as text
    plt.close(fig)
    with plt.rc_context({"text.parse_math": False}):
        fig, ax = plt.subplots(figsize=(plot.ONE_COLUMN, 2.5))
        ax.plot([1, 10, 1000], [1, 100, 10000])
        ax.set_yscale("log")
        assert any("raw mathtext" in p for p in plot.problems(fig))
    plt.close(fig)
    before = dict(plt.rcParams)
    plt.close(plot.auto(dse.evaluate("paper-fig45-mixtral", batch=[1, 4])))
    assert dict(plt.rcParams) == before                        # the style never leaks into the user's figures


def test_problems_flag_panels_too_small_to_read():
    fig, axes = plot.figure(3.5, 3.2, nrows=2, ncols=5)       # the old serving_slo layout: 10 panels, 3.5 in wide
    for ax in axes.ravel():
        ax.plot([0, 1], [0, 1])
    assert any("panel" in p for p in plot.problems(fig))
    plt.close(fig)


def test_serving_slo_figure_is_readable():
    from analysis import serving_slo

    tpot = np.array([0.02, 0.1, 1.0])
    models, profiles, placements = ["mixtral-8x7b", "deepseek-r1"], ["sharegpt", "longbench"], ["hbm", "ddr", "ssd",
                                                                                                "hbf"]
    shape = (2, 2, 4, 3)
    rng = np.arange(np.prod(shape), dtype=float).reshape(shape) + 1
    ds = xr.Dataset({"max_batch": (("model", "profile", "placement", "tpot_slo_s"), rng.astype(int)),
                     "energy_per_request": (("model", "profile", "placement", "tpot_slo_s"), rng * 10.0)},
                    coords={"model": models, "profile": profiles, "placement": placements, "tpot_slo_s": tpot},
                    attrs={"system": "8xh200-c2c"})
    fig = serving_slo.plot(ds)
    assert plot.problems(fig) == []
    assert len(_gids(fig, "max_batch|")) == 2 * 2 * 4
    plt.close(fig)
    assert "--allow-problems" not in (ROOT / "docs" / "serving.md").read_text()


# ------------------------------------------------------------------ 10. figure fixes
def test_hbm_only_is_not_normalised_to_itself():
    ds = dse.evaluate("paper-fig45-mixtral", placement="hbm", batch=[1, 16])
    fig = plot.auto(ds)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "energy per token (J)"
    tops = {}
    for p in ax.patches:
        g = (p.get_gid() or "").split("|")
        if len(g) == 3:
            tops[g[2]] = tops.get(g[2], 0.0) + p.get_height()
    np.testing.assert_allclose([tops["1"], tops["16"]], ds.energy_per_token.values, rtol=1e-9)   # J, not 1.0
    plt.close(fig)


def test_bar_marks_tell_hbm_from_hbf():
    ds = dse.evaluate("serving-sharegpt", batch=[1, 16], placement=["hbm", "ssd", "hbf"], profile=None)
    fig = plot.breakdown(ds)
    marks = {t.get_text() for t in fig.axes[0].texts}
    assert {"HBM", "HBF"} <= marks and "H" not in marks
    plt.close(fig)


def test_breakeven_titles_have_no_python_reprs():
    from dse.analyze.plot.breakeven_views import _be_title

    be = dse.breakeven({"study": "paper-fig45-mixtral"}, {"study": "paper-fig45-mixtral", "placement": "ddr"},
                       batch=[1, 16])
    title = _be_title(be)
    assert not re.search(r"[\[\]']", title) and "SSD" in title and "DDR" in title


def test_pareto_labels_stay_off_the_front_line(trials_front):
    fig = plot.pareto(trials_front)
    ax = fig.axes[0]
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    from dse.analyze.plot.pareto import _crosses, _line_segments

    segs = _line_segments(ax)
    labels = [t for t in ax.texts if t.get_gid() == "front_label"]
    assert labels
    assert not any(_crosses(t.get_window_extent(r), segs) for t in labels)
    plt.close(fig)


# ------------------------------------------------------------------ 3. fronts name what they sit on
@pytest.fixture()
def trials_front():
    """Six trials by hand; the three on the front share Flash read energy 1 pJ/bit, the lower end of its range."""
    n = 6
    return xr.Dataset(
        {"energy_per_token": ("trial", [2.0, 1.0, 0.5, 0.4, 3.0, 0.3]),
         "capacity_cost_usd": ("trial", [2e5, 3e5, 4e5, 6e5, 5e5, 1e5]),
         "feasible": ("trial", [True, True, True, True, True, False]),
         "pareto": ("trial", [True, True, True, False, False, False]),
         "placement": ("trial", ["ssd", "ddr", "hbm", "hbm", "ddr", "ssd"]),
         "batch": ("trial", [4, 64, 1024, 512, 16, 1]),
         "flash_read_pj_per_bit": ("trial", [1.0, 1.0, 1.0, 50.0, 120.0, 7.0]),
         "link_bw_gbps": ("trial", [100.0, 450.0, 900.0, 900.0, 64.0, 64.0])},
        coords={"trial": np.arange(n)},
        attrs={"search_bounds": json.dumps({"placement": ["hbm", "ddr", "ssd"], "batch": [1, 1024],
                                            "flash_read_pj_per_bit": [1.0, 200.0], "link_bw_gbps": [64.0, 900.0]})})


def test_front_table_names_varying_and_bound_variables(trials_front):
    from dse.search.report import front_table

    front = trials_front.isel(trial=[0, 1, 2])
    text = front_table(front)
    header = text.splitlines()[1]
    assert "link_bw_gbps" in header                       # varies along the front: a column
    assert "flash_read_pj_per_bit = 1" in text and "lower bound" in text   # fixed on the front, at its bound
    fig = plot.pareto(trials_front)
    assert "flash_read_pj_per_bit = 1" in fig._suptitle.get_text() and "lower bound" in fig._suptitle.get_text()
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert any("link_bw_gbps=" in t for t in labels)      # the varying one in each design's label
    plt.close(fig)


# ------------------------------------------------------------------ 11. exhaustive search
@pytest.mark.slow
def test_exhaustive_front_is_written_once_without_repeats(tmp_path, monkeypatch):
    from dse.search import compose, run

    monkeypatch.setenv("DSE_PLOT", "1")          # the figure too

    summary = run(compose("mixtral-small", ["search.method=exhaustive", "search.progress=false"]), tmp_path)
    assert not (tmp_path / "trials.nc").exists() and (tmp_path / "pareto.nc").is_file()
    front = xr.open_dataset(tmp_path / "pareto.nc")
    F = np.stack([front.energy_per_token.values, front.capacity_cost_usd.values], 1)
    assert len(np.unique(F, axis=0)) == len(F)            # no two designs with the same objectives
    # experts in HBM: the HBM cache fraction means nothing, so at most one HBM design per (GPU, GPUs, batch)
    hbm = front.placement.values == "hbm"
    keys = list(zip(front.gpu.values[hbm], front.n_gpus.values[hbm], front.batch.values[hbm]))
    assert len(keys) == len(set(keys))
    assert int(front.equivalent_designs.sum()) >= len(F) and summary["pareto_size"] == len(F)
    assert "hypervolume" not in (tmp_path / "pareto.svg").read_text()   # no "search progress" panel
    assert "search progress" not in (tmp_path / "pareto.svg").read_text()


# ------------------------------------------------------------------ 7. Optuna studies the dashboard reads
@pytest.mark.slow
def test_optuna_storage_read_as_the_dashboard_reads_it(tmp_path):
    import optuna
    from dse.search import compose, run

    run(compose("mixtral-small", ["search.method=optuna", "search.n_trials=60", "search.progress=false"]), tmp_path)
    storage = f"sqlite:///{tmp_path}/study.db"
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    trials = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert len(trials) == 60
    for t in trials:
        listed = t.system_attrs["constraints"]            # optuna's _CONSTRAINTS_KEY: a list, as the dashboard reads
        assert isinstance(listed, list) and len(listed) == 4
        feasible = all(c <= 0 for c in listed)
        # the limits by hand (mixtral-small: 50 ms per token, HBM <= 90 %, offload tier <= 100 %, and it must fit)
        by_hand = (t.user_attrs["step_latency"] <= 0.05 and t.user_attrs["hbm_fill"] <= 0.9
                   and t.user_attrs["offload_fill"] <= 1.0)
        assert feasible == by_hand == t.user_attrs["feasible"]
    assert study.best_trials and all(t.user_attrs["feasible"] for t in study.best_trials)
    assert study.metric_names == ["energy_per_token", "capacity_cost_usd"]


# ------------------------------------------------------------------ 5, 6, 8. the command line as Hydra users expect
@pytest.mark.slow
def test_shell_completion_installs():
    r = _cli("dse", "-sc", "install=bash")
    assert r.returncode == 0, r.stderr
    assert "complete" in r.stdout and "hydra_bash_completion" in r.stdout


@pytest.mark.slow
def test_link_and_gpu_preset_groups(tmp_path):
    r = _cli("dse", "study=paper-fig45-mixtral", "link=nvlink-c2c-gen4", "plot=false", f"hydra.run.dir={tmp_path}/a")
    assert r.returncode == 0, r.stderr
    ds = xr.open_dataset(tmp_path / "a" / "result.nc")
    import yaml

    link = yaml.safe_load(ds.attrs["config_yaml"])["system"]["offload_link"]
    assert link["name"] == "nvlink-c2c-gen4" and link["bw_gbps"] == 450.0
    assert link["pj_per_bit"] == 0.0      # the system's own setting on top of its link (the paper charges none)
    e = ds.energy_per_token
    gen5 = dse.evaluate("paper-fig45-mixtral").energy_per_token
    # the paper-4xh100 preset's own note: the gen-4 link (half gen 5's 900 GB/s) gives a higher peak SSD / HBM
    # ratio (~14x) than the gen-5 link (~12.6x)
    peak4 = float((e.sel(placement="ssd") / e.sel(placement="hbm")).max())
    peak5 = float((gen5.sel(placement="ssd") / gen5.sel(placement="hbm")).max())
    assert 14.0 < peak4 < 14.5 and 12.3 < peak5 < 12.8
    r = _cli("dse", "study=paper-fig45-mixtral", "gpu=h200-sxm", "plot=false", f"hydra.run.dir={tmp_path}/b")
    assert r.returncode == 0, r.stderr
    cfg = xr.open_dataset(tmp_path / "b" / "result.nc").attrs["config_yaml"]
    assert "name: h200-sxm" in cfg
    r = _cli("dse", "gpu=h200-sx", "plot=false", f"hydra.run.dir={tmp_path}/c")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "did you mean 'h200-sxm'" in r.stderr


def _user_gpu(d: Path) -> Path:
    """A user GPU preset: the shipped H200 with a 300 W idle power (the shipped one idles at 75 W)."""
    (d / "gpu").mkdir(parents=True)
    text = (ROOT / "dse" / "conf" / "gpu" / "h200-sxm.yaml").read_text()
    text = re.sub(r"(?m)^name: .*$", "name: my-h200", text)
    text = re.sub(r"(?m)^idle_w: .*$", "idle_w: 300.0", text)
    (d / "gpu" / "my-h200.yaml").write_text(text)
    return d


@pytest.mark.slow
def test_user_presets_are_found_beside_the_shipped_ones(tmp_path):
    conf = _user_gpu(tmp_path / "conf")
    r = _cli("dse", "--config-dir", str(conf), "gpu=my-h200", "plot=false", f"hydra.run.dir={tmp_path}/a")
    assert r.returncode == 0, r.stderr
    assert "idle_w: 300.0" in xr.open_dataset(tmp_path / "a" / "result.nc").attrs["config_yaml"]
    r = _cli("dse", "list", "gpus", env={"DSE_CONF_DIR": str(conf)})
    names = {ln.split()[0] for ln in r.stdout.splitlines()[1:]}
    assert {"my-h200", "h100-sxm", "h200-sxm"} <= names   # added to, not replacing, the shipped presets
    r = _cli("dse", "gpu=my-h200", "model=deepseek-r1", "plot=false", f"hydra.run.dir={tmp_path}/b",
             env={"DSE_CONF_DIR": str(conf)})
    assert r.returncode == 0, r.stderr


def test_user_presets_reach_dse_evaluate(tmp_path, monkeypatch):
    conf = _user_gpu(tmp_path / "conf")
    monkeypatch.setenv("DSE_CONF_DIR", str(conf))
    mine = dse.evaluate(gpu="my-h200")
    shipped = dse.evaluate(gpu="h200-sxm")
    # 225 W more idle power per GPU over the paper's 4 GPUs, for one step of each, in the static component
    extra = (mine.energy.sel(component="background") - shipped.energy.sel(component="background")).item()
    step = mine.step_latency.item()
    assert shipped.step_latency.item() == pytest.approx(step)
    assert extra == pytest.approx(225.0 * 4 * step, rel=1e-6)


# ------------------------------------------------------------------ 12. the small things
def test_public_functions_explain_themselves():
    import pydoc

    for f in (dse.max_batch, dse.breakeven, dse.breakeven_param, dse.pareto_front, dse.open_results):
        text = pydoc.render_doc(f, renderer=pydoc.plaintext)
        assert len(text.splitlines()) >= 15, f.__name__
        assert "**kwargs" not in text.splitlines()[2], f.__name__       # a real signature
        assert "Returns" in text and "Example" in text


@pytest.mark.slow
def test_version_and_pipes():
    r = _cli("dse", "--version")
    assert r.returncode == 0 and dse.__version__ in r.stdout and r.stdout.startswith("dse ")
    for cmd in ("list", "validate --fit"):
        p = subprocess.run(f"set -o pipefail; {BIN / 'dse'} {cmd} | head -1", shell=True, executable="/bin/bash",
                           capture_output=True, text=True, timeout=240)
        assert p.returncode == 0 and p.stdout.strip(), cmd
        assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, cmd


def test_output_format_error_names_csv():
    from dse.run.settings import settings

    with pytest.raises(dse.DseError, match="csv"):
        settings({"output": {"format": "parquet"}})


@pytest.mark.slow
def test_study_attribute_of_a_study_run(tmp_path):
    r = _cli("dse", "study=paper-fig6-llama3", "plot=false", f"hydra.run.dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    assert xr.open_dataset(tmp_path / "result.nc").attrs["study"] == "paper-fig6-llama3"


def test_dotted_coordinates_have_units_and_fits_is_a_flag(tmp_path):
    from dse.config import presets
    from dse.run.sweep import run

    cfg = presets.compose(model="deepseek-r1", system="8xh200-c2c")
    cfg["grid"] = {"placement": ["hbm", "ssd"], "system.gpu.idle_w": [75.0, 90.0]}
    cfg["progress"] = False
    path = run(cfg, tmp_path)
    with xr.open_dataset(path) as ds:
        assert ds["system.gpu.idle_w"].attrs["units"] == "W"
        assert ds.fits.dtype.kind == "i" and list(ds.fits.attrs["flag_values"]) == [0, 1]
        assert ds.fits.attrs["flag_meanings"].split() == ["does_not_fit", "fits"]
        assert np.all(ds.fits.sel(placement="hbm").values == 0)          # 1,342 GB of weights > 1,128 GB of HBM


def test_zarr_stores_open_without_a_warning(tmp_path):
    from dse.config import presets
    from dse.run.sweep import run

    cfg = presets.compose(model="deepseek-r1", system="8xh200-c2c")
    cfg["grid"] = {"placement": ["hbm", "ssd"], "batch": [1, 8]}
    cfg["output"] = {**cfg["output"], "format": "zarr"}
    cfg["progress"] = False
    path = run(cfg, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(path)                      # plain xarray, as a user opens it: consolidated metadata
        assert np.all(ds.fits.sel(placement="hbm").values == 0)
        assert np.all(ds.fits.sel(placement="ssd").values == 1)
        dse.open_results(path)


def test_numbers_print_as_people_write_them():
    from dse.cli.dse_breakeven import table
    from dse.run.table import energy_table

    ds = dse.evaluate("paper-fig45-mixtral", batch=[1], placement=["ssd"], flash_read_pj_per_bit=[0.1 + 0.2, 102.4])
    text = energy_table(ds)
    assert "0.30000000000000004" not in text and re.search(r"\b0\.3\b", text)
    # the paper's SSD: 12.8 pJ per byte read = 102.4 pJ/bit, which a float product prints as 102.40000000000002
    be = dse.breakeven({"study": "paper-fig45-mixtral"}, {"study": "paper-fig45-mixtral", "placement": "ddr"},
                       batch=[1, 16])
    head = table(be).splitlines()[0]
    assert "today 102.4 pJ/bit" in head and "00000" not in head


def test_progress_counts_points_as_integers():
    from dse.run.schedule import _bar

    bar = _bar(33, True)
    bar.update(33)
    shown = str(bar)
    bar.close()
    assert "33/33" in shown and "33.0" not in shown


def test_traces_module_is_an_attribute():
    r = subprocess.run([sys.executable, "-c", "import dse; print(dse.traces.__name__); print('traces' in dir(dse))"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.split() == ["dse.model.traces", "True"], r.stderr


# ------------------------------------------------------------------ 13. dependencies as ranges
def test_runtime_dependencies_are_ranges_and_requirements_pin():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert deps and not any("==" in d for d in deps)
    pins = [ln for ln in (ROOT / "requirements.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    assert pins and all("==" in ln for ln in pins)
    readme = (ROOT / "README.md").read_text()
    assert "dask worker" in readme and "hydra/launcher=joblib" in readme


def test_a_section_set_to_a_preset_name_says_which_override_was_meant():
    from dse.cli.common import check_argv

    with pytest.raises(dse.DseError, match=r"pick a link preset with link=nvlink-c2c-gen4"):
        check_argv(["study=paper-fig45-mixtral", "system.offload_link=nvlink-c2c-gen4"])
    with pytest.raises(dse.DseError, match=r"pick a gpu preset with gpu=h200-sxm"):
        check_argv(["system.gpu=h200-sxm"])
    check_argv(["tier@system.tiers.ssd=nvme-gen5", "gpu=h200-sxm", "link=pcie-gen5-x16"])   # Hydra's own forms pass
    with pytest.raises(dse.DseError, match="unknown tier preset"):
        check_argv(["tier@system.tiers.ssd=nvme-gen9"])


def test_a_continuous_parameter_pressed_on_a_bound_is_flagged(trials_front):
    from dse.search.report import front_table

    # Optuna's floats rarely hit a bound exactly: 1.0, 1.02, 1.05 pJ/bit of a 1-200 pJ/bit (log) range all lie within
    # ln(1.05) / ln(200) = 0.9 % of its lower end
    front = trials_front.isel(trial=[0, 1, 2]).assign(flash_read_pj_per_bit=("trial", [1.0, 1.02, 1.05]))
    text = front_table(front)
    assert "flash_read_pj_per_bit = 1-1.05 (its lower bound" in text
    assert "flash_read_pj_per_bit" not in text.splitlines()[1]          # not a column: said once below the table
