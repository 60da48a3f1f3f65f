"""``dse.evaluate``: presets + parameters -> open xarray grid -> kernel -> Dataset with units and provenance.

Each swept parameter becomes a 1-D coordinate; the kernel's arithmetic lets xarray broadcast those open
grids, so every term is computed at the size of the dimensions it depends on. Categorical presets (model,
system, gpu, link, placement) are stacked leaf by leaf along their own dimension.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import xarray as xr

from dse.model import capacity, config, expert_load, kernel, routing, specs, validate
from dse.run import cf
from dse.model import requests
from dse.run.grid import Grid
from dse.model.params import PARAMS, DseError, check_values, lookup

NO_TIER_BW_GBPS = 1e30          # stands in for "unlimited" (YAML .inf), keeps 0 * inf out of the kernel
MODEL_DEFAULTS = dict(q_lora_rank=0, kv_lora_rank=0, qk_rope_head_dim=0, v_head_dim=0, n_shared=0,
                      d_shared=0, first_dense=0, moe_every=1, vocab=0, n_kv_heads=0)
PRESET_DIMS = {"system": "system", "gpu": "gpu", "link": "link", "model": "model"}

VARIABLES = {  # name: (units, long_name)
    "energy_per_token": ("J", "energy per generated token (step energy / batch)"),
    "energy": ("J", "energy of one decode step, by component"),
    "step_energy": ("J", "energy of one decode step"),
    "step_latency": ("s", "latency of one decode step (= time per output token of each sequence)"),
    "copy_latency": ("s", "time spent copying offloaded experts in one step (busiest GPU)"),
    "offload_share": ("1", "fraction of step energy spent copying offloaded weights (tier read + link + HBM write)"),
    "tokens_per_s": ("tokens/s", "generated tokens per second (batch / step latency)"),
    "experts_touched": ("experts", "expected distinct routed experts touched per MoE layer"),
    "experts_fetched": ("experts", "expected experts copied from the offload tier per MoE layer"),
    "busiest_gpu_experts": ("experts", "expected touched experts on the busiest expert-parallel GPU"),
    "hbm_read_bytes": ("B", "weight and KV bytes read from HBM per step (tiled traffic)"),
    "hbm_activation_bytes": ("B", "activation bytes read from and written to HBM per step"),
    "offload_read_bytes": ("B", "bytes read from the offload tier per step"),
    "offload_read_bits": ("bit", "bits read from the offload tier per step (the Flash traffic when on Flash)"),
    "flops": ("FLOP", "floating-point operations per step"),
    "hbm_bytes": ("B", "bytes held in HBM (weights + KV cache), all GPUs"),
    "offload_tier_bytes": ("B", "expert bytes held in the offload tier"),
    "n_gpus": ("GPUs", "GPUs in the system"),
    "offload_is_flash": ("1", "1 where the experts' offload tier is Flash (read energy = flash_read_pj_per_bit)"),
    **capacity.VARIABLES,
}
#: Variables of a KV cache on a tier (kv_placement other than hbm) and of requests (prompt_len / output_len given).
KV_VARIABLES = {
    "kv_tier_bytes": ("B", "KV-cache bytes held in the KV tier (kv_placement)"),
    "kv_tier_fill": ("1", "KV tier bytes held (KV, plus experts when they share it) / its capacity"),
}


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=5).stdout.strip() or "unknown"
    except Exception:  # noqa: BLE001 - provenance is best effort
        return "unknown"


def expand_values(name: str, value):
    """A grid entry: list/tuple/array/range, or {start, stop, num, log} -> list; a scalar -> itself."""
    if isinstance(value, dict):
        missing = {"start", "stop", "num"} - set(value)
        if missing:
            raise DseError(f"grid.{name}: a range needs start, stop and num (missing {sorted(missing)})")
        start, stop, num = value["start"], value["stop"], value["num"]
        for k in ("start", "stop", "num"):
            if isinstance(value[k], bool) or not isinstance(value[k], (int, float)) or not np.isfinite(value[k]):
                raise DseError(f"grid.{name}.{k}={value[k]!r} is not a number (allowed: a finite number)")
        if num < 1 or float(num) != int(num):
            raise DseError(f"grid.{name}.num={num}: a range needs an integer num >= 1")
        if value.get("log", False):
            if start <= 0 or stop <= 0:
                raise DseError(f"grid.{name}: a log range needs start > 0 and stop > 0")
            vals = np.geomspace(start, stop, int(num))
        else:
            vals = np.linspace(start, stop, int(num))
        param = PARAMS.get(name)
        if param is not None and param.integer:
            vals = np.unique(np.round(vals).astype(int))
        return vals.tolist()
    if isinstance(value, (list, tuple, range, np.ndarray)):
        vals = list(np.asarray(value).tolist()) if isinstance(value, np.ndarray) else list(value)
        if not vals:
            raise DseError(f"grid.{name}: empty list of values")
        return vals
    return value


def _stack(trees: list, dim: str, coords: list):
    """Stack same-shaped dict trees leaf by leaf along a new dimension (equal scalars stay scalars)."""
    first = trees[0]
    if isinstance(first, dict):
        keys = set(first)
        for t in trees[1:]:
            if not isinstance(t, dict) or set(t) != keys:
                raise DseError(f"{dim}: the presets differ in structure ({sorted(keys ^ set(t))}); "
                               "they cannot share a dimension")
        return {k: _stack([t[k] for t in trees], dim, coords) for k in first}
    if all(not isinstance(t, xr.DataArray) for t in trees) and all(t == first for t in trees):
        return first
    return xr.concat([t if isinstance(t, xr.DataArray) else xr.DataArray(t) for t in trees],
                     dim=xr.DataArray(coords, dims=[dim], name=dim), coords="minimal", compat="override")


def _prepare_model(m: dict) -> dict:
    m = {**MODEL_DEFAULTS, **m}
    attention = m.pop("attention", "gqa")
    if attention not in ("gqa", "mla"):
        raise DseError(f"model.attention={attention!r}: allowed gqa or mla")
    m["is_mla"] = 1.0 if attention == "mla" else 0.0
    for k in ("name", "provenance", "tie_embeddings", "description"):
        m.pop(k, None)
    return m


def _prepare_system(s: dict) -> dict:
    s = dict(s)
    always_on = set(s.pop("always_on", []) or [])
    unknown = always_on - set(s["tiers"])
    if unknown:
        raise DseError(f"system.always_on: unknown tier {sorted(unknown)[0]!r}; tiers are {sorted(s['tiers'])}")
    tiers = {}
    for key, t in s["tiers"].items():
        t = dict(t)
        kind = t.pop("kind", "memory")
        if kind not in ("memory", "flash"):
            raise DseError(f"system.tiers.{key}.kind={kind!r}: allowed memory or flash")
        t["is_flash"] = 1.0 if kind == "flash" else 0.0
        t["always_on"] = 1.0 if key in always_on else 0.0
        t.setdefault("devices_per_gpu", 1)
        bw = t.get("bw_gbps", float("inf"))
        t["bw_gbps"] = NO_TIER_BW_GBPS if bw is None or bw == float("inf") else bw
        for k in ("name", "provenance"):
            t.pop(k, None)
        tiers[key] = t
    s["tiers"] = tiers
    for k in ("name", "provenance"):
        s.pop(k, None)
    for part in ("gpu", "offload_link"):
        if isinstance(s.get(part), dict):
            s[part] = {k: v for k, v in s[part].items() if k not in ("name", "provenance")}
    return s


def _data_array(name: str, values: list):
    values = np.asarray(values)
    return xr.DataArray(values, dims=[name], coords={name: values})


def _flash_tiers(tiers: dict) -> list[str]:
    return [k for k, t in tiers.items() if np.all(np.asarray(t["is_flash"]) == 1.0)]


def _set_leaf(tree: dict, name: str, path: str, value) -> None:
    if path == "flash.read_pj_per_bit":
        keys = _flash_tiers(tree["system"]["tiers"])
        if not keys:
            raise DseError(f"{name}: the system has no Flash tier")
        for k in keys:
            tree["system"]["tiers"][k]["read_pj_per_bit"] = value
        return
    current = config.get_path(tree, path)
    if isinstance(current, dict):
        raise DseError(f"{name}: {path!r} is a section, not a value")
    config.set_path(tree, path, value)


def _tier_for(placement: str, tiers: dict) -> dict:
    if placement == "hbm":
        return dict(offloaded=0.0, read_pj_per_bit=0.0, bw_gbps=NO_TIER_BW_GBPS, devices_per_gpu=1,
                    idle_w_per_gpu=0.0, is_flash=0.0, capacity_gb=0.0, usd_per_gb=0.0, tier_id=0.0)
    if placement not in tiers:
        raise DseError(f"placement={placement!r} unknown: allowed {['hbm', *sorted(tiers)]}")
    t = tiers[placement]
    return dict(offloaded=1.0, read_pj_per_bit=t["read_pj_per_bit"], bw_gbps=t["bw_gbps"],
                devices_per_gpu=t["devices_per_gpu"],
                idle_w_per_gpu=t["idle_w"] * t["devices_per_gpu"] * (1 - t["always_on"]), is_flash=t["is_flash"],
                capacity_gb=t["capacity_gb"], usd_per_gb=t["usd_per_gb"], tier_id=1.0 + sorted(tiers).index(placement))


def _kv_tier_for(kv_placement: str, tiers: dict) -> dict:
    """The KV cache's tier (dse.model.requests, docs/model.md "KV cache on a tier") as workload fields."""
    if kv_placement == "hbm":
        return dict(kv_offloaded=0.0, kv_read_pj_per_bit=0.0, kv_write_pj_per_bit=0.0, kv_bw_gbps=NO_TIER_BW_GBPS,
                    kv_capacity_gb=0.0, kv_is_flash=0.0, kv_pe_cycles=0.0, kv_usd_per_gb=0.0,
                    kv_idle_w_per_gpu=0.0, kv_tier_id=0.0)
    if kv_placement not in tiers:
        raise DseError(f"kv_placement={kv_placement!r} unknown: allowed {['hbm', *sorted(tiers)]}")
    t, n = tiers[kv_placement], tiers[kv_placement]["devices_per_gpu"]
    if t["is_flash"] and (not t.get("pe_cycles") or t.get("write_pj_per_bit") is None):
        raise DseError(f"system.tiers.{kv_placement}: a Flash tier holding KV needs pe_cycles (rated program/erase "
                       "cycles, > 0) and write_pj_per_bit")
    write = t["read_pj_per_bit"] if t.get("write_pj_per_bit") is None else t["write_pj_per_bit"]
    return dict(kv_offloaded=1.0, kv_read_pj_per_bit=t["read_pj_per_bit"], kv_write_pj_per_bit=write,
                kv_bw_gbps=t["bw_gbps"] * n, kv_capacity_gb=t["capacity_gb"] * n, kv_is_flash=t["is_flash"],
                kv_pe_cycles=t.get("pe_cycles") or 0.0, kv_usd_per_gb=t["usd_per_gb"],
                kv_idle_w_per_gpu=t["idle_w"] * n * (1 - t["always_on"]),
                kv_tier_id=1.0 + sorted(tiers).index(kv_placement))


