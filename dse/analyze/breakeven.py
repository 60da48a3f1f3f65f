"""Break-even analysis: how low must Flash read energy go (docs/model.md section 5), and other break-even values.

With everything else fixed, the energy per token of a configuration whose experts sit on a Flash tier is affine in
that tier's read energy ``e`` (pJ/bit): ``E_target(e) = E_target(0) + b e``, ``b`` the Flash bits read per
generated token (latency does not depend on pJ/bit). Against a reference energy per token ``E_ref`` (the same
model with its experts in HBM or DDR, or another model / system on the same workload grid) the break-even Flash
read energy is therefore, on every grid point at once,

    e* = (E_ref - E_target(0)) / b

Flash breaks even only where ``e* > 0``; elsewhere even free Flash reads cost more than the reference, and the
``reason`` names the largest positive term of ``E_target(0) - E_ref`` (the static energy of the longer step, the
HBM write of staged copies, the link, ...). ``improvement_needed = e_today / e*``.

Break-even values of parameters that enter non-linearly (link bandwidth, HBM cache fraction, batch) come from the
vectorized bisection of :mod:`dse.analyze.bisection`.
"""
from __future__ import annotations

import json

import numpy as np
import xarray as xr
import yaml

from dse import cf
from dse.config import presets
from dse.config.params import lookup
from dse.errors import DseError

PJ = 1e-12
FLASH = "flash_read_pj_per_bit"
#: Dimensions that describe the served workload: a reference must share them with the target.
WORKLOAD_DIMS = ("batch", "context_len", "weight_bytes", "kv_bytes")
#: Why Flash never breaks even, by the energy component that exceeds the reference most at zero Flash energy.
REASONS = {
    "hbm_weights": "HBM weight reads",
    "hbm_kv": "KV-cache reads",
    "offload_read": "Flash reads",
    "offload_link": "offload link energy",
    "offload_hbm_write": "HBM write of staged copies",
    "compute": "compute",
    "onchip": "on-chip traffic",
    "background": "static energy of the longer step",
}
STATIC_POWER_REASON = "higher static power"   # background excess although the target's step is not longer
NO_FLASH_REASON = "no Flash traffic"
UNFIT_REASON = "does not fit"                 # target or reference over capacity (fits false): skipped
SPEC_KEYS = ("study", "model", "system", "cfg", "chunks", "accounting")

# A data table (its rows share a shape with the other variable tables by design: one row per output variable).
VARIABLES = {  # name: (units, long_name)
    "breakeven_flash_read_pj_per_bit": ("pJ/bit", "break-even Flash read energy e* (target energy = reference)"),
    "breaks_even": ("bool", "Flash breaks even at some positive read energy (e* > 0)"),
    "improvement_needed": ("1", "factor by which Flash read energy must fall from today's value (today / e*)"),
    "reason": ("", "why Flash never breaks even: largest excess of the target at zero Flash energy"),
    "today_flash_read_pj_per_bit": ("pJ/bit", "today's Flash read energy of the target's tier"),
    "target_energy_per_token_at_zero": ("J", "target energy per token with Flash reads free (e = 0)"),
    "reference_energy_per_token": ("J", "reference energy per generated token"),
    "flash_read_bits_per_token": ("bit", "bits read from Flash per generated token (the slope of E(e), per pJ)"),
    "excess_energy_per_token": ("J", "target at e = 0 minus reference, per token, by component"),
    "fits": ("1", "target and reference both fit their capacity (docs/model.md s.7); elsewhere e* is not reported"),
}


# ------------------------------------------------------------------------------------------ evaluation
def is_list(v) -> bool:
    return isinstance(v, (list, tuple, range, np.ndarray)) or (isinstance(v, dict) and "num" in v)


def check_spec(spec, side: str) -> None:
    if not isinstance(spec, (dict, xr.Dataset)):
        raise DseError(f"{side}: expected a dict of dse.evaluate arguments or an evaluated Dataset, "
                       f"got {type(spec).__name__}")
    if isinstance(spec, xr.Dataset):
        missing = [v for v in ("energy", "energy_per_token", "offload_read_bits", "step_latency", "tokens_per_s")
                   if v not in spec]
        if missing:
            raise DseError(f"{side}: the Dataset lacks {missing[0]!r}: pass a dse.evaluate result")


