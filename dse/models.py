"""Model specs from Hugging Face ``config.json`` files (docs/model.md section 2).

``from_hf_config(path)`` returns a model dict in dse's schema (the same fields as dse/conf/model/*.yaml), ready
for ``dse.evaluate(model=...)`` or to be written as a preset with :func:`to_preset_yaml`.
"""
from __future__ import annotations

import json
from pathlib import Path

from .params import DseError

FIELDS = ("attention", "n_layers", "hidden", "n_heads", "n_kv_heads", "head_dim", "q_lora_rank", "kv_lora_rank",
          "qk_rope_head_dim", "v_head_dim", "d_ffn", "d_expert", "n_experts", "top_k", "n_shared", "d_shared",
          "first_dense", "moe_every", "vocab", "tie_embeddings")


def _first(cfg: dict, *keys, default=None):
    for k in keys:
        if k in cfg and cfg[k] is not None:
            return cfg[k]
    return default


def from_hf_config(path, name: str | None = None) -> dict:
    """Parse a Hugging Face config.json (Mixtral, DeepSeek-V2/V3/R1, Kimi-K2, Llama-3/4, Qwen2/3-MoE, gpt-oss)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise DseError(f"{path}: no such config.json") from None
    except json.JSONDecodeError as err:
        raise DseError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None
    if not isinstance(raw, dict):
        raise DseError(f"{path}: expected a JSON object at the top level")
    cfg = raw.get("text_config") if isinstance(raw.get("text_config"), dict) else raw  # Llama-4 nests it

    def need(*keys):
        value = _first(cfg, *keys)
        if value is None:
            raise DseError(f"{path}: missing {keys[0]!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise DseError(f"{path}: {keys[0]}={value!r} must be a non-negative number")
        return value

    hidden = need("hidden_size")
    n_layers = need("num_hidden_layers")
    n_heads = need("num_attention_heads")
    if hidden < 1 or n_layers < 1 or n_heads < 1:
        raise DseError(f"{path}: hidden_size, num_hidden_layers and num_attention_heads must be >= 1")
    n_kv = _first(cfg, "num_key_value_heads", default=n_heads)
    mla = _first(cfg, "kv_lora_rank") is not None
    head_dim = _first(cfg, "qk_nope_head_dim") if mla else _first(cfg, "head_dim", default=hidden // n_heads)
    n_experts = _first(cfg, "n_routed_experts", "num_local_experts", "num_experts", default=0) or 0
    top_k = _first(cfg, "num_experts_per_tok", "experts_per_token", "moe_topk", default=0) or 0
    if n_experts and top_k > n_experts:
        raise DseError(f"{path}: num_experts_per_tok={top_k} exceeds the {n_experts} routed experts")
    if n_experts and not top_k:
        raise DseError(f"{path}: missing 'num_experts_per_tok' for a model with {n_experts} experts")
    model_type = str(raw.get("model_type", cfg.get("model_type", "")))
    intermediate = _first(cfg, "intermediate_size", default=0)
    if n_experts:
        if "llama4" in model_type:
            d_expert, d_ffn = intermediate, _first(cfg, "intermediate_size_mlp", default=intermediate)
        else:
            d_expert = _first(cfg, "moe_intermediate_size", default=intermediate)
            d_ffn = intermediate
    else:
        d_expert, d_ffn = 0, intermediate
    if n_experts and not d_expert:
        raise DseError(f"{path}: missing 'moe_intermediate_size' / 'intermediate_size' for the experts")
    n_shared = _first(cfg, "n_shared_experts", "num_shared_experts", default=0) or 0
    d_shared = d_expert if n_shared else 0
    if _first(cfg, "shared_expert_intermediate_size"):  # Qwen2-MoE: one shared expert of its own width
        n_shared, d_shared = 1, cfg["shared_expert_intermediate_size"]
    if "llama4" in model_type and n_experts:
        n_shared, d_shared = 1, d_expert
    moe_every = _first(cfg, "interleave_moe_layer_step", "moe_layer_freq", "decoder_sparse_step", default=1) or 1
    return {
        "name": name or str(raw.get("_name_or_path") or path.parent.name or path.stem),
        "attention": "mla" if mla else "gqa",
        "n_layers": int(n_layers),
        "hidden": int(hidden),
        "n_heads": int(n_heads),
        "n_kv_heads": int(n_heads if mla else n_kv),
        "head_dim": int(head_dim),
        "q_lora_rank": int(_first(cfg, "q_lora_rank", default=0) or 0),
        "kv_lora_rank": int(_first(cfg, "kv_lora_rank", default=0) or 0),
        "qk_rope_head_dim": int(_first(cfg, "qk_rope_head_dim", default=0) or 0),
        "v_head_dim": int(_first(cfg, "v_head_dim", default=0) or 0),
        "d_ffn": int(d_ffn),
        "d_expert": int(d_expert),
        "n_experts": int(n_experts),
        "top_k": int(top_k),
        "n_shared": int(n_shared),
        "d_shared": int(d_shared),
        "first_dense": int(_first(cfg, "first_k_dense_replace", default=0) or 0),
        "moe_every": int(moe_every),
        "vocab": int(_first(cfg, "vocab_size", default=0)),
        "max_context": int(_first(cfg, "max_position_embeddings", default=0) or 0),
        "tie_embeddings": bool(_first(cfg, "tie_word_embeddings", default=False)),
        "provenance": {"all": {"source": f"Hugging Face config.json ({path.name})", "evidence": "datasheet"}},
    }


def to_preset_yaml(model: dict) -> str:
    """A dse/conf/model/<name>.yaml preset for a parsed model."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(model))