#: How offload copies overlap compute (docs/model.md s.6.4).
OVERLAPS = ("moe_layer", "step", "expert_stage")


def _categorical(name: str, value, codes: dict):
    """A categorical workload setting (a value, or a list making a dimension) -> its numeric code(s)."""
    values = value if isinstance(value, list) else [value]
    bad = [v for v in values if v not in codes]
    if bad:
        raise DseError(f"workload.{name}={bad[0]!r}: allowed {', '.join(codes)}")
    if isinstance(value, list):
        return xr.DataArray([codes[v] for v in value], dims=[name], coords={name: value})
    return codes[value]


def _values(x) -> np.ndarray:
    return np.asarray(x.values if isinstance(x, xr.DataArray) else x)


def _check_tree(tree: dict) -> None:
    """Range and cross-field checks on the resolved (possibly stacked) values; one-line errors
    (the rules are the tables of :mod:`dse.model.validate`)."""
    validate.check_tree(tree)


def _routing_plan(m, s, w, routing_frequencies) -> dict:
    """How expected experts are counted over the whole grid: the mode and the loop bounds (so that every block
    of a chunked grid runs the same loops and gives the same numbers)."""
    k, E = m.top_k, m.n_experts
    freqs = None
    if routing_frequencies is not None:
        if np.ndim(_values(E)):
            raise DseError("workload.routing_frequencies: model.n_experts cannot be a dimension with measured routing")
        if np.ndim(_values(k)):
            raise DseError("workload.routing_frequencies: model.top_k cannot be a dimension with measured routing")
        freqs = validate.routing_probabilities(routing_frequencies, int(_values(k)), int(_values(E)))
        mode = "measured"
    elif np.ndim(_values(w.routing_skew)) == 0 and float(_values(w.routing_skew)) == 0.0:
        mode = "uniform"
    else:
        mode = "zipf"
    return dict(mode=mode, freqs=freqs, n_max=int(np.max(_values(E))))


