"""Fidelity physics, derived by hand: TP attention and MLA latent replication, GQA KV-head replication, GEMM tiling
traffic, the per-operation roofline, and the paper authors' tool (LLMSimulator + SSD-offloading patch)."""
from types import SimpleNamespace

import numpy as np
import pytest

import dse
from dse.model.gemm import Gemm
from dse.errors import DseError

H100 = SimpleNamespace(register_tile=16, l1_kib=256.0, l2_mib=50.0)
L = 1024


# ------------------------------------------------------------------------ attention under tensor parallelism
@pytest.fixture(scope="module")
def r1_attention():
    """DeepSeek-R1 (61 layers) on 32 H100s, batch 32, KV at 2 bytes: TP8 x DP4, TP1 x DP32, and DP attention."""
    kw = dict(model="deepseek-r1", system="paper-32xh100", batch=32, placement="hbm")
    return {
        "tp8": dse.evaluate(**kw, attention_parallel="tp"),   # pinned: auto is dp for MLA
        "tp1": dse.evaluate(**kw, tp=1, dp=32),
        "dp": dse.evaluate(**kw, attention_parallel="dp"),
    }


def test_mla_latent_read_by_every_tp_rank(r1_attention):
    # per sequence and layer the absorbed MLA reads the 512-wide latent twice (scores, context) and the 64-wide
    # RoPE key once: 1088 values x 2 bytes x 1024 tokens. With TP8 every rank of a group reads its group's whole
    # latent: x 8. TP1 (each GPU its own sequences) and DP attention read it once.
    per_sequence_bits = 61 * L * (2 * 512 + 64) * 2 * 8
    kv = {k: float(ds.energy.sel(component="hbm_kv")) / 4.2e-12 for k, ds in r1_attention.items()}
    assert kv["tp1"] == pytest.approx(32 * per_sequence_bits, rel=1e-12)
    assert kv["tp8"] == pytest.approx(8 * 32 * per_sequence_bits, rel=1e-12)
    assert kv["dp"] == pytest.approx(32 * per_sequence_bits, rel=1e-12)


def test_mla_capacity_held_tp_times_and_dp_attention_replicates_weights(r1_attention):
    # KV held: 576 values per token per layer; TP8 holds each sequence's latent on 8 ranks. DP attention holds it
    # once but every GPU holds all attention weights: the down-projections (7168 x (1536 + 512 + 64)) are on every
    # rank either way; the rest of the 187,105,280 attention parameters per layer is split 8 ways under TP8.
    kv_once = 32 * L * 576 * 2 * 61
    split = 187_105_280 - 7168 * (1536 + 512 + 64)
    weights_extra = 32 * split * 7 / 8 * 2 * 61
    diff = float(r1_attention["tp8"].hbm_bytes - r1_attention["dp"].hbm_bytes)
    assert diff == pytest.approx(7 * kv_once - weights_extra, rel=1e-12)


def test_gqa_kv_heads_split_down_to_one_per_rank():
    # Llama-3-70B has 8 KV heads: TP8 gives one per rank; TP16 replicates them (each rank still reads one head),
    # so the KV bits read double while the query heads split further
    ds = dse.evaluate(model="llama3-70b", system="8xh200-c2c", batch=16, tp=[8, 16], ep=1)
    kv = ds.energy.sel(component="hbm_kv")
    assert float(kv.sel(tp=16) / kv.sel(tp=8)) == pytest.approx(2.0, rel=1e-12)
    one_head = 16 * L * 2 * 128 * 2 * 80 * 8 * 3.9e-12      # K and V of one head, 16 sequences, 80 layers
    assert float(kv.sel(tp=8)) == pytest.approx(8 * one_head, rel=1e-12)


# ------------------------------------------------------------------------------------ tiling traffic of a GEMM
def _gemm(m, k, n):
    return Gemm(m, k, n, count=1.0, pa=2.0, pw=2.0, g=H100)


