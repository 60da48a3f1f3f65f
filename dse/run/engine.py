"""``dse.evaluate``: presets + parameters -> grid inputs (:mod:`dse.config.inputs`) -> kernel -> Dataset with units
and provenance.

Each swept parameter is a 1-D coordinate; a :class:`dse.run.grid.Grid` evaluates the kernel block by block on open
(1-D per dimension) numpy arrays, so every term is computed at the size of the dimensions it depends on. The step's
tables (everything that does not depend on rates or energies) are computed once per grid and sliced by each block.
"""
from __future__ import annotations

import functools
import json
import math

import numpy as np
import xarray as xr

from dse.model import capacity, hierarchy, kernel, namespace, requests, routing
from dse.config import presets
from dse.config import rules
from dse import cf
from dse.config import inputs
from dse.run.grid import Grid

# A data table (its rows share a shape with the other variable tables by design: one row per output variable).
VARIABLES = {  # name: (units, long_name)
    "energy_per_token": ("J", "energy per generated token (step energy / batch)"),
    "energy": ("J", "energy of one decode step, by component"),
    "step_energy": ("J", "energy of one decode step"),
    "step_latency": ("s", "latency of one decode step (= time per output token of each sequence)"),
    "copy_latency": ("s", "time spent copying offloaded experts in one step (busiest GPU)"),
    "offload_share": ("1", "fraction of step energy spent copying offloaded weights (tier read + link + HBM write)"),
    "tokens_per_s": ("tokens/s", "generated tokens per second (batch / step latency)"),
    "experts_touched": ("experts", "expected distinct routed experts touched per MoE layer"),
    "experts_fetched": ("experts", "expected experts copied from the offload tiers (warm and cold) per MoE layer"),
    "busiest_gpu_experts": ("experts", "expected touched experts on the busiest expert-parallel GPU"),
    "hbm_read_bytes": ("B", "weight and KV bytes read from HBM per step (tiled traffic)"),
    "hbm_activation_bytes": ("B", "activation bytes read from and written to HBM per step"),
    "offload_read_bytes": ("B", "bytes read from the offload (cold) tier per step"),
    "offload_read_bits": ("bit", "bits read from the offload (cold) tier per step (the Flash traffic when on Flash)"),
    "warm_read_bits": ("bit", "bits read from the warm tier per step (docs/model.md s.12)"),
    "experts_fetched_warm": ("experts", "expected experts copied from the warm tier per MoE layer"),
    "warm_tier_bytes": ("B", "expert bytes held in the warm tier"),
    "flops": ("FLOP", "floating-point operations per step"),
    "hbm_bytes": ("B", "bytes held in HBM (weights + KV cache), all GPUs"),
    "offload_tier_bytes": ("B", "expert bytes held in the offload (cold) tier"),
    "n_gpus": ("GPUs", "GPUs in the system"),
    "offload_is_flash": ("1", "1 where the experts' offload tier is Flash (read energy = flash_read_pj_per_bit)"),
    "gpu_power_w": ("W", "mean board power per GPU over the step (at most the board's power_limit_w)"),
    "power_limited": ("1", "1 where the board power limit binds (the step stretched: clocks throttled)"),
    **capacity.VARIABLES,
}
#: Variables of a KV cache on a tier (kv_placement other than hbm) and of requests (prompt_len / output_len given).
KV_VARIABLES = {
    "kv_tier_bytes": ("B", "KV-cache bytes held in the KV tier (kv_placement)"),
    "kv_tier_fill": ("1", "KV tier bytes held (KV, plus experts when they share it) / its capacity"),
}


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


def _smallest_first(indices, points) -> list:
    """``indices`` ordered by their parts' point counts over the whole grid, smallest first (ties as given)."""
    return sorted(indices, key=lambda i: points[i])


def _sum_smallest_first(parts, points) -> np.ndarray:
    """The sum of the parts, those over the fewest grid points (``points``, counted over the whole grid) added first,
    in their order otherwise: a block's full-size array is then written by one addition, not one per component
    (docs/scale.md). The order is the grid's, the same in every block (any chunking gives the same numbers);
    it differs from the sum in reporting order by rounding only (a few units in the last place)."""
    return _sum_in_order([parts[i] for i in _smallest_first(range(len(parts)), points)])


#: Most values (float64: 8 MiB) of a sum of energy parts added once over the whole grid (:func:`_heads`).
HEAD_MAX = 1_000_000