def _routing(m, s, w, mode, freqs, n_max):
    """Expected touched / uncached experts per MoE layer and the busiest EP GPU's touched experts."""
    B, k, E, f = w.batch, m.top_k, m.n_experts, w.hbm_cache_fraction
    if mode == "measured":
        touched, uncached = routing.touched_measured(B, freqs, cached=f * E)
        busiest = expert_load.busiest(B, k, E, s.ep, lambda b, _k, _e: 1 - (1 - np.sort(freqs)[::-1]) ** b)
    elif mode == "uniform":
        touched = routing.touched_uniform(B, k, E)
        uncached = touched * (1 - f)
        busiest = expert_load.busiest(B, k, E, s.ep)
    else:
        touched, uncached = routing.touched_zipf(B, k, E, w.routing_skew, n_max, cached=f * E)
        skews = np.broadcast_to(np.asarray(w.routing_skew, float), np.shape(w.routing_skew))
        busiest = _zipf_busiest(B, k, E, s.ep, skews, n_max)
    return touched, uncached, busiest


def _zipf_busiest(B, k, E, ep, skew, n_max):
    """The busiest-GPU load under Zipf routing, one skew value at a time (skew is at most a short dimension)."""
    shape = np.broadcast_shapes(*(np.shape(x) for x in (B, k, E, ep, skew)))
    out = np.zeros(shape)
    skew_b = np.broadcast_to(skew, shape)
    for value in np.unique(skew_b):
        probs = lambda b, kk, e, v=value: 1 - (1 - np.array(routing._zipf_probabilities(kk, e, v, int(e)))) ** b
        out = np.where(skew_b == value, expert_load.busiest(B, k, E, ep, probs), out)
    return out


