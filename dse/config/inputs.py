# Over 400 lines: every step of resolve (arguments and presets -> the grid inputs), in the order it runs.
"""Parameters and presets -> the grid's inputs: the steps of :func:`dse.run.engine.resolve`.

The call's arguments and the composed config become validated sections (model, system, workload, accounting);
categorical presets (model, system, gpu, link, placement) are stacked leaf by leaf along their own dimension,
numeric settings land on their config leaves (a list as a 1-D coordinate), and categorical workload settings become
numeric codes the kernel multiplies by. Nothing here evaluates the grid.
"""
from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import numpy as np
import xarray as xr

from dse.config import presets
from dse.config import specs
from dse.config import rules
from dse.config.params import PARAMS, check_values, lookup
from dse.model import kernel
from dse.errors import DseError
from dse import cf

NO_TIER_BW_GBPS = 1e30          # stands in for "unlimited" (YAML .inf), keeps 0 * inf out of the kernel
#: Parameters naming presets that are stacked leaf by leaf (a list makes a dimension); not config leaves.
PRESET_PARAMS = frozenset(("system", "gpu", "link", "model", "profile", "engine"))


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
    if all(isinstance(t, (bool, int, float, np.bool_, np.number)) for t in trees):   # numbers: one array, no concat
        return xr.DataArray(np.asarray(trees), dims=[dim], coords={dim: xr.DataArray(coords, dims=[dim], name=dim)})
    return xr.concat([t if isinstance(t, xr.DataArray) else xr.DataArray(t) for t in trees],
                     dim=xr.DataArray(coords, dims=[dim], name=dim), coords="minimal", compat="override")



def prepare_model(m: dict) -> dict:
    m = dict(m)   # validated: every field of dse.config.specs.ModelSpec is there
    attention = m.pop("attention", "gqa")
    if attention not in ("gqa", "mla"):
        raise DseError(f"model.attention={attention!r}: allowed gqa or mla")
    m["is_mla"] = 1.0 if attention == "mla" else 0.0
    for k in ("name", "provenance"):
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
        wbw = t.get("write_bw_gbps")
        t["write_bw_gbps"] = t["bw_gbps"] if wbw is None else (NO_TIER_BW_GBPS if wbw == float("inf") else wbw)
        t.setdefault("read_latency_us", 0.0)
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
    current = presets.get_path(tree, path)
    if isinstance(current, dict):
        raise DseError(f"{name}: {path!r} is a section, not a value")
    presets.set_path(tree, path, value)


def _tier_record(key: str, tiers: dict) -> dict:
    """One tier's constants, flattened once for every use (the experts' tier, the KV cache's, the warm tier): per
    device, ``devices_per_gpu`` devices per GPU; idle power per GPU where the tier is not always on (always-on
    tiers are charged once, ``always_on_w_per_gpu``); ``tier_id`` its index + 1 (0 is HBM)."""
    t = tiers[key]
    n = t["devices_per_gpu"]
    return dict(read_pj_per_bit=t["read_pj_per_bit"], bw_gbps=t["bw_gbps"], write_bw_gbps=t["write_bw_gbps"],
                write_pj_per_bit=t["read_pj_per_bit"] if t.get("write_pj_per_bit") is None else t["write_pj_per_bit"],
                devices_per_gpu=n, capacity_gb=t["capacity_gb"], usd_per_gb=t["usd_per_gb"],
                idle_w_per_gpu=t["idle_w"] * n * (1 - t["always_on"]), is_flash=t["is_flash"],
                pe_cycles=0.0 if t.get("pe_cycles") is None else t["pe_cycles"], read_latency_us=t["read_latency_us"],
                tier_id=1.0 + sorted(tiers).index(key))


#: Fields of a tier the kernel reads per device (``x devices_per_gpu`` where a workload field wants the GPU's).
_PER_DEVICE = ("bw_gbps", "write_bw_gbps", "capacity_gb")


def _per_gpu(record: dict, prefix: str, fields: tuple) -> dict:
    """``fields`` of a :func:`_tier_record` as workload fields ``prefix + name``, per GPU."""
    n = record["devices_per_gpu"]
    return {prefix + f: record[f] * n if f in _PER_DEVICE else record[f] for f in fields}


#: The experts' tier (the kernel's ``tier``): per device, as the copy times and capacity read it.
_EXPERT_TIER_FIELDS = ("read_pj_per_bit", "bw_gbps", "devices_per_gpu", "idle_w_per_gpu", "is_flash", "capacity_gb",
                       "usd_per_gb", "tier_id", "read_latency_us")


