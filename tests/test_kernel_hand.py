"""The kernel against numbers derived by hand from docs/model.md and published model facts (not from the code)."""

import numpy as np
import pytest

import dse
from dse.model import kernel, routing

MIXTRAL_EXPERT_BYTES = 3 * 4096 * 14336 * 2            # 352,321,536 B = 352.3 MB
MIXTRAL_ROUTER_BYTES = 4096 * 8 * 2
# attention Q,O 4096x4096 and K,V 4096x1024 split over the 4 TP ranks, plus the 4096x8 router read in full by each
# of the 4 GPUs, per layer, x 32 layers, bf16
MIXTRAL_NON_EXPERT_BYTES = 32 * ((2 * 4096 * 4096 + 2 * 4096 * 1024) * 2 + 4 * MIXTRAL_ROUTER_BYTES)


@pytest.fixture(scope="module")
def mixtral():
    return dse.evaluate("paper-fig45-mixtral")


def test_mixtral_batch1_ssd_moves_two_experts_per_layer(mixtral):
    x = mixtral.sel(placement="ssd", batch=1)
    # accounting=paper: the tool also copies each GPU's router with the experts
    routers = 32 * 4 * MIXTRAL_ROUTER_BYTES
    assert float(x.offload_read_bytes) == pytest.approx(2 * 32 * MIXTRAL_EXPERT_BYTES + routers, rel=1e-12)
    assert float(x.experts_touched) == pytest.approx(2.0, rel=1e-12)


def test_each_offloaded_bit_costs_110_8_pj_in_the_papers_accounting(mixtral):
    ssd, hbm = mixtral.sel(placement="ssd", batch=1), mixtral.sel(placement="hbm", batch=1)
    expert_bits = 2 * 32 * MIXTRAL_EXPERT_BYTES * 8
    bits = expert_bits + 32 * 4 * MIXTRAL_ROUTER_BYTES * 8   # the routers are copied too (accounting=paper)
    e = ssd.energy.sel(component=["offload_read", "offload_link", "offload_hbm_write"]).sum()
    # 102.4 (SSD read) + 4.2 (HBM write) for the copy ...
    assert float(e) / bits == pytest.approx(106.6e-12, rel=1e-12)
    # ... + 4.2 (HBM read by the GEMM): the weight reads are the same bits in both placements
    hbm_read = float(ssd.energy.sel(component="hbm_weights"))
    assert hbm_read == pytest.approx((MIXTRAL_NON_EXPERT_BYTES * 8 + expert_bits) * 4.2e-12, rel=1e-12)
    assert (float(e) + bits * 4.2e-12) / bits == pytest.approx(110.8e-12, rel=1e-12)
    assert float(hbm.energy.sel(component="hbm_weights")) == pytest.approx(hbm_read, rel=1e-12)


def test_mixtral_batch1_kv_and_compute_energy(mixtral):
    x = mixtral.sel(placement="hbm", batch=1)
    kv_bytes = 1 * 1024 * (2 * 8 * 128) * 2 * 32
    assert float(x.energy.sel(component="hbm_kv")) == pytest.approx(kv_bytes * 8 * 4.2e-12, rel=1e-12)
    active = MIXTRAL_NON_EXPERT_BYTES / 2 + 32 * 2 * 3 * 4096 * 14336
    # products + scores and context (4 L heads d_head) + the softmax's 7 FLOPs per score, per layer
    flops = 2 * active + 32 * (1024 * 4 * 32 * 128 + 7 * 1024 * 32)
    assert float(x.flops) == pytest.approx(flops, rel=1e-12)
    assert float(x.energy.sel(component="compute")) == pytest.approx(flops * 0.16e-12, rel=1e-12)


