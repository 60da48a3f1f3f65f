"""Typed specs: the schema of every preset and config section (Hydra/OmegaConf structured configs).

Presets in dse/conf/ are YAML; each section is merged into its dataclass here, so a misspelt key or a value of the
wrong type fails with one line naming it before any work. Ranges are checked in :mod:`dse.config.params`.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dse.errors import DseError


# The schemas list one field per line, like the YAML presets they validate: their same-shape runs are data.
@dataclass
class ModelSpec:
    """A transformer with (optionally) MoE layers; fields follow Hugging Face config.json (docs/model.md s.2)."""
    name: str = "model"
    attention: str = "gqa"            # gqa | mla
    n_layers: int = 1
    hidden: int = 1
    n_heads: int = 1
    n_kv_heads: int = 0
    head_dim: int = 1                 # GQA head dim; MLA qk_nope_head_dim
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    d_ffn: int = 0                    # dense FFN width
    d_expert: float = 0               # routed expert width (float: fine-grained scaling may make it fractional)
    n_experts: int = 0
    top_k: int = 0
    n_shared: int = 0
    d_shared: int = 0
    first_dense: int = 0
    moe_every: int = 1
    vocab: int = 0
    max_context: int = 0              # longest context (prompt + output) the model supports; 0 = not checked
    provenance: Dict[str, Any] = field(default_factory=dict)


#: The model fields, in the schema's order (what dse.from_hf_config fills and a model preset holds).
MODEL_FIELDS = tuple(f.name for f in dataclasses.fields(ModelSpec) if f.name not in ("name", "provenance"))


@dataclass
class GPUSpec:
    name: str = "gpu"
    peak_tflops: float = 1.0
    hbm_bw_gbps: float = 1.0
    hbm_capacity_gb: float = 0.0
    idle_w: float = 0.0
    hbm_read_pj_per_bit: float = 0.0
    hbm_write_pj_per_bit: float = 0.0
    flop_pj: float = 0.0
    l2_pj_per_bit: float = 0.0
    l1_pj_per_bit: float = 0.0
    register_tile: int = 16           # register tile edge (values): L1 traffic of a product (docs/model.md)
    l1_kib: float = 256.0             # L1 / shared memory per SM: the L1-resident tile must fit
    l2_mib: float = 50.0              # L2 cache: the L2-resident tile must fit
    price_usd: float = 0.0
    hbm_usd_per_gb: float = 0.0
    # reality (docs/model.md "Power and the energy boundary", "Achievable rates and precision")
    power_limit_w: float = 1.0e6      # board power limit (TDP / TGP); 1e6: none stated (never binds)
    mem_efficiency: float = 1.0       # achievable fraction of peak HBM bandwidth (measured stream / datasheet)
    compute_efficiency: float = 1.0   # achievable fraction of the peak FLOP rate (measured GEMM / datasheet)
    peak_tflops_fp8: float = 0.0      # dense fp8 peak; 0: no faster fp8 path (fp8 runs at the bf16 rate and energy)
    flop_pj_fp8: float = 0.0          # energy per fp8 FLOP (used where peak_tflops_fp8 > 0)
    peak_tflops_fp4: float = 0.0      # dense fp4 peak; 0: no fp4 path (fp4 runs as fp8)
    flop_pj_fp4: float = 0.0          # energy per fp4 FLOP (used where peak_tflops_fp4 > 0)
    provenance: Dict[str, Any] = field(default_factory=dict)


@dataclass
class LinkSpec:
    name: str = "link"
    bw_gbps: float = 1.0
    pj_per_bit: float = 0.0
    provenance: Dict[str, Any] = field(default_factory=dict)


@dataclass
class TierSpec:
    name: str = "tier"
    kind: str = "memory"              # memory | flash
    read_pj_per_bit: float = 0.0
    bw_gbps: float = float("inf")     # per device; .inf = keeps up with the link
    write_bw_gbps: Optional[float] = None  # per device, sustained writes (a KV cache here); unset = bw_gbps
    read_latency_us: float = 0.0      # time to the first byte of a read (Flash: the page read), exposed once per copy
    capacity_gb: float = 0.0          # per device
    idle_w: float = 0.0               # per device
    usd_per_gb: float = 0.0
    devices_per_gpu: int = 1
    write_pj_per_bit: Optional[float] = None  # write energy (a KV cache here: kv_placement); unset = the read energy
                                              # (DRAM: write ~ read per bit; Flash presets set their own, sourced)
    pe_cycles: Optional[float] = None  # Flash: rated program/erase cycles (full-capacity writes) over the drive's life
    provenance: Dict[str, Any] = field(default_factory=dict)


@dataclass
class SystemSpec:
    name: str = "system"
    gpu: GPUSpec = field(default_factory=GPUSpec)
    offload_link: LinkSpec = field(default_factory=LinkSpec)
    tiers: Dict[str, TierSpec] = field(default_factory=dict)
    tp: int = 1
    dp: int = 1
    ep: int = 1
    gpus_per_node: int = 8
    nvlink_bw_gbps: float = 450.0
    hop_latency_us: float = 0.8
    internode_bw_gbps: float = 50.0
    always_on: List[str] = field(default_factory=list)
    node_other_w: float = 0.0         # what a node draws besides its GPUs and tiers (host CPUs and DRAM, NICs,
                                      # switches, fans, storage idle), W per node: charged at boundary node / facility
    psu_efficiency: float = 1.0       # power supplies' efficiency (AC in -> DC out): boundary node / facility
    serving_efficiency: float = 1.0   # fraction of the GPUs' achievable rates a serving engine attains (kernel gaps,
                                      # synchronisation, host scheduling); 1 = the roofline
    active_power_fraction: float = 0.0  # board power floor while serving: idle + this x (power limit - idle)
    host_us_per_sequence: float = 0.0  # the serving engine's host time per sequence and step, not overlapped (us)
    layer_overhead_us: float = 0.0    # the serving engine's fixed GPU time per layer and step beyond the roofline
                                      # (kernel launches and tails, synchronisation), us
    fp8_layer_overhead_us: float = 0.0  # and its extra fixed time per layer and step where products compute in fp8
                                      # (activation quantisation before each GEMM, block-scaled kernels), us
    provenance: Dict[str, Any] = field(default_factory=dict)


@dataclass
class WorkloadSpec:
    batch: int = 1
    context_len: float = 1024
    weight_bytes: float = 2.0
    kv_bytes: float = 2.0
    placement: str = "hbm"
    hbm_cache_fraction: float = 0.0
    routing_skew: float = 0.0
    routing_frequencies: Optional[List[float]] = None
    # memory hierarchy (docs/model.md s.12): warm tier, dynamic expert cache, temporal reuse, prefetch accuracy
    warm_tier: Optional[str] = None       # a key of system.tiers holding the next-hottest experts; null = none
    warm_fraction: float = 0.0            # share of experts (after the HBM cache's) held in the warm tier
    warm_link: str = "shared"             # the warm tier's link: shared (the offload link) or a link preset
    expert_reuse: float = 0.0             # probability a sequence keeps its previous step's experts
    dynamic_cache_experts: int = 0        # LRU HBM cache slots per MoE layer beyond the static hot set
    prefetch_accuracy: float = 1.0        # share of prefetched experts predicted correctly
    prefetch: bool = True
    offload_path: str = "staged"
    act_bytes: float = 2.0
    fused_attention: bool = False
    attention_parallel: str = "auto"      # auto: dp for MLA models on more than one GPU, else tp
    # requests (dse.model.requests): both unset = decode-only at context_len
    prompt_len: Optional[int] = None
    output_len: Optional[int] = None
    prefill_chunk: Optional[int] = None   # prompt tokens of each request per prefill step; unset = the whole prompt
    batching: str = "continuous"          # continuous (steady-state serving) or lockstep (docs/model.md s.11)
    kv_placement: str = "hbm"             # hbm, or a key of system.tiers
    service_life_years: float = 5.0       # the KV tier's Flash must last this long (see config.yaml)
    boundary: str = "node"                # energy boundary: gpu | node | facility (see config.yaml)
    pue: float = 1.3                      # facility power usage effectiveness (boundary facility)
    compute_precision: str = "auto"       # auto (follows weight_bytes) | bf16 | fp8 | fp4
    profile: Optional[str] = None         # a request profile preset (dse/conf/profile)
    engine: Optional[str] = None          # a serving-engine preset (dse/conf/engine); unset: the system's own


@dataclass
class AccountingSpec:
    count_lm_head: bool = False
    mimic_tool: bool = False
    prefetch_overlap: str = "step"
    expert_scaling: str = "keep_expert_size"
    topk_scaling: str = "keep_expert_size"


@dataclass
class ProfileSpec:
    """A request profile: prompt and output lengths of a workload (dse/conf/profile)."""
    name: str = "profile"
    description: str = ""
    prompt_len: int = 1
    output_len: int = 1
    provenance: Dict[str, Any] = field(default_factory=dict)


@dataclass
class EngineSpec:
    """A serving engine's constants (dse/conf/engine): they set the system's (SystemSpec) fields of the same names."""
    name: str = "engine"
    serving_efficiency: float = 1.0
    active_power_fraction: float = 0.0
    host_us_per_sequence: float = 0.0
    layer_overhead_us: float = 0.0
    fp8_layer_overhead_us: float = 0.0
    provenance: Dict[str, Any] = field(default_factory=dict)


#: The system fields an engine preset sets (EngineSpec's constants).
ENGINE_FIELDS = tuple(f.name for f in dataclasses.fields(EngineSpec) if f.name not in ("name", "provenance"))

SCHEMAS = {"model": ModelSpec, "system": SystemSpec, "workload": WorkloadSpec, "accounting": AccountingSpec,
           "gpu": GPUSpec, "link": LinkSpec, "tier": TierSpec, "profile": ProfileSpec, "engine": EngineSpec}


def validated(section: str, values: dict) -> dict:
    """Merge a plain section into its schema: unknown keys and wrong types fail in one line."""
    return copy.deepcopy(_validated(section, json.dumps(values, sort_keys=True, default=str)))


@functools.lru_cache(maxsize=512)
def _validated(section: str, values_json: str) -> dict:
    values = json.loads(values_json)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(SCHEMAS[section]), values)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or ""
        first = str(err).splitlines()[0]
        raise DseError(f"{section}{'.' + key if key else ''}: {first}") from None
    if section == "model" and isinstance(values, dict):   # no silent placeholder for a field the physics needs
        from dse.config.rules import check_required_model

        check_required_model(values, f"model {values['name']!r}" if "name" in values else "model")
    return OmegaConf.to_container(merged, resolve=True)