def _tier_for(placement: str, tiers: dict) -> dict:
    if placement == "hbm":
        return dict(offloaded=0.0, read_pj_per_bit=0.0, bw_gbps=NO_TIER_BW_GBPS, devices_per_gpu=1,
                    idle_w_per_gpu=0.0, is_flash=0.0, capacity_gb=0.0, usd_per_gb=0.0, tier_id=0.0,
                    read_latency_us=0.0)
    if placement not in tiers:
        raise DseError(f"placement={placement!r} unknown: allowed {['hbm', *sorted(tiers)]}")
    record = _tier_record(placement, tiers)
    return dict(offloaded=1.0, **{f: record[f] for f in _EXPERT_TIER_FIELDS})


def _kv_tier_for(kv_placement: str, tiers: dict) -> dict:
    """The KV cache's tier (dse.model.requests, docs/model.md "KV cache on a tier") as workload fields."""
    if kv_placement == "hbm":
        return {k: v for k, v in kernel.WORKLOAD_FIELDS.items() if k.startswith("kv_")}
    if kv_placement not in tiers:
        raise DseError(f"kv_placement={kv_placement!r} unknown: allowed {['hbm', *sorted(tiers)]}")
    t = tiers[kv_placement]
    if t["is_flash"] and (not t.get("pe_cycles") or t.get("write_pj_per_bit") is None):
        raise DseError(f"system.tiers.{kv_placement}: a Flash tier holding KV needs pe_cycles (rated program/erase "
                       "cycles, > 0) and write_pj_per_bit")
    return dict(kv_offloaded=1.0, **_per_gpu(_tier_record(kv_placement, tiers), "kv_", (
        "read_pj_per_bit", "write_pj_per_bit", "bw_gbps", "write_bw_gbps", "capacity_gb", "is_flash", "pe_cycles",
        "usd_per_gb", "idle_w_per_gpu", "tier_id")))


def _names(x) -> list | None:
    """A categorical dimension's values (a list or a DataArray of names) as a list; None for one value."""
    if isinstance(x, xr.DataArray):
        return [v.item() if hasattr(v, "item") else v for v in np.asarray(x.values).ravel()] if x.ndim else None
    return list(x) if isinstance(x, (list, tuple)) else None


def _warm_tier_for(w: dict, placement, tiers: dict) -> dict:
    """The warm tier (docs/model.md s.12.1) as workload fields: its read energy, bandwidth, idle power, capacity,
    price and link (``warm_link``: shared with the offload link, or a link preset of its own). Either may be a
    dimension (a list of names): the tier's fields and the link's are stacked along ``warm_tier`` / ``warm_link``."""
    name, link = w.pop("warm_tier"), w.pop("warm_link")
    if isinstance(name, xr.DataArray) and not name.ndim:
        name = name.item()
    if isinstance(link, xr.DataArray) and not link.ndim:
        link = link.item()
    placements = placement if isinstance(placement, list) else [placement]
    names, links = _names(name), _names(link)
    if name is None:
        if np.any(_values(w["warm_fraction"]) > 0):
            raise DseError("warm_fraction > 0 needs warm_tier: allowed a key of system.tiers "
                           f"({', '.join(sorted(tiers))}) other than placement")
        return {}                                  # the kernel's neutral values (dse.model.hierarchy.NEUTRAL)
    if not isinstance(placement, list) and placement == "hbm":   # a dimension may mix hbm with tiers
        raise DseError(f"warm_tier={name if names is None else names!r} with placement=hbm: every expert is in HBM, "
                       "nothing would be read from a warm tier; set placement to a tier, or warm_tier to null")
    for n in names if names is not None else [name]:
        if n is None or not isinstance(n, str) or n not in tiers:
            raise DseError(f"warm_tier={n!r} is not a tier of the system: allowed {', '.join(sorted(tiers))}")
        if n in placements:
            raise DseError(f"warm_tier={n!r} equals placement: the warm tier must differ from the cold tier")

    def tier_fields(n: str) -> dict:
        return _per_gpu(_tier_record(n, tiers), "warm_", ("read_pj_per_bit", "bw_gbps", "idle_w_per_gpu",
                                                          "capacity_gb", "usd_per_gb"))

    def link_fields(lk: str) -> dict:
        own = presets.preset("link", lk) if lk != "shared" else dict(bw_gbps=NO_TIER_BW_GBPS, pj_per_bit=0.0)
        return dict(warm_link_shared=1.0 if lk == "shared" else 0.0, warm_link_bw_gbps=own["bw_gbps"],
                    warm_link_pj_per_bit=own["pj_per_bit"])

    out = (_stack([tier_fields(n) for n in names], "warm_tier", names) if names is not None else tier_fields(name))
    out.update(_stack([link_fields(lk) for lk in links], "warm_link", links) if links is not None
               else link_fields(link))
    return out


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


