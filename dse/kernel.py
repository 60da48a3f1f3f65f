"""The decode-step energy and latency kernel (MODEL.md sections 2-6).

Pure, vectorized functions. Every argument may be a Python number, a numpy array, an xarray DataArray
(numpy- or dask-backed) or a dask array; only ufuncs and arithmetic are used, so xarray broadcasts open
(1-D per dimension) grids and low-dimensional terms are computed at low size.

Units inside the kernel: bytes, bits, FLOPs, seconds, joules. Inputs carry their units in their names
(``hbm_bw_gbps`` is GB/s = 1e9 B/s, ``*_pj_per_bit`` pJ per bit, ``*_w`` watts).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from . import routing

PJ = 1e-12
GB = 1e9
BITS = 8.0

#: Energy components of one step, in the order they are reported (MODEL.md section 5).
COMPONENTS = (
    "hbm_weights",       # weight bits read from HBM x HBM read energy
    "hbm_kv",            # KV-cache bits read from HBM x HBM read energy
    "offload_read",      # offloaded bits x tier (DDR / Flash / ...) read energy
    "offload_link",      # offloaded bits x link (NVLink-C2C / PCIe) energy
    "offload_hbm_write", # staged copies: offloaded bits x HBM write energy
    "compute",           # FLOPs x pJ/FLOP
    "onchip",            # bits through L2 and L1 x their pJ/bit
    "background",        # static power x step latency
)
#: The components that are the cost of copying offloaded weights (``offload_share``).
OFFLOAD_COMPONENTS = ("offload_read", "offload_link", "offload_hbm_write")


# --------------------------------------------------------------------------------------------- the network
def layer_counts(m):
    """(MoE layers, dense layers). MoE layers start after ``first_dense`` and recur every ``moe_every``."""
    has_moe = (m.n_experts > 0) * 1.0
    n_moe = np.floor((m.n_layers - m.first_dense) / m.moe_every) * has_moe
    return n_moe, m.n_layers - n_moe


def attention_params(m):
    """Attention weight parameters per layer: GQA (Q, K, V, O) or MLA (low-rank q and kv, O)."""
    gqa = m.hidden * m.head_dim * (2 * m.n_heads + 2 * m.n_kv_heads)
    has_q_lora = (m.q_lora_rank > 0) * 1.0
    qk_dim = m.head_dim + m.qk_rope_head_dim
    q_proj = has_q_lora * (m.hidden * m.q_lora_rank + m.q_lora_rank * m.n_heads * qk_dim) + (
        1 - has_q_lora
    ) * (m.hidden * m.n_heads * qk_dim)
    mla = (
        q_proj
        + m.hidden * (m.kv_lora_rank + m.qk_rope_head_dim)
        + m.kv_lora_rank * m.n_heads * (m.head_dim + m.v_head_dim)
        + m.n_heads * m.v_head_dim * m.hidden
    )
    return m.is_mla * mla + (1 - m.is_mla) * gqa


def kv_values_read_per_token(m):
    """KV values read per context token per layer: GQA 2 n_kv d_head; MLA latent twice + RoPE key."""
    gqa = 2 * m.n_kv_heads * m.head_dim
    mla = 2 * m.kv_lora_rank + m.qk_rope_head_dim
    return m.is_mla * mla + (1 - m.is_mla) * gqa


def kv_values_stored_per_token(m):
    """KV values held per context token per layer: GQA 2 n_kv d_head; MLA latent + RoPE key."""
    gqa = 2 * m.n_kv_heads * m.head_dim
    mla = m.kv_lora_rank + m.qk_rope_head_dim
    return m.is_mla * mla + (1 - m.is_mla) * gqa


def attention_flops_per_context_token(m):
    """FLOPs per (new token, context token) pair per layer: scores and context (softmax neglected).

    GQA: 4 n_heads d_head. MLA (absorbed): 2 n_heads (kv_lora + rope) for scores + 2 n_heads kv_lora.
    """
    gqa = 4 * m.n_heads * m.head_dim
    mla = 2 * m.n_heads * (2 * m.kv_lora_rank + m.qk_rope_head_dim)
    return m.is_mla * mla + (1 - m.is_mla) * gqa


def expert_params(m):
    """Parameters of one gated routed expert: gate, up and down = 3 hidden d_expert."""
    return 3 * m.hidden * m.d_expert


def network(m, count_lm_head):
    """Parameter counts of the network, per replica (everything but the routed experts)."""
    n_moe, n_dense = layer_counts(m)
    attn = attention_params(m)
    dense_ffn = 3 * m.hidden * m.d_ffn
    moe_common = m.hidden * m.n_experts + 3 * m.hidden * m.d_shared * m.n_shared  # router + shared experts
    lm_head = count_lm_head * m.vocab * m.hidden
    return SimpleNamespace(
        n_moe=n_moe,
        n_dense=n_dense,
        attn=attn,
        dense_ffn=dense_ffn,
        moe_common=moe_common,
        lm_head=lm_head,
        expert=expert_params(m),
        non_expert=m.n_layers * attn + n_dense * dense_ffn + n_moe * moe_common + lm_head,
    )


# ------------------------------------------------------------------------------------------ the step
def _roofline(flops, nbytes, peak_flops, bw):
    return np.maximum(flops / peak_flops, nbytes / bw)


def decode_step(m, g, s, link, tier, w, touched, uncached, busiest):
    """One decode step: energy components (J), latency (s), traffic and capacity (bytes).

    ``m`` model, ``g`` GPU, ``s`` system layout, ``link`` offload link, ``tier`` the routed experts' tier
    (``tier.offloaded`` is 0 for the HBM placement), ``w`` workload. ``touched`` / ``uncached`` are the
    expected distinct experts per MoE layer (all, and those not cached in HBM) and ``busiest`` the expected
    touched experts on the busiest expert-parallel GPU (see :mod:`dse.routing`).
    """
    net = network(m, w.count_lm_head)
    B, L = w.batch, w.context_len
    wb = w.weight_bytes
    n_gpus = s.tp * s.dp
    tokens_per_replica = B / s.dp
    peak_flops = g.peak_tflops * 1e12
    hbm_bw = g.hbm_bw_gbps * GB
    link_bw = link.bw_gbps * GB
    # a copy runs at the slower of link and tier; a staged copy's HBM writes take at most half of HBM bandwidth
    copy_bw = np.minimum(np.minimum(link_bw, tier.bw_gbps * tier.devices_per_gpu * GB), hbm_bw / 2)

    # --- experts fetched from the offload tier (MODEL.md section 4)
    fetched = uncached * tier.offloaded                      # per MoE layer
    expert_bytes = net.expert * wb
    offload_bytes = net.n_moe * fetched * expert_bytes       # per step, all GPUs
    staged = w.staged
    direct = 1 - staged

    # --- bytes read from HBM (MODEL.md section 3)
    hbm_weight_bytes = s.dp * net.non_expert * wb + net.n_moe * (touched - direct * fetched) * expert_bytes
    kv_bytes = B * L * kv_values_read_per_token(m) * w.kv_bytes * m.n_layers
    flops = 2 * B * (net.non_expert + net.n_moe * m.top_k * net.expert) + B * L * (
        attention_flops_per_context_token(m) * m.n_layers
    )

    # --- latency (MODEL.md section 6); while staged copies stream, their HBM writes take bandwidth away
    bw = hbm_bw - staged * tier.offloaded * copy_bw
    t_attn = _roofline(
        2 * tokens_per_replica * net.attn / s.tp + tokens_per_replica * L * attention_flops_per_context_token(m) / s.tp,
        net.attn * wb / s.tp + tokens_per_replica * L * kv_values_read_per_token(m) * w.kv_bytes / s.tp,
        peak_flops,
        bw,
    )
    t_dense = _roofline(2 * tokens_per_replica * net.dense_ffn / s.tp, net.dense_ffn * wb / s.tp, peak_flops, bw)
    t_moe_common = _roofline(
        2 * tokens_per_replica * net.moe_common / s.tp, net.moe_common * wb / s.tp, peak_flops, bw
    )
    t_experts = _roofline(2 * B * m.top_k / s.ep * net.expert, busiest * expert_bytes, peak_flops, bw)
    busiest_fetched = busiest * routing_share(fetched, touched)
    t_copy = busiest_fetched * expert_bytes / copy_bw
    # prefetch hides copy time behind compute: behind the layer's expert compute only (overlap_step = 0),
    # or behind all of the step's compute (overlap_step = 1, the paper's accounting); never the energy.
    t_routed_moe = w.prefetch * np.maximum(t_copy, t_experts) + (1 - w.prefetch) * (t_copy + t_experts)
    t_routed = w.overlap_step * t_experts + (1 - w.overlap_step) * t_routed_moe
    t_lm_head = _roofline(2 * tokens_per_replica * net.lm_head / s.tp, net.lm_head * wb / s.tp, peak_flops, bw)

    # collectives: time only (MODEL.md section 8). Ring all-reduce after attention and after the FFN.
    hop = s.hop_latency_us * 1e-6
    nvlink_bw = s.nvlink_bw_gbps * GB
    act_bytes = tokens_per_replica * m.hidden * 2.0
    tp_ring = (s.tp > 1) * 2.0 * (s.tp - 1) * (hop + act_bytes / s.tp / nvlink_bw)
    t_allreduce = 2 * tp_ring
    # expert-parallel dispatch + combine; the share of peers in other nodes goes over the inter-node network
    remote = np.clip((s.ep - s.gpus_per_node) / s.ep, 0.0, 1.0)
    a2a_bytes = B * m.top_k * m.hidden * 2.0 / s.ep * (s.ep - 1) / s.ep
    t_a2a = (s.ep > 1) * 2.0 * (
        hop + a2a_bytes * ((1 - remote) / nvlink_bw + remote / (s.internode_bw_gbps * GB))
    )

    latency = (
        m.n_layers * (t_attn + t_allreduce)
        + net.n_dense * t_dense
        + net.n_moe * (t_moe_common + t_routed + t_a2a)
        + t_lm_head
    )
    copy_total = net.n_moe * t_copy
    latency = w.overlap_step * (
        w.prefetch * np.maximum(latency, copy_total) + (1 - w.prefetch) * (latency + copy_total)
    ) + (1 - w.overlap_step) * latency

    # --- energy (MODEL.md section 5)
    offload_bits = offload_bytes * BITS
    static_w = n_gpus * (g.idle_w + s.always_on_w_per_gpu + tier.offloaded * tier.idle_w_per_gpu)
    energy = {
        "hbm_weights": hbm_weight_bytes * BITS * g.hbm_read_pj_per_bit * PJ,
        "hbm_kv": kv_bytes * BITS * g.hbm_read_pj_per_bit * PJ,
        "offload_read": offload_bits * tier.read_pj_per_bit * PJ,
        "offload_link": offload_bits * link.pj_per_bit * PJ,
        "offload_hbm_write": offload_bits * staged * g.hbm_write_pj_per_bit * PJ,
        "compute": flops * g.flop_pj * PJ,
        "onchip": (hbm_weight_bytes + kv_bytes + direct * offload_bytes)
        * BITS
        * (g.l2_pj_per_bit + g.l1_pj_per_bit)
        * PJ,
        "background": static_w * latency,
    }

    # --- capacity (MODEL.md section 7)
    cached_experts = m.n_experts * (1 - tier.offloaded * (1 - w.hbm_cache_fraction))
    kv_stored = B * L * kv_values_stored_per_token(m) * w.kv_bytes * m.n_layers
    hbm_bytes = s.dp * net.non_expert * wb + net.n_moe * cached_experts * expert_bytes + kv_stored
    tier_bytes = net.n_moe * (m.n_experts - cached_experts) * expert_bytes

    return SimpleNamespace(
        energy=energy,
        latency=latency,
        copy_latency=copy_total,
        flops=flops,
        hbm_weight_bytes=hbm_weight_bytes,
        kv_bytes=kv_bytes,
        offload_bytes=offload_bytes,
        offload_bits=offload_bits,
        hbm_bytes=hbm_bytes,
        tier_bytes=tier_bytes,
        touched=touched,
        fetched=fetched,
        busiest=busiest,
        n_gpus=n_gpus,
    )


def routing_share(part, whole):
    """part / whole, 0 where whole is 0."""
    return part / np.maximum(whole, 1e-30)
