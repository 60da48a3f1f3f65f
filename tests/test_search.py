"""dse-search: Pareto/hypervolume maths, the design-space checks, the batch evaluation, storage sharing, resume."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import xarray as xr
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

import dse
from dse import DseError
from dse.search import compose, run
from dse.search import points
from dse.search.local import neighbours
from dse.search.pareto import Normalizer, hypervolume, nondominated
from dse.search.run import _base
from dse.search.space import parse
from figure_checks import assert_png_drawn, svg_gids

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


# ------------------------------------------------------------------ Pareto maths (hand-computed values)
def test_nondominated_keeps_duplicates_and_drops_dominated():
    F = np.array([[1, 3], [2, 2], [2, 2], [3, 1], [3, 3], [2, 2.5], [0.5, 4]])
    assert nondominated(F).tolist() == [True, True, True, True, False, False, True]
    F3 = np.array([[1, 1, 1], [1, 1, 2], [0, 2, 2], [2, 0, 2]])
    assert nondominated(F3).tolist() == [True, False, True, True]


def test_hypervolume_2d_and_3d_by_hand():
    # staircase of three unit-wide steps under ref (4, 4): 1x1 + 1x2 + 1x3
    assert hypervolume(np.array([[1, 3], [2, 2], [3, 1], [3, 3], [5, 0]]), [4, 4]) == pytest.approx(6.0)
    # boxes [1,2]^3 (volume 1) and [0,2]x[1.5,2]x[1.5,2] (0.5) overlap in [1,2]x[1.5,2]x[1.5,2] (0.25)
    assert hypervolume(np.array([[1, 1, 1], [0, 1.5, 1.5]]), [2, 2, 2]) == pytest.approx(1.25)
    assert hypervolume(np.zeros((0, 2)), [1, 1]) == 0.0


def test_normalized_reference_point():
    front = np.array([[1.0, 30.0], [3.0, 10.0]])       # normalizes to (0, 1) and (1, 0)
    norm = Normalizer(front)
    assert np.allclose(norm(front), [[0, 1], [1, 0]])
    # two 1.1 x 0.1 slabs overlapping in a 0.1 x 0.1 corner
    assert norm.hypervolume(front) == pytest.approx(0.11 + 0.11 - 0.01)


def test_neighbours():
    dists = {"placement": CategoricalDistribution(["hbm", "ddr", "ssd"]),
             "batch": CategoricalDistribution([1, 4, 16]),
             "f": FloatDistribution(0.0, 1.0, step=0.25), "dp": IntDistribution(1, 2)}
    got = neighbours({"placement": "ddr", "batch": 4, "f": 0.0, "dp": 1}, dists)
    single = [{"placement": p, "batch": 4, "f": 0.0, "dp": 1} for p in ("hbm", "ssd")] + [
        {"placement": "ddr", "batch": b, "f": 0.0, "dp": 1} for b in (1, 16)] + [
        {"placement": "ddr", "batch": 4, "f": 0.25, "dp": 1}, {"placement": "ddr", "batch": 4, "f": 0.0, "dp": 2}]
    # opposite-direction pairs of ordered variables: batch down with f up / dp up; f and dp can only go up
    pairs = [{"placement": "ddr", "batch": 1, "f": 0.25, "dp": 1}, {"placement": "ddr", "batch": 1, "f": 0.0, "dp": 2}]
    assert sorted(map(str, got)) == sorted(map(str, single + pairs))


# ------------------------------------------------------------------ the design space: one-line errors
@pytest.fixture(scope="module")
def small_cfg():
    return compose("mixtral-small")


def _parse(cfg, **changes):
    search = json.loads(json.dumps(cfg["search"]))
    for path, value in changes.items():
        node = search
        *head, last = path.split("__")
        for k in head:
            node = node[k]
        node[last] = value
    return parse(search, _base(cfg))


@pytest.mark.parametrize("changes, message", [
    ({"space__dp": {"type": "int", "low": 3, "high": 2}}, "search.space.dp: low=3 > high=2"),
    ({"objectives": ["energy_per_token", "joy"]}, "search.objectives[1]: unknown variable 'joy'"),
    ({"constraints__speed": {"max": 1}}, "search.constraints.speed: unknown variable 'speed'"),
    ({"space__warp": {"type": "int", "low": 1, "high": 2}}, "unknown parameter 'warp'"),
    ({"space__hbm_cache_fraction": {"type": "float", "low": 0.0, "high": 1.5}}, "out of range"),
    ({"space__batch": {"type": "uniform", "low": 1, "high": 2}}, "search.space.batch.type='uniform'"),
])
def test_bad_space_is_one_line(small_cfg, changes, message):
    with pytest.raises(DseError) as e:
        _parse(small_cfg, **changes)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.slow
def test_cli_unreachable_storage_fails_before_any_trial(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for url in ("postgresql://dse@db.invalid:5432/dse", f"sqlite:///{tmp_path}/missing/dir/study.db"):
        r = subprocess.run([PY, "-m", "dse.cli.dse_search", "search=mixtral-small", "search.method=optuna", f"search.storage={url}",
                            f"hydra.run.dir={tmp_path}/run"], capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("dse-search: error: search.storage="), r.stderr
        assert "Traceback" not in r.stderr
        assert not (tmp_path / "run" / "trials.nc").exists()


# ------------------------------------------------------------------ batch evaluation = scalar evaluation
def test_trial_batch_matches_single_evaluations(small_cfg):
    space = parse(small_cfg["search"], _base(small_cfg))
    params = {"gpu": ["h100-sxm", "h200-sxm", "h100-sxm"], "placement": ["ssd", "hbm", "ddr"],
              "tp": [1, 2, 4], "dp": [2, 1, 1], "batch": [4, 64, 1], "hbm_cache_fraction": [0.25, 0.0, 0.5]}
    ds = points.evaluate_trials(_base(small_cfg), space, params)
    for i in range(3):
        one = dse.evaluate(model="mixtral-8x7b", system="paper-4xh100", **{k: v[i] for k, v in params.items()},
                           ep=params["tp"][i] * params["dp"][i])
        for var in ("energy_per_token", "capacity_cost_usd", "step_latency", "hbm_fill"):
            assert float(ds[var].isel(trial=i)) == pytest.approx(float(one[var]), rel=1e-12)


# ------------------------------------------------------------------ search quality, determinism, resume, sharing
@pytest.mark.slow
def test_small_space_reaches_exhaustive_front_deterministically(tmp_path, monkeypatch):
    monkeypatch.setenv("DSE_PLOT", "1")          # this test checks the front figure too
    runs = []
    for name in ("a", "b"):
        d = tmp_path / name
        d.mkdir()
        summary = run(compose("mixtral-small", ["search.method=optuna", "search.validate=true", "search.progress=false",
                                                f"search.storage=journal:{d}/journal.log"]), d)
        runs.append((summary, xr.open_dataset(d / "trials.nc")))
    (s1, t1), (s2, t2) = runs
    assert s1["trials_in_study"] == 240
    assert s1["validation"]["n_points"] == 900
    assert s1["validation"]["hypervolume_ratio"] >= 0.95
    assert s1["validation"]["hypervolume_ratio"] == s2["validation"]["hypervolume_ratio"]
    for var in ("placement", "batch", "energy_per_token"):
        assert np.array_equal(t1[var].values, t2[var].values)
    v = json.loads((tmp_path / "a" / "validation.json").read_text())
    assert 0.95 <= v["hypervolume_ratio"] <= 1.0 + 1e-12
    for f in ("trials.nc", "pareto.nc", "trials.csv", "pareto.png", "pareto.svg"):
        assert (tmp_path / "a" / f).stat().st_size > 0
    assert_png_drawn(tmp_path / "a" / "pareto.png")                    # the front figure, drawn
    assert {"front", "hypervolume"} <= svg_gids(tmp_path / "a" / "pareto.svg")
    pareto = xr.open_dataset(tmp_path / "a" / "pareto.nc")
    assert bool(pareto.feasible.all()) and pareto.sizes["trial"] == int(t1.pareto.sum())


@pytest.mark.slow
def test_resume_adds_to_the_study(tmp_path):
    cfg = compose("mixtral-small", ["search.method=optuna", "search.n_trials=20", "search.progress=false"])
    assert run(cfg, tmp_path)["trials_in_study"] == 20
    second = run(cfg, tmp_path)
    assert second["trials_in_study"] == 40 and second["trials_added"] == 20
    trials = xr.open_dataset(tmp_path / "trials.nc")
    assert trials.sizes["trial"] == 40 and len(set(trials.trial.values.tolist())) == 40
    # a different question under the same study name is refused, in one line, before any trial
    other = compose("mixtral-small", ["search.method=optuna", "search.n_trials=20", "search.progress=false",
                                      "search.constraints.step_latency.max=0.1"])
    with pytest.raises(DseError, match="asks a different question"):
        run(other, tmp_path)
    assert optuna.load_study(study_name="mixtral-small", storage=f"sqlite:///{tmp_path}/study.db").trials.__len__() == 40


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["sqlite", "journal"])
def test_two_processes_share_one_study(tmp_path, storage):
    url = f"sqlite:///{tmp_path}/shared.db" if storage == "sqlite" else f"journal:{tmp_path}/shared.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([PY, "-m", "dse.cli.dse_search", "search=mixtral-small", "search.method=optuna", "search.n_trials=30",
                               f"search.seed={seed}", f"search.storage={url}", "search.progress=false",
                               f"hydra.run.dir={tmp_path}/run{seed}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for seed in (1, 2)]
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outputs.append((out, err))
    from dse.search.study import open_storage

    study = optuna.load_study(study_name="mixtral-small", storage=open_storage(url, tmp_path))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(study.trials) == len(complete) == 60
    assert all(len(t.constraints) == 3 + 1 for t in complete)   # the preset's three, and fits
    assert study.metric_names == ["energy_per_token", "capacity_cost_usd"]   # named in optuna-dashboard
    for p, (out, _) in zip(procs, outputs):
        front = out.split("front (")[1].splitlines()
        assert front[1].split()[:11] == ["GPU", "GPUs", "tier", "HBM", "cache", "batch", "J/token", "capacity",
                                         "$", "latency", "s"]   # then any other parameter varying on the front
        n = int(front[0].split()[0])
        costs = [float(line.split()[6].replace(",", "")) for line in front[2:2 + n]]   # the capacity $ column
        assert costs == sorted(costs)                                     # cheapest first
    points = {tuple(sorted(t.params.items())) for t in complete}
    assert len(points) == 60              # the workers' claims: no design point stored twice


# ------------------------------------------------------------------ search.method: exhaustive, auto
def test_exhaustive_method_writes_the_exact_front(tmp_path):
    from dse.search import verify as validate

    cfg = compose("mixtral-small", ["search.method=exhaustive", "search.progress=false"])
    summary = run(cfg, tmp_path)
    assert summary["method"] == "exhaustive" and summary["n_points"] == 900
    space = parse(cfg["search"], _base(cfg))
    exact = validate.exact_front(_base(cfg), space, 10_000)    # the validation's own enumeration
    pareto = xr.open_dataset(tmp_path / "pareto.nc")
    got = np.unique(np.round(np.stack([pareto[o].values for o in space.objectives], 1), 12), axis=0)
    want = np.unique(np.round(exact["F"], 12), axis=0)
    assert got.shape == want.shape and summary["pareto_size"] == pareto.sizes["trial"]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert bool(pareto.feasible.all()) and pareto.attrs["method"] == "exhaustive"
    assert (tmp_path / "pareto.csv").stat().st_size > 0
    assert not (tmp_path / "trials.nc").exists()       # an enumeration has no trials beyond its front
    assert not (tmp_path / "study.db").exists()        # no Optuna study


@pytest.mark.slow
def test_auto_method_enumerates_within_budget_and_searches_beyond(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    quick = run(compose("mixtral-small", ["search.progress=false"]), tmp_path / "a")
    assert quick["method"] == "exhaustive" and quick["estimate_s"] <= quick["budget_s"] == 60
    slow = run(compose("mixtral-small", ["search.progress=false", "search.budget_s=1e-6", "search.n_trials=10",
                                         "search.batch_size=5"]), tmp_path / "b")
    assert slow["method"] == "optuna" and slow["estimate_s"] > 1e-6 and slow["trials_in_study"] == 10


@pytest.mark.parametrize("override, message", [("search.method=grid", "search.method='grid'"),
                                               ("search.budget_s=0", "search.budget_s=0")])
def test_bad_method_or_budget_is_one_line(tmp_path, override, message):
    with pytest.raises(DseError) as e:
        run(compose("mixtral-small", ["search.progress=false", override]), tmp_path)
    assert message in str(e.value) and "\n" not in str(e.value)
