"""Feasibility: `fits` (docs/model.md s.7) in every dataset, marked in the CLI table, skipped by best / break-even.

Expected fills are derived from published model sizes and the presets' capacities, not from dse's output."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dse
from dse.run.results import best

ROOT = Path(__file__).resolve().parent.parent
H100_GB = 80e9          # NVIDIA H100 SXM datasheet
R1_PARAMS = 671e9       # DeepSeek-R1 as released (DeepSeek-V3 technical report), bf16 = 2 B each
R1_ROUTED = 58 * 256 * 3 * 7168 * 2048   # 58 MoE layers x 256 experts x (gate, up, down) of 7168 x 2048
DDR_PER_GPU = 256e9     # the paper's 256 GB DDR5 per GPU (dse/conf/tier/ddr5.yaml)


@pytest.fixture(scope="module")
def r1_on_4():
    # tp attention: every GPU holds a quarter of the attention weights (dp attention would hold a copy each)
    return dse.evaluate(model="deepseek-r1", system="paper-4xh100", placement=["hbm", "ddr"], batch=[1, 8],
                        attention_parallel="tp")


def test_deepseek_r1_does_not_fit_four_h100_in_hbm_or_with_ddr(r1_on_4):
    ds = r1_on_4
    assert ds.fits.dtype == bool and ds.fits.attrs["units"] == "1"
    hbm_fill = ds.hbm_fill.sel(placement="hbm", batch=1)
    # 671 B parameters x 2 B over 4 x 80 GB, to within the embedding / LM head (~1.4 B parameters) left out
    np.testing.assert_allclose(hbm_fill, R1_PARAMS * 2 / (4 * H100_GB), rtol=0.01)
    np.testing.assert_allclose(ds.offload_fill.sel(placement="ddr"), R1_ROUTED * 2 / (4 * DDR_PER_GPU),
                               rtol=1e-12)
    assert not ds.fits.any()


def test_mixtral_fits_four_h100():
    ds = dse.evaluate("paper-fig45-mixtral")
    # 46.7 B parameters x 2 B (Mistral AI) over 320 GB: about 0.29 of HBM; the KV cache of 1024 sequences x 1024
    # tokens x 32 layers x 2 x 8 heads x 128 x 2 B = 137 GB fits beside it
    np.testing.assert_allclose(ds.hbm_fill.sel(placement="hbm", batch=1), 46.7e9 * 2 / (4 * H100_GB), rtol=0.01)
    assert bool(ds.fits.all())


def test_best_skips_what_does_not_fit():
    ds = dse.evaluate(model="deepseek-r1", system="8xh200-c2c", placement=["hbm", "ddr"], batch=[1, 64])
    # 8 x 141 GB = 1,128 GB < 1,342 GB of weights: HBM alone does not fit; DDR offload does
    assert not ds.fits.sel(placement="hbm").any() and ds.fits.sel(placement="ddr").all()
    assert float(ds.energy_per_token.sel(placement="hbm", batch=1)) < float(ds.energy_per_token.sel(placement="ddr", batch=1))
    assert set(best(ds, "placement").choice.values) == {"ddr"}
    assert set(best(ds.energy_per_token, "placement", fits=ds.fits).choice.values) == {"ddr"}
    assert set(best(ds, "placement", include_unfit=True).choice.values) == {"hbm"}


def test_breakeven_skips_points_that_do_not_fit():
    be = dse.breakeven({"model": "deepseek-r1", "system": "paper-4xh100", "placement": "ssd"},
                       {"model": "deepseek-r1", "system": "paper-4xh100", "placement": "hbm"}, batch=[1, 8])
    assert not be.fits.any()
    assert bool(be.breakeven_flash_read_pj_per_bit.isnull().all()) and not be.breaks_even.any()
    assert set(be.reason.values.ravel()) == {"does not fit"}
    anyway = dse.breakeven({"model": "deepseek-r1", "system": "paper-4xh100", "placement": "ssd"},
                           {"model": "deepseek-r1", "system": "paper-4xh100", "placement": "hbm"}, batch=[1, 8],
                           include_unfit=True)
    assert bool(anyway.breakeven_flash_read_pj_per_bit.notnull().all())


@pytest.mark.slow
def test_the_cli_table_marks_rows_that_do_not_fit(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dse", "model=deepseek-r1", "system=paper-4xh100",
                        "workload.placement=hbm", f"hydra.run.dir={tmp_path}", "progress=false"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "fits" in r.stdout and " NO" in r.stdout and "1 of 1 rows do not fit" in r.stdout