def _heads(parts: dict, points: dict) -> dict:
    """Sums added once over the whole grid (the Grid's ``prepare``): of the energy's parts (``energy_head``) and of
    its offload parts (``offload_head``), smallest parts first, as far as the sum stays within HEAD_MAX values --
    the additions of small parts that every block would otherwise repeat on its slices. Each is (sum, parts in it);
    :func:`_energy_sum` adds the rest in the same order, so the numbers are those of the whole sum."""
    heads = {}
    for key, indices in (("energy_head", range(len(parts["energy"]))), ("offload_head", _OFFLOAD)):
        terms = [parts["energy"][i] for i in _smallest_first(indices, points["energy"])]
        n = 0
        while n < len(terms) and math.prod(np.broadcast_shapes(*map(np.shape, terms[:n + 1]))) <= HEAD_MAX:
            n += 1
        if n >= 2:
            heads[key] = (_sum_in_order(terms[:n]), n)
    return heads


def _energy_sum(out: dict, points: dict, head: str, indices) -> np.ndarray:
    """The sum of the energy parts ``indices`` on a block, smallest first, from the whole grid's ``head`` sum when
    the block has one (:func:`_heads`)."""
    order = _smallest_first(indices, points["energy"])
    total, n = out.get(head) or (None, 0)
    terms = [out["energy"][i] for i in order[n:]]
    if total is None:
        return _sum_in_order(terms)
    return _sum_in_order([total, *terms]) if terms else total


#: The inputs the step's tables depend on (the rest -- rates, bandwidths, energies, tiers -- they do not).
TABLE_INPUTS = {"g": ("register_tile", "l1_kib", "l2_mib"), "s": ("tp", "dp", "ep"),
                "w": ("batch", "context_len", "weight_bytes", "act_bytes", "kv_bytes", "fused_attention",
                      "dp_attention", "hbm_cache_fraction", "routing_skew", "warm_fraction", "expert_reuse",
                      "dynamic_cache_experts")}
#: Largest table (grid points along the dimensions the tables depend on) computed once for a whole grid.
TABLE_POINTS_MAX = 250_000


def _with_tables(grid: Grid, plan: dict) -> Grid:
    """The grid with its step tables computed once over the dimensions they depend on (an input ``pre`` that
    every block slices), unless those dimensions span more than TABLE_POINTS_MAX points."""
    dims = grid.input_dims({"m": None, **TABLE_INPUTS})
    if math.prod(grid.sizes[d] for d in dims) > TABLE_POINTS_MAX:
        return grid
    whole = grid.whole()
    tables = kernel.routed_tables(whole["m"], whole["g"], whole["s"], whole["w"], plan)
    return grid.with_inputs(pre=tables)


def _outputs(m, g, s, link, tier, w, pre=None, *, routing_plan, request=False, kv=False) -> dict:
    """One block of the open grid (numpy arrays, one axis per grid dimension) -> the output variables' parts, each
    over the dims it depends on; :func:`_combine` gives the variables that sum parts (:data:`COMBINED`).

    ``energy`` is the tuple of components, each over the dims it depends on (:class:`dse.run.grid.Grid` stacks them
    along ``component`` when the variable is asked for); step energy adds them up (:func:`_combine`).
    """
    if pre is None:  # the grid's tables were too large to compute once: this block's share of them
        pre = namespace(kernel.routed_tables(m, g, s, w, routing_plan))
    out = kernel.decode_step(m, g, s, link, tier, w, pre)
    B = w.batch
    held = capacity.capacity(g, tier, out.n_gpus, out.hbm_bytes, out.tier_bytes, hierarchy.warm_capacity(w, out))
    cost = tuple(held["cost"][p] for p in capacity.COST_PARTS)
    extra = {}
    if kv:
        cost, extra = capacity.kv_capacity(tier, w, out, held, cost)
    if request:
        ndim = max((np.ndim(x) for ns in (m, g, s, link, tier, w) for x in vars(ns).values()), default=0)
        extra.update(requests.request(m, g, s, link, tier, w, routing_plan, ndim))
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
        "warm_read_bits": out.warm_bits,
        "experts_fetched_warm": out.warm_fetched,
        "warm_tier_bytes": out.warm_tier_bytes,
        "flops": out.flops,
        "hbm_bytes": out.hbm_bytes,
        "offload_tier_bytes": out.tier_bytes,
        "n_gpus": out.n_gpus,
        "offload_is_flash": tier.is_flash,
        "gpu_power_w": out.gpu_power_w,
        "power_limited": out.power_limited,
        "capacity_cost": cost,
        **{k: held[k] for k in ("hbm_capacity_bytes", "offload_capacity_bytes", "hbm_fill", "offload_fill",
                                "warm_fill", "fits")},
    }}


#: The variables that add parts up (over as many dimensions as their parts span together): the parts they need.
COMBINED = {"step_energy": ("energy", "energy_head"), "energy_per_token": ("energy", "energy_head", "batch"),
            "offload_share": ("energy", "energy_head", "offload_head"), "capacity_cost_usd": ("capacity_cost",)}
_OFFLOAD = [kernel.COMPONENTS.index(c) for c in kernel.OFFLOAD_COMPONENTS]


