"""Expert copies and KV writes against hand derivations (issue 22 item 6, issue 26 item 1): the direct path is
limited by the link and the tier, not by half of HBM; HBM bandwidth is shared with copies only while copies are in
flight; a Flash tier's page read is exposed once per copy; KV writes to a tier are limited by its write bandwidth."""
import numpy as np
import pytest

import dse
from dse.config import presets

MIXTRAL_EXPERT_BYTES = 3 * 4096 * 14336 * 2      # gate, up, down of 4096 x 14336 in bf16
MIXTRAL_MOE_LAYERS = 32
# the copy physics alone: the serving engine at the roofline, the boards at idle between operations
ONE_GPU = dict(model="mixtral-8x7b", system="hgx-h200", tp=1, ep=1, dp=1, accounting="refined", serving_efficiency=1.0,
               active_power_fraction=0.0, host_us_per_sequence=0.0, layer_overhead_us=0.0)


def _copy_latency(**kw):
    return float(dse.evaluate(**ONE_GPU, placement="hbf", batch=1, hbm_cache_fraction=0.0, **kw).copy_latency)


def test_direct_path_streams_at_the_link_not_half_of_hbm():
    """Batch 1 on one GPU touches top_k = 2 experts per MoE layer, all fetched: 2 x 352 MB per layer."""
    fast = {"link_bw_gbps": 20000.0, "system.tiers.hbf.bw_gbps": 1e6, "system.tiers.hbf.read_latency_us": 0.0}
    per_layer = 2 * MIXTRAL_EXPERT_BYTES
    direct = _copy_latency(offload_path="direct", **fast)
    assert direct == pytest.approx(MIXTRAL_MOE_LAYERS * per_layer / 20000e9, rel=1e-9)
    # staged: the copy lands in HBM, so HBM's (achievable) bandwidth caps it, not half of it
    g = presets.preset("gpu", "h200-hgx")
    hbm = g["hbm_bw_gbps"] * 1e9 * g["mem_efficiency"]
    staged = _copy_latency(offload_path="staged", **fast)
    assert staged == pytest.approx(MIXTRAL_MOE_LAYERS * per_layer / hbm, rel=1e-9)
    # a slower link is what limits either path then
    slow = {**fast, "link_bw_gbps": 100.0}
    for path in ("direct", "staged"):
        assert _copy_latency(offload_path=path, **slow) == pytest.approx(
            MIXTRAL_MOE_LAYERS * per_layer / 100e9, rel=1e-9)


def test_flash_page_read_is_exposed_once_per_copy():
    base = {"link_bw_gbps": 1000.0}
    t0 = _copy_latency(**base, **{"system.tiers.hbf.read_latency_us": 0.0})
    t50 = _copy_latency(**base, **{"system.tiers.hbf.read_latency_us": 50.0})
    assert t50 - t0 == pytest.approx(MIXTRAL_MOE_LAYERS * 50e-6, rel=1e-9)
    # nothing copied, nothing waited for
    none = dse.evaluate(**ONE_GPU, placement="hbf", batch=1, hbm_cache_fraction=1.0)
    assert float(none.copy_latency) == 0.0


@pytest.mark.parametrize("path", ["staged", "direct"])
def test_hbm_bandwidth_is_shared_only_while_copies_are_in_flight(path):
    """Experts all in HBM (hbm_cache_fraction = 1) behind an HBF tier: the step is the HBM placement's, whatever
    the link (a faster link used to slow it down: its rate was taken off HBM bandwidth for every operation)."""
    hbm = dse.evaluate(**ONE_GPU, placement="hbm", batch=[1, 64])
    for link in (100.0, 3000.0):
        cached = dse.evaluate(**ONE_GPU, placement="hbf", batch=[1, 64], hbm_cache_fraction=1.0, link_bw_gbps=link,
                              offload_path=path)
        np.testing.assert_allclose(cached.step_latency, hbm.step_latency, rtol=1e-12)
        assert float(cached.offload_read_bits.max()) == 0.0


def test_faster_link_never_slows_a_step():
    lat = dse.evaluate(**ONE_GPU, placement=["hbf", "ssd"], batch=[1, 16, 256], hbm_cache_fraction=[0.0, 0.5, 1.0],
                       link_bw_gbps=[64.0, 128.0, 900.0, 3000.0]).step_latency
    assert bool((lat.diff("link_bw_gbps") <= 1e-15).all())


def test_kv_writes_to_a_tier_wait_for_its_write_bandwidth():
    """Mixtral's new K/V per token and layer: 2 x 8 KV heads x 128 x 2 bytes = 4096 B; batch 8 on one GPU writes
    32 layers x 8 x 4096 B per decode step, and the prompt's 100 tokens (then the first token) before it."""
    g = dict(ONE_GPU, batch=8, prompt_len=100, output_len=20, kv_placement="ssd", batching="lockstep",
             placement="hbm", power_limit_w=1e6)      # no limit: the write time alone, no throttle mixed in
    slow = dse.evaluate(**g, **{"system.tiers.ssd.write_bw_gbps": 1.0})
    free = dse.evaluate(**g, **{"system.tiers.ssd.write_bw_gbps": 1e30})
    per_step = MIXTRAL_MOE_LAYERS * 8 * 4096 / 1e9
    assert float(slow.tpot - free.tpot) == pytest.approx(per_step, rel=1e-9)
    assert float(slow.ttft - free.ttft) == pytest.approx((100 + 1) * per_step, rel=1e-9)


def test_a_mean_context_is_accepted():
    """context_len 1846.5 (a mean over a request's life): the step's costs are linear in the context."""
    ds = dse.evaluate(model="mixtral-8x7b", system="hgx-h200", batch=64, context_len=[1846, 1846.5, 1847])
    e = ds.energy_per_token.values
    assert e[1] == pytest.approx((e[0] + e[2]) / 2, rel=1e-12)


def test_breakeven_takes_the_accounting():
    sides = (dict(model="mixtral-8x7b", system="8xh200-c2c", placement="ssd"),
             dict(model="mixtral-8x7b", system="8xh200-c2c", placement="hbm"))
    got = {a: float(dse.breakeven(*sides, accounting=a, batch=64).breakeven_flash_read_pj_per_bit)
           for a in ("paper", "refined")}
    for a, v in got.items():
        tgt = dse.evaluate(**sides[0], accounting=a, batch=64, flash_read_pj_per_bit=0.0)
        ref = dse.evaluate(**sides[1], accounting=a, batch=64)
        bits_per_token = float(tgt.offload_read_bits) / 64
        assert v == pytest.approx(float(ref.energy_per_token - tgt.energy_per_token) / bits_per_token * 1e12,
                                  rel=1e-9)
    assert got["paper"] != pytest.approx(got["refined"], rel=1e-6)
