"""Property tests (hypothesis) of the kernel: affinity in Flash energy, routing bounds, component sums."""
import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import dse
from dse.model import expert_load, routing
from dse.config import presets

MODELS = ["mixtral-8x7b", "deepseek-r1", "qwen3-235b-a22b", "gpt-oss-120b", "llama4-maverick"]
SYSTEMS = ["paper-4xh100", "paper-32xh100", "8xh200-c2c", "8xb200-c2c"]
SLOW = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(model=st.sampled_from(MODELS), system=st.sampled_from(SYSTEMS),
       batch=st.integers(1, 512), placement=st.sampled_from(["ssd", "hbf"]),
       flash=st.lists(st.floats(0.0, 500.0), min_size=3, max_size=3, unique=True),
       cache=st.floats(0.0, 1.0), skew=st.sampled_from([0.0, 0.8]))
def test_energy_is_affine_and_nondecreasing_in_flash_energy(model, system, batch, placement, flash, cache, skew):
    assume(not (model == "mixtral-8x7b" and system == "paper-32xh100"))   # EP32 > 8 experts: refused (ep <= n_experts)
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
    a = dse.evaluate(model=model, system="8xh200-c2c", batch=batch, placement="hbm")
    b = dse.evaluate(model=model, system="8xh200-c2c", batch=batch, placement="hbm", flash_read_pj_per_bit=flash)
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
    assume(not (model == "mixtral-8x7b" and system == "paper-32xh100"))   # EP32 > 8 experts: refused
    ds = dse.evaluate(model=model, system=system, batch=batch, placement=placement, prefetch=prefetch,
                      offload_path=path)
    assert np.all(ds.energy >= 0)
    np.testing.assert_allclose(ds.energy.sum("component"), ds.step_energy, rtol=1e-12)
    np.testing.assert_allclose(ds.energy_per_token * ds.batch, ds.step_energy, rtol=1e-12)
    assert np.all((ds.offload_share >= 0) & (ds.offload_share <= 1))
    # distinct experts per MoE layer: at least one token's top_k, at most all experts or every pick distinct
    m = presets.preset("model", model)
    assert np.all(ds.experts_touched >= m["top_k"] - 1e-9)
    assert np.all(ds.experts_touched <= np.minimum(m["n_experts"], ds.batch * m["top_k"]) + 1e-9)


def test_busiest_gpu_between_mean_and_total():
    for e, k, ep in [(8, 2, 4), (256, 8, 32), (128, 1, 8), (384, 8, 64)]:
        for b in (1, 4, 32, 512):
            u = routing.touched_uniform(b, k, e)
            m = int(np.ceil(e / ep))
            busiest = expert_load.busiest_uniform(b, k, e, ep)   # max <= N and max <= m; max >= N / ep
            assert u / ep - 1e-9 <= busiest <= min(u, m) + 1e-9


# ------------------------------------------------------------------------------------------ random valid inputs
@st.composite
def valid_inputs(draw):
    """A random model, system and workload that the validation accepts (drawn inside the rules' ranges)."""
    mla = draw(st.booleans())
    tp = draw(st.sampled_from([1, 2, 4, 8]))
    heads = tp * draw(st.integers(1, 16))
    n_experts = draw(st.sampled_from([0, 1, 2, 8, 64, 257]))
    top_k = draw(st.integers(1, min(n_experts, 16))) if n_experts else 0
    n_layers = draw(st.integers(1, 128))
    model = dict(name="random", attention="mla" if mla else "gqa", n_layers=n_layers,
                 hidden=draw(st.integers(1, 16384)), n_heads=heads, head_dim=draw(st.integers(1, 256)),
                 n_experts=n_experts, top_k=top_k, d_expert=draw(st.floats(0.5, 8192)) if n_experts else 0,
                 d_ffn=draw(st.integers(0, 65536)), vocab=draw(st.integers(0, 300_000)),
                 n_shared=draw(st.integers(0, 4)), d_shared=draw(st.integers(0, 4096)),
                 first_dense=draw(st.integers(0, n_layers)), moe_every=draw(st.integers(1, 4)))
    if mla:
        model.update(n_kv_heads=heads, kv_lora_rank=draw(st.integers(1, 1024)), v_head_dim=draw(st.integers(1, 256)),
                     qk_rope_head_dim=draw(st.integers(0, 128)), q_lora_rank=draw(st.integers(0, 2048)))
    else:
        groups = [g for g in range(1, heads + 1) if heads % g == 0 and (g % tp == 0 or tp % g == 0)]
        model["n_kv_heads"] = draw(st.sampled_from(groups))
    dp = draw(st.integers(1, 4))
    ep = draw(st.integers(1, max(1, min(tp * dp, n_experts or 1))))
    pos = dict(allow_nan=False, allow_infinity=False)
    params = {
        "tp": tp, "dp": dp, "ep": ep,
        "batch": draw(st.lists(st.integers(1, 4096), min_size=1, max_size=3, unique=True)),
        "context_len": draw(st.integers(0, 1 << 20)),
        "hbm_cache_fraction": draw(st.floats(0, 1, **pos)),
        "routing_skew": draw(st.sampled_from([0.0, 0.5, 1.2])),
        "weight_bytes": draw(st.sampled_from([0.5, 1.0, 2.0])),
        "placement": ["hbm", "ddr", "ssd"],
        "prefetch": draw(st.booleans()),
        "offload_path": draw(st.sampled_from(["staged", "direct"])),
        "flash_read_pj_per_bit": draw(st.floats(0, 1000, **pos)),
        "system.hop_latency_us": draw(st.floats(0, 100, **pos)),
        "system.gpu.idle_w": draw(st.floats(0, 1000, **pos)),
        "system.gpu.flop_pj": draw(st.floats(0, 10, **pos)),
        "system.gpu.l1_pj_per_bit": draw(st.floats(0, 1, **pos)),
        "system.internode_bw_gbps": draw(st.floats(1, 1000, **pos)),
        "system.gpus_per_node": draw(st.integers(1, 16)),
    }
    return model, params


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs=valid_inputs(), system=st.sampled_from(["paper-4xh100", "8xh200-c2c", "8xb200-c2c"]))
def test_valid_inputs_give_finite_nonnegative_outputs(inputs, system):
    """Every accepted input: every output finite and >= 0, components sum to their totals."""
    model, params = inputs
    ds = dse.evaluate(model=model, system=system, **params)
    for name, v in ds.data_vars.items():
        values = np.asarray(v.values, dtype=float)
        assert np.all(np.isfinite(values)), name
        assert np.all(values >= 0), name
    assert np.all(ds.step_latency > 0) and np.all(ds.offload_share <= 1 + 1e-12)
    np.testing.assert_allclose(ds.energy.sum("component"), ds.step_energy, rtol=1e-9)
    np.testing.assert_allclose(ds.capacity_cost.sum("cost_part"), ds.capacity_cost_usd, rtol=1e-9)
    np.testing.assert_allclose(ds.energy_per_token * ds.batch, ds.step_energy, rtol=1e-9)
    assert np.all(ds.experts_touched <= model["n_experts"] * (1 + 1e-12))
