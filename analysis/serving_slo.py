"""Serving under latency targets: the largest batch per TPOT target and the energy per request there, for expert
placements HBM / DDR / SSD / HBF, request profiles and models (dse.max_batch; docs/model.md "Requests").

    python -m analysis.serving_slo [out_dir]     # results/figures/serving_slo.{png,svg} + results/serving_slo.nc

Writes the study as NetCDF (dims model x profile x placement x tpot_slo_s) next to the figure directory and prints,
per model and profile, the TPOT target from which each offloaded placement serves it within 25 % of HBM's energy per
output token at its own largest batch, or where HBM alone cannot serve the target at all ("stops being harmful"), or
that it never does in the range.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from analysis import common
from analysis.style import PLACEMENT_COLORS, PLACEMENT_LABELS, PLACEMENT_MARKERS, new_figure

MODELS = {"mixtral-8x7b": ["sharegpt", "longbench"], "deepseek-r1": ["sharegpt", "longbench", "long-summarization"]}
PLACEMENTS = ["hbm", "ddr", "ssd", "hbf"]
TPOT_SLO_S = np.geomspace(0.02, 1.0, 9)
TTFT_SLO_S = None          # TPOT targets only (as the HBF study); set seconds to add a TTFT target
SYSTEM = "8xh200-c2c"
WITHIN = 1.25              # "not harmful": energy per output token within 25 % of HBM's
# the README's numbers are the lockstep request model's with TP attention (the defaults are now continuous batching
# and auto: dp attention for MLA): pinned so that they hold; rerun with "continuous" / "auto" for serving as deployed
BATCHING = "lockstep"
ATTENTION = "tp"


def study(models=MODELS, placements=PLACEMENTS, tpot=TPOT_SLO_S, ttft=TTFT_SLO_S, system=SYSTEM) -> xr.Dataset:
    """max_batch for every model, profile, placement and TPOT target (profiles a model cannot hold: NaN / 0)."""
    import dse

    profiles = sorted({p for ps in models.values() for p in ps}, key=lambda p: [*MODELS["deepseek-r1"], p].index(p))
    parts = []
    for model, own in models.items():
        per_slo = [dse.max_batch(model=model, system=system, profile=own, placement=placements, tpot_slo_s=float(t),
                                 ttft_slo_s=ttft, batching=BATCHING, attention_parallel=ATTENTION) for t in tpot]
        ds = xr.concat(per_slo, dim=xr.DataArray(np.asarray(tpot, float), dims="tpot_slo_s", name="tpot_slo_s"),
                       coords="minimal", compat="override", combine_attrs="drop_conflicts")
        parts.append(ds.reindex(profile=profiles).expand_dims(model=[model]))
    out = xr.concat(parts, dim="model", combine_attrs="drop_conflicts")
    out["max_batch"] = out.max_batch.fillna(0).astype(int)
    out["tpot_slo_s"].attrs.update(units="s", long_name="time-per-output-token target")
    out.attrs.update(title="dse: largest batch under TPOT targets", system=system,
                     ttft_slo_s="none" if ttft is None else float(ttft))
    return out


def not_harmful_from(ds: xr.Dataset) -> dict:
    """{(model, profile, placement): the smallest TPOT target where energy per output token at max batch is within
    WITHIN of HBM's, or None}."""
    out = {}
    for model in ds.model.values:
        for profile in ds.profile.values:
            d = ds.sel(model=model, profile=profile)
            if not bool((d.max_batch > 0).any()):
                continue
            ref = d.energy_per_output_token.sel(placement="hbm")
            hbm_holds = d.max_batch.sel(placement="hbm") > 0
            for p in ds.placement.values:
                if p == "hbm":
                    continue
                e = d.energy_per_output_token.sel(placement=p)
                served = d.max_batch.sel(placement=p) > 0
                # where HBM alone cannot serve the target (too small, or too slow) any placement that does wins
                ok = (served & (~hbm_holds | (e <= WITHIN * ref))).values
                out[(str(model), str(profile), str(p))] = float(d.tpot_slo_s.values[ok][0]) if ok.any() else None
    return out


def kv_on_flash(model="mixtral-8x7b", profile="longbench", tpot=(0.05, 0.1, 0.2), system=SYSTEM) -> xr.Dataset:
    """Experts in HBM, the KV cache in HBM, on HBF or on SSD: the largest batch per TPOT target, its energy per
    output token and how long the Flash lasts at that batch's KV write rate."""
    import dse

    parts = [dse.max_batch(model=model, system=system, profile=profile, kv_placement=["hbm", "hbf", "ssd"],
                           tpot_slo_s=float(t), batching=BATCHING, attention_parallel=ATTENTION) for t in tpot]
    return xr.concat(parts, dim=xr.DataArray(np.asarray(tpot, float), dims="tpot_slo_s", name="tpot_slo_s"),
                     coords="minimal", compat="override", combine_attrs="drop_conflicts")


def plot(ds: xr.Dataset):
    """Max batch and energy per request versus TPOT target: one column per (model, profile), lines by placement
    (one colour and marker per placement, as every dse figure), a shared legend under the panels."""
    import matplotlib.ticker as mticker

    from dse.analyze.plot import model_name, plain, plain_ticks, styled

    @styled
    def draw():
        cases = [(m, p) for m in ds.model.values for p in ds.profile.values
                 if bool((ds.max_batch.sel(model=m, profile=p) > 0).any())]
        fig, axes = new_figure(ncols=len(cases), nrows=2, width="two" if len(cases) > 2 else "one", height=4.2,
                               sharex=True, sharey="row")
        x = ds.tpot_slo_s.values * 1e3
        for col, (model, profile) in enumerate(cases):
            d = ds.sel(model=model, profile=profile)
            for p in ds.placement.values:
                b = d.max_batch.sel(placement=p).values.astype(float)
                e = np.where(b > 0, d.energy_per_request.sel(placement=p).values, np.nan)
                style = dict(color=PLACEMENT_COLORS.get(str(p)), marker=PLACEMENT_MARKERS.get(str(p), "o"), ms=3.5,
                             label=f"experts in {PLACEMENT_LABELS.get(str(p), str(p))}" if col == 0 else "_nolegend_")
                (l1,) = axes[0, col].plot(x, np.where(b > 0, b, np.nan), **style)
                (l2,) = axes[1, col].plot(x, e, **style)
                l1.set_gid(f"max_batch|{model}|{profile}|{p}")
                l2.set_gid(f"energy|{model}|{profile}|{p}")
            axes[0, col].set_title(f"{model_name(model)}\n{profile}")
            for r in (0, 1):
                ax = axes[r, col]
                ax.set_xscale("log")
                ax.set_yscale("log")
                ax.set_xlim(x.min() / 1.2, x.max() * 1.2)
                ax.xaxis.set_major_locator(mticker.FixedLocator([20, 100, 1000]))
                ax.xaxis.set_major_formatter(mticker.FuncFormatter(plain))
                ax.xaxis.set_minor_formatter(mticker.NullFormatter())
                plain_ticks(ax, "y")
                ax.yaxis.set_major_locator(mticker.LogLocator(base=10, subs=(1.0,)))
            axes[1, col].set_xlabel("TPOT target (ms)")
        axes[0, 0].set_ylabel("largest batch\nmeeting the target")
        axes[1, 0].set_ylabel("energy per request\nat that batch (J)")
        fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=4)
        fig.suptitle(f"Serving under a TPOT target on {ds.attrs.get('system', SYSTEM)} ({BATCHING} batching)")
        return fig

    return draw()