def _sum_in_order(parts) -> np.ndarray:
    """parts[0] + parts[1] + ... left to right, growing by broadcasting only as the terms require (so it costs
    little until the terms span the whole block); the same numbers as summing the stacked terms in order."""
    total = parts[0] + parts[1]  # a new array (or number): updated in place where its shape suffices
    for part in parts[2:]:
        if isinstance(total, np.ndarray) and total.shape == np.broadcast_shapes(total.shape, np.shape(part)):
            total += part
        else:
            total = total + part
    return total


def _sum_smallest_first(parts) -> np.ndarray:
    """The sum of the parts, the ones over the fewest grid points added first (stable otherwise): a block's full-size
    array is then written by one addition, not one per component (docs/model.md s.8). It differs from the sum in
    order by rounding only (a few units in the last place)."""
    return _sum_in_order(sorted(parts, key=np.size))


def _tables(m, g, s, w, routing_plan) -> dict:
    """The step's low-dimensional tables (:func:`dse.model.kernel.step_tables`) with the routing's expected experts."""
    touched, uncached, busiest = _routing(m, s, w, **routing_plan)
    return kernel.step_tables(m, g, s, w, touched, uncached, busiest)


#: The inputs the step's tables depend on (the rest -- rates, bandwidths, energies, tiers -- they do not).
TABLE_INPUTS = {"g": ("register_tile", "l1_kib", "l2_mib"), "s": ("tp", "dp", "ep"),
                "w": ("batch", "context_len", "weight_bytes", "act_bytes", "kv_bytes", "fused_attention",
                      "dp_attention", "hbm_cache_fraction", "routing_skew")}
#: Largest table (grid points along the dimensions the tables depend on) computed once for a whole grid.
TABLE_POINTS_MAX = 250_000


def _with_tables(grid: Grid, plan: dict) -> Grid:
    """The grid with its step tables computed once over the dimensions they depend on (an input ``pre`` that
    every block slices), unless those dimensions span more than TABLE_POINTS_MAX points."""
    dims = grid.input_dims({"m": None, **TABLE_INPUTS})
    if math.prod(grid.sizes[d] for d in dims) > TABLE_POINTS_MAX:
        return grid
    whole = grid.whole()
    tables = _tables(whole["m"], whole["g"], whole["s"], whole["w"], plan)
    return grid.with_inputs(pre=grid.labelled(tables))


def _outputs(m, g, s, link, tier, w, pre=None, *, routing_plan, request=False, kv=False) -> dict:
    """One block of the open grid (numpy arrays, one axis per grid dimension) -> the output variables' parts, each
    over the dims it depends on; :func:`_combine` gives the variables that sum parts (:data:`COMBINED`).

    ``energy`` is the tuple of components, each over the dims it depends on (:class:`dse.run.grid.Grid` stacks them
    along ``component`` when the variable is asked for); step energy adds them in order.
    """
    if pre is None:  # the grid's tables were too large to compute once: this block's share of them
        pre = _ns(_tables(m, g, s, w, routing_plan))
    out = kernel.decode_step(m, g, s, link, tier, w, pre)
    B = w.batch
    held = capacity.capacity(g, tier, out.n_gpus, out.hbm_bytes, out.tier_bytes)
    cost = tuple(held["cost"][p] for p in capacity.COST_PARTS)
    extra = {}
    if kv:
        cost, extra = _kv_capacity(tier, w, out, held, cost)
    if request:
        ndim = max((np.ndim(x) for ns in (m, g, s, link, tier, w) for x in vars(ns).values()), default=0)
        extra.update(requests.request(m, g, s, link, tier, w, lambda wx: _request_tables(m, g, s, wx, routing_plan),
                                     ndim))
    return {**extra, **{
        "batch": B,
        "energy": tuple(out.energy[c] for c in kernel.COMPONENTS),
        "step_latency": out.latency,
        "copy_latency": out.copy_latency,
        "tokens_per_s": B / out.latency,
        "experts_touched": out.touched,
        "experts_fetched": out.fetched,
        "busiest_gpu_experts": out.busiest,
        "hbm_read_bytes": out.hbm_weight_bytes + out.kv_bytes,
        "hbm_activation_bytes": out.activation_bytes,
        "offload_read_bytes": out.offload_bytes,
        "offload_read_bits": out.offload_bits,
        "flops": out.flops,
        "hbm_bytes": out.hbm_bytes,
        "offload_tier_bytes": out.tier_bytes,
        "n_gpus": out.n_gpus,
        "offload_is_flash": tier.is_flash,
        "capacity_cost": cost,
        **{k: held[k] for k in ("hbm_capacity_bytes", "offload_capacity_bytes", "hbm_fill", "offload_fill", "fits")},
    }}