def test_mixtral_batch1_hbm_latency_by_hand(mixtral):
    # the 2 touched experts share one of the 4 GPUs (2 experts each) with probability 4 / C(8, 2) = 1/7
    busiest = 1 + 1 / 7
    bw, L = 3352e9, 1024

    def mem(m, k, n, count=1):  # every product is memory-bound at batch 1: (mk + kn + mn) x 2 bytes
        return count * (m * k + k * n + m * n) * 2 / bw

    # per GPU: 8 heads, 2 KV heads (4 query heads each); scores and context per KV head; softmax reads + writes
    attn = (mem(1, 4096, 128 * (8 + 2 * 2)) + mem(4, 128, L, 2) + 2 * L * 8 * 2 / bw + mem(4, L, 128, 2)
            + mem(1, 1024, 4096))
    router = mem(1, 4096, 8)
    experts = busiest * (mem(1, 4096, 14336, 2) + mem(1, 14336, 4096))
    ring = 2 * 3 * (0.8e-6 + 4096 * 2 / 4 / 450e9)          # all-reduce over 4 GPUs of one token's activations
    # dispatch: every expert GPU is in the token's TP group -> nothing to send; combine to the 3 others
    combine = 0.8e-6 + 1 * 2 * 4096 * 2 / 4 * 3 / 4 / 450e9
    per_layer = attn + ring + router + experts + ring + combine
    x = mixtral.sel(placement="hbm", batch=1)
    assert float(x.step_latency) == pytest.approx(32 * per_layer, rel=1e-9)
    # background: (70 W GPU + 57 W DDR) x 4 GPUs x latency
    assert float(x.energy.sel(component="background")) == pytest.approx(4 * 127 * 32 * per_layer, rel=1e-9)


def test_uniform_distinct_experts_by_hand():
    assert routing.touched_uniform(2, 2, 8) == pytest.approx(8 * (1 - 0.75**2))  # 3.5
    # DeepSeek-V2-Lite (E=64, k=6) at B=8: 64 (1 - (58/64)^8) = 64 (1 - e^(8 ln 0.90625)) = 34.88;
    # replayed traces touched 32.8 (docs/model.md s.10)
    u = routing.touched_uniform(8, 6, 64)
    assert u == pytest.approx(34.88, abs=0.01)
    # Monte Carlo: 8 tokens, each picking 6 distinct of 64 experts uniformly (20,000 seeded draws)
    rng = np.random.default_rng(7)
    picks = np.argsort(rng.random((20_000, 8, 64)), axis=2)[:, :, :6].reshape(20_000, -1)
    distinct = np.array([len(np.unique(row)) for row in picks])
    assert distinct.mean() == pytest.approx(u, abs=4 * distinct.std() / np.sqrt(len(distinct)))
    t, _ = routing.touched_zipf(8, 6, 64, 0.0, 64)
    assert t == pytest.approx(u, rel=1e-12)
    t_skew, _ = routing.touched_zipf(8, 6, 64, 1.0, 64)
    assert t_skew < u


def test_cache_fraction_removes_hot_experts_from_the_fetch():
    # uniform routing: caching half of the experts halves the expected fetch
    ds = dse.evaluate("paper-fig45-mixtral", batch=16, placement="ssd", hbm_cache_fraction=[0.0, 0.5, 1.0])
    f = ds.experts_fetched.values
    assert f[1] == pytest.approx(f[0] / 2) and f[2] == 0.0
    # Zipf: the hottest half carries more than half of the touches
    z = dse.evaluate("paper-fig45-mixtral", batch=2, placement="ssd", routing_skew=1.5, hbm_cache_fraction=[0.0, 0.5])
    assert z.experts_fetched.values[1] < z.experts_fetched.values[0] / 2


@pytest.mark.parametrize("name, total_b, active_b", [
    ("mixtral-8x7b", 46.7, 12.9),        # Mistral AI announcement
    ("deepseek-r1", 671.0, 37.0),        # DeepSeek-V3 technical report (without the 14B MTP module)
    ("llama4-maverick", 400.0, 17.0),    # Meta model card: 17B active, 400B total
    ("qwen3-235b-a22b", 235.0, 22.0),    # Qwen3 model card
    ("llama3-70b", 70.6, 70.6),          # Meta model card
    ("gpt-oss-120b", 116.8, 5.1),        # OpenAI model card: 116.8B total, 5.1B active
    ("kimi-k2", 1040.0, 32.6),           # Moonshot model card: 1T total (1.04T), 32B active
])
def test_parameter_counts_match_published_totals(name, total_b, active_b):
    from types import SimpleNamespace

    from dse.model import kernel
    from dse.config import presets
    from dse.config import inputs

    m = SimpleNamespace(**inputs.prepare_model(presets.preset("model", name)))
    g = SimpleNamespace(**presets.preset("gpu", "h100-sxm"))
    counts = kernel.parameter_counts(m, g)                   # the weights of the operation table, tp = 1
    embedding = m.vocab * m.hidden
    assert (counts.total + embedding) / 1e9 == pytest.approx(total_b, rel=0.02)
    assert counts.active / 1e9 == pytest.approx(active_b, rel=0.06)  # the embedding lookup is not a matmul


