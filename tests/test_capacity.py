"""Capacity cost and limits (docs/model.md section 7) against hand-computed numbers."""
import numpy as np
import pytest

import dse
from dse import DseError

# DeepSeek-R1 as the paper models it: 60 layers, first 3 dense -> 57 MoE layers of 256 experts,
# each expert 3 x 7168 x 2048 parameters, bf16 (2 bytes).
EXPERT_BYTES = 57 * 256 * 3 * 7168 * 2048 * 2


@pytest.fixture(scope="module")
def ds():
    return dse.evaluate("paper-fig45-deepseek", batch=[4], placement=["hbm", "ssd"])


def test_offloaded_bytes_and_fill(ds):
    ssd = ds.sel(placement="ssd", batch=4)
    hbm = ds.sel(placement="hbm", batch=4)
    assert float(ssd.offload_tier_bytes) == pytest.approx(EXPERT_BYTES, rel=1e-12)
    # moving every routed expert out of HBM frees exactly their bytes
    assert float(hbm.hbm_bytes - ssd.hbm_bytes) == pytest.approx(EXPERT_BYTES, rel=1e-12)
    # 32 GPUs x 1 paper SSD of 4000 GB; 32 H100 x 80 GB of HBM
    assert float(ssd.offload_fill) == pytest.approx(EXPERT_BYTES / (32 * 4000e9), rel=1e-12)
    assert float(hbm.hbm_fill) == pytest.approx(float(hbm.hbm_bytes) / (32 * 80e9), rel=1e-12)
    assert float(hbm.offload_fill) == 0.0


def test_cost_parts(ds):
    ssd = ds.sel(placement="ssd", batch=4)
    parts = dict(zip(ds.cost_part.values.tolist(), ssd.capacity_cost.values.tolist()))
    assert parts["gpus"] == pytest.approx(32 * (25000 - 80 * 15))          # H100 less its 80 GB HBM at $15/GB
    assert parts["offload"] == pytest.approx(EXPERT_BYTES / 1e9 * 0.08)    # paper SSD $0.08/GB
    assert parts["hbm"] == pytest.approx(float(ssd.hbm_bytes) / 1e9 * 15)
    assert float(ssd.capacity_cost_usd) == pytest.approx(sum(parts.values()))
    hbm = ds.sel(placement="hbm", batch=4)
    # all-HBM minus SSD offload: the experts' HBM at $15/GB instead of SSD at $0.08/GB
    assert float(hbm.capacity_cost_usd - ssd.capacity_cost_usd) == pytest.approx(EXPERT_BYTES / 1e9 * (15 - 0.08))


def test_free_gpus_leave_the_memory():
    d = dse.evaluate("paper-fig45-deepseek", batch=[4], placement=["ssd"], **{"system.gpu.price_usd": 0.0})
    parts = dict(zip(d.cost_part.values.tolist(), d.capacity_cost.values.ravel().tolist()))
    assert parts["gpus"] == 0.0
    assert parts["offload"] == pytest.approx(EXPERT_BYTES / 1e9 * 0.08)


def test_gpu_grid_uses_each_gpus_prices():
    d = dse.evaluate("paper-fig45-deepseek", batch=[4], placement=["hbm"], gpu=["h100-sxm", "b200"])
    gpus = d.capacity_cost.sel(cost_part="gpus").squeeze()
    assert np.allclose(gpus.values, [32 * (25000 - 80 * 15), 32 * (40000 - 180 * 20)])


def test_negative_price_is_rejected():
    with pytest.raises(DseError, match="hbm_usd_per_gb"):
        dse.evaluate("paper-fig45-deepseek", batch=[4], **{"system.gpu.hbm_usd_per_gb": -1.0})