def _combine(out: dict, name: str, points: dict):
    """A variable of :data:`COMBINED` from a block's parts (:func:`_outputs`); ``points``: each part's point count
    over the whole grid. The step energy is added up once per block and kept with its parts (two threads adding it
    at once get the same numbers)."""
    if name == "capacity_cost_usd":
        return _sum_smallest_first(out["capacity_cost"], points["capacity_cost"])
    total = out.get("step_energy")
    if total is None:
        total = out["step_energy"] = _energy_sum(out, points, "energy_head", range(len(out["energy"])))
    if name == "step_energy":
        return total
    if name == "energy_per_token":
        return total / out["batch"]
    if name == "offload_share":  # 0 (not NaN) when the step costs no energy
        offload = _energy_sum(out, points, "offload_head", _OFFLOAD)
        floor = np.maximum(total, 1e-300)
        if isinstance(floor, np.ndarray) and floor.shape == np.broadcast_shapes(floor.shape, np.shape(offload)):
            return np.divide(offload, floor, out=floor)   # in place: one full-size array, not two
        return offload / floor
    raise KeyError(name)


def evaluate(study: str | None = None, *, model=None, system=None, accounting: str | None = None,
             chunks: dict | None = None, cfg: dict | None = None, max_grid_points: float | None = None,
             **params) -> xr.Dataset:
    """Energy, latency and capacity of one decode step over a grid of parameters (equations: docs/model.md).

    ``dse.evaluate`` is this function with its parameters spelt out (``help(dse.evaluate)``: units and ranges).
    ``study`` names a preset in dse/conf/study (model, system, workload and its grid). ``model`` / ``system``
    are preset names (a list makes a dimension). Other keyword parameters are canonical short names (see
    :data:`dse.config.params.PARAMS`) or dotted config paths; a list, tuple, range or array becomes a dimension
    with those coordinates. ``chunks`` maps dimension names to dask chunk sizes (lazy evaluation: one dask
    task per block of the grid). ``accounting`` names a preset in dse/conf/accounting (``paper``, the default,
    ``paper-fig6`` or ``refined``). ``cfg`` is an already composed root config (the CLI passes Hydra's).
    ``max_grid_points`` (default: the config's, 1e10) refuses larger grids before anything is allocated; without
    ``chunks`` the whole result must also fit in the memory available.
    """
    grid = resolve(study, model=model, system=system, accounting=accounting, cfg=cfg,
                   max_grid_points=max_grid_points, **params)
    rules.check_chunks(chunks, grid.sizes, [dim for dim, _ in grid.stacks.values()])
    if chunks is None:
        rules.check_memory(grid)
    return grid.dataset(chunks)


def resolve(study: str | None = None, *, model=None, system=None, accounting: str | None = None,
            cfg: dict | None = None, max_grid_points: float | None = None, **params) -> Grid:
    """Validate and resolve everything :func:`evaluate` needs without evaluating the grid: a :class:`Grid` (its
    dimensions, sizes, inputs and attributes) whose ``dataset(chunks)`` or ``block(box)`` evaluate it. The steps
    are those of :mod:`dse.config.inputs`."""
    args = inputs.arguments(model, system, params)
    base = inputs.base_config(study, accounting, cfg)
    limit = inputs.grid_limit(base, args.params, max_grid_points)
    scalars, dims = inputs.split(presets.flat_grid(base.get("grid")), args.params)
    tree = inputs.preset_tree(base, scalars, args)
    resolved = json.loads(json.dumps(tree, default=str))  # the config as resolved, before settings are applied
    inputs.stack_presets(tree, scalars, dims)
    inputs.apply_profile(tree, scalars, dims)
    inputs.apply_engine(tree, scalars, dims)
    inputs.apply_settings(tree, scalars, dims)
    rules.check_tree(tree)
    wl = inputs.workload(tree, scalars, dims)
    hw = inputs.hardware(tree, wl)
    m = tree["model"]
    plan = routing.plan(namespace(m), namespace(hw.s), namespace(wl.w), wl.freqs)
    variables = {**VARIABLES, **(KV_VARIABLES if hw.kv_mode else {}), **(requests.VARIABLES if wl.request else {})}
    grid = Grid(dict(m=m, g=hw.gpu, s=hw.s, link=hw.link, tier=hw.tier, w=wl.w),
                functools.partial(_outputs, routing_plan=plan, request=wl.request, kv=hw.kv_mode),
                {name: np.asarray(values) for name, values in dims.items()}, variables=cf.variables(variables),
                stacks={"energy": ("component", kernel.COMPONENTS), "capacity_cost": ("cost_part", capacity.COST_PARTS)},
                coord_attrs=inputs.coord_attrs(dims),
                attrs=inputs.provenance(study, base, scalars, dims, args, tree, resolved, plan),
                combine=_combine, combined=COMBINED, prepare=_heads)
    rules.check_grid_size(grid.points, limit)
    return _with_tables(grid, plan)
