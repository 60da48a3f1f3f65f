"""Model specs from Hugging Face ``config.json`` files (docs/model.md section 2).

``from_hf_config(path)`` returns a model dict in dse's schema (:data:`dse.config.specs.MODEL_FIELDS`, the fields
of dse/conf/model/*.yaml), ready for ``dse.evaluate(model=...)``.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from dse.errors import DseError

#: A Hugging Face config.json is a few kB; anything larger than this is refused before it is read.
MAX_CONFIG_BYTES = 4 * 2**20
#: Integers in a config longer than this many digits read as infinite (and are refused, naming their key).
MAX_INT_DIGITS = 30


def _int(text: str):
    return int(text) if len(text.lstrip("-")) <= MAX_INT_DIGITS else float("inf")


def _read(path: Path) -> dict:
    from dse.files import read_user_text

    text = read_user_text(path, "config.json", MAX_CONFIG_BYTES)
    try:   # NaN / Infinity literals parse to floats; a field dse reads refuses them, naming its key
        raw = json.loads(text, parse_int=_int)
    except json.JSONDecodeError as err:
        raise DseError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None
    except ValueError as err:
        raise DseError(f"{path}: not valid JSON ({str(err)[:100]})") from None
    except RecursionError:
        raise DseError(f"{path}: not valid JSON (nested too deeply)") from None
    if not isinstance(raw, dict):
        raise DseError(f"{path}: expected a JSON object at the top level")
    return raw


def _reader(cfg: dict, path: Path):
    """``num(*keys, default, integer, required)``: the first of ``keys`` that is set (not null), a finite non-negative
    number (an integer for counts); a bad value is one line naming its config key."""
    def num(*keys, default=None, integer=True, required=False):
        for k in keys:
            if k in cfg and cfg[k] is not None:
                v = cfg[k]
                kind = "integer" if integer else "number"
                if (isinstance(v, bool) or not isinstance(v, (int, float)) or abs(v) > 1e300 or not math.isfinite(v)
                        or v < 0):
                    raise DseError(f"{path}: {k}={v!r}: allowed a finite non-negative {kind}")
                if integer and float(v) != int(v):
                    raise DseError(f"{path}: {k}={v!r} is not an integer: allowed a finite non-negative integer")
                return int(v) if integer else v
        if required:
            raise DseError(f"{path}: missing {keys[0]!r}")
        return default
    return num


def _attention(num, path: Path) -> dict:
    """The attention fields: GQA (heads, KV heads, head dim) or MLA (LoRA ranks, RoPE and value head dims)."""
    hidden, n_layers = num("hidden_size", required=True), num("num_hidden_layers", required=True)
    n_heads = num("num_attention_heads", required=True)
    if hidden < 1 or n_layers < 1 or n_heads < 1:
        raise DseError(f"{path}: hidden_size, num_hidden_layers and num_attention_heads must be >= 1")
    mla = num("kv_lora_rank") is not None
    return {
        "attention": "mla" if mla else "gqa", "n_layers": n_layers, "hidden": hidden, "n_heads": n_heads,
        "n_kv_heads": n_heads if mla else num("num_key_value_heads", default=n_heads),
        "head_dim": num("qk_nope_head_dim", required=True) if mla else num("head_dim", default=hidden // n_heads),
        "q_lora_rank": num("q_lora_rank", default=0), "kv_lora_rank": num("kv_lora_rank", default=0),
        "qk_rope_head_dim": num("qk_rope_head_dim", default=0), "v_head_dim": num("v_head_dim", default=0),
    }


def _ffn(num, model_type: str, path: Path) -> dict:
    """The FFN fields: dense width, routed experts (count, top-k, width), shared experts, MoE layer pattern."""
    n_experts = num("n_routed_experts", "num_local_experts", "num_experts", default=0)
    top_k = num("num_experts_per_tok", "experts_per_token", "moe_topk", default=0)
    if n_experts and top_k > n_experts:
        raise DseError(f"{path}: num_experts_per_tok={top_k} exceeds the {n_experts} routed experts")
    if n_experts and not top_k:
        raise DseError(f"{path}: missing 'num_experts_per_tok' for a model with {n_experts} experts")
    intermediate = num("intermediate_size", default=0)
    llama4 = "llama4" in model_type
    if not n_experts:
        d_expert, d_ffn = 0, intermediate
    elif llama4:
        d_expert, d_ffn = intermediate, num("intermediate_size_mlp", default=intermediate)
    else:
        d_expert, d_ffn = num("moe_intermediate_size", default=intermediate), intermediate
    if n_experts and not d_expert:
        raise DseError(f"{path}: missing 'moe_intermediate_size' / 'intermediate_size' for the experts")
    n_shared = num("n_shared_experts", "num_shared_experts", default=0)
    d_shared = d_expert if n_shared else 0
    shared_width = num("shared_expert_intermediate_size", default=0)
    if shared_width:  # Qwen2-MoE: one shared expert of its own width
        n_shared, d_shared = 1, shared_width
    if llama4 and n_experts:
        n_shared, d_shared = 1, d_expert
    return {"d_ffn": d_ffn, "d_expert": d_expert, "n_experts": n_experts, "top_k": top_k, "n_shared": n_shared,
            "d_shared": d_shared, "first_dense": num("first_k_dense_replace", default=0),
            "moe_every": num("interleave_moe_layer_step", "moe_layer_freq", "decoder_sparse_step", default=1) or 1}


def from_hf_config(path, name: str | None = None) -> dict:
    """Parse a Hugging Face config.json (Mixtral, DeepSeek-V2/V3/R1, Kimi-K2, Llama-3/4, Qwen2/3-MoE, gpt-oss).

    Every number read must be finite and non-negative, counts integral; the result is checked by the same range
    and cross-field rules as any model (:mod:`dse.config.rules`). Errors are one line naming the config key.
    """
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
        raise DseError(f"from_hf_config: path={path!r}: allowed the path of a config.json (str or Path)")
    path = Path(path)
    raw = _read(path)
    cfg = raw.get("text_config") if isinstance(raw.get("text_config"), dict) else raw  # Llama-4 nests it
    num = _reader(cfg, path)
    model_type = str(raw.get("model_type", cfg.get("model_type", "")))
    model = {
        "name": name or str(raw.get("_name_or_path") or path.parent.name or path.stem),
        **_attention(num, path),
        **_ffn(num, model_type, path),
        "vocab": num("vocab_size", default=0),
        "max_context": num("max_position_embeddings", default=0),
        "provenance": {"all": {"source": f"Hugging Face config.json ({path.name})", "evidence": "datasheet"}},
    }
    try:
        check_model(model)
    except DseError as err:
        raise DseError(f"{path}: {err}") from None
    return model


def check_model(model: dict) -> None:
    """A model spec against the schema and the range / cross-field rules of :mod:`dse.config.rules`."""
    from dse.config import specs
    from dse.config import rules

    m = specs.validated("model", model)
    m["is_mla"] = 1.0 if m.get("attention") == "mla" else 0.0
    rules.check_ranges({"model": m})
    rules.check_cross({"model": m})