#: The variables that add parts up (over as many dimensions as their parts span together): the parts they need.
COMBINED = {"step_energy": ("energy",), "energy_per_token": ("energy", "batch"), "offload_share": ("energy",),
            "capacity_cost_usd": ("capacity_cost",)}
_OFFLOAD = [kernel.COMPONENTS.index(c) for c in kernel.OFFLOAD_COMPONENTS]


def _combine(out: dict, name: str):
    """A variable of :data:`COMBINED` from a block's parts (:func:`_outputs`); the step energy is added up once per
    block and kept with its parts (two threads adding it at once get the same numbers)."""
    if name == "capacity_cost_usd":
        return _sum_smallest_first(out["capacity_cost"])
    total = out.get("step_energy")
    if total is None:
        total = out["step_energy"] = _sum_smallest_first(out["energy"])
    if name == "step_energy":
        return total
    if name == "energy_per_token":
        return total / out["batch"]
    if name == "offload_share":  # 0 (not NaN) when the step costs no energy
        offload = _sum_smallest_first([out["energy"][i] for i in _OFFLOAD])
        floor = np.maximum(total, 1e-300)
        if isinstance(floor, np.ndarray) and floor.shape == np.broadcast_shapes(floor.shape, np.shape(offload)):
            return np.divide(offload, floor, out=floor)   # in place: one full-size array, not two
        return offload / floor
    raise KeyError(name)


def _kv_capacity(tier, w, out, held, cost):
    """A KV cache on a tier: it must fit there (with the experts when they share the tier); its bytes are charged at
    the tier's price (the ``offload`` cost part)."""
    same = (tier.tier_id == w.kv_tier_id) * w.kv_offloaded
    kv_capacity = out.n_gpus * w.kv_capacity_gb * capacity.GB
    kv_fill = (out.kv_tier_bytes + same * out.tier_bytes) / np.maximum(kv_capacity, 1e-30)
    held["offload_fill"] = held["offload_fill"] + same * out.kv_tier_bytes / np.maximum(
        held["offload_capacity_bytes"], 1e-30)
    held["fits"] = capacity.fits(held["hbm_fill"], held["offload_fill"]) & (kv_fill <= 1.0)
    cost = cost[:2] + (cost[2] + out.kv_tier_bytes / capacity.GB * w.kv_usd_per_gb,)
    return cost, {"kv_tier_bytes": out.kv_tier_bytes, "kv_tier_fill": kv_fill}


def _request_tables(m, g, s, w, plan) -> dict:
    """A step's tables for dse.model.requests: routing counts the step's tokens (sequences x query tokens each)."""
    tokens = SimpleNamespace(**{**vars(w), "batch": w.batch * getattr(w, "query_len", 1.0)})
    touched, uncached, busiest = _routing(m, s, tokens, **plan)
    return kernel.step_tables(m, g, s, w, touched, uncached, busiest)


def _apply_profile(tree: dict, scalars: dict, dims: dict) -> None:
    """``profile``: a request profile preset (dse/conf/profile) sets prompt_len and output_len unless they are given;
    a list of profiles is a dimension."""
    names = dims.get("profile", scalars.get("profile", tree["workload"].get("profile")))  # a config's workload.profile
    if names is None:
        return
    profiles = [config.preset("profile", p) for p in (names if isinstance(names, list) else [names])]
    for key in ("prompt_len", "output_len"):
        if key in scalars or key in dims:
            continue
        values = [p[key] for p in profiles]
        tree["workload"][key] = (xr.DataArray(values, dims=["profile"], coords={"profile": names})
                                 if isinstance(names, list) else values[0])