def apply_profile(tree: dict, scalars: dict, dims: dict) -> None:
    """``profile``: a request profile preset (dse/conf/profile) sets prompt_len and output_len unless they are given;
    a list of profiles is a dimension."""
    names = dims.get("profile", scalars.get("profile", tree["workload"].get("profile")))  # a config's workload.profile
    if names is None:
        return
    profiles = [presets.preset("profile", p) for p in (names if isinstance(names, list) else [names])]
    for key in ("prompt_len", "output_len"):
        if key in scalars or key in dims:
            continue
        values = [p[key] for p in profiles]
        tree["workload"][key] = (xr.DataArray(values, dims=["profile"], coords={"profile": names})
                                 if isinstance(names, list) else values[0])


def apply_engine(tree: dict, scalars: dict, dims: dict) -> None:
    """``engine``: a serving-engine preset (dse/conf/engine) sets the system's engine constants (ENGINE_FIELDS)
    unless they are given; a list of engines is a dimension; unset, the system preset's own stand."""
    from dse.config.specs import ENGINE_FIELDS

    configured = tree["workload"].pop("engine", None)     # a config's workload.engine (never a workload field)
    names = dims.get("engine", scalars.get("engine", configured))
    if names is None:
        return
    engines = [presets.preset("engine", e) for e in (names if isinstance(names, list) else [names])]
    for key in ENGINE_FIELDS:
        if key in scalars or key in dims:
            continue
        values = [e[key] for e in engines]
        tree["system"][key] = (xr.DataArray(values, dims=["engine"], coords={"engine": names})
                               if isinstance(names, list) else values[0])
        tree["system"].setdefault("provenance", {})[key] = (
            {"source": f"engine presets {', '.join(names)}", "evidence": "-"} if isinstance(names, list)
            else engines[0]["provenance"].get(key, {}))


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



def _as_da(v) -> xr.DataArray:
    return v if isinstance(v, xr.DataArray) else xr.DataArray(v)


def split(study_grid: dict, params: dict):
    """Separate scalar settings from dimensions; expand ranges; validate every value."""
    scalars, dims = {}, {}
    merged = {**{k: v for k, v in presets.flat_grid(study_grid).items() if k not in params}, **params}
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
                presets.check_preset(param.preset_group, v)
        (dims if isinstance(value, list) else scalars)[name] = value
    return scalars, dims




# ----------------------------------------------------------------------------------- the steps of resolve
def arguments(model, system, params: dict) -> SimpleNamespace:
    """The call's arguments: measured routing frequencies (one vector, never a dimension), a parsed model spec
    (``dse.from_hf_config``), and the parameters with model / system preset names among them."""
    params = dict(params)
    frequencies = params.pop("routing_frequencies", None)
    model_spec = None
    if isinstance(model, dict):  # a parsed spec, e.g. dse.from_hf_config(path)
        model_spec, model = dict(model), None
        rules.check_required_model(model_spec, f"model {model_spec.get('name', '')!r}".replace(" ''", ""))
    params.update({k: v for k, v in (("model", model), ("system", system)) if v is not None})
    seen: dict = {}
    for key in params:          # one parameter given twice (its short name and its path) would keep one silently
        try:
            path = lookup(key)[0] if key not in ("model", "system") else key
        except DseError:
            continue            # an unknown name: refused with a suggestion where the parameters are split
        if path in seen:
            raise DseError(f"{key} and {seen[path]} set the same parameter ({path}): give it once")
        seen[path] = key
    return SimpleNamespace(params=params, frequencies=frequencies, model_spec=model_spec)


def base_config(study, accounting, cfg) -> dict:
    """The composed root config: the study and accounting presets over dse/conf/config.yaml, or a given config."""
    if accounting is not None:
        presets.check_preset("accounting", accounting)
    if cfg is not None:
        cfg = json.loads(json.dumps(cfg)) if isinstance(cfg, dict) else presets.OmegaConf.to_container(cfg, resolve=True)
        if accounting is not None:                  # a named accounting replaces the given config's
            cfg["accounting"] = presets.compose(overrides=(f"accounting={accounting}",))["accounting"]
        return cfg
    if study is not None:
        presets.check_preset("study", study)
    return presets.compose(study=study, overrides=(f"accounting={accounting}",) if accounting else ())


