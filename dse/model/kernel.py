# Over 400 lines: the whole decode step (operation table and its costed stages) reads in one place beside docs/model.md.
"""The decode-step energy and latency kernel (docs/model.md).

A decode step is a short table of operations per layer type -- attention projections, attention itself, the
output projection, the router, shared experts, routed experts, the dense FFN, the LM head -- each a matrix
product with its shape (m, k, n), the operand it streams (weights or KV cache), its replication over tensor-
parallel ranks and how many of it one GPU runs (:func:`layer_ops`). One cost model (:class:`dse.model.gemm.Gemm`:
roofline time, tiled HBM / L2 / L1 traffic) is applied to every operation; energy components and latency are
sums over operations. This follows the paper authors' tool (LLMSimulator with the SSD-offloading patch), where
a decoder layer is a list of modules each costed by ``LinearExecutionGPU`` and ``computeCacheTraffic``.

Pure, vectorized functions: every argument may be a number or a numpy array (one axis per grid dimension,
length 1 where it does not vary), so each term is computed at the size of the dimensions it depends on.

Units inside the kernel: bytes, FLOPs, seconds, joules. Inputs carry their units in their names
(``hbm_bw_gbps`` is GB/s = 1e9 B/s, ``*_pj_per_bit`` pJ per bit, ``*_w`` watts).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from dse.model import expert_load, hierarchy, routing
from dse.model.gemm import Gemm, Softmax

PJ = 1e-12
NO_KV_BW_GBPS = 1e30   # KV in HBM: no tier bandwidth limit

#: Workload fields the kernel reads besides dse.config.specs.WorkloadSpec's, with their values for a decode step
#: whose KV cache is in HBM. dse.config.inputs sets all of them (a KV tier's from its preset: ``kv_placement``);
#: dse.model.requests sets ``query_len`` (a prefill chunk's tokens), dse.analyze.serving ``latency_only``.
WORKLOAD_FIELDS = dict(
    query_len=1.0,              # tokens of each sequence in this step: 1 decoding, a chunk prefilling
    latency_only=False,         # times only (the batch search of dse.analyze.serving): no tiled traffic
    kv_offloaded=0.0,           # 1: the KV cache lives on a tier (its constants below)
    kv_read_pj_per_bit=0.0, kv_write_pj_per_bit=0.0,
    kv_bw_gbps=NO_KV_BW_GBPS, kv_write_bw_gbps=NO_KV_BW_GBPS,      # per GPU (devices x each)
    kv_capacity_gb=0.0, kv_is_flash=0.0, kv_pe_cycles=0.0, kv_usd_per_gb=0.0, kv_idle_w_per_gpu=0.0,
    kv_tier_id=0.0,             # 0: HBM; else the tier's index + 1 (a tier holding experts and KV idles once)
    # continuous batching (dse.model.requests): prompt tokens whose prefill chunks ride in this step's pass beside
    # its decode tokens (all GPUs), the chunks' length and the mean context their causal attention runs over
    fused_tokens=0.0, fused_chunk=1.0, fused_context=0.0,
)
NO_POWER_LIMIT_W = 1e6  # GPUSpec.power_limit_w of a preset that states none
GB = 1e9
BITS = 8.0

#: Energy components of one step, in the order they are reported (docs/model.md s.5).
COMPONENTS = (
    "hbm_weights",       # weight bytes through HBM (tiled traffic) x HBM read energy
    "hbm_kv",            # KV-cache bytes through HBM x HBM read energy
    "hbm_activations",   # activations each unfused product reads and writes x HBM read / write energy
    "offload_read",      # offloaded bits x tier (DDR / Flash / ...) read energy
    "offload_link",      # offloaded bits x link (NVLink-C2C / PCIe) energy
    "offload_hbm_write", # staged copies: offloaded bits (cold and warm tier) x HBM write energy
    "warm_read",         # bits fetched from the warm tier x its read energy (docs/model.md s.12)
    "warm_link",         # bits fetched from the warm tier x its link's energy
    "compute",           # FLOPs x pJ/FLOP
    "onchip",            # bytes through L2 and L1 (tiling model) x their pJ/bit
    "background",        # static power x step latency
    "node_other",        # boundary node / facility: the node's other parts (CPUs, DRAM, NICs, fans) x latency
    "psu_loss",          # boundary node / facility: power supply losses on everything above
    "facility",          # boundary facility: (PUE - 1) x the node's energy (cooling, power distribution)
)
#: The components drawn by the GPU boards' dynamic power (the power limit, docs/model.md "Power").
BOARD_COMPONENTS = ("hbm_weights", "hbm_activations", "offload_hbm_write", "compute", "onchip")
#: The components that are the cost of copying offloaded weights (``offload_share``).
OFFLOAD_COMPONENTS = ("offload_read", "offload_link", "offload_hbm_write", "warm_read", "warm_link")


# --------------------------------------------------------------------------------------------- the network
def layer_counts(m):
    """(MoE layers, dense layers). MoE layers start after ``first_dense`` and recur every ``moe_every``."""
    has_moe = (m.n_experts > 0) * 1.0
    n_moe = np.floor((m.n_layers - m.first_dense) / m.moe_every) * has_moe
    return n_moe, m.n_layers - n_moe


def expert_params(m):
    """Parameters of one gated routed expert: gate, up and down = 3 hidden d_expert."""
    return 3 * m.hidden * m.d_expert


def kv_values_stored_per_token(m, kv_heads):
    """KV values one GPU holds per context token per layer: GQA 2 kv_heads d_head; MLA latent + RoPE key."""
    return m.is_mla * (m.kv_lora_rank + m.qk_rope_head_dim) + (1 - m.is_mla) * 2 * kv_heads * m.head_dim


def parameter_counts(m, g):
    """Parameters of the network from the operation table on one GPU (tp = dp = 1, one token): ``attention`` per
    layer, ``dense`` (FFN) per dense layer, ``moe`` (router + shared experts) per MoE layer, ``expert`` per routed
    expert, ``lm_head``, and ``total`` / ``active`` (without the embedding)."""
    one = SimpleNamespace(tp=1, dp=1)
    w = SimpleNamespace(**WORKLOAD_FIELDS, batch=1.0, context_len=1.0, weight_bytes=1.0, act_bytes=1.0,
                        kv_bytes=1.0, fused_attention=0.0, dp_attention=0.0)
    ops = layer_ops(m, g, w, layout(m, one, w), rows=1.0)
    weights = {k: sum(c.b_bytes for _, c, o in v if o == "weights") for k, v in ops.items()}
    n_moe, n_dense = layer_counts(m)
    non_expert = m.n_layers * weights["attention"] + n_dense * weights["dense"] + n_moe * weights["moe"] + weights[
        "lm_head"]
    return SimpleNamespace(**weights, n_moe=n_moe, n_dense=n_dense,
                           total=non_expert + n_moe * m.n_experts * weights["experts"],
                           active=non_expert + n_moe * m.top_k * weights["experts"])


class Layout(SimpleNamespace):
    """How one decode step's work is split over the GPUs (docs/model.md s.2, "Parallelism").

    ``group_tokens`` sequences per data-parallel (TP) group of ``tp`` GPUs. Attention either splits heads over the
    group's ranks (``tp`` attention: every rank holds the group's tokens) or gives each GPU its own sequences with
    all heads and a full copy of the attention weights (``dp`` attention). ``att_split`` is the head split (tp or
    1), ``att_tokens`` the tokens one GPU's attention processes, ``heads`` / ``kv_heads`` the query / KV heads on
    one GPU (GQA KV heads split down to one per rank: tp > n_kv_heads replicates them). Dense FFN, shared
    experts and the LM head stay split over the TP group. ``rows`` / ``att_rows``: the tokens the step's linear
    products take per group / per attention GPU (a continuously batched step adds the prompt tokens of the prefill
    chunks fused into it, ``fused_att`` of them per attention GPU).
    """


def layout(m, s, w):
    dpa = w.dp_attention
    att_split = s.tp - dpa * (s.tp - 1)
    group_tokens = w.batch / s.dp
    att_share = 1 / (1 + dpa * (s.tp - 1))
    rows = step_tokens(w) / s.dp                          # one data-parallel group's tokens, fused prefill included
    return Layout(
        tp=s.tp,
        n_gpus=s.tp * s.dp,
        group_tokens=group_tokens,
        att_split=att_split,
        att_tokens=group_tokens * att_share,
        heads=m.n_heads / att_split,
        kv_heads=np.maximum(m.n_kv_heads / att_split, 1.0),
        query_len=w.query_len,   # tokens of each sequence in this step: 1 decoding, a chunk prefilling
        # rows of the step's linear products: its sequences' query tokens plus fused prefill tokens, per group and
        # per attention GPU
        rows=rows,
        att_rows=rows * att_share,
        fused_att=w.fused_tokens / s.dp * att_share,
    )


# ------------------------------------------------------------------------------------- the operation table
def layer_ops(m, g, w, lay, rows):
    """The operations of one decode step on one GPU, by layer type.

    Returns ``{"attention", "dense", "moe", "experts", "lm_head"}`` -> list of ``(name, cost, operand)``, operand
    ``"weights"`` or ``"kv"`` (the streamed B operand). Everything but ``experts`` runs on every GPU; ``experts``
    is one routed expert with ``rows`` tokens (its count over GPUs is the routing's business).
    """
    pw, pa, pk = w.weight_bytes, w.act_bytes, w.kv_bytes
    traffic = not w.latency_only   # dse.analyze.serving's batch search needs times only
    T, tp = lay.group_tokens, lay.tp
    # a prefill chunk (dse.model.requests) runs q tokens of each sequence: linear products take q A / q T rows (plus
    # a continuously batched step's fused prefill tokens: lay.rows), a sequence's attention products q G rows against
    # its (effective) context L; the LM head stays one row per sequence
    Tq = lay.rows

    def op(name, mm, k, n, count=1.0, operand="weights", **kw):
        return name, Gemm(mm, k, n, count=count, pa=pa, pw=pk if operand == "kv" else pw, g=g, traffic=traffic,
                          **kw), operand

    attention = _blend(m.is_mla, _mla_ops(m, w, lay, op), _gqa_ops(m, w, lay, op))
    shared = m.n_shared * m.d_shared / tp

    # a routed expert's product has as many rows as tokens routed to it: the expected register row tiles
    reg_tiles = expert_load.expected_row_tiles(step_tokens(w), m.top_k, m.n_experts, g.register_tile) if traffic else None

    return dict(
        attention=attention,
        dense=[op("ffn_gate_up", Tq, m.hidden, m.d_ffn / tp, 2.0), op("ffn_down", Tq, m.d_ffn / tp, m.hidden)],
        moe=[op("router", Tq, m.hidden, m.n_experts),           # replicated: every GPU reads all of it
             op("shared_gate_up", Tq, m.hidden, shared, 2.0), op("shared_down", Tq, shared, m.hidden)],
        experts=[op("expert_gate_up", rows, m.hidden, m.d_expert, 2.0, register_row_tiles=reg_tiles),
                 op("expert_down", rows, m.d_expert, m.hidden, register_row_tiles=reg_tiles)],
        lm_head=[op("lm_head", T, m.hidden, m.vocab / tp)],
    )


def _gqa_ops(m, w, lay, op):
    """GQA attention (the tool's AttentionGenExecutionGPU): per sequence and KV head, scores (G x d)(d x L) then
    context (G x L)(L x d), G query heads per KV head; K and V caches are the streamed operand. Unfused, the scores
    go through HBM."""
    H, Hkv, d, fused = lay.heads, lay.kv_heads, m.head_dim, w.fused_attention
    G = lay.heads / lay.kv_heads

    def over_kv(A, q, L, tag=""):   # A sequences of q query tokens attending over L keys
        return [op("score" + tag, G * q, d, L, A * Hkv, "kv", c_out=1 - fused),
                ("softmax" + tag, Softmax(A * H * L * q, pa=w.act_bytes, fused=fused), "weights"),
                op("context" + tag, G * q, L, d, A * Hkv, "kv", a_in=1 - fused)]

    return [op("qkv", lay.att_rows, m.hidden, d * (H + 2 * Hkv)),
            *over_kv(lay.att_tokens, lay.query_len, w.context_len), *_fused_chunks(w, lay, over_kv),
            op("o_proj", lay.att_rows, H * d, m.hidden)]


def _fused_chunks(w, lay, over_kv):
    """The attention of the prefill chunks fused into a continuously batched step (none in other steps): chunks of
    ``fused_chunk`` tokens attending with the causal mask over ``fused_context`` keys on average."""
    if not np.any(w.fused_tokens):
        return []
    c = w.fused_chunk
    return over_kv(lay.fused_att / c, c, w.fused_context, "_chunks")


def _mla_ops(m, w, lay, op):
    """MLA, absorbed (the tool's AbsorbMLAGenExecutionGPU): the down-projections (q_a, kv_a, RoPE key) are plain
    linears that every rank reads in full; per-head up-projections (W_UK absorbed into the query); scores against
    the shared latent and RoPE key, context from the latent: every rank reads its group's whole latent KV."""
    H, fused, Aq = lay.heads, w.fused_attention, lay.att_rows
    has_q_lora = (m.q_lora_rank > 0) * 1.0
    q_in = has_q_lora * m.q_lora_rank + (1 - has_q_lora) * m.hidden

    def over_kv(A, q, L, tag=""):   # A sequences of q query tokens against the latent over L keys
        return [op("score_latent" + tag, H * q, m.kv_lora_rank, L, A, "kv", c_out=1 - fused),
                op("score_rope" + tag, H * q, m.qk_rope_head_dim, L, A, "kv", c_out=1 - fused),
                ("softmax" + tag, Softmax(A * H * L * q, pa=w.act_bytes, fused=fused), "weights"),
                op("context_latent" + tag, H * q, L, m.kv_lora_rank, A, "kv", a_in=1 - fused)]

    return [
        op("q_down", Aq, m.hidden, m.q_lora_rank),
        op("kv_down", Aq, m.hidden, m.kv_lora_rank),
        op("k_rope", Aq, m.hidden, m.qk_rope_head_dim),
        op("q_up", Aq, q_in, m.head_dim, H),
        op("q_rope", Aq, q_in, m.qk_rope_head_dim, H),
        op("k_up_absorbed", Aq, m.head_dim, m.kv_lora_rank, H),
        *over_kv(lay.att_tokens, lay.query_len, w.context_len), *_fused_chunks(w, lay, over_kv),
        op("v_up", Aq, m.kv_lora_rank, m.v_head_dim, H),
        op("o_proj", Aq, H * m.v_head_dim, m.hidden),
    ]


def _blend(is_mla, mla, gqa):
    """The attention table of the model's kind; where a model dimension mixes MLA and GQA, both tables weighted."""
    if np.all(np.asarray(is_mla) == 1.0):
        return mla
    if np.all(np.asarray(is_mla) == 0.0):
        return gqa
    return [(n, _Weighted(c, is_mla), o) for n, c, o in mla] + [(n, _Weighted(c, 1 - is_mla), o) for n, c, o in gqa]


class _Weighted:
    """An operation's totals times a 0/1 weight."""

    def __init__(self, cost, weight):
        for k in _SUMMED:
            setattr(self, k, getattr(cost, k) * weight)


#: Per-operation quantities summed over a layer type's operations.
_SUMMED = ("flops", "b_bytes", "a_bytes", "hbm_b_bytes", "hbm_a_read", "hbm_a_write", "l2_bytes", "l1_bytes")


def step_tables(m, g, s, w, touched, uncached, busiest, warm=0.0):
    """The part of a step that does not depend on rates, bandwidths or energies, per layer type: the summed traffic
    and FLOPs of its operations, its weight bytes split by streamed operand, and each operation's FLOPs and roofline
    bytes (``ops``: their times need the bandwidth). It depends only on the network, the layout and the workload --
    a few short grid dimensions -- so :mod:`dse.run.engine` computes it once per grid and every block slices it."""
    lay = layout(m, s, w)
    rows = np.where(touched > 0, step_tokens(w) * m.top_k / np.maximum(touched, 1e-30), 0.0)
    tables = {"touched": touched, "uncached": uncached, "busiest": busiest, "warm": warm}
    for kind, table in layer_ops(m, g, w, lay, rows).items():
        t = {k: sum(getattr(c, k) for _, c, _ in table) for k in _SUMMED}
        t["weights"] = sum(c.b_bytes for _, c, o in table if o == "weights")
        t["hbm_weights"] = sum(c.hbm_b_bytes for _, c, o in table if o == "weights")
        t["hbm_kv"] = sum(c.hbm_b_bytes for _, c, o in table if o == "kv")
        t["ops"] = {f"{i}": {"flops": c.flops, "bytes": c.b_bytes + c.a_bytes, "kv": c.b_bytes if o == "kv" else 0.0}
                    for i, (_, c, o) in enumerate(table)}
        tables[kind] = t
    return tables


def _time(table, peak_flops, bw, kv_extra=0.0):
    """A layer type's time: the sum of its operations' rooflines (each operation compute- or memory-bound alone).
    ``kv_extra`` (s/B) is what a KV byte costs beyond an HBM byte when the KV cache lives on a slower tier."""
    return sum(np.maximum(op.flops / peak_flops, op.bytes / bw + op.kv * kv_extra)
               for op in vars(table.ops).values())


def _ring_allreduce(n, nbytes, hop, bw):
    """Ring all-reduce over n GPUs: 2 (n - 1) steps of a hop and nbytes / n (the authors' AllReduce::forward)."""
    return (n > 1) * 2.0 * (n - 1) * (hop + nbytes / n / bw)


# ------------------------------------------------------------------------------------------ the step
def decode_step(m, g, s, link, tier, w, t):
    """One decode step: energy components (J), latency (s), traffic and capacity (bytes).

    ``m`` model, ``g`` GPU, ``s`` system layout, ``link`` offload link, ``tier`` the routed experts' tier
    (``tier.offloaded`` is 0 for the HBM placement), ``w`` workload and accounting switches, ``t`` the step's
    tables (:func:`step_tables`): per layer type traffic and operations, and the expected distinct experts per MoE
    layer (``touched``, ``uncached``: not cached in HBM) and on the busiest expert-parallel GPU (``busiest``).

    A pipeline of stages, each one section of docs/model.md: the rates the operations see, the experts fetched
    (s.4), the step's traffic (s.3), its latency (s.6), energy (s.5) and capacity (s.7).
    """
    lay = layout(m, s, w)
    n_moe, n_dense = layer_counts(m)
    r = _rates(g, s, link, tier, w)
    f = _fetches(m, link, tier, w, t, lay, n_moe, r)
    x = _traffic(m, w, t, lay, n_moe, n_dense, f.fetched)
    lat = _latency(m, s, tier, w, t, lay, n_moe, n_dense, r, f)
    e = _energy(m, g, s, link, tier, w, lay, r, f, x, lat.latency)
    p = _power(g, s, w, lay, e, lat.latency)
    cap = _capacity(m, tier, w, t, lay, n_moe, n_dense, r.kv_on)
    has_moe = 1.0 if np.all(n_moe > 0) else (n_moe > 0)    # (a scalar where every model has MoE layers)
    return SimpleNamespace(
        energy=e.components, latency=p.latency, gpu_power_w=p.gpu_power_w, power_limited=p.limited,
        copy_latency=lat.parts.copy_total + n_moe * f.t_miss, flops=x.flops,
        hbm_weight_bytes=x.hbm_weight_bytes, kv_bytes=x.kv_bytes, activation_bytes=x.act_read + x.act_write,
        offload_bytes=f.offload_bytes, offload_bits=f.offload_bytes * BITS, hbm_bytes=cap.hbm_bytes,
        # per MoE layer: a model without MoE layers (first_dense = n_layers) touches and fetches none
        tier_bytes=cap.tier_bytes, touched=t.touched * has_moe, fetched=f.fetched * has_moe,
        busiest=t.busiest * has_moe, n_gpus=lay.n_gpus,
        kv_stored=cap.kv_stored, kv_tier_bytes=cap.kv_stored * r.kv_on, kv_write_bytes=e.kv_write_bytes,
        static_w=e.static_w, warm_bits=f.warm_bits, warm_fetched=f.warm_fetched * has_moe,
        warm_tier_bytes=cap.warm_held,
        parts=lat.parts,   # the latency's composition (dse.model.requests sums it over steps whose context grows)
    )


def _rates(g, s, link, tier, w):
    """Peak FLOP rate and the bandwidths the operations see (B/s); ``kv_extra`` (s/B) is what a KV byte costs
    beyond an HBM byte when the KV cache lives on a tier."""
    # achievable rates (microbenchmarks) x what a serving engine attains of them (docs/model.md, "Power and ...")
    hbm_bw = g.hbm_bw_gbps * GB * g.mem_efficiency * s.serving_efficiency
    # products compute at the precision of the weights (or as set): fp8 / fp4 where the GPU has a faster path
    bits = np.where(w.compute_bits > 0, w.compute_bits, np.where(w.weight_bytes > 1, 16.0, np.where(
        w.weight_bytes > 0.5, 8.0, 4.0)))
    fp8 = (bits <= 8) & (g.peak_tflops_fp8 > 0)
    fp4 = (bits <= 4) & (g.peak_tflops_fp4 > 0)
    peak_tflops = np.where(fp4, g.peak_tflops_fp4, np.where(fp8, g.peak_tflops_fp8, g.peak_tflops))
    flop_pj = np.where(fp4, g.flop_pj_fp4, np.where(fp8, g.flop_pj_fp8, g.flop_pj))
    # a copy runs at the slowest of link, tier and (staged: it lands in HBM) HBM's write bandwidth; a direct copy
    # streams into the SMs and never touches HBM. The tool caps every copy at half of HBM bandwidth and takes the
    # copy rate off HBM bandwidth for every operation (accounting=paper); refined charges the copies' HBM writes
    # only where copies are in flight (_latency: the busiest GPU's MoE layer)
    cap = np.where(w.mimic_tool > 0, hbm_bw / 2, np.where(w.staged > 0, hbm_bw, np.inf))
    copy_bw = np.minimum(np.minimum(link.bw_gbps * GB, tier.bw_gbps * tier.devices_per_gpu * GB), cap)
    bw = hbm_bw - w.mimic_tool * w.staged * tier.offloaded * copy_bw
    # KV cache on a tier (w.kv_offloaded = 1, dse.model.requests): KV bytes stream over the link at the tier's speed
    kv_on = w.kv_offloaded
    kv_bw = np.minimum(link.bw_gbps * GB, w.kv_bw_gbps * GB)
    # the new KV leaves in the link's other direction (PCIe, NVLink-C2C and CXL are full duplex): the tier's write
    # bandwidth limits it; a step writes one token per sequence, the link's outbound direction is otherwise idle
    kv_write_bw = w.kv_write_bw_gbps * GB
    return SimpleNamespace(peak_flops=peak_tflops * 1e12 * g.compute_efficiency * s.serving_efficiency, flop_pj=flop_pj,
                           fp8_path=fp8 & (bits > 4), copy_cap=cap, hbm_bw=hbm_bw, bw=bw, kv_on=kv_on,
                           kv_extra=kv_on * (1.0 / kv_bw - 1.0 / bw), kv_write_s_per_byte=kv_on / kv_write_bw)


def _fetches(m, link, tier, w, t, lay, n_moe, r):
    """Experts fetched from the offload tiers (docs/model.md s.4, s.12.4): bytes per step from the cold (offload)
    tier, bits from the warm tier, and the busiest GPU's copy time per MoE layer (``t_miss``: mispredicted
    prefetches fetched on demand)."""
    fetched = t.uncached * tier.offloaded                       # per MoE layer
    expert_bytes = expert_params(m) * w.weight_bytes
    router_bytes = m.hidden * m.n_experts * w.weight_bytes
    # the tool copies each GPU's router with the experts (its expert stage holds the gate): accounting=paper; the
    # router goes where the experts go, so an HBM cache of a fraction of the experts keeps that share in HBM
    router_offloaded = w.mimic_tool * tier.offloaded * (1 - w.hbm_cache_fraction)
    warm = getattr(t, "warm", 0.0) * tier.offloaded
    split = hierarchy.offload(fetched, warm, t.touched, t.busiest, w, link, tier, SimpleNamespace(
        expert_bytes=expert_bytes, router_bytes=router_bytes, router_offloaded=router_offloaded,
        hbm_write_bw=r.copy_cap, first_byte_s=(1 - w.mimic_tool) * tier.read_latency_us * 1e-6))
    offload_bytes = n_moe * (split.cold * expert_bytes + router_offloaded * lay.n_gpus * router_bytes)
    # refined: the busiest GPU's staged copies write their bytes into HBM while its experts read HBM (per MoE layer)
    # (terms that are zero everywhere stay scalars: no full-size arrays on the sweep's hot path)
    landing = (1 - w.mimic_tool) * w.staged
    t_write = landing * split.busiest_bytes / r.hbm_bw if np.any(landing) else 0.0
    return SimpleNamespace(fetched=fetched, offload_bytes=offload_bytes, t_copy=split.t_copy, t_miss=split.t_miss,
                           t_write=t_write, warm_fetched=warm, warm_bits=n_moe * split.warm * expert_bytes * BITS)


def _traffic(m, w, t, lay, n_moe, n_dense, fetched):
    """The step's FLOPs and HBM traffic: per-GPU operations x how many run, plus the touched experts (s.3)."""
    per_gpu = ((t.attention, m.n_layers), (t.dense, n_dense), (t.moe, n_moe), (t.lm_head, w.count_lm_head))

    def step_sum(field):
        per_gpu_sum = sum(getattr(x, field) * n for x, n in per_gpu)
        return lay.n_gpus * per_gpu_sum + getattr(t.experts, field) * n_moe * t.touched

    skipped = (1 - w.staged) * n_moe * fetched * t.experts.hbm_weights   # direct path: fetched experts bypass HBM
    return SimpleNamespace(hbm_weight_bytes=step_sum("hbm_weights") - skipped, kv_bytes=step_sum("hbm_kv"),
                           act_read=step_sum("hbm_a_read"), act_write=step_sum("hbm_a_write"),
                           flops=step_sum("flops"), l2_bytes=step_sum("l2_bytes"), l1_bytes=step_sum("l1_bytes"))


def _collectives(m, s, w, lay):
    """Per-layer collective times (s.6): the TP all-reduces and the expert-parallel all-to-all."""
    hop, nvlink_bw = s.hop_latency_us * 1e-6, s.nvlink_bw_gbps * GB
    allreduce = _ring_allreduce(lay.tp, lay.rows * m.hidden * w.act_bytes, hop, nvlink_bw)
    # dp attention gathers the group's tokens for the TP-split FFN and scatters them back: half a ring each
    ar_attention = allreduce * (1 - w.dp_attention / 2)
    # MoE output: one all-reduce over the TP group; the tool also all-reduces the shared experts separately
    ar_moe = allreduce * (1 + w.mimic_tool * (m.n_shared > 0))
    # expert-parallel dispatch skips the GPUs of the token's own TP group (they hold it); so does the combine: the MoE
    # output's all-reduce over that group already sums their experts' outputs (the tool returns to all of them)
    share = lay.rows / lay.tp * m.top_k * m.hidden * w.act_bytes
    ep = np.maximum(s.ep, 1)
    outside = np.clip((ep - lay.att_split) / ep, 0.0, 1.0)
    dispatch = share * outside
    combine = share * (w.mimic_tool * (ep - 1) / ep + (1 - w.mimic_tool) * outside)
    # peers in other nodes go over the inter-node network; the tool sends all of it there once EP spans nodes
    remote = w.mimic_tool * (s.ep > s.gpus_per_node) + (1 - w.mimic_tool) * np.clip(
        (ep - s.gpus_per_node) / ep, 0.0, 1.0)
    per_byte = (1 - remote) / nvlink_bw + remote / (s.internode_bw_gbps * GB)
    t_a2a = (s.ep > 1) * (hop * ((dispatch > 0) * 1.0 + (combine > 0)) + (dispatch + combine) * per_byte)
    return SimpleNamespace(allreduce=allreduce, ar_attention=ar_attention, ar_moe=ar_moe, t_a2a=t_a2a)


def _latency(m, s, tier, w, t, lay, n_moe, n_dense, r, f):
    """The step latency (s.6): per-GPU operation times, collectives, the busiest GPU's experts and the copies,
    composed as the accounting says (per MoE layer, the figure scripts' whole step, or Fig. 6's expert stage)."""
    t_copy, t_miss = f.t_copy, f.t_miss
    c = _collectives(m, s, w, lay)
    t_att = _time(t.attention, r.peak_flops, r.bw, r.kv_extra)
    t_dense, t_moe, t_expert = (_time(x, r.peak_flops, r.bw) for x in (t.dense, t.moe, t.experts))
    t_lm = _time(t.lm_head, r.peak_flops, r.bw) * w.count_lm_head
    # the busiest GPU's routed experts, with the HBM writes of the copies landing beside them (refined, staged)
    t_experts = t.busiest * t_expert + f.t_write
    # a KV cache on a tier: each layer's new K/V leave over the link at the tier's write bandwidth
    t_kv_write = m.n_layers * _kv_layer_bytes(m, w, lay) * r.kv_write_s_per_byte if np.any(r.kv_on) else 0.0
    t_dense_layers = n_dense * (t_att + c.ar_attention + t_dense + c.allreduce)
    # the serving engine's host work per sequence of a data-parallel group, not overlapped with the GPUs
    t_host = s.host_us_per_sequence * 1e-6 * lay.group_tokens if np.any(s.host_us_per_sequence) else 0.0
    # and its fixed GPU time per layer beyond the roofline (kernel launches and tails, synchronisation), more where
    # products compute in fp8 (the activations quantised before each GEMM, block-scaled kernels)
    per_layer_us = s.layer_overhead_us + (s.fp8_layer_overhead_us * r.fp8_path if np.any(s.fp8_layer_overhead_us)
                                           else 0.0)
    t_fixed = per_layer_us * 1e-6 * m.n_layers if np.any(per_layer_us) else 0.0
    t_other = (t_dense_layers + n_moe * (t_att + c.ar_attention + t_moe + c.ar_moe + c.t_a2a) + t_lm + t_kv_write
               + t_host + t_fixed)
    prefetch = w.prefetch
    # copies overlap only their own MoE layer's experts (refined) ...
    t_routed = prefetch * np.maximum(t_copy, t_experts) + (1 - prefetch) * (t_copy + t_experts) + t_miss
    per_layer = t_other + n_moe * t_routed
    # ... or the figure scripts' composition (accounting=paper): max(copy + dense-layer time, compute time)
    compute = t_other + n_moe * t_experts
    copy_total = n_moe * t_copy
    whole_step = prefetch * np.maximum(compute, copy_total + t_dense_layers) + (1 - prefetch) * (
        compute + copy_total) + n_moe * t_miss
    # ... or Fig. 6's: the MoE expert stage alone, where experts are offloaded
    stage = n_moe * t_routed
    expert_stage = np.where(tier.offloaded * stage > 0, stage, compute)
    latency = w.overlap_step * whole_step + w.overlap_stage * expert_stage + (
        1 - w.overlap_step - w.overlap_stage) * per_layer
    parts = SimpleNamespace(t_att=t_att, per_layer=per_layer, compute=compute, copy_total=copy_total,
                            copy_miss=n_moe * t_miss,   # mispredicted prefetches, fetched on demand (s.12.3)
                            t_dense_layers=t_dense_layers, stage=stage, stage_on=tier.offloaded * stage > 0,
                            prefetch=prefetch, n_dense=n_dense, n_moe=n_moe,
                            rates=SimpleNamespace(peak_flops=r.peak_flops, bw=r.bw, kv_extra=r.kv_extra))
    return SimpleNamespace(latency=latency, parts=parts)


def _kv_token_bytes(m, w, lay):
    """KV bytes one token stores on one GPU, over all layers."""
    return kv_values_stored_per_token(m, lay.kv_heads) * w.kv_bytes * m.n_layers


def _kv_layer_bytes(m, w, lay):
    """KV bytes one GPU writes per layer and step (the step's new tokens)."""
    return lay.att_rows * kv_values_stored_per_token(m, lay.kv_heads) * w.kv_bytes


def _energy(m, g, s, link, tier, w, lay, r, f, x, latency):
    """The step's energy by component (s.5, s.12.4), J."""
    kv_on = r.kv_on
    kv_write_bytes = lay.n_gpus * lay.att_rows * _kv_token_bytes(m, w, lay)   # new KV this step
    kv_read_pj = w.kv_read_pj_per_bit + link.pj_per_bit
    kv_write_pj = w.kv_write_pj_per_bit + link.pj_per_bit
    offload_bits = f.offload_bytes * BITS
    # a KV tier that is neither always on nor the experts' tier adds its idle power
    other_tier = tier.tier_id != w.kv_tier_id
    kv_idle = kv_on * w.kv_idle_w_per_gpu * other_tier
    static_w = lay.n_gpus * (active_floor_w(g, s) + s.always_on_w_per_gpu + tier.offloaded * tier.idle_w_per_gpu
                             + kv_idle + hierarchy.warm_idle_w(w, tier))
    components = {
        "hbm_weights": x.hbm_weight_bytes * BITS * g.hbm_read_pj_per_bit * PJ,
        # KV-cache traffic: read from HBM, or (KV on a tier) read from the tier plus the new KV written, over the link
        "hbm_kv": x.kv_bytes * BITS * (g.hbm_read_pj_per_bit * (1 - kv_on) + kv_on * kv_read_pj) * PJ + kv_on * (
            kv_write_bytes * BITS * kv_write_pj * PJ),
        "hbm_activations": (x.act_read * g.hbm_read_pj_per_bit + x.act_write * g.hbm_write_pj_per_bit) * BITS * PJ,
        "offload_read": offload_bits * tier.read_pj_per_bit * PJ,
        "offload_link": offload_bits * link.pj_per_bit * PJ,
        "offload_hbm_write": (offload_bits + f.warm_bits) * w.staged * g.hbm_write_pj_per_bit * PJ,
        **hierarchy.warm_energy(f.warm_bits, w, link),
        "compute": x.flops * r.flop_pj * PJ,
        "onchip": (x.l2_bytes * g.l2_pj_per_bit + x.l1_bytes * g.l1_pj_per_bit) * BITS * PJ,
        "background": static_w * latency,
    }
    return SimpleNamespace(components=components, kv_write_bytes=kv_write_bytes, static_w=static_w, kv_on=kv_on)


def active_floor_w(g, s):
    """A board's power floor while a serving engine runs (W): idle + ``active_power_fraction`` x (limit - idle); a
    preset without a limit keeps idle."""
    if not np.any(s.active_power_fraction):
        return g.idle_w
    headroom = np.where(g.power_limit_w >= NO_POWER_LIMIT_W, 0.0, g.power_limit_w - g.idle_w)
    return g.idle_w + s.active_power_fraction * headroom


def _power(g, s, w, lay, e, latency):
    """The board power limit and the energy boundary (docs/model.md "Power and the energy boundary").

    Mean board power per GPU = idle + the boards' dynamic energy / (GPUs x latency). Where that exceeds the limit,
    the clocks throttle: the step stretches until the power equals the limit (dynamic energy unchanged, the static
    energy of every part grows with the time). Then the node's other parts, the PSU losses and the facility's
    overhead are added as the boundary asks. Updates ``e.components`` in place."""
    p = throttle(g, s, e.components, e.kv_on, lay.n_gpus, latency)
    e.components["background"] = e.static_w * p.latency
    boundary_energy(s, w, lay.n_gpus, e.components, p.latency)
    return p


def throttle(g, s, c, kv_on, n_gpus, latency):
    """The latency at the board power limit of work whose energy components ``c`` (J) take ``latency`` s unthrottled
    on ``n_gpus`` GPUs (one step, or a request's summed steps: dse.model.requests), the mean board power per GPU and
    whether the limit binds: ``stretch = max(dynamic / (limit - floor), 1)``."""
    board = sum(c[k] for k in BOARD_COMPONENTS) + c["hbm_kv"] * (1 - kv_on)
    dynamic_w = board / np.maximum(n_gpus * latency, 1e-300)
    # a preset that states no limit (NO_POWER_LIMIT_W) never throttles: its latency keeps its own dimensions
    floor = active_floor_w(g, s)
    stretch = 1.0 if np.all(g.power_limit_w >= NO_POWER_LIMIT_W) else np.maximum(
        dynamic_w / (g.power_limit_w - floor), 1.0)
    return SimpleNamespace(latency=latency * stretch, gpu_power_w=floor + dynamic_w / stretch,
                           limited=np.asarray(stretch) > 1.0, stretch=stretch)


def boundary_energy(s, w, n_gpus, c, latency) -> None:
    """The energy boundary's terms over ``latency`` seconds, set in the components ``c`` (J): the node's other parts
    (a GPU's share of ``node_other_w``), the PSU losses on everything inside the node, and the facility's overhead."""
    node = w.boundary_node
    # terms that are zero everywhere (boundary gpu, or a system without node parts) stay scalars: no full-size sums
    # on the sweep's hot path
    node_terms = np.any(node) and (np.any(s.node_other_w > 0) or np.any(s.psu_efficiency < 1))
    facility_terms = np.any(w.boundary_facility) and np.any(w.pue > 1)
    c["node_other"] = c["psu_loss"] = c["facility"] = 0.0
    if not (node_terms or facility_terms):
        return
    inside = sum(c[k] for k in COMPONENTS if k not in ("node_other", "psu_loss", "facility"))
    if node_terms:
        c["node_other"] = node * s.node_other_w / s.gpus_per_node * n_gpus * latency
        inside = inside + c["node_other"]
        c["psu_loss"] = node * inside * (1.0 / s.psu_efficiency - 1.0)
    if facility_terms:
        c["facility"] = w.boundary_facility * (inside + c["psu_loss"]) * (w.pue - 1.0)


def _capacity(m, tier, w, t, lay, n_moe, n_dense, kv_on):
    """What HBM and the offload tier hold (s.7), bytes."""
    expert_bytes = expert_params(m) * w.weight_bytes
    cached_experts = m.n_experts * (1 - tier.offloaded * (1 - w.hbm_cache_fraction))
    weights_per_gpu = (t.attention.weights * m.n_layers + t.dense.weights * n_dense + t.moe.weights * n_moe
                       + t.lm_head.weights * w.count_lm_head)
    kv_stored = lay.n_gpus * lay.att_tokens * w.context_len * _kv_token_bytes(m, w, lay)
    warm_held, dynamic_held = hierarchy.held(m, w, tier, n_moe, expert_bytes)      # s.12.6
    hbm_bytes = lay.n_gpus * weights_per_gpu + n_moe * cached_experts * expert_bytes + kv_stored * (1 - kv_on) + (
        dynamic_held)
    return SimpleNamespace(hbm_bytes=hbm_bytes, kv_stored=kv_stored, warm_held=warm_held,
                           tier_bytes=n_moe * (m.n_experts - cached_experts) * expert_bytes - warm_held)


def step_tokens(w):
    """The tokens of a step over all GPUs: ``batch`` sequences of ``query_len`` tokens plus fused prefill tokens."""
    return w.batch * w.query_len + w.fused_tokens


def routed_tables(m, g, s, w, plan: dict) -> dict:
    """The step's tables (:func:`step_tables`) with the routing's expected experts for ``w.batch`` x ``w.query_len``
    tokens (one query token per sequence in a decode step; ``query_len`` prompt tokens in a prefill step);
    ``plan`` is :func:`dse.model.routing.plan`'s."""
    tokens = SimpleNamespace(**{**vars(w), "batch": step_tokens(w)})
    touched, uncached, busiest, warm = routing.expected_experts(m, s, tokens, **plan)
    return step_tables(m, g, s, w, touched, uncached, busiest, warm)