def _spec_params(spec: dict, params: dict) -> tuple[dict, dict]:
    """(dse.evaluate keyword arguments, parameter settings) for one side: its own settings win over shared."""
    merged = {**params, **{k: v for k, v in spec.items() if k not in SPEC_KEYS}}
    kwargs = {k: spec[k] for k in ("chunks",) if spec.get(k) is not None}
    # the accounting, like dse.evaluate's: the side's own, else the shared one
    accounting = spec.get("accounting", merged.pop("accounting", None))
    if accounting is not None:
        kwargs["accounting"] = accounting
    for k in ("model", "system"):
        if spec.get(k) is not None:
            merged[k] = spec[k]
    for name in merged:
        lookup(name)  # unknown names fail here, one line
    return kwargs, merged


def base_config(spec: dict) -> dict:
    cfg = spec.get("cfg")
    if cfg is None:
        if spec.get("study") is not None:
            presets.check_preset("study", spec["study"])
        return presets.compose(study=spec.get("study"))
    if not isinstance(cfg, dict):
        cfg = presets.OmegaConf.to_container(cfg, resolve=True)
    return json.loads(json.dumps(cfg))


def evaluate_side(spec, params: dict, side: str, *, target: bool, extra: dict | None = None) -> xr.Dataset:
    """Evaluate one side (a dict spec), or take it as is (a Dataset)."""
    if isinstance(spec, xr.Dataset):
        if params or extra:
            raise DseError(f"{side} is an evaluated Dataset: shared parameters {sorted({**params, **(extra or {})})} "
                           f"cannot be applied to it; pass {side} as a dict of dse.evaluate arguments")
        return spec
    from dse.run.engine import evaluate

    cfg = base_config(spec)
    kwargs, merged = _spec_params(spec, params)
    if target:
        if FLASH in merged and is_list(merged[FLASH]):
            raise DseError(f"target.{FLASH}: breakeven solves for the Flash read energy; give one value "
                           "(today's) or none")
        # a study's Flash sweep is what the closed form replaces: evaluate at the configured (today's) energy
        (cfg.get("grid") or {}).pop(FLASH, None)
    merged.update(extra or {})
    return evaluate(spec.get("study"), cfg=cfg, **kwargs, **merged)


def _tokens_per_step(ds: xr.Dataset) -> xr.DataArray:
    """Tokens generated per step (= batch) on the dataset's grid."""
    return ds.tokens_per_s * ds.step_latency


def _placement_of(ds: xr.Dataset):
    if "placement" in ds.coords:
        return ds.placement.values.tolist()
    settings = json.loads(ds.attrs.get("settings") or "{}")
    if "placement" in settings:
        return settings["placement"]
    try:
        return yaml.safe_load(ds.attrs.get("config_yaml") or "")["workload"]["placement"]
    except (TypeError, KeyError, yaml.YAMLError):
        return "?"


def _flash_only(ds: xr.Dataset) -> xr.Dataset:
    """Keep the target's Flash placements; one-line error when nothing of it reads from Flash."""
    if "offload_is_flash" not in ds:
        raise DseError("target: the Dataset lacks 'offload_is_flash': pass a dse.evaluate result")
    flash = ds.offload_is_flash > 0
    if "placement" in flash.dims:
        keep = flash.any([d for d in flash.dims if d != "placement"]).values
        if not keep.any():
            raise DseError(f"target has no Flash traffic: placement {list(ds.placement.values)} holds no Flash tier; "
                           "place the experts on a Flash tier (e.g. placement=ssd or hbf)")
        ds = ds.sel(placement=ds.placement.values[keep])
        flash = ds.offload_is_flash > 0
    if not bool(flash.all()):
        raise DseError(f"target has no Flash traffic: its experts are placed in {_placement_of(ds)!r}, not a Flash "
                       "tier; place them on a Flash tier (e.g. placement=ssd or hbf)")
    if not bool((ds.offload_read_bits > 0).any()):
        raise DseError("target has no Flash traffic: offload_read_bits is 0 on every grid point "
                       "(hbm_cache_fraction = 1?)")
    return ds


