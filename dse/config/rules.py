# Over 400 lines: the one validation layer; its rule tables are the single place where every allowed range lives.
"""One validation of every physical input: a table of allowed ranges (and integrality) per config leaf, and a
table of cross-field rules. The same checks run for Hydra presets and overrides, Hugging Face imports, API dicts
and grid values (:func:`dse.run.engine.resolve` calls :func:`check_tree` on the resolved inputs; :func:`dse.config.params.
check_values` looks up :data:`RULES` for single parameters). Every error is one line naming the key and what is
allowed.

A new model / system field is one line in :data:`RULES` (a test checks that every numeric schema field has one).
The upper bounds are generous physical limits, finite so that every accepted input gives finite outputs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from dse.errors import DseError

COUNT = 1e9          # bound of counts (layers, widths, heads, tokens, ...): finite outputs for any accepted input
ENERGY = 1e6         # pJ per bit / per FLOP
POWER = 1e6          # W
BW = 1e9             # GB/s
MONEY = 1e9          # USD (per GB, per device)
CAPACITY = 1e9       # GB
MAX_EXPERTS = 2**20  # routed experts per MoE layer (per-expert loops stay bounded)


@dataclass(frozen=True)
class Rule:
    lo: float
    hi: float
    integer: bool = False

    def allowed(self) -> str:
        return f"{'an integer in ' if self.integer else ''}[{_fmt(self.lo)}, {_fmt(self.hi)}]"


def _fmt(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _int(lo, hi=COUNT):
    return Rule(lo, hi, True)


#: Allowed range of every numeric config leaf ("*" matches any key, e.g. a tier name).
RULES: dict[str, Rule] = {
    # --- model (docs/model.md s.2)
    "model.n_layers": _int(1),
    "model.hidden": _int(1),
    "model.n_heads": _int(1),
    "model.n_kv_heads": _int(0),
    "model.head_dim": _int(1),
    "model.q_lora_rank": _int(0),
    "model.kv_lora_rank": _int(0),
    "model.qk_rope_head_dim": _int(0),
    "model.v_head_dim": _int(0),
    "model.d_ffn": _int(0),
    "model.d_expert": Rule(0, COUNT),               # fractional under fine-grained scaling
    "model.n_experts": _int(0, MAX_EXPERTS),
    "model.top_k": _int(0, MAX_EXPERTS),
    "model.n_shared": _int(0),
    "model.d_shared": _int(0),
    "model.first_dense": _int(0),
    "model.moe_every": _int(1),
    "model.vocab": _int(0),
    "model.max_context": _int(0),                   # 0: not stated (no limit on prompt + output)
    # --- GPU
    "system.gpu.peak_tflops": Rule(1e-9, 1e9),
    "system.gpu.hbm_bw_gbps": Rule(1e-9, BW),
    "system.gpu.hbm_capacity_gb": Rule(1e-9, CAPACITY),     # hbm_fill divides by it
    "system.gpu.idle_w": Rule(0, POWER),
    "system.gpu.hbm_read_pj_per_bit": Rule(0, ENERGY),
    "system.gpu.hbm_write_pj_per_bit": Rule(0, ENERGY),
    "system.gpu.flop_pj": Rule(0, ENERGY),
    "system.gpu.l2_pj_per_bit": Rule(0, ENERGY),
    "system.gpu.l1_pj_per_bit": Rule(0, ENERGY),
    "system.gpu.register_tile": _int(1, 4096),
    "system.gpu.l1_kib": Rule(1, 1e6),
    "system.gpu.l2_mib": Rule(0.001, 1e6),
    "system.gpu.price_usd": Rule(0, MONEY),
    "system.gpu.hbm_usd_per_gb": Rule(0, MONEY),
    "system.gpu.power_limit_w": Rule(1e-9, POWER),
    "system.gpu.mem_efficiency": Rule(1e-6, 1),            # (0, 1]
    "system.gpu.compute_efficiency": Rule(1e-6, 1),        # (0, 1]
    "system.gpu.peak_tflops_fp8": Rule(0, 1e9),            # 0: no fp8 path
    "system.gpu.flop_pj_fp8": Rule(0, ENERGY),
    "system.gpu.peak_tflops_fp4": Rule(0, 1e9),            # 0: no fp4 path
    "system.gpu.flop_pj_fp4": Rule(0, ENERGY),
    # --- offload link
    "system.offload_link.bw_gbps": Rule(1e-9, BW),
    "system.offload_link.pj_per_bit": Rule(0, ENERGY),
    # --- tiers (bw_gbps: .inf in a preset means "keeps up with the link" and is resolved to a large number)
    "system.tiers.*.read_pj_per_bit": Rule(0, ENERGY),
    "system.tiers.*.bw_gbps": Rule(1e-9, 1e30),
    "system.tiers.*.capacity_gb": Rule(0, CAPACITY),
    "system.tiers.*.idle_w": Rule(0, POWER),
    "system.tiers.*.usd_per_gb": Rule(0, MONEY),
    "system.tiers.*.devices_per_gpu": _int(1, 1e6),
    "system.tiers.*.write_pj_per_bit": Rule(0, ENERGY),   # optional: unset = the read energy
    "system.tiers.*.pe_cycles": Rule(1, 1e9),             # optional (Flash): rated program/erase cycles
    "system.tiers.*.write_bw_gbps": Rule(1e-9, 1e30),     # optional: unset = bw_gbps
    "system.tiers.*.read_latency_us": Rule(0, 1e6),       # Flash page read: exposed once per copy
    # --- system layout and network
    "system.tp": _int(1, 1e6),
    "system.dp": _int(1, 1e6),
    "system.ep": _int(1, 1e6),
    "system.gpus_per_node": _int(1, 1e6),
    "system.nvlink_bw_gbps": Rule(1e-9, BW),
    "system.hop_latency_us": Rule(0, 1e9),
    "system.internode_bw_gbps": Rule(1e-9, BW),
    "system.node_other_w": Rule(0, POWER),
    "system.psu_efficiency": Rule(0.01, 1),
    "system.serving_efficiency": Rule(1e-3, 1),
    "system.active_power_fraction": Rule(0, 0.99),
    "system.host_us_per_sequence": Rule(0, 1e6),
    "system.layer_overhead_us": Rule(0, 1e6),
    "system.fp8_layer_overhead_us": Rule(0, 1e6),
    # --- workload
    "workload.batch": _int(1),
    "workload.context_len": Rule(0, COUNT),         # a mean context (e.g. 1846.5) is a context
    "workload.weight_bytes": Rule(0.0625, 8),
    "workload.kv_bytes": Rule(0.0625, 8),
    "workload.act_bytes": Rule(0.0625, 8),
    "workload.hbm_cache_fraction": Rule(0, 1),
    "workload.routing_skew": Rule(0, 10),
    "workload.warm_fraction": Rule(0, 1),
    "workload.expert_reuse": Rule(0, 1),
    "workload.dynamic_cache_experts": _int(0, MAX_EXPERTS),
    "workload.prefetch_accuracy": Rule(0, 1),
    "workload.prompt_len": _int(1),                 # optional (requests, dse.model.requests): unset = decode only
    "workload.output_len": _int(1),
    "workload.prefill_chunk": _int(1),
    "workload.service_life_years": Rule(1e-6, 1e3),
    "workload.pue": Rule(1, 10),
}
#: Optional fields: null means "not set" (decode-only studies, a tier without a write energy of its own).
OPTIONAL = {"system.tiers.*.write_pj_per_bit", "system.tiers.*.pe_cycles", "system.tiers.*.write_bw_gbps",
            "workload.prompt_len",
            "workload.output_len", "workload.prefill_chunk"}

#: Ranges of dotted paths not in RULES, by unit suffix (a last resort: every physical quantity is >= 0).
SUFFIX_RULES = {"_pj_per_bit": Rule(0, ENERGY), "_pj": Rule(0, ENERGY), "_w": Rule(0, POWER),
                "_gbps": Rule(1e-9, BW), "_gb": Rule(0, CAPACITY), "_usd": Rule(0, MONEY),
                "_per_gb": Rule(0, MONEY), "_tflops": Rule(1e-9, 1e9), "_us": Rule(0, 1e9)}

#: Model fields a model spec must give (attention-specific ones below); the schema's defaults are placeholders.
REQUIRED_MODEL = ("n_layers", "hidden", "n_heads", "head_dim", "n_experts", "top_k")
REQUIRED_BY_ATTENTION = {"gqa": ("n_kv_heads",), "mla": ("kv_lora_rank", "qk_rope_head_dim", "v_head_dim")}


def rule_for(path: str) -> Rule | None:
    """The rule of a dotted config path (``flash.read_pj_per_bit`` is every Flash tier's read energy)."""
    if path == "flash.read_pj_per_bit":
        path = "system.tiers.*.read_pj_per_bit"
    if path in RULES:
        return RULES[path]
    parts = path.split(".")
    for key, rule in RULES.items():
        kp = key.split(".")
        if len(kp) == len(parts) and all(a == "*" or a == b for a, b in zip(kp, parts)):
            return rule
    for suffix, rule in SUFFIX_RULES.items():
        if path.endswith(suffix):
            return rule
    return None


def check_number(name: str, v, rule: Rule | None) -> None:
    """One value against a rule: a real, finite number in range (and integral where the rule says so)."""
    allowed = rule.allowed() if rule else "a finite number"
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise DseError(f"{name}={v!r} is not a number: allowed {allowed}")
    if not math.isfinite(v):
        raise DseError(f"{name}={v} is not finite: allowed {allowed}")
    if rule is None:
        return
    if not rule.lo <= v <= rule.hi:
        raise DseError(f"{name}={v} out of range: allowed {allowed}")
    if rule.integer and float(v) != int(v):
        raise DseError(f"{name}={v} is not an integer: allowed {allowed}")


def _array(value) -> np.ndarray:
    return np.asarray(getattr(value, "values", value))


def check_leaf(name: str, value, rule: Rule | None) -> None:
    """A scalar, list or (DataArray / numpy) array of values; the first bad value is reported."""
    if isinstance(value, (list, tuple)):
        for v in value:
            check_number(name, v, rule)
        return
    arr = _array(value)
    if arr.ndim == 0:
        check_number(name, arr.item() if isinstance(value, np.ndarray) or hasattr(value, "values") else value, rule)
        return
    if arr.dtype.kind not in "iuf":
        for v in arr.ravel().tolist():
            check_number(name, v, rule)
        return
    a = arr.astype(float)
    bad = ~np.isfinite(a)
    if rule is not None:
        bad |= (a < rule.lo) | (a > rule.hi)
        if rule.integer:
            bad |= np.isfinite(a) & (a != np.round(a))
    if bad.any():
        check_number(name, arr.ravel()[np.flatnonzero(bad.ravel())[0]].item(), rule)


def _leaves(tree: dict, pattern: str):
    """(path, value) of the leaves of ``tree`` matching a RULES key."""
    nodes = [("", tree)]
    for part in pattern.split("."):
        nxt = []
        for path, node in nodes:
            if not isinstance(node, dict):
                continue
            keys = list(node) if part == "*" else [part] if part in node else []
            nxt += [(f"{path}.{k}" if path else k, node[k]) for k in keys]
        nodes = nxt
    return [(p, v) for p, v in nodes if not isinstance(v, dict)]


def check_ranges(tree: dict) -> None:
    for pattern, rule in RULES.items():
        for path, value in _leaves(tree, pattern):
            if value is None:
                if pattern in OPTIONAL:
                    continue
                raise DseError(f"{path} is missing (null): allowed {rule.allowed()}")
            check_leaf(path, value, rule)


# ------------------------------------------------------------------------------------------ cross-field rules
def _da(x):
    import xarray as xr

    return x if isinstance(x, xr.DataArray) else xr.DataArray(x)


def _get(tree: dict, path: str):
    node = tree
    for part in path.split("."):
        node = node[part]
    return node


@dataclass(frozen=True)
class Cross:
    """``holds(values)`` (broadcast over every dimension) must be true; ``paths`` are the fields it reads."""
    paths: tuple
    holds: object
    message: str          # formatted with the values at the first point where it fails, by field name


def _mla(v):
    return v["model.is_mla"] == 1.0


CROSS_RULES = (
    Cross(("model.first_dense", "model.n_layers"), lambda v: v["model.first_dense"] <= v["model.n_layers"],
          "model.first_dense={model.first_dense} out of range: allowed [0, model.n_layers={model.n_layers}]"),
    Cross(("model.top_k", "model.n_experts"), lambda v: v["model.top_k"] <= v["model.n_experts"],
          "top_k={model.top_k} exceeds n_experts={model.n_experts}: allowed 0 <= top_k <= n_experts"),
    Cross(("model.top_k", "model.n_experts"), lambda v: (v["model.n_experts"] == 0) | (v["model.top_k"] >= 1),
          "model.top_k={model.top_k} with model.n_experts={model.n_experts}: an MoE model needs top_k >= 1"),
    Cross(("model.d_expert", "model.n_experts"), lambda v: (v["model.n_experts"] == 0) | (v["model.d_expert"] > 0),
          "model.d_expert={model.d_expert} with model.n_experts={model.n_experts}: experts need d_expert > 0"),
    Cross(("model.n_kv_heads", "model.is_mla"), lambda v: _mla(v) | (v["model.n_kv_heads"] >= 1),
          "model.n_kv_heads={model.n_kv_heads}: GQA attention needs n_kv_heads >= 1"),
    Cross(("model.n_kv_heads", "model.n_heads", "model.is_mla"),
          lambda v: _mla(v) | (v["model.n_heads"] % np.maximum(v["model.n_kv_heads"], 1) == 0),
          "model.n_heads={model.n_heads} is not a multiple of model.n_kv_heads={model.n_kv_heads} (GQA groups)"),
    Cross(("model.kv_lora_rank", "model.v_head_dim", "model.is_mla"),
          lambda v: ~_mla(v) | ((v["model.kv_lora_rank"] >= 1) & (v["model.v_head_dim"] >= 1)),
          "MLA attention needs model.kv_lora_rank >= 1 and model.v_head_dim >= 1 "
          "(got {model.kv_lora_rank} and {model.v_head_dim})"),
    Cross(("model.n_heads", "system.tp", "workload.dp_attention"),
          lambda v: (v["workload.dp_attention"] == 1) | (v["model.n_heads"] % v["system.tp"] == 0),
          "system.tp={system.tp} does not divide model.n_heads={model.n_heads}: allowed a divisor of the heads "
          "(or workload.attention_parallel=dp)"),
    Cross(("model.n_kv_heads", "system.tp", "model.is_mla", "workload.dp_attention"),
          lambda v: _mla(v) | (v["workload.dp_attention"] == 1) | (v["model.n_kv_heads"] % v["system.tp"] == 0)
          | (v["system.tp"] % np.maximum(v["model.n_kv_heads"], 1) == 0),
          "system.tp={system.tp} and model.n_kv_heads={model.n_kv_heads}: tp must divide the KV heads, or be a "
          "multiple of them (each KV head replicated on tp / n_kv_heads GPUs)"),
    Cross(("system.ep", "system.tp", "system.dp"), lambda v: v["system.ep"] <= v["system.tp"] * v["system.dp"],
          "system.ep={system.ep} exceeds the GPU count tp x dp = {system.tp} x {system.dp}"),
    Cross(("workload.hbm_cache_fraction", "workload.warm_fraction"),
          lambda v: v["workload.hbm_cache_fraction"] + v["workload.warm_fraction"] <= 1.0 + 1e-12,
          "hbm_cache_fraction={workload.hbm_cache_fraction} + warm_fraction={workload.warm_fraction} exceeds 1: "
          "allowed hbm_cache_fraction + warm_fraction <= 1"),
    Cross(("system.gpu.power_limit_w", "system.gpu.idle_w"),
          lambda v: v["system.gpu.power_limit_w"] > v["system.gpu.idle_w"],
          "system.gpu.power_limit_w is not above system.gpu.idle_w: allowed a power limit above the board's idle "
          "power"),
    Cross(("system.ep", "model.n_experts"), lambda v: (v["model.n_experts"] == 0) | (v["system.ep"] <= v["model.n_experts"]),
          "system.ep={system.ep} exceeds model.n_experts={model.n_experts}: allowed ep <= n_experts"),
)


def check_cross(tree: dict, rules=CROSS_RULES) -> None:
    import xarray as xr

    for rule in rules:
        try:
            values = {p: _da(_get(tree, p)) for p in rule.paths}
        except KeyError:
            continue
        ok = _da(rule.holds(values))
        if bool(ok.all()):
            continue
        full = xr.broadcast(ok, *values.values())
        first = int(np.flatnonzero(~full[0].values.ravel())[0])
        groups: dict = {}
        for p, a in zip(values, full[1:]):
            section, _, key = p.partition(".")
            groups.setdefault(section, {})[key] = _show(a.values.ravel()[first])
        raise DseError(rule.message.format(**{k: SimpleNamespace(**v) for k, v in groups.items()}))


def _show(x):
    x = x.item() if hasattr(x, "item") else x
    return int(x) if isinstance(x, float) and x.is_integer() else x


ATTENTION_PARALLEL = {"tp": 0.0, "dp": 1.0, "auto": -1.0}


def dp_attention(ap, model: dict, system: dict):
    """``workload.attention_parallel`` -> the kernel's ``dp_attention`` code (1: dp, 0: tp). ``auto`` is dp for MLA
    models (``model.is_mla``) on more than one GPU (``tp x dp > 1``), tp otherwise; a list of settings, models or
    systems makes dimensions, and ``auto`` is resolved per point."""
    import xarray as xr

    if not isinstance(ap, (list, str)):
        return ap                                     # already a code
    values = ap if isinstance(ap, list) else [ap]
    bad = [a for a in values if a not in ATTENTION_PARALLEL]
    if bad:
        raise DseError(f"workload.attention_parallel={bad[0]!r}: allowed {', '.join(ATTENTION_PARALLEL)}")
    code = (xr.DataArray([ATTENTION_PARALLEL[a] for a in ap], dims=["attention_parallel"],
                         coords={"attention_parallel": ap}) if isinstance(ap, list) else ATTENTION_PARALLEL[ap])
    if "auto" not in values:
        return code
    is_mla, tp, dp = (model or {}).get("is_mla", 0.0), (system or {}).get("tp", 1), (system or {}).get("dp", 1)
    auto = ((_da(is_mla) == 1.0) & (_da(tp) * _da(dp) > 1)) * 1.0
    resolved = xr.where(_da(code) < 0, auto, _da(code))
    return float(resolved) if resolved.ndim == 0 else resolved


def _derived(tree: dict) -> dict:
    """Numeric codes the cross-field rules read: workload.dp_attention from workload.attention_parallel (``auto``
    resolved with the model and system, :func:`dp_attention`)."""
    w = dict(tree.get("workload") or {})
    w["dp_attention"] = dp_attention(w.get("attention_parallel", "auto"), tree.get("model"), tree.get("system"))
    return {**tree, "workload": w}


#: The accounting's named choices (docs/model.md s.6.4 and s.2).
ACCOUNTING_CHOICES = {
    "prefetch_overlap": ("moe_layer", "step", "expert_stage"),
    "expert_scaling": ("keep_expert_size", "keep_total_params"),
    "topk_scaling": ("keep_expert_size", "keep_active_params"),
}


def check_accounting(acct: dict) -> None:
    for key, allowed in ACCOUNTING_CHOICES.items():
        if acct.get(key) not in allowed:
            raise DseError(f"accounting.{key}={acct.get(key)!r}: allowed {', '.join(allowed)}")


def check_tree(tree: dict) -> None:
    """Every range rule and cross-field rule on a resolved input tree (model, system, workload, accounting)."""
    if "accounting" in tree:
        check_accounting(tree["accounting"])
    check_ranges(tree)
    check_cross(_derived(tree))


def check_required_model(spec: dict, where: str = "model") -> None:
    """A model spec (API dict, preset) names every field the physics needs; missing fields are named."""
    attention = spec.get("attention", "gqa")
    need = REQUIRED_MODEL + REQUIRED_BY_ATTENTION.get(attention, ())
    if spec.get("n_experts"):
        need += ("d_expert",)
    missing = [k for k in need if k not in spec]
    if missing:
        raise DseError(f"{where}: missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                       f"(a model needs {', '.join(need)})")


# ------------------------------------------------------------------------------------------ grid size
DEFAULT_MAX_GRID_POINTS = 1e10


def grid_limit(value) -> float:
    if value is None:
        return DEFAULT_MAX_GRID_POINTS
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise DseError(f"max_grid_points={value!r}: allowed a finite number > 0")
    return float(value)


def grid_size_bound(grid_section: dict) -> float:
    """Points of a grid counted before expanding it (a range counts ``num``; a list its length): an upper bound."""
    size, shared = 1.0, {}
    for name, value in (grid_section or {}).items():
        if isinstance(value, dict):
            num = value.get("num")
            if isinstance(num, (int, float)) and not isinstance(num, bool) and math.isfinite(num) and num > 1:
                size *= float(num)   # anything else is refused, with its own message, when the grid is expanded
        elif isinstance(value, (list, tuple, range, np.ndarray)):
            shared[name] = max(len(value), 1)
        elif hasattr(value, "sizes"):   # a DataArray of per-point values: its dimensions count once
            shared.update(value.sizes)
    return size * float(np.prod([float(n) for n in shared.values()]))


def check_grid_size(points: float, limit: float) -> None:
    if points > limit:
        raise DseError(f"max_grid_points: the grid has {points:.3g} points, over the limit {limit:.3g} "
                       "(raise max_grid_points or shrink the grid)")


def check_chunks(chunks, sizes: dict, other_dims=()) -> None:
    """``chunks``: None, or {dimension: positive chunk size, -1 or None (whole)}; ``other_dims`` (e.g. the
    ``component`` stack) may be named and are whole."""
    if chunks is None:
        return
    if not isinstance(chunks, dict):
        raise DseError(f"chunks={chunks!r}: allowed a dict {{dimension: chunk size}}")
    for d, c in chunks.items():
        if d in other_dims:
            continue
        if d not in sizes:
            raise DseError(f"chunks: unknown dimension {d!r}; the grid's dimensions are {list(sizes)}")
        if c is None or isinstance(c, tuple) and c and all(isinstance(x, int) and x > 0 for x in c) \
                and sum(c) == sizes[d]:
            continue
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not (c >= 1 or c == -1):
            raise DseError(f"chunks[{d!r}]={c!r}: allowed an integer >= 1, or -1 / None for the whole dimension")


def check_memory(grid, share: float = 0.8) -> None:
    """An in-memory evaluation must fit in the memory available (else: chunks= for a lazy dataset)."""
    import psutil

    need = 0.0
    for name in grid.variables:
        dims, dtype = grid.layout[name]
        n = float(np.prod([grid.sizes[d] for d in dims])) if dims else 1.0
        need += n * np.dtype(dtype).itemsize * (len(grid.stacks[name][1]) if name in grid.stacks else 1)
    avail = psutil.virtual_memory().available
    if need > share * avail:
        raise DseError(f"the grid's {grid.points:.3g} points need about {need / 1e9:.3g} GB in memory, "
                       f"{avail / 1e9:.3g} GB are available: pass chunks={{...}} for a lazy dataset "
                       "(or use the dse CLI, which writes block by block), or shrink the grid")
