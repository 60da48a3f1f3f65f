"""Canonical parameter names: the short names users sweep, the config leaves they set, units and ranges.

A user may also name any numeric config leaf by its dotted path (``system.gpu.idle_w``). Ranges are checked
before any work starts; an error names the key and the allowed range in one line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dse.config.rules import Rule, check_leaf, rule_for
from dse.errors import DseError, did_you_mean

INF = math.inf


@dataclass(frozen=True)
class Param:
    path: str                 # dotted config path ("model.top_k"); "flash" expands to every Flash tier
    units: str
    doc: str
    choices: tuple = field(default_factory=tuple)   # categorical values (empty = numeric)
    preset_group: str | None = None                  # a preset name from dse/conf/<group>/

    @property
    def categorical(self) -> bool:
        return bool(self.choices) or self.preset_group is not None

    @property
    def rule(self) -> Rule | None:
        """The allowed range, from the one rule table (:data:`dse.config.rules.RULES`); None when categorical."""
        return None if self.categorical else rule_for(self.path)

    @property
    def lo(self) -> float:
        return self.rule.lo

    @property
    def hi(self) -> float:
        return self.rule.hi

    @property
    def integer(self) -> bool:
        return self.rule.integer


PARAMS: dict[str, Param] = {
    "batch": Param("workload.batch", "sequences", "sequences decoded per step"),
    "context_len": Param("workload.context_len", "tokens", "context tokens per sequence"),
    "weight_bytes": Param("workload.weight_bytes", "B/param", "bytes per weight parameter"),
    "kv_bytes": Param("workload.kv_bytes", "B/value", "bytes per KV-cache value"),
    "placement": Param("workload.placement", "", "tier holding the routed experts", choices=("tier",)),
    "hbm_cache_fraction": Param("workload.hbm_cache_fraction", "1", "hottest experts kept in HBM"),
    "routing_skew": Param("workload.routing_skew", "1", "Zipf exponent of expert popularity"),
    "warm_tier": Param("workload.warm_tier", "", "warm tier holding the next-hottest experts (null: none)",
                       choices=("tier",)),
    "warm_fraction": Param("workload.warm_fraction", "1", "experts (next after the HBM cache) held in the warm tier"),
    "warm_link": Param("workload.warm_link", "", "the warm tier's link: shared (the offload link) or a link preset",
                       choices=("link",)),
    "expert_reuse": Param("workload.expert_reuse", "1", "probability a sequence keeps its previous step's experts"),
    "dynamic_cache_experts": Param("workload.dynamic_cache_experts", "experts", "LRU HBM cache slots per MoE layer "
                                   "beyond the static hot set"),
    "prefetch_accuracy": Param("workload.prefetch_accuracy", "1", "share of prefetched experts predicted correctly"),
    "prefetch": Param("workload.prefetch", "bool", "overlap copies with compute", choices=(False, True)),
    "offload_path": Param("workload.offload_path", "", "staged via HBM or direct", choices=("staged", "direct")),
    "act_bytes": Param("workload.act_bytes", "B/value", "bytes per activation value"),
    "fused_attention": Param("workload.fused_attention", "bool", "attention scores stay on chip (flash-style)",
                             choices=(False, True)),
    "attention_parallel": Param("workload.attention_parallel", "", "attention split: heads over TP ranks, or "
                                "sequences over all GPUs; auto: dp for MLA on more than one GPU, else tp",
                                choices=("auto", "tp", "dp")),
    "top_k": Param("model.top_k", "experts", "experts picked per token"),
    "n_experts": Param("model.n_experts", "experts", "routed experts per MoE layer"),
    "d_expert": Param("model.d_expert", "1", "intermediate width of one expert"),
    "flash_read_pj_per_bit": Param("flash.read_pj_per_bit", "pJ/bit", "Flash tier read energy"),
    "ddr_read_pj_per_bit": Param("system.tiers.ddr.read_pj_per_bit", "pJ/bit", "DDR read energy"),
    "hbm_read_pj_per_bit": Param("system.gpu.hbm_read_pj_per_bit", "pJ/bit", "HBM read energy"),
    "hbm_write_pj_per_bit": Param("system.gpu.hbm_write_pj_per_bit", "pJ/bit", "HBM write energy"),
    "flop_pj": Param("system.gpu.flop_pj", "pJ/FLOP", "compute energy per FLOP"),
    "idle_w": Param("system.gpu.idle_w", "W", "GPU static power"),
    "register_tile": Param("system.gpu.register_tile", "values", "register tile edge (L1 traffic)"),
    "l1_kib": Param("system.gpu.l1_kib", "KiB", "L1 / shared memory per SM"),
    "l2_mib": Param("system.gpu.l2_mib", "MiB", "L2 cache size"),
    "peak_tflops": Param("system.gpu.peak_tflops", "TFLOP/s", "GPU peak FLOP rate"),
    "hbm_bw_gbps": Param("system.gpu.hbm_bw_gbps", "GB/s", "HBM bandwidth per GPU"),
    "link_bw_gbps": Param("system.offload_link.bw_gbps", "GB/s", "offload link bandwidth per GPU"),
    "link_pj_per_bit": Param("system.offload_link.pj_per_bit", "pJ/bit", "offload link energy"),
    "ssd_per_gpu": Param("system.tiers.ssd.devices_per_gpu", "drives", "SSDs per GPU"),
    "tp": Param("system.tp", "GPUs", "tensor-parallel degree"),
    "dp": Param("system.dp", "GPUs", "data-parallel replicas"),
    "ep": Param("system.ep", "GPUs", "expert-parallel degree"),
    "prompt_len": Param("workload.prompt_len", "tokens", "prompt tokens per request (with output_len: requests, "
                        "dse.model.requests)"),
    "output_len": Param("workload.output_len", "tokens", "output tokens per request (decode steps)"),
    "prefill_chunk": Param("workload.prefill_chunk", "tokens", "prompt tokens of each request per prefill step "
                           "(unset: the whole prompt)"),
    "batching": Param("workload.batching", "", "request model: continuous batching (steady state, prefill "
                      "chunks fused into the decode steps) or lockstep (prefill the batch, then decode it)",
                      choices=("continuous", "lockstep")),
    "kv_placement": Param("workload.kv_placement", "", "tier holding the KV cache", choices=("tier",)),
    "service_life_years": Param("workload.service_life_years", "years", "service life a Flash KV tier must last"),
    "boundary": Param("workload.boundary", "", "energy boundary: GPU boards and tiers, the whole node, or the "
                      "facility", choices=("gpu", "node", "facility")),
    "pue": Param("workload.pue", "1", "facility power usage effectiveness (boundary facility)"),
    "compute_precision": Param("workload.compute_precision", "", "precision products compute in (auto: follows "
                               "weight_bytes)", choices=("auto", "bf16", "fp8", "fp4")),
    "power_limit_w": Param("system.gpu.power_limit_w", "W", "GPU board power limit (the step stretches to stay "
                           "under it)"),
    "mem_efficiency": Param("system.gpu.mem_efficiency", "1", "achievable fraction of peak HBM bandwidth"),
    "compute_efficiency": Param("system.gpu.compute_efficiency", "1", "achievable fraction of the peak FLOP rate"),
    "node_other_w": Param("system.node_other_w", "W", "node power besides GPUs and tiers (CPUs, DRAM, NICs, "
                          "switches, fans), per node"),
    "psu_efficiency": Param("system.psu_efficiency", "1", "power supply efficiency (boundary node, facility)"),
    "serving_efficiency": Param("system.serving_efficiency", "1", "fraction of the GPUs' achievable memory and FLOP "
                                "rates a serving engine attains (kernel gaps, synchronisation, scheduling)"),
    "host_us_per_sequence": Param("system.host_us_per_sequence", "us", "the serving engine's host time per "
                                  "sequence and step (scheduling, sampling), not overlapped with the GPUs"),
    "layer_overhead_us": Param("system.layer_overhead_us", "us", "the serving engine's fixed GPU time per layer "
                               "and step beyond the roofline (kernel launches and tails, synchronisation)"),
    "fp8_layer_overhead_us": Param("system.fp8_layer_overhead_us", "us", "the serving engine's extra fixed GPU "
                                   "time per layer and step where products compute in fp8 (activation "
                                   "quantisation before each GEMM, block-scaled GEMM kernels)"),
    "active_power_fraction": Param("system.active_power_fraction", "1", "board power floor while serving, as a "
                                   "fraction of the headroom from idle to the power limit (0: idle)"),
    "profile": Param("workload.profile", "", "request profile preset (prompt_len, output_len)",
                     preset_group="profile"),
    "engine": Param("workload.engine", "", "serving-engine preset",
                    preset_group="engine"),
    "model": Param("model", "", "model preset", preset_group="model"),
    "system": Param("system", "", "system preset", preset_group="system"),
    "gpu": Param("system.gpu", "", "GPU preset", preset_group="gpu"),
    "link": Param("system.offload_link", "", "offload link preset", preset_group="link"),
}

_BY_PATH = {p.path: p for p in PARAMS.values()}


def lookup(name: str) -> tuple[str, Param | None]:
    """Canonical name -> (path, Param); a dotted path -> (path, None)."""
    if name in PARAMS:
        return PARAMS[name].path, PARAMS[name]
    if "." in name:
        return name, _BY_PATH.get(name)
    raise DseError(f"unknown parameter {name!r}{did_you_mean(name, PARAMS)}: use a dotted config path or one of "
                   f"{', '.join(sorted(PARAMS))}")


def check_values(name: str, values, param: Param | None) -> None:
    """Range/type checks for one parameter's values (scalar or list); raises DseError, one line."""
    vals = list(values) if isinstance(values, (list, tuple, np.ndarray)) else [values]
    if not vals:
        raise DseError(f"{name}: empty list of values")
    if param is not None and param.categorical:
        if param.choices and param.choices not in (("tier",), ("link",)):
            bad = [v for v in vals if v not in param.choices]
            if bad:
                raise DseError(f"{name}={bad[0]!r} not allowed: choose from {list(param.choices)}")
        return
    check_leaf(name, vals, rule_for(param.path if param is not None else name))


