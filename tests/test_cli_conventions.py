"""The command line and the API explain themselves: help per command, one-line errors with a suggestion, dotted
grid keys, logging into Hydra's job log with a verbosity switch, a tidy CSV, preset listings, a real signature."""
import csv
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import dse
from dse.config.params import PARAMS

ROOT = Path(__file__).resolve().parent.parent


def run(*argv, cwd=ROOT):
    return subprocess.run([sys.executable, *argv], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("argv, key, suggestion", [
    (["workload.plcement=ssd"], "workload.plcement", "workload.placement"),          # a misspelt key
    (["model=mixtrl-8x7b"], "mixtrl-8x7b", "mixtral-8x7b"),                          # a misspelt preset
    (["grid.bach=[1,2]"], "bach", "batch"),                                          # a misspelt grid parameter
    (["grid.system.gpu.idle_ww=[90,100]"], "system.gpu.idle_ww", "system.gpu.idle_w"),  # a misspelt dotted one
    (["study=paper-fig45-mixtrl"], "paper-fig45-mixtrl", "paper-fig45-mixtral"),
])
def test_a_misspelling_is_one_line_with_a_suggestion(tmp_path, argv, key, suggestion):
    r = run("-m", "dse", *argv, f"hydra.run.dir={tmp_path}")
    assert r.returncode == 2
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("dse: error: ") and repr(key) in lines[0]
    assert f"did you mean {suggestion!r}?" in lines[0]
    assert not any(tmp_path.iterdir())                                    # refused before anything was written


@pytest.mark.slow
@pytest.mark.parametrize("prog, argv, suggestion", [
    ("dse.cli.dse_breakeven", ["reference.placment=ddr"], "reference.placement"),
    ("dse.cli.dse_search", ["search.n_trial=5"], "search.n_trials"),
    ("dse.cli.dse_search", ["search=mixtral-smal"], "mixtral-small"),
])
def test_the_other_commands_suggest_too(tmp_path, prog, argv, suggestion):
    r = run("-m", prog, *argv, f"hydra.run.dir={tmp_path}")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"did you mean {suggestion!r}?" in r.stderr


def test_python_api_errors_suggest():
    with pytest.raises(dse.DseError, match=r"unknown parameter 'bach' \(did you mean 'batch'\?\)"):
        dse.evaluate(model="mixtral-8x7b", bach=[1, 2])
    with pytest.raises(dse.DseError, match=r"did you mean 'deepseek-r1'\?"):
        dse.evaluate(model="deepseek-r2")
    with pytest.raises(dse.DseError, match=r"did you mean 'system.gpu.idle_w'\?"):
        dse.evaluate(model="mixtral-8x7b", **{"system.gpu.idel_w": 90})


@pytest.mark.slow
def test_dotted_grid_keys_from_the_command_line(tmp_path):
    r = run("-m", "dse", "grid.system.gpu.idle_w=[90,100]", f"hydra.run.dir={tmp_path}", "progress=false")
    assert r.returncode == 0, r.stderr
    ds = xr.load_dataset(tmp_path / "result.nc", engine="h5netcdf")
    assert ds["system.gpu.idle_w"].values.tolist() == [90.0, 100.0]
    # background energy = static power x latency: 10 W more per GPU on 4 GPUs (paper-4xh100) adds 40 W x latency
    bg = ds.energy.sel(component="background")
    np.testing.assert_allclose(bg.sel({"system.gpu.idle_w": 100.0}) - bg.sel({"system.gpu.idle_w": 90.0}),
                               4 * 10.0 * ds.step_latency.values, rtol=1e-9)


@pytest.mark.slow
def test_help_per_command_says_what_it_does():
    for prog, first, example in (("dse", "dse: energy, latency and capacity", "dse study=paper-fig45-mixtral"),
                                 ("dse.cli.dse_breakeven", "dse-breakeven: how low must Flash", "reference.study="),
                                 ("dse.cli.dse_search", "dse-search: a Pareto search", "search.n_trials")):
        r = run("-m", prog, "--help")
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(first) and example in r.stdout and "powered by Hydra" not in r.stdout
    r = run("-m", "dse", "--help")
    assert "search" not in r.stdout.split("Common overrides")[1].split("Examples")[0]  # no group dse does not use


@pytest.mark.slow
def test_the_job_log_tells_the_run_and_verbosity_quiets_it(tmp_path):
    r = run("-m", "dse", "study=paper-fig45-mixtral", f"hydra.run.dir={tmp_path / 'a'}", "progress=false")
    assert r.returncode == 0, r.stderr
    log = next((tmp_path / "a").glob("*.log")).read_text()
    assert "grid: placement 3 x batch 11 = 33 points" in log and "J_per_token" in log and "dataset:" in log
    assert "[dse][INFO]" in log
    assert r.stdout.splitlines()[0] == "grid: placement 3 x batch 11 = 33 points; writing netcdf"  # plain console
    q = run("-m", "dse", "study=paper-fig45-mixtral", f"hydra.run.dir={tmp_path / 'b'}", "progress=false",
            "verbosity=warning")
    assert q.returncode == 0 and q.stdout.strip() == "" and (tmp_path / "b" / "result.nc").is_file()
    bad = run("-m", "dse", "verbosity=loud", f"hydra.run.dir={tmp_path / 'c'}")
    assert bad.returncode == 2 and "verbosity='loud'" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_csv_is_a_tidy_long_table(tmp_path):
    r = run("-m", "dse", "study=paper-fig45-mixtral", "output.format=csv", f"hydra.run.dir={tmp_path}",
            "progress=false")
    assert r.returncode == 0, r.stderr
    ds = xr.load_dataset(tmp_path / "result.nc", engine="h5netcdf")
    with open(tmp_path / "result.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["placement", "batch", "variable", "part", "value", "units"]
    # one row per grid point of each variable, per component / cost part of the stacked ones
    expect = sum(v.size for v in ds.data_vars.values())
    assert len(rows) == expect
    ssd16 = [r for r in rows if r["variable"] == "energy_per_token" and r["placement"] == "ssd" and r["batch"] == "16"]
    assert len(ssd16) == 1 and ssd16[0]["units"] == "J"
    np.testing.assert_allclose(float(ssd16[0]["value"]), float(ds.energy_per_token.sel(placement="ssd", batch=16)),
                               rtol=1e-12)
    parts = {r["part"] for r in rows if r["variable"] == "energy"}
    assert parts == set(ds.component.values)


@pytest.mark.slow
def test_list_presets_with_description_and_grade():
    r = run("-m", "dse", "list", "tiers")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "tiers (tier=NAME):"
    names = {p.stem for p in (ROOT / "dse" / "conf" / "tier").glob("*.yaml")}
    assert {ln.split()[0] for ln in lines[1:]} == names
    ddr = next(ln for ln in lines if ln.split()[0] == "ddr5")
    # ddr5.yaml: read energy, capacity and idle power from the paper, bandwidth from JEDEC, price an assumption
    assert "[assumption (datasheet 1, paper 3, assumption 1)]" in ddr and "CPU DDR5" in ddr
    bad = run("-m", "dse", "list", "model")
    assert bad.returncode == 2 and "did you mean 'models'?" in bad.stderr


def test_presets_api():
    every = dse.presets()
    assert set(every) == {"model", "system", "gpu", "tier", "link", "accounting", "study", "search", "profile",
                          "engine"}
    models = dse.presets("model")
    assert [p.name for p in models] == sorted(p.stem for p in (ROOT / "dse" / "conf" / "model").glob("*.yaml"))
    assert all(p.description != "-" for g in every.values() for p in g)
    h100 = next(p for p in dse.presets("gpu") if p.name == "h100-sxm")
    assert str(h100).startswith("gpu=h100-sxm  [") and "paper" in h100.grade


def test_evaluate_shows_its_signature_and_documents_every_parameter():
    sig = inspect.signature(dse.evaluate)
    assert "kwargs" not in str(sig)
    for name in PARAMS:
        assert name in sig.parameters
        assert sig.parameters[name].default is None
    doc = dse.evaluate.__doc__
    for name, p in PARAMS.items():
        assert f"\n    {name}" in doc
    assert "batch [sequences] : integer in [1, 1e+09]" in doc
    assert "flash_read_pj_per_bit [pJ/bit] : number in [0, 1e+06]" in doc
    assert "docs/model.md" in doc
    # None keeps the preset's value
    a = dse.evaluate(model="mixtral-8x7b", batch=4, idle_w=None)
    b = dse.evaluate(model="mixtral-8x7b", batch=4)
    np.testing.assert_allclose(a.energy_per_token, b.energy_per_token, rtol=1e-12)