def test_deepseek_mla_attention_by_hand():
    from types import SimpleNamespace

    from dse.model import kernel
    from dse.config import presets
    from dse.config import inputs

    m = SimpleNamespace(**inputs.prepare_model(presets.preset("model", "deepseek-r1")))
    g = SimpleNamespace(**presets.preset("gpu", "h100-sxm"))
    # q_a, q_b (nope + rope per head), kv_a with the RoPE key, W_UK and W_UV per head, o
    by_hand = 7168 * 1536 + 1536 * 128 * 192 + 7168 * 576 + 512 * 128 * 256 + 128 * 128 * 7168
    assert kernel.parameter_counts(m, g).attention == by_hand == 187_105_280
    assert kernel.kv_values_stored_per_token(m, kv_heads=1) == 512 + 64


def test_direct_path_skips_hbm_write_and_reread():
    ds = dse.evaluate("paper-fig45-mixtral", batch=4, placement="ssd", offload_path=["staged", "direct"])
    staged, direct = ds.sel(offload_path="staged"), ds.sel(offload_path="direct")
    router_bits = 32 * 4 * MIXTRAL_ROUTER_BYTES * 8           # copied too under accounting=paper
    expert_bits = float(staged.offload_read_bits) - router_bits
    assert float(direct.energy.sel(component="offload_hbm_write")) == 0.0
    # the fetched experts' weights stream past HBM (their row tiles: 4 tokens fit one tile, read once)
    saved = float(staged.energy.sel(component="hbm_weights") - direct.energy.sel(component="hbm_weights"))
    assert saved == pytest.approx(expert_bits * 4.2e-12, rel=1e-12)


def test_measured_routing_frequencies():
    # a flat measured vector is uniform routing: Mixtral B=2 -> 8 (1 - 0.75^2) = 3.5
    ds = dse.evaluate("paper-fig45-mixtral", batch=2, placement="ssd", routing_frequencies=[0.25] * 8)
    assert float(ds.experts_touched) == pytest.approx(3.5, rel=1e-12)
    assert ds.attrs["routing"] == "measured"
    # all traffic on two experts (p = 1 each): exactly 2 touched at any batch, and caching them fetches none
    hot = [1.0, 1.0] + [0.0] * 6
    ds = dse.evaluate("paper-fig45-mixtral", batch=[1, 64], placement="ssd", routing_frequencies=hot,
                      hbm_cache_fraction=[0.0, 0.25])
    np.testing.assert_allclose(ds.experts_touched.values, 2.0)
    np.testing.assert_allclose(ds.experts_fetched.sel(hbm_cache_fraction=0.25).values, 0.0)
    np.testing.assert_allclose(ds.experts_fetched.sel(hbm_cache_fraction=0.0).values, 2.0)


def test_expert_parallel_traffic_skips_the_tokens_own_tp_group():
    """Refined accounting, 8 GPUs, EP = 8: with tensor-parallel attention every GPU holds every token, so nothing is
    dispatched and the MoE output's all-reduce over the group is the combine (no all-to-all at all); with
    data-parallel attention each GPU's tokens go to 7/8 of the experts' GPUs and come back. The tool (paper
    accounting) returns them to all 7 others in both cases. By hand, per layer: 64 tokens x top-2 x 4096 x 2 B."""
    from types import SimpleNamespace as NS

    m = NS(top_k=2.0, hidden=4096.0, n_shared=0.0)
    s = NS(tp=8, ep=8, gpus_per_node=8, hop_latency_us=0.8, nvlink_bw_gbps=450.0, internode_bw_gbps=50.0)
    share = 64 / 8 * 2 * 4096 * 2.0                    # tokens of one GPU's share x top-k x hidden x 2 B
    for dpa, mimic, want_bytes, hops in ((0.0, 0.0, 0.0, 0), (1.0, 0.0, 2 * share * 7 / 8, 2),
                                         (0.0, 1.0, share * 7 / 8, 1)):
        w = NS(act_bytes=2.0, dp_attention=dpa, mimic_tool=mimic)
        att_split = 8 - dpa * 7
        lay = NS(tp=8, rows=64.0, att_split=att_split)
        t = float(kernel._collectives(m, s, w, lay).t_a2a)
        assert t == pytest.approx(hops * 0.8e-6 + want_bytes / 450e9, rel=1e-12), (dpa, mimic)