def grid_limit(base: dict, params: dict, max_grid_points) -> float:
    """The largest grid allowed; a grid whose size bound exceeds it is refused before anything is allocated."""
    limit = rules.grid_limit(base.get("max_grid_points") if max_grid_points is None else max_grid_points)
    rules.check_grid_size(rules.grid_size_bound({**presets.flat_grid(base.get("grid")), **params}), limit)
    return limit


def preset_tree(base: dict, scalars: dict, args: SimpleNamespace) -> dict:
    """The model, system, workload and accounting sections, validated, with scalar model / system presets."""
    tree = {k: specs.validated(k, base[k]) for k in ("model", "system", "workload", "accounting")}
    for name in ("model", "system"):
        if name in scalars:
            tree[name] = presets.preset(name, scalars[name])
    if args.model_spec is not None:
        tree["model"] = specs.validated("model", args.model_spec)
    if args.frequencies is not None:
        f = args.frequencies
        if isinstance(f, (str, bytes, dict)) or np.ndim(f) != 1:
            raise DseError("workload.routing_frequencies: expected a flat list of per-expert frequencies")
        tree["workload"]["routing_frequencies"] = [v.item() if hasattr(v, "item") else v for v in f]
    return tree


def stack_presets(tree: dict, scalars: dict, dims: dict) -> None:
    """Systems (with their GPU and link presets inside), then models: stacked along their dimensions."""
    sys_variants = [presets.preset("system", v) for v in dims["system"]] if "system" in dims else [tree["system"]]
    for name, part in (("gpu", "gpu"), ("link", "offload_link")):
        for sv in sys_variants:
            if name in scalars:
                sv[part] = presets.preset(name, scalars[name])
            elif name in dims:
                sv[part] = _stack([presets.preset(name, v) for v in dims[name]], name, dims[name])
    sys_variants = [_prepare_system(sv) for sv in sys_variants]
    tree["system"] = _stack(sys_variants, "system", dims["system"]) if "system" in dims else sys_variants[0]
    models = [presets.preset("model", v) for v in dims["model"]] if "model" in dims else [tree["model"]]
    models = [prepare_model(mv) for mv in models]
    tree["model"] = _stack(models, "model", dims["model"]) if "model" in dims else models[0]


#: Workload settings resolved to numeric codes later (by :func:`workload`), kept as given until then.
CATEGORICAL = ("workload.placement", "workload.offload_path", "workload.attention_parallel", "workload.kv_placement",
               "workload.boundary", "workload.compute_precision", "workload.batching")


def apply_settings(tree: dict, scalars: dict, dims: dict) -> None:
    """Numeric and workload settings onto their leaves (explicit settings win over presets); then the
    accounting's scaling rules for swept expert counts."""
    ref = {k: tree["model"][k] for k in ("n_experts", "top_k", "d_expert")}
    for name, value in list(scalars.items()) + list(dims.items()):
        if name in PRESET_PARAMS:
            continue
        path, _ = lookup(name)
        if path in CATEGORICAL:
            tree["workload"][path.split(".")[1]] = value
        else:
            _set_leaf(tree, name, path, _data_array(name, value) if isinstance(value, list) else value)
    acct, m = tree["accounting"], tree["model"]
    d_expert_given = "d_expert" in scalars or "d_expert" in dims
    if acct["expert_scaling"] == "keep_total_params" and not d_expert_given:
        m["d_expert"] = ref["d_expert"] * ref["n_experts"] / np.maximum(m["n_experts"], 1)
    if acct["topk_scaling"] == "keep_active_params" and not d_expert_given:
        m["d_expert"] = m["d_expert"] * ref["top_k"] / np.maximum(m["top_k"], 1)