def _range(p: Param) -> str:
    if p.preset_group:
        return f"a {p.preset_group} preset name (dse list {p.preset_group}s)"
    if p.choices == ("tier",):
        return "hbm, or a key of system.tiers (ddr, ssd, hbf, cxl, lpddr)"
    if p.choices == ("link",):
        return "shared, or a link preset (dse list links)"
    if p.choices:
        return "one of " + ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in p.choices)

    kind = "integer" if p.integer else "number"
    return f"{kind} in [{_num(p.lo)}, {_num(p.hi)}]"


def _num(x) -> str:
    """A bound as written in help: short (1e+09) where that is exact, else every digit (1048576)."""
    return f"{x:g}" if float(f"{x:g}") == x else (str(int(x)) if float(x).is_integer() else repr(float(x)))


def parameters_doc(indent: str = "    ") -> str:
    """The parameter list of :func:`dse.evaluate`, generated from :data:`PARAMS`: name, units, allowed range,
    meaning and the config leaf it sets."""
    lines = []
    for name, p in PARAMS.items():
        units = f" [{p.units}]" if p.units and p.units not in ("1", "bool") else ""
        lines.append(f"{indent}{name}{units} : {_range(p)}")
        target = "``read_pj_per_bit`` of every Flash tier" if p.path.startswith("flash.") else f"``{p.path}``"
        lines.append(f"{indent}    {p.doc[0].upper() + p.doc[1:]} (sets {target}).")
    return "\n".join(lines)
