"""Property tests (hypothesis) of the kernel: affinity in Flash energy, routing bounds, component sums."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dse
from dse import expert_load, routing

MODELS = ["mixtral-8x7b", "deepseek-r1", "qwen3-235b-a22b", "gpt-oss-120b", "llama4-maverick"]
SYSTEMS = ["paper-4xh100", "paper-32xh100", "8xh200", "8xb200"]
SLOW = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(model=st.sampled_from(MODELS), system=st.sampled_from(SYSTEMS),
       batch=st.integers(1, 512), placement=st.sampled_from(["ssd", "hbf"]),
       flash=st.lists(st.floats(0.0, 500.0), min_size=3, max_size=3, unique=True),
       cache=st.floats(0.0, 1.0), skew=st.sampled_from([0.0, 0.8]))
def test_energy_is_affine_and_nondecreasing_in_flash_energy(model, system, batch, placement, flash, cache, skew):
    flash = sorted(flash)
    ds = dse.evaluate(model=model, system=system, batch=batch, placement=placement, hbm_cache_fraction=cache,
                      routing_skew=skew, flash_read_pj_per_bit=flash)
    e = ds.step_energy.values
    assert np.all(np.diff(e) >= 0)
    slope = ds.offload_read_bits.values * 1e-12  # J per (pJ/bit)
    assert np.allclose(e, e[0] + slope * (np.asarray(flash) - flash[0]), rtol=1e-9, atol=0)
    assert np.ptp(ds.step_latency.values) == 0  # latency does not depend on pJ/bit


@SLOW
@given(model=st.sampled_from(MODELS), batch=st.integers(1, 1024), flash=st.floats(0.0, 1000.0))
def test_hbm_placement_ignores_flash_energy(model, batch, flash):
    a = dse.evaluate(model=model, system="8xh200", batch=batch, placement="hbm")
    b = dse.evaluate(model=model, system="8xh200", batch=batch, placement="hbm", flash_read_pj_per_bit=flash)
    assert a.energy_per_token.item() == b.energy_per_token.item()
    assert b.offload_read_bits.item() == 0


@settings(max_examples=200, deadline=None)
@given(e=st.integers(1, 512), data=st.data(), skew=st.floats(0.0, 3.0))
def test_distinct_experts_monotone_and_bounded(e, data, skew):
    k = data.draw(st.integers(1, min(e, 16)))
    batches = np.arange(1, 257)
    uniform = routing.touched_uniform(batches, k, e)
    assert uniform[0] == np.float64(k) or abs(uniform[0] - k) < 1e-9  # one token touches exactly k experts
    for touched in (uniform, routing.touched_zipf(batches, k, e, skew, e)[0]):
        assert np.all(np.diff(touched) >= -1e-9)
        assert np.all(touched <= np.minimum(batches * k, e) + 1e-9)


@SLOW
@given(model=st.sampled_from(MODELS), system=st.sampled_from(SYSTEMS),
       batch=st.lists(st.integers(1, 2048), min_size=1, max_size=4, unique=True),
       placement=st.sampled_from([["hbm", "ddr", "ssd"], ["hbf", "cxl"]]),
       prefetch=st.booleans(), path=st.sampled_from(["staged", "direct"]))
def test_components_sum_to_total_and_are_nonnegative(model, system, batch, placement, prefetch, path):
    ds = dse.evaluate(model=model, system=system, batch=batch, placement=placement, prefetch=prefetch,
                      offload_path=path)
    assert np.all(ds.energy >= 0)
    np.testing.assert_allclose(ds.energy.sum("component"), ds.step_energy, rtol=1e-12)
    np.testing.assert_allclose(ds.energy_per_token * ds.batch, ds.step_energy, rtol=1e-12)
    assert np.all((ds.offload_share >= 0) & (ds.offload_share <= 1))
    assert np.all(ds.experts_touched <= ds.experts_touched.max())


def test_busiest_gpu_between_mean_and_total():
    for e, k, ep in [(8, 2, 4), (256, 8, 32), (128, 1, 8), (384, 8, 64)]:
        for b in (1, 4, 32, 512):
            u = routing.touched_uniform(b, k, e)
            m = int(np.ceil(e / ep))
            busiest = expert_load.busiest_uniform(b, k, e, ep)   # max <= N and max <= m; max >= N / ep
            assert u / ep - 1e-9 <= busiest <= min(u, m) + 1e-9