def _request_fields(w: dict, model: dict, scalars: dict, dims: dict) -> bool:
    """Requests (prompt_len and output_len given): checks, and the decode context of the step variables (the last
    decode step, whose KV cache is the largest). Returns whether the study is one of requests."""
    P, O, chunk = w.pop("prompt_len"), w.pop("output_len"), w.pop("prefill_chunk")
    life = w.pop("service_life_years")
    w.pop("profile", None)
    if P is None and O is None:
        if chunk is not None:
            raise DseError("prefill_chunk needs prompt_len and output_len (requests)")
        return False
    if P is None or O is None:
        raise DseError(f"{'prompt_len' if P is None else 'output_len'} is missing: prompt_len and output_len go "
                       "together (requests), or neither is given (decode-only at context_len)")
    if "context_len" in scalars or "context_len" in dims:
        raise DseError("context_len is for decode-only studies: with prompt_len and output_len the context runs "
                       "from prompt_len to prompt_len + output_len - 1")
    total = _as_da(P) + _as_da(O)
    limit = _as_da(model.get("max_context", 0) or 0)
    over = (total > limit) & (limit > 0)
    if bool(over.any()):
        bad_p, bad_o, bad_l = (float(np.asarray(_as_da(x).broadcast_like(over).values)[np.asarray(over.values)].ravel()[0])
                               for x in (P, O, limit))
        raise DseError(f"prompt_len={bad_p:g} + output_len={bad_o:g} exceeds the model's max_context={bad_l:g}: "
                       f"allowed prompt_len + output_len <= max_context")
    w["prompt_len"], w["output_len"] = P, O
    w["prefill_chunk"] = P if chunk is None else chunk
    w["context_len"] = total - 1 if isinstance(total, xr.DataArray) and total.ndim else float(_values(total)) - 1
    w["service_life_years"] = life
    return True


def _ns(d: dict) -> SimpleNamespace:
    return SimpleNamespace(**{k: _ns(v) if isinstance(v, dict) else v for k, v in d.items()})


def _as_da(v) -> xr.DataArray:
    return v if isinstance(v, xr.DataArray) else xr.DataArray(v)


def _split(study_grid: dict, params: dict):
    """Separate scalar settings from dimensions; expand ranges; validate every value."""
    scalars, dims = {}, {}
    merged = {**{k: v for k, v in config.flat_grid(study_grid).items() if k not in params}, **params}
    for name, raw in merged.items():
        value = expand_values(name, raw)
        path, param = lookup(name)
        if isinstance(value, xr.DataArray):  # one value per point of other dimensions (dse.breakeven's solver)
            if param is not None and param.categorical:
                raise DseError(f"{name}: only a numeric parameter can take an array of values")
            check_values(name, value.values.ravel().tolist(), param)
            scalars[name] = value
            continue
        check_values(name, value, param)
        if param is not None and param.preset_group:
            for v in value if isinstance(value, list) else [value]:
                config.check_preset(param.preset_group, v)
        (dims if isinstance(value, list) else scalars)[name] = value
    return scalars, dims


def evaluate(study: str | None = None, *, model=None, system=None, accounting: str | None = None,
             chunks: dict | None = None, cfg: dict | None = None, max_grid_points: float | None = None,
             **params) -> xr.Dataset:
    """Energy, latency and capacity of one decode step over a grid of parameters (equations: docs/model.md).

    ``dse.evaluate`` is this function with its parameters spelt out (``help(dse.evaluate)``: units and ranges).
    ``study`` names a preset in dse/conf/study (model, system, workload and its grid). ``model`` / ``system``
    are preset names (a list makes a dimension). Other keyword parameters are canonical short names (see
    :data:`dse.model.params.PARAMS`) or dotted config paths; a list, tuple, range or array becomes a dimension
    with those coordinates. ``chunks`` maps dimension names to dask chunk sizes (lazy evaluation: one dask
    task per block of the grid). ``accounting`` names a preset in dse/conf/accounting (``paper``, the default,
    ``paper-fig6`` or ``refined``). ``cfg`` is an already composed root config (the CLI passes Hydra's).
    ``max_grid_points`` (default: the config's, 1e10) refuses larger grids before anything is allocated; without
    ``chunks`` the whole result must also fit in the memory available.
    """
    grid = resolve(study, model=model, system=system, accounting=accounting, cfg=cfg,
                   max_grid_points=max_grid_points, **params)
    validate.check_chunks(chunks, grid.sizes, [dim for dim, _ in grid.stacks.values()])
    if chunks is None:
        validate.check_memory(grid)
    return grid.dataset(chunks)