def on_grid(ref: xr.Dataset, tgt: xr.Dataset) -> xr.Dataset:
    """Check that the reference lies on the target's grid; reference-only dimensions become reference_<dim>."""
    for dim in WORKLOAD_DIMS:
        if dim in tgt.dims and dim not in ref.dims:
            raise DseError(f"reference is not on the target's grid: it lacks dimension {dim!r} "
                           f"(target {dim} = {tgt[dim].values.tolist()})")
    for dim in ref.dims:
        if dim in tgt.dims and dim != "component":
            a, b = np.asarray(tgt[dim].values), np.asarray(ref[dim].values)
            same = a.shape == b.shape and (np.array_equal(a, b) if a.dtype.kind not in "fc" else np.allclose(a, b, 1e-12, 0))
            if not same:
                raise DseError(f"reference is not on the target's grid: {dim} = {b.tolist()} "
                               f"but the target has {dim} = {a.tolist()}")
            ref = ref.assign_coords({dim: tgt[dim].values})
    return cf.relabel_dims(ref, {d: f"reference_{d}" for d in ref.dims if d not in tgt.dims and d != "component"})


# -------------------------------------------------------------------------------------------- closed form
def _today(tgt: xr.Dataset, today_pj_per_bit) -> xr.DataArray:
    if today_pj_per_bit is not None:
        if isinstance(today_pj_per_bit, bool) or not isinstance(today_pj_per_bit, (int, float)) or not today_pj_per_bit > 0:
            raise DseError(f"today_pj_per_bit={today_pj_per_bit!r}: allowed a number > 0")
        return xr.DataArray(float(today_pj_per_bit))
    bits = tgt.offload_read_bits
    today = (tgt.energy.sel(component="offload_read", drop=True) / bits.where(bits > 0)) / PJ
    for dim in list(today.dims):  # keep only the dimensions along which today's value really varies
        hi, lo = today.max(dim), today.min(dim)  # NaN: no Flash traffic anywhere along dim
        if bool(((np.abs(hi - lo) <= 1e-9 * np.abs(hi)) | hi.isnull()).all()):
            today = hi
    return today


def _reason(excess: xr.DataArray, breaks: xr.DataArray, no_flash: xr.DataArray, longer: xr.DataArray,
            unfit: xr.DataArray | None = None):
    comps = [str(c) for c in excess.component.values]
    labels = np.array([REASONS.get(c, c) for c in comps] + [STATIC_POWER_REASON, NO_FLASH_REASON, "", UNFIT_REASON])
    idx = excess.fillna(-np.inf).argmax("component")
    is_bg = idx == comps.index("background") if "background" in comps else xr.zeros_like(idx, dtype=bool)
    idx = xr.where(is_bg & ~longer, len(comps), idx)
    idx = xr.where(no_flash, len(comps) + 1, idx)
    idx = xr.where(breaks, len(comps) + 2, idx)
    if unfit is not None:
        idx = xr.where(unfit, len(comps) + 3, idx)
    idx = idx.compute()
    return xr.DataArray(labels[idx.values], dims=idx.dims, coords=idx.coords)


def _fits(tgt: xr.Dataset, ref: xr.Dataset) -> xr.DataArray:
    """Both sides fit their capacity (a Dataset without ``fits``, e.g. an older file, counts as fitting)."""
    fit = xr.DataArray(True)
    for side in (tgt, ref):
        if "fits" in side:
            fit = fit & side["fits"].astype(bool)
    return fit


def closed_form(tgt: xr.Dataset, ref: xr.Dataset, today_pj_per_bit=None, *, include_unfit: bool = False) -> xr.Dataset:
    """e* and the reasons from an evaluated target (experts on Flash) and a reference on the same grid.

    Points where the target or the reference does not fit (``fits`` false) get no e* (NaN), ``breaks_even``
    false and the reason "does not fit", unless ``include_unfit``."""
    if FLASH in tgt.dims:
        if today_pj_per_bit is None:
            raise DseError(f"target: {FLASH} is a dimension of the target Dataset; breakeven solves for it: "
                           "evaluate the target at today's Flash energy or give today_pj_per_bit")
        tgt = tgt.isel({FLASH: 0}, drop=True)  # E(0) and the slope do not depend on it (checked below)
    bt, br = _tokens_per_step(tgt), _tokens_per_step(ref)
    bits = tgt.offload_read_bits / bt
    comp_t = tgt.energy / bt
    comp_t = xr.where(comp_t.component == "offload_read", 0.0, comp_t)  # Flash reads free: E_target(0)
    e0 = tgt.energy_per_token - tgt.energy.sel(component="offload_read", drop=True) / bt
    e_ref = ref.energy_per_token
    excess = comp_t - ref.energy / br
    has_flash = bits > 0
    e_star = ((e_ref - e0) / bits.where(has_flash)) / PJ
    fit = _fits(tgt, ref)
    unfit = None if include_unfit else ~fit
    if unfit is not None:
        e_star = e_star.where(~unfit)
    breaks = (e_star > 0).fillna(False) & has_flash
    today = _today(tgt, today_pj_per_bit)
    improvement = xr.where(breaks, today / e_star.where(breaks), np.inf)
    longer = tgt.step_latency > ref.step_latency

    ds = xr.Dataset({
        "breakeven_flash_read_pj_per_bit": e_star,
        "breaks_even": breaks,
        "improvement_needed": improvement,
        "reason": _reason(excess, breaks, ~has_flash, longer, unfit),
        "today_flash_read_pj_per_bit": today,
        "target_energy_per_token_at_zero": e0,
        "reference_energy_per_token": e_ref,
        "flash_read_bits_per_token": bits,
        "excess_energy_per_token": excess,
        "fits": fit,
    })
    ds = ds.drop_vars([c for c in ds.coords if c not in ds.dims])
    for name, (units, long_name) in VARIABLES.items():
        ds[name].attrs.update(cf.attrs(units, long_name))
    return ds.compute()


