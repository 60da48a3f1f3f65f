"""Hydra multiruns merged into one dataset (dse.run.collect, the multirun-end callback, dse-collect)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import dse
from approx import assert_close
from dse.cli import dse_collect as collect_cli
from dse.run import collect, sweep
from dse.config import presets
from dse.errors import DseError
from dse.run.results import open_results, ratio_to

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
def test_multirun_end_to_end_merges_the_swept_choices(tmp_path, capsys):
    """`dse -m model=a,b grid.batch=[1,16] grid.placement=[hbm,ssd]`: two jobs, merged automatically at the end
    with model as a new dimension, each job's numbers as a single run gives them."""
    sweep_dir = tmp_path / "mr"
    r = subprocess.run([sys.executable, "-m", "dse.cli.main", "-m", "model=mixtral-8x7b,deepseek-r1", "system=8xh200-c2c",
                        "grid.batch=[1,16]", "grid.placement=[hbm,ssd]", "progress=false",
                        f"hydra.sweep.dir={sweep_dir}"], env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    merged = open_results(sweep_dir / "merged.nc")
    assert merged.energy_per_token.dims == ("model", "batch", "placement")
    assert list(merged.model.values) == ["mixtral-8x7b", "deepseek-r1"] and list(merged.batch.values) == [1, 16]
    for model in ("mixtral-8x7b", "deepseek-r1"):
        single = dse.evaluate(model=model, system="8xh200-c2c", batch=[1, 16], placement=["hbm", "ssd"])
        for name in ("energy_per_token", "energy", "step_latency", "offload_read_bits"):
            got = merged[name].sel(model=model).transpose(*single[name].dims, ...)
            assert_close(got.values, single[name].values)
    assert merged.energy.attrs["units"] == "J" and merged.batch.attrs["units"] == "1"
    jobs = yaml.safe_load(merged.attrs["config_yaml"])["jobs"]
    assert [j["choice"] for j in jobs] == [{"model": "mixtral-8x7b"}, {"model": "deepseek-r1"}]
    assert [j["config"]["model"]["name"] for j in jobs] == ["mixtral-8x7b", "deepseek-r1"]
    assert len(merged.attrs["config_digest"]) == 64
    # the dse-collect command gives the same dataset
    out = tmp_path / "again.nc"
    collect_cli.main([str(sweep_dir), "-o", str(out), "--no-progress"])
    assert capsys.readouterr().out.strip() == str(out)
    assert_close(open_results(out).load(), merged.load())


def test_a_grid_value_swept_across_jobs_becomes_a_dimension(tmp_path):
    """`dse -m grid.batch=1,16 ...` runs one value per job (Hydra records ++grid.batch=1): merged along batch."""
    jobs = []
    for b in (1, 16):
        cfg = presets.compose(model="mixtral-8x7b", system="8xh200-c2c")
        cfg["grid"] = {"batch": b, "placement": ["hbm", "ssd"]}
        jobs.append(([f"++grid.batch={b}", "++grid.placement=[hbm,ssd]"], cfg))
    fake_multirun(tmp_path, jobs)
    merged = open_results(collect.collect(tmp_path, progress=False))
    single = dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", batch=[1, 16], placement=["hbm", "ssd"])
    assert_close(merged.energy_per_token.transpose("batch", "placement").values, single.energy_per_token.values)


def fake_multirun(root: Path, jobs: list[tuple[list[str], dict]]):
    """Job directories as Hydra lays them out (N/.hydra/overrides.yaml), each run by dse.run.sweep.run."""
    for num, (overrides, cfg) in enumerate(jobs):
        d = root / str(num)
        (d / ".hydra").mkdir(parents=True)
        (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        sweep.run({**cfg, "progress": False}, d)


def test_figure_6_merges_studies_with_different_dimensions(tmp_path):
    """Maverick sweeps Flash energy, Llama-3 (all HBM) does not: merged along `study`, Llama-3's values repeat
    along flash_read_pj_per_bit, and the ratio to Llama-3 is the figure."""
    studies = ["paper-fig6-maverick", "paper-fig6-llama3"]
    fake_multirun(tmp_path, [([f"study={s}"], presets.compose(study=s)) for s in studies])
    path = collect.collect(tmp_path, progress=False)
    assert path == tmp_path / "merged.nc"
    ds = open_results(path)
    assert list(ds.study.values) == studies
    mav, llama = dse.evaluate("paper-fig6-maverick"), dse.evaluate("paper-fig6-llama3")
    assert_close(ds.energy_per_token.sel(study=studies[0]).transpose(*mav.energy_per_token.dims).values,
                 mav.energy_per_token.values)
    repeated = ds.energy_per_token.sel(study=studies[1])
    for f in ds.flash_read_pj_per_bit.values:
        assert_close(repeated.sel(flash_read_pj_per_bit=f).values, llama.energy_per_token.values)
    fig6 = ratio_to(ds.energy_per_token, "study", studies[1]).sel(study=studies[0])
    np.testing.assert_allclose(fig6.transpose("batch", ...), mav.energy_per_token / llama.energy_per_token)
    as_zarr = collect.collect(tmp_path, output=tmp_path / "merged.zarr", progress=False)      # the large-size form
    assert_close(open_results(as_zarr).load(), ds.load())


def test_figures_4_5_pad_the_batch_sizes_a_study_did_not_run(tmp_path):
    studies = ["paper-fig45-mixtral", "paper-fig45-deepseek"]
    fake_multirun(tmp_path, [([f"study={s}"], presets.compose(study=s)) for s in studies])
    ds = open_results(collect.collect(tmp_path, progress=False))
    assert list(ds.batch.values) == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    deepseek = ds.energy_per_token.sel(study=studies[1])
    assert deepseek.sel(batch=[1, 2]).isnull().all() and deepseek.sel(batch=slice(4, None)).notnull().all()


def test_an_incomplete_multirun_names_the_missing_choice(tmp_path):
    base = presets.compose(model="mixtral-8x7b")
    base["grid"] = {"batch": [1, 2]}
    jobs = []
    for model, placement in (("mixtral-8x7b", "hbm"), ("mixtral-8x7b", "ddr"), ("deepseek-r1", "hbm")):
        cfg = presets.compose(model=model)
        cfg["grid"], cfg["workload"]["placement"] = {"batch": [1, 2]}, placement
        jobs.append(([f"model={model}", f"workload.placement={placement}"], cfg))
    fake_multirun(tmp_path, jobs)
    with pytest.raises(DseError, match=r"no result for \{'model': 'deepseek-r1', 'placement': 'ddr'\}"):
        collect.collect(tmp_path, progress=False)
    assert not (tmp_path / "merged.nc").exists()


@pytest.mark.slow
def test_collect_of_an_empty_directory_is_a_one_line_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dse.cli.dse_collect", str(tmp_path)], env=ENV, cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no job results" in r.stderr


def test_override_keys_name_dimensions():
    assert collect.dim_name("grid.batch") == "batch"
    assert collect.dim_name("workload.batch") == "batch"
    assert collect.dim_name("model") == "model" and collect.dim_name("study") == "study"
    assert collect.dim_name("system.gpu.idle_w") == "idle_w"                  # its canonical name
    assert collect.dim_name("grid.system.gpu.l2_pj_per_bit") == "system.gpu.l2_pj_per_bit"