def workload(tree: dict, scalars: dict, dims: dict) -> SimpleNamespace:
    """The workload's numeric fields: categorical settings as codes, the accounting's switches, requests."""
    w, acct = dict(tree["workload"]), tree["accounting"]
    request = _request_fields(w, tree["model"], scalars, dims)
    kv_placement, freqs, placement = w.pop("kv_placement"), w.pop("routing_frequencies", None), w.pop("placement")
    w["staged"] = _categorical("offload_path", w.pop("offload_path"), {"staged": 1.0, "direct": 0.0})
    for flag in ("prefetch", "fused_attention"):
        w[flag] = _as_da(w[flag]) * 1.0 if isinstance(w[flag], (bool, xr.DataArray)) else float(w[flag])
    w["dp_attention"] = rules.dp_attention(w.pop("attention_parallel"), tree["model"], tree["system"])
    w["continuous"] = _categorical("batching", w.pop("batching"), {"continuous": 1.0, "lockstep": 0.0})
    boundary = w.pop("boundary")
    w["boundary_node"] = _categorical("boundary", boundary, {"gpu": 0.0, "node": 1.0, "facility": 1.0})
    w["boundary_facility"] = _categorical("boundary", boundary, {"gpu": 0.0, "node": 0.0, "facility": 1.0})
    w["compute_bits"] = _categorical("compute_precision", w.pop("compute_precision"),
                                     {"auto": 0.0, "bf16": 16.0, "fp8": 8.0, "fp4": 4.0})
    w["count_lm_head"] = 1.0 if acct["count_lm_head"] else 0.0
    w["mimic_tool"] = 1.0 if acct["mimic_tool"] else 0.0
    w["overlap_step"] = 1.0 if acct["prefetch_overlap"] == "step" else 0.0
    w["overlap_stage"] = 1.0 if acct["prefetch_overlap"] == "expert_stage" else 0.0
    for k, v in kernel.WORKLOAD_FIELDS.items():     # the kernel's fields beyond the spec, as a step in HBM
        w.setdefault(k, v)
    return SimpleNamespace(w=w, request=request, kv_placement=kv_placement, freqs=freqs, placement=placement)


def hardware(tree: dict, wl: SimpleNamespace) -> SimpleNamespace:
    """The system's GPU, offload link and the experts' tier (a list of placements: a dimension); a KV cache on a
    tier adds that tier's constants to the workload."""
    s = tree["system"]
    tiers = s.pop("tiers")
    placement, kv_placement = wl.placement, wl.kv_placement
    if isinstance(placement, list):
        tier = _stack([_tier_for(p, tiers) for p in placement], "placement", placement)
    else:
        tier = _tier_for(placement, tiers)
    wl.w.update(_warm_tier_for(wl.w, placement, tiers))
    s["always_on_w_per_gpu"] = sum(t["always_on"] * t["idle_w"] * t["devices_per_gpu"] for t in tiers.values())
    gpu, link = s.pop("gpu"), s.pop("offload_link")
    kv_mode = kv_placement != "hbm"
    if kv_mode:
        kv = ([_kv_tier_for(p, tiers) for p in kv_placement] if isinstance(kv_placement, list)
              else _kv_tier_for(kv_placement, tiers))
        wl.w.update(_stack(kv, "kv_placement", kv_placement) if isinstance(kv, list) else kv)
    return SimpleNamespace(s=s, gpu=gpu, link=link, tier=tier, kv_mode=kv_mode)


def coord_attrs(dims: dict) -> dict:
    """Units and long names of the grid's coordinates (CF)."""
    out = {name: cf.attrs(PARAMS[name].units if name in PARAMS else cf.path_unit(name),
                          PARAMS[name].doc if name in PARAMS else name) for name in dims}
    out.update(cf.STACK_COORDS)
    return out


def provenance(study, base: dict, scalars: dict, dims: dict, args, tree: dict, resolved: dict, plan: dict) -> dict:
    """The dataset's attributes: the resolved config (with every preset's provenance), the settings, their digest,
    the code version and the accounting."""
    from dse.provenance import git_commit, version

    settings = {k: (v.values.tolist() if isinstance(v, xr.DataArray) else v) for k, v in {**scalars, **dims}.items()}
    if args.frequencies is not None:
        settings["routing_frequencies"] = tree["workload"]["routing_frequencies"]
    if args.model_spec is not None:
        settings["model"] = args.model_spec
    config_yaml = presets.to_yaml(resolved)
    digest = hashlib.sha256((config_yaml + json.dumps(settings, sort_keys=True, default=str)).encode()).hexdigest()
    acct = tree["accounting"]
    model = args.model_spec.get("name", "") if args.model_spec else scalars.get("model", base["model"].get("name", ""))
    return dict(
        title="dse decode-step energy / latency / capacity", study=study or "", model=str(model),
        system=str(scalars.get("system", base["system"].get("name", ""))),
        settings=json.dumps(settings, default=str), config_yaml=config_yaml, config_digest=digest,
        dse_version=version(), git_commit=git_commit(), routing=plan["mode"],
        expert_scaling=acct["expert_scaling"], topk_scaling=acct["topk_scaling"],
        count_lm_head=int(bool(acct["count_lm_head"])), prefetch_overlap=acct["prefetch_overlap"],
        mimic_tool=int(bool(acct["mimic_tool"])),
        conventions="energy in J, time in s, bytes in B; the equations: docs/model.md", Conventions=cf.CONVENTIONS,
    )