def _side_attrs(ds: xr.Dataset, side: str) -> dict:
    return {f"{side}_{k}": ds.attrs.get(k, "") for k in ("study", "model", "system", "settings", "config_digest",
                                                           "config_yaml")}


def breakeven(target, reference, *, today_pj_per_bit: float | None = None, include_unfit: bool = False,
              **params) -> xr.Dataset:
    """Break-even Flash read energy of ``target`` against ``reference`` on every grid point (closed form).

    ``target`` and ``reference`` are dicts of :func:`dse.evaluate` arguments (``study``, ``model``, ``system``,
    ``cfg``, ``chunks``, ``accounting`` and parameter settings) or already evaluated Datasets; ``params`` are shared grid
    parameters applied to both dict sides (a side's own settings win). A Flash sweep in the target's study grid
    is dropped (the closed form replaces it). Target placements that are not Flash tiers are left out.
    Reference dimensions the target lacks are renamed ``reference_<dim>``; shared dimensions must carry the same
    coordinates, and the reference must share the target's workload dimensions (batch, context_len, ...).
    ``today_pj_per_bit`` overrides today's Flash read energy (default: the target tier's configured value).
    Grid points where the target or the reference does not fit its capacity (``fits``) are skipped (e* NaN,
    reason "does not fit") unless ``include_unfit``.
    """
    check_spec(target, "target")
    check_spec(reference, "reference")
    if "placement" in params:
        raise DseError("placement is not a shared parameter: set it in target (a Flash tier) and in reference")
    if today_pj_per_bit is not None:
        _today(xr.Dataset(), today_pj_per_bit)
    tgt = _flash_only(evaluate_side(target, params, "target", target=True))
    ref = on_grid(evaluate_side(reference, params, "reference", target=False), tgt)
    ds = closed_form(tgt, ref, today_pj_per_bit, include_unfit=include_unfit)
    today = ds.today_flash_read_pj_per_bit
    from dse.provenance import git_commit, version

    ds.attrs.update(
        title="dse break-even Flash read energy",
        definition="e* = (E_reference - E_target(e=0)) / Flash bits per token; energy per generated token",
        today_flash_read_pj_per_bit=(float(today) if today.ndim == 0 else json.dumps(
            {str(k): v for k, v in today.to_series().to_dict().items()}, default=str)),
        **_side_attrs(tgt, "target"), **_side_attrs(ref, "reference"),
        dse_version=version(), git_commit=git_commit(),
        conventions="energy in J per generated token, Flash energy in pJ/bit; see docs/model.md section 5",
        Conventions=cf.CONVENTIONS,
    )
    return ds


def energy_ratio(be: xr.Dataset, flash_read_pj_per_bit) -> xr.DataArray:
    """Target / reference energy per token at the given Flash read energies, from a break-even Dataset.

    Uses the affine form E_target(e) = E_target(0) + b e; ratio 1 is the parity line (reached at e = e*).
    """
    e = xr.DataArray(np.asarray(flash_read_pj_per_bit, dtype=float), dims=[FLASH],
                     attrs={"units": "pJ/bit", "long_name": "Flash read energy"})
    e = e.assign_coords({FLASH: e.values})
    ratio = (be.target_energy_per_token_at_zero + be.flash_read_bits_per_token * e * PJ) / be.reference_energy_per_token
    return cf.named(ratio, "energy_ratio").assign_attrs(units="1", long_name="target / reference energy per token")


__all__ = ["breakeven", "closed_form", "energy_ratio", "REASONS"]