def resolve(study: str | None = None, *, model=None, system=None, accounting: str | None = None,
            cfg: dict | None = None, max_grid_points: float | None = None, **params) -> Grid:
    """Validate and resolve everything :func:`evaluate` needs without evaluating the grid: a :class:`Grid` (its
    dimensions, sizes, inputs and attributes) whose ``dataset(chunks)`` or ``block(box)`` evaluate it."""
    frequencies = params.pop("routing_frequencies", None)  # one vector, never a dimension
    model_spec = None
    if isinstance(model, dict):  # a parsed spec, e.g. dse.from_hf_config(path)
        model_spec, model = dict(model), None
        validate.check_required_model(model_spec, f"model {model_spec.get('name', '')!r}".replace(" ''", ""))
    if model is not None:
        params["model"] = model
    if system is not None:
        params["system"] = system
    if cfg is None:
        if study is not None:
            config.check_preset("study", study)
        if accounting is not None:
            config.check_preset("accounting", accounting)
        base = config.compose(study=study, overrides=(f"accounting={accounting}",) if accounting else ())
    else:
        base = json.loads(json.dumps(cfg)) if isinstance(cfg, dict) else config.OmegaConf.to_container(cfg, resolve=True)
    grid_spec = config.flat_grid(base.get("grid"))
    limit = validate.grid_limit(base.get("max_grid_points") if max_grid_points is None else max_grid_points)
    validate.check_grid_size(validate.grid_size_bound({**grid_spec, **params}), limit)
    scalars, dims = _split(grid_spec, params)

    tree = {k: specs.validated(k, base[k]) for k in ("model", "system", "workload", "accounting")}
    for name in ("model", "system"):
        if name in scalars:
            tree[name] = config.preset(name, scalars[name])
    if model_spec is not None:
        tree["model"] = specs.validated("model", model_spec)
    if frequencies is not None:
        if isinstance(frequencies, (str, bytes, dict)) or np.ndim(frequencies) != 1:
            raise DseError("workload.routing_frequencies: expected a flat list of per-expert frequencies")
        tree["workload"]["routing_frequencies"] = [v.item() if hasattr(v, "item") else v for v in frequencies]
    provenance_tree = json.loads(json.dumps(tree, default=str))  # the resolved config, settings applied below

    # --- systems (with gpu / link presets inside), then models: stacked along their dimensions
    sys_variants = [config.preset("system", v) for v in dims["system"]] if "system" in dims else [tree["system"]]
    for name, part in (("gpu", "gpu"), ("link", "offload_link")):
        for sv in sys_variants:
            if name in scalars:
                sv[part] = config.preset(name, scalars[name])
            elif name in dims:
                sv[part] = _stack([config.preset(name, v) for v in dims[name]], name, dims[name])
    sys_variants = [_prepare_system(sv) for sv in sys_variants]
    tree["system"] = _stack(sys_variants, "system", dims["system"]) if "system" in dims else sys_variants[0]
    models = [config.preset("model", v) for v in dims["model"]] if "model" in dims else [tree["model"]]
    models = [_prepare_model(mv) for mv in models]
    tree["model"] = _stack(models, "model", dims["model"]) if "model" in dims else models[0]

    _apply_profile(tree, scalars, dims)

    # --- numeric and workload settings onto their leaves (explicit settings win over presets)
    ref = {k: tree["model"][k] for k in ("n_experts", "top_k", "d_expert")}
    for name, value in list(scalars.items()) + [(n, v) for n, v in dims.items()]:
        if name in PRESET_DIMS or name == "profile":
            continue
        path, _ = lookup(name)
        if path in ("workload.placement", "workload.offload_path", "workload.attention_parallel",
                    "workload.kv_placement"):  # resolved below
            tree["workload"][path.split(".")[1]] = value
            continue
        if isinstance(value, list):
            value = _data_array(name, value)
        _set_leaf(tree, name, path, value)

    acct = tree["accounting"]
    if acct["expert_scaling"] not in ("keep_expert_size", "keep_total_params"):
        raise DseError(f"accounting.expert_scaling={acct['expert_scaling']!r}: allowed keep_expert_size, keep_total_params")
    if acct["topk_scaling"] not in ("keep_expert_size", "keep_active_params"):
        raise DseError(f"accounting.topk_scaling={acct['topk_scaling']!r}: allowed keep_expert_size, keep_active_params")
    m = tree["model"]
    if acct["expert_scaling"] == "keep_total_params" and "d_expert" not in scalars and "d_expert" not in dims:
        m["d_expert"] = ref["d_expert"] * ref["n_experts"] / np.maximum(m["n_experts"], 1)
    if acct["topk_scaling"] == "keep_active_params" and "d_expert" not in scalars and "d_expert" not in dims:
        m["d_expert"] = m["d_expert"] * ref["top_k"] / np.maximum(m["top_k"], 1)

    _check_tree(tree)
    w = dict(tree["workload"])
    request = _request_fields(w, tree["model"], scalars, dims)
    kv_placement = w.pop("kv_placement")
    freqs = w.pop("routing_frequencies", None)
    placement = w.pop("placement")
    w["staged"] = _categorical("offload_path", w.pop("offload_path"), {"staged": 1.0, "direct": 0.0})
    for flag in ("prefetch", "fused_attention"):
        w[flag] = _as_da(w[flag]) * 1.0 if isinstance(w[flag], (bool, xr.DataArray)) else float(w[flag])
    w["dp_attention"] = _categorical("attention_parallel", w.pop("attention_parallel"), {"tp": 0.0, "dp": 1.0})
    w["count_lm_head"] = 1.0 if acct["count_lm_head"] else 0.0
    w["mimic_tool"] = 1.0 if acct["mimic_tool"] else 0.0
    overlap = acct["prefetch_overlap"]
    if overlap not in OVERLAPS:
        raise DseError(f"accounting.prefetch_overlap={overlap!r}: allowed {', '.join(OVERLAPS)}")
    w["overlap_step"] = 1.0 if overlap == "step" else 0.0
    w["overlap_stage"] = 1.0 if overlap == "expert_stage" else 0.0

    s = tree["system"]
    tiers = s.pop("tiers")
    if isinstance(placement, list):
        tier = _stack([_tier_for(p, tiers) for p in placement], "placement", placement)
    else:
        tier = _tier_for(placement, tiers)
    s["always_on_w_per_gpu"] = sum(t["always_on"] * t["idle_w"] * t["devices_per_gpu"] for t in tiers.values())
    gpu, link = s.pop("gpu"), s.pop("offload_link")
    kv_mode = kv_placement != "hbm"
    if kv_mode:  # KV cache on a tier: its constants as workload fields (a list of placements: a dimension)
        if isinstance(kv_placement, list):
            w.update(_stack([_kv_tier_for(p, tiers) for p in kv_placement], "kv_placement", kv_placement))
        else:
            w.update(_kv_tier_for(kv_placement, tiers))

    plan = _routing_plan(_ns(m), _ns(s), _ns(w), freqs)
    coord_attrs = {name: cf.attrs(PARAMS[name].units if name in PARAMS else "",
                                  PARAMS[name].doc if name in PARAMS else name) for name in dims}
    coord_attrs.update(cf.STACK_COORDS)

    settings = {k: (v.values.tolist() if isinstance(v, xr.DataArray) else v) for k, v in {**scalars, **dims}.items()}
    if frequencies is not None:
        settings["routing_frequencies"] = tree["workload"]["routing_frequencies"]
    if model_spec is not None:
        settings["model"] = model_spec
    config_yaml = config.to_yaml(provenance_tree)
    digest = hashlib.sha256((config_yaml + json.dumps(settings, sort_keys=True, default=str)).encode()).hexdigest()
    from dse import __version__

    attrs = dict(
        title="dse decode-step energy / latency / capacity",
        study=study or "",
        model=str(model_spec.get("name", "") if model_spec else scalars.get("model", base["model"].get("name", ""))),
        system=str(scalars.get("system", base["system"].get("name", ""))),
        settings=json.dumps(settings, default=str),
        config_yaml=config_yaml,
        config_digest=digest,
        dse_version=__version__,
        git_commit=_git_commit(),
        routing=plan["mode"],
        expert_scaling=acct["expert_scaling"],
        topk_scaling=acct["topk_scaling"],
        count_lm_head=int(bool(acct["count_lm_head"])),
        prefetch_overlap=acct["prefetch_overlap"],
        mimic_tool=int(bool(acct["mimic_tool"])),
        conventions="energy in J, time in s, bytes in B; the equations: docs/model.md",
        Conventions=cf.CONVENTIONS,
    )
    variables = {**VARIABLES, **(KV_VARIABLES if kv_mode else {}), **(requests.VARIABLES if request else {})}
    grid = Grid(dict(m=m, g=gpu, s=s, link=link, tier=tier, w=w),
                functools.partial(_outputs, routing_plan=plan, request=request, kv=kv_mode),
                {name: np.asarray(values) for name, values in dims.items()}, variables=cf.variables(variables),
                stacks={"energy": ("component", kernel.COMPONENTS), "capacity_cost": ("cost_part", capacity.COST_PARTS)},
                coord_attrs=coord_attrs, attrs=attrs, combine=_combine, combined=COMBINED)
    validate.check_grid_size(grid.points, limit)
    return _with_tables(grid, plan)
