"""Hugging Face config import and the `dse` CLI end to end."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

import dse
from dse.config import presets
from dse.config.hf import from_hf_config
from dse.config.specs import MODEL_FIELDS as FIELDS

ROOT = Path(__file__).resolve().parent.parent
HF = ROOT / "tests" / "data" / "hf"


@pytest.mark.parametrize("name", sorted(p.stem for p in HF.glob("*.json")))
def test_hf_config_matches_the_preset(name):
    parsed = from_hf_config(HF / f"{name}.json")
    preset = presets.preset("model", name)
    for field in FIELDS:
        assert parsed[field] == preset.get(field, 0), field


def test_parsed_model_evaluates_like_the_preset():
    parsed = from_hf_config(HF / "qwen3-235b-a22b.json", name="qwen3-from-json")
    a = dse.evaluate(model=parsed, system="8xh200-c2c", batch=[1, 32], placement=["hbm", "ssd"])
    b = dse.evaluate(model="qwen3-235b-a22b", system="8xh200-c2c", batch=[1, 32], placement=["hbm", "ssd"])
    xr.testing.assert_allclose(a.energy_per_token, b.energy_per_token, rtol=1e-12)
    assert a.attrs["model"] == "qwen3-from-json"


def test_model_dimension_stacks_presets():
    ds = dse.evaluate(model=["mixtral-8x7b", "deepseek-r1"], system="8xh200-c2c", batch=[1, 16], placement="ssd")
    one = dse.evaluate(model="deepseek-r1", system="8xh200-c2c", batch=[1, 16], placement="ssd")
    xr.testing.assert_allclose(ds.energy_per_token.sel(model="deepseek-r1", drop=True), one.energy_per_token)


@pytest.mark.slow
def test_cli_prints_a_table_and_writes_netcdf(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "dse.cli.main", "study=paper-fig45-mixtral", "hydra.run.dir=run"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert "J_per_token" in r.stdout and "offload_share" in r.stdout
    files = list((tmp_path / "run").glob("*.nc"))
    assert [f.name for f in files] == ["result.nc"]
    ds = xr.open_dataset(files[0], engine="h5netcdf")
    ref = dse.evaluate("paper-fig45-mixtral")
    xr.testing.assert_allclose(ds.energy_per_token, ref.energy_per_token)
    assert ds.energy_per_token.attrs["units"] == "J"
    assert ds.attrs["config_digest"] == ref.attrs["config_digest"]
    assert "provenance" in ds.attrs["config_yaml"]