def figures(args):
    out = args.out
    ds = study()
    out.mkdir(parents=True, exist_ok=True)
    nc = out.parent / "serving_slo.nc" if out.name == "figures" else out / "serving_slo.nc"
    ds.to_netcdf(nc)
    common.log.info("wrote %s", nc)
    for (model, profile, p), t in not_harmful_from(ds).items():
        hbm = bool((ds.max_batch.sel(model=model, profile=profile, placement="hbm") > 0).any())
        where = f"from a {t * 1e3:.0f} ms TPOT target on" if t is not None else "never in 20-1000 ms"
        what = f"within {WITHIN:.2f}x HBM's energy/token" if hbm else "serves it (HBM alone cannot hold the model)"
        print(f"{model:14s} {profile:20s} experts in {p:4s}: {what} {where}")
    kv = kv_on_flash()
    for t in kv.tpot_slo_s.values:
        for p in kv.kv_placement.values:
            d = kv.sel(tpot_slo_s=t, kv_placement=p)
            years = float(d.flash_endurance_years)
            life = "no Flash wear" if not np.isfinite(years) else f"Flash lasts {years:.2g} years"
            print(f"KV in {p:3s} (mixtral-8x7b, longbench, experts in HBM) at {t * 1e3:.0f} ms TPOT: batch "
                  f"{int(d.max_batch)} ({d.limited_by.item()}), {float(d.energy_per_output_token):.3f} J/token, {life}")
    yield "serving_slo", plot(ds)


def main(argv=None) -> list[Path]:
    return common.main(figures, __doc__, argv)


if __name__ == "__main__":
    main()