def test_tiling_traffic_single_token_expert():
    # m = 1: the L1 tile takes the whole row and the widest column tile that fits 256 KiB, 512 (the largest
    # candidate; (1 + 512) 32 x 2 + 512 x 2 B fits); the L2 tile takes all of n
    m, k, n = 1, 4096, 14336
    g = _gemm(m, k, n)
    assert float(g.l1_bytes) == pytest.approx((k * n + (n // 16) * m * k + m * n) * 2, rel=1e-12)
    assert float(g.l2_bytes) == pytest.approx((k * n + (n // 512) * m * k + m * n) * 2, rel=1e-12)
    assert float(g.hbm_b_bytes + g.hbm_a_read + g.hbm_a_write) == pytest.approx((k * n + m * k + m * n) * 2, rel=1e-12)


def test_tiling_traffic_batch_1024_mixtral_expert():
    # 256 tokens per expert: the 16-row register tile re-reads the weights 16 times through L1. L1 tiles: with all
    # 256 rows, (256 + tn) 32 x 2 + 256 tn x 2 <= 262,144 B allows tn <= 426 -> 384, so inputs pass
    # ceil(14336 / 384) = 38 times through L2 and the weights once (halving the rows would re-read weights twice)
    m, k, n = 256, 4096, 14336
    g = _gemm(m, k, n)
    assert float(g.l1_bytes) == pytest.approx((16 * k * n + (n // 16) * m * k + m * n) * 2, rel=1e-12)
    assert float(g.l2_bytes) == pytest.approx((k * n + 38 * m * k + m * n) * 2, rel=1e-12)
    assert float(g.hbm_b_bytes) == pytest.approx(k * n * 2, rel=1e-12)
    assert float(g.hbm_a_read + g.hbm_a_write) == pytest.approx((m * k + m * n) * 2, rel=1e-12)


def test_tiling_traffic_attention_scores():
    # GQA scores of one KV head: 4 query heads x 128 against 1024 cached keys. L1: the K block is read once
    # (4 rows < 16), Q once per 16-column register tile (64 times) and once per 512-column L1 tile (2 times)
    m, k, n = 4, 128, 1024
    g = _gemm(m, k, n)
    assert float(g.l1_bytes) == pytest.approx((k * n + 64 * m * k + m * n) * 2, rel=1e-12)
    assert float(g.l2_bytes) == pytest.approx((k * n + 2 * m * k + m * n) * 2, rel=1e-12)
    assert float(g.hbm_b_bytes + g.hbm_a_read + g.hbm_a_write) == pytest.approx((k * n + m * k + m * n) * 2, rel=1e-12)


def test_expected_register_tiles_of_random_expert_rows():
    # tokens one Mixtral expert receives at batch 1024: X ~ Binomial(1024, 1/4), mean 256, sd 13.9. ceil(X/16) is
    # 16 for X <= 256 and 17 just above: E = 16 + P(256 < X <= 272) + ... ~ 16.47, not ceil(256 / 16) = 16
    from scipy.stats import binom

    from dse.model import expert_load

    x = np.arange(1, 1025)
    p = binom.pmf(x, 1024, 0.25)
    by_sum = float((np.ceil(x / 16) * p).sum() / p.sum())
    assert expert_load.expected_row_tiles(1024, 2, 8, 16) == pytest.approx(by_sum, rel=1e-9)


# --------------------------------------------------------------------------------- roofline per operation
def test_per_operation_roofline_switches_at_the_hand_computed_batch():
    # Llama-3-70B on 8 GPUs (TP8): the FFN products per rank are (T x 8192)(8192 x 3584) and (T x 3584)(3584 x 8192).
    # Compute-bound when 2 T k n / P > (T k + k n + T n) 2 / bw, i.e. T > (k n / bw) / (k n / P - (k + n) / bw)
    # = 334.8 at P = 989.4 TFLOP/s, bw = 3352 GB/s; every other product of the layer crosses above 398.
    P, bw, k, n = 989.4e12, 3352e9, 8192, 3584
    crossing = (k * n / bw) / (k * n / P - (k + n) / bw)
    assert crossing == pytest.approx(334.8, abs=0.05)
    ds = dse.evaluate("paper-fig6-llama3", batch=[330, 340], peak_tflops=[989.4, 1e9])
    slower = (ds.step_latency.sel(peak_tflops=989.4) - ds.step_latency.sel(peak_tflops=1e9)).values
    assert slower[0] == pytest.approx(0.0, abs=1e-15)     # at 330 tokens every product is memory-bound
    T = 340
    excess = 3 * (2 * T * k * n / P - (T * k + k * n + T * n) * 2 / bw)   # gate, up and down
    assert slower[1] == pytest.approx(80 * excess, rel=1e-9)


# ------------------------------------------------------------------------------ the paper authors' tool
# Targets measured by running the authors' tool (issue 9) and, for the table, a scalar re-implementation of the
# tool's formulas written from its source (LLMSimulator src/hardware/{linear_impl.cpp, tile.h}, attention_gen_impl,
# module/{expert,communication}.cpp, the patch's figure_4_and_5.py / figure_6.py) with Monte-Carlo routing.
TOOL_FIG45 = {  # (study, batch): (hbm, ddr, ssd) J/token
    ("paper-fig45-mixtral", 1): (3.2602, 10.9291, 27.7475),
    ("paper-fig45-mixtral", 16): (0.4641, 1.6218, 5.7924),
    ("paper-fig45-mixtral", 1024): (0.0279, 0.0406, 0.1063),
    ("paper-fig45-deepseek", 4): (11.6989, 25.6586, 55.4104),
    ("paper-fig45-deepseek", 64): (1.9051, 5.5678, 18.6037),
    ("paper-fig45-deepseek", 256): (0.6251, 1.5492, 5.3105),
    ("paper-fig45-deepseek", 1024): (0.2823, 0.4558, 1.3965),
}


@pytest.mark.parametrize("study,batch", list(TOOL_FIG45))
def test_paper_accounting_within_5_percent_of_the_tool(study, batch):
    ds = dse.evaluate(study, batch=batch)
    for placement, tool in zip(("hbm", "ddr", "ssd"), TOOL_FIG45[(study, batch)]):
        assert float(ds.energy_per_token.sel(placement=placement)) == pytest.approx(tool, rel=0.05)


def test_deepseek_batch_1024_measured_on_the_tool():
    ds = dse.evaluate("paper-fig45-deepseek", batch=1024)
    hbm, ssd = (float(ds.energy_per_token.sel(placement=p)) for p in ("hbm", "ssd"))
    assert hbm == pytest.approx(0.283, rel=0.05)
    assert ssd / hbm == pytest.approx(4.9, rel=0.05)


def test_fig6_ratio_and_break_even_at_batch_1():
    mav = dse.evaluate("paper-fig6-maverick", batch=1, flash_read_pj_per_bit=[0.0, 102.4])
    l3 = float(dse.evaluate("paper-fig6-llama3", batch=1).energy_per_token)
    e0, e1 = (float(mav.energy_per_token.sel(flash_read_pj_per_bit=v)) for v in (0.0, 102.4))
    assert e1 / l3 == pytest.approx(1.14, rel=0.03)
    assert (l3 - e0) / (e1 - e0) * 102.4 == pytest.approx(77.0, rel=0.05)   # energy is affine in pJ/bit
    # one expert touched per MoE layer: the busiest GPU copies exactly one expert (+ its router, as the tool)
    copy = 24 * (3 * 5120 * 8192 * 2 + 5120 * 128 * 2) / 900e9
    assert float(mav.step_latency) == pytest.approx(copy, rel=1e-9)
    assert copy == pytest.approx(6.7e-3, rel=0.01)


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kw,key", [
    ({"attention_parallel": "heads"}, "attention_parallel"),
    ({"register_tile": 0}, "register_tile"),
    ({"l1_kib": -1.0}, "l1_kib"),
    ({"system.gpu.l2_mib": 0.0}, "l2_mib"),
])
def test_fidelity_settings_validated_in_one_line(kw, key):
    with pytest.raises(DseError) as err:
        dse.evaluate("paper-fig45-mixtral", batch=1, **kw)
    assert key in str(err.value) and "\n" not in str(err.value)


def test_tile_search_equals_brute_force_over_every_candidate_pair():
    # L2 traffic is the least traffic over all (tm, tn) L1 tile candidates that fit 256 KiB (k-slice 32): try all
    from dse.model import gemm

    cands = gemm.L1_TILE_CANDIDATES
    rng = np.random.default_rng(3)
    for _ in range(200):
        m, n, k = (float(rng.choice(v)) for v in ([1, 3, 16, 40, 256, 700, 1024], [8, 100, 576, 4096, 14336],
                                                   [64, 512, 4096, 7168]))
        best = min((np.ceil(m / min(m, a)) * k * n + np.ceil(n / min(n, b)) * m * k + m * n) * 2
                   for a in cands for b in cands
                   if (min(m, a) + min(n, b)) * 32 * 2 + min(m, a) * min(n, b) * 2 <= 256 * 1024)
        assert float(_gemm(m, k, n).l2_bytes) == pytest.approx(best, rel=1e-12)


def test_tables_once_per_grid_or_per_block_give_the_same_numbers(monkeypatch):
    from dse.run import engine

    kw = dict(model="deepseek-r1", system="8xh200-c2c", placement=["hbm", "ssd"], batch=[1, 8, 300],
              top_k=[2, 8], context_len=[512, 4096], routing_skew=[0.0, 1.0])
    once = dse.evaluate(**kw)
    monkeypatch.setattr(engine, "TABLE_POINTS_MAX", 0)
    per_block = dse.evaluate(**kw, chunks={"batch": 1, "top_k": 1})
    for name in ("energy", "step_latency", "hbm_bytes", "busiest_gpu_experts"):
        np.testing.assert_allclose(per_block[name].values, once[name].values, rtol=1e-12)


def test_fused_attention_keeps_the_scores_on_chip():
    # Mixtral batch 1 on 4 GPUs: per GPU and layer 2 KV heads x 4 query heads x 1024 scores are written by the score
    # product and read back by the context product (2 bytes each): 2 x 2 x 4 x 1024 x 2 B, x 4 GPUs x 32 layers
    ds = dse.evaluate("paper-fig45-mixtral", batch=1, placement="hbm", fused_attention=[False, True])
    act = ds.energy.sel(component="hbm_activations")
    scores_bytes = 2 * 2 * 4 * 1024 * 2 * 4 * 32
    assert float(act.sel(fused_attention=False) - act.sel(fused_attention=True)) == pytest.approx(
        scores_bytes * 8 * 4.2e-12, rel=1e-12)
    assert float(ds.step_latency.sel(fused_attention=True)) < float(ds.step_latency.sel(fused_attention=False))
