"""Paper constants versus board-level measured constants: how the paper's conclusions move (docs/model.md s.8-9).

The paper's systems and workloads (dse/conf/study/paper-*) are kept; only the GPU's constants change, in
cumulative steps from the paper's DRAM-only / MAC-only figures (GPU preset ``h100-sxm``) to the board-level
figures measured with NVML on an H200 (``h200-measured``, from reference/h200_energy_probe_2026-11-28.json):

    paper -> +HBM pJ/bit (read 4.2 -> 17.16, write 4.2 -> 12.87, L2/L1 -> 0: included in the board figure)
          -> +FLOP pJ (0.16 -> 0.869) -> +idle W (70 -> 122.5) -> measured (+ achieved FLOP/s and GB/s)

plus ``calibrated``: this repository's own dse-calibrate run (``h200-calibrated``), to show the spread of
board-level measurements. Per scenario it reports energy per token, the offload share, the SSD/HBM and DDR/HBM
energy ratios, and break-even Flash read energies from the closed form of docs/model.md section 5:
``e* = (E_reference - E_flash(e=0)) / bits read from Flash`` (energies per step on both sides).
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from dse.config import presets
from dse.run.engine import evaluate

PAPER_GPU, MEASURED_GPU, CALIBRATED_GPU = "h100-sxm", "h200-measured", "h200-calibrated"
#: Cumulative steps from paper to measured constants: (label, GPU fields taken from the measured preset).
STEPS = (
    ("paper", ()),
    ("+HBM pJ/bit", ("hbm_read_pj_per_bit", "hbm_write_pj_per_bit", "l2_pj_per_bit", "l1_pj_per_bit")),
    ("+FLOP pJ", ("flop_pj",)),
    ("+idle W", ("idle_w",)),
    ("measured", ("peak_tflops", "hbm_bw_gbps")),
)
FIG45 = {"mixtral": "paper-fig45-mixtral", "deepseek": "paper-fig45-deepseek"}
FIG6_REFERENCE, FIG6_TARGET = "paper-fig6-llama3", "paper-fig6-maverick"


def constant_sets(paper: str = PAPER_GPU, measured: str = MEASURED_GPU,
                  extra: tuple[str, ...] = (CALIBRATED_GPU,)) -> list[tuple[str, dict]]:
    """(label, dse.evaluate keyword arguments) for each set of GPU constants, paper first.

    The intermediate steps are the paper GPU with the measured preset's values for the fields named so far;
    the last step is the measured preset itself; ``extra`` presets follow under their ``calibrated`` label.
    """
    m = presets.preset("gpu", measured)
    sets, taken = [], {}
    for label, fields in STEPS[:-1]:
        taken.update({f"system.gpu.{f}": m[f] for f in fields})
        sets.append((label, {"gpu": paper, **taken}))
    sets.append((STEPS[-1][0], {"gpu": measured}))
    sets += [("calibrated" if len(extra) == 1 else name, {"gpu": name}) for name in extra]
    return sets


def _concat(parts: list[xr.Dataset], labels: list[str]) -> xr.Dataset:
    ds = xr.concat(parts, dim=xr.DataArray(labels, dims=["constants"], name="constants"),
                   coords="minimal", compat="override", combine_attrs="drop_conflicts")
    ds["constants"].attrs.update(long_name="GPU energy constants (cumulative steps paper -> measured)")
    return ds


def breakeven(e_reference, e_flash_zero, flash_bits) -> xr.DataArray:
    """Closed-form break-even Flash read energy (pJ/bit); not positive means Flash never breaks even."""
    e = (e_reference - e_flash_zero) / flash_bits / 1e-12
    return e.assign_attrs(units="pJ/bit", long_name="break-even Flash read energy (docs/model.md s.5)")


def flash_free(step_energy, offload_read_energy):
    """E_flash(e=0): step energy is affine in the Flash read energy (docs/model.md s.5), so setting it to zero
    removes exactly the offload-read component (latency does not depend on pJ/bit)."""
    return step_energy - offload_read_energy


def fig45(study: str, sets: list[tuple[str, dict]]) -> xr.Dataset:
    """Fig. 4/5 scenario (experts in HBM / DDR / SSD over batch) under each set of constants."""
    parts = []
    for _, params in sets:
        ds = evaluate(study, **params)
        ept = ds.energy_per_token
        hbm, ddr, ssd = (ds.step_energy.sel(placement=p, drop=True) for p in ("hbm", "ddr", "ssd"))
        ssd_read = ds.energy.sel(placement="ssd", component="offload_read", drop=True)
        bits = ds.offload_read_bits.sel(placement="ssd", drop=True)
        parts.append(xr.Dataset({
            "energy_per_token": ept,
            "energy": ds.energy,
            "step_latency": ds.step_latency,
            "offload_share": ds.offload_share,
            "ssd_hbm_ratio": (ept.sel(placement="ssd", drop=True) / ept.sel(placement="hbm", drop=True))
            .assign_attrs(units="1", long_name="energy per token, experts on SSD / in HBM"),
            "ddr_hbm_ratio": (ept.sel(placement="ddr", drop=True) / ept.sel(placement="hbm", drop=True))
            .assign_attrs(units="1", long_name="energy per token, experts in DDR / in HBM"),
            "breakeven_vs_hbm": breakeven(hbm, flash_free(ssd, ssd_read), bits),
            "breakeven_vs_ddr": breakeven(ddr, flash_free(ssd, ssd_read), bits),
            "flash_read_pj_per_bit": xr.DataArray(_ssd_read_pj(study)).assign_attrs(units="pJ/bit"),
        }))
    out = _concat(parts, [label for label, _ in sets])
    out.attrs.update(study=study, gpus=str({label: p for label, p in sets}))
    return out


def fig6(sets: list[tuple[str, dict]]) -> xr.Dataset:
    """Fig. 6: Llama-4 Maverick with experts on SSD against dense Llama-3-70B in HBM, B = 1..4."""
    parts = []
    e_today = _ssd_read_pj(FIG6_TARGET)
    for _, params in sets:
        ref = evaluate(FIG6_REFERENCE, **params)
        tgt = evaluate(FIG6_TARGET, **params, flash_read_pj_per_bit=e_today)
        e_star = breakeven(ref.step_energy, flash_free(tgt.step_energy, tgt.energy.sel(component="offload_read",
                                                                                       drop=True)),
                           tgt.offload_read_bits)
        parts.append(xr.Dataset({
            "reference_energy_per_token": ref.energy_per_token,
            "target_energy_per_token": tgt.energy_per_token,
            "target_reference_ratio": (tgt.energy_per_token / ref.energy_per_token)
            .assign_attrs(units="1", long_name="Maverick (experts on SSD) / Llama-3-70B (HBM), energy per token"),
            "offload_share": tgt.offload_share,
            "breakeven_flash_pj_per_bit": e_star,
            "improvement_needed": xr.where(e_star > 0, e_today / e_star, np.inf)
            .assign_attrs(units="1", long_name="Flash read energy today / break-even (inf: never breaks even)"),
            "offload_read_bits": tgt.offload_read_bits,
        }))
    out = _concat(parts, [label for label, _ in sets])
    out.attrs.update(reference=FIG6_REFERENCE, target=FIG6_TARGET, flash_read_pj_per_bit_today=e_today)
    return out


def _ssd_read_pj(study: str) -> float:
    return float(presets.compose(study=study)["system"]["tiers"]["ssd"]["read_pj_per_bit"])


def compare(sets: list[tuple[str, dict]] | None = None) -> dict[str, xr.Dataset]:
    """The whole comparison: {"mixtral", "deepseek": Fig. 4/5 datasets, "fig6": the break-even study}."""
    sets = constant_sets() if sets is None else sets
    return {**{name: fig45(study, sets) for name, study in FIG45.items()}, "fig6": fig6(sets)}


def summary(results: dict[str, xr.Dataset]) -> list[dict]:
    """Headline numbers per set of constants (rows of the table in docs/findings.md)."""
    rows = []
    mix, ds, f6 = results["mixtral"], results["deepseek"], results["fig6"]
    for c in mix.constants.values:
        rows.append({
            "constants": str(c),
            "mixtral_ssd_hbm_peak": float(mix.ssd_hbm_ratio.sel(constants=c).max()),
            "mixtral_ssd_share_b16": float(mix.offload_share.sel(constants=c, placement="ssd", batch=16)),
            "deepseek_ssd_hbm_peak": float(ds.ssd_hbm_ratio.sel(constants=c).max()),
            "deepseek_ssd_share_b16": float(ds.offload_share.sel(constants=c, placement="ssd", batch=16)),
            "mixtral_ssd_vs_ddr_breakeven_b1": float(mix.breakeven_vs_ddr.sel(constants=c, batch=1)),
            "fig6_ratio_b1": float(f6.target_reference_ratio.sel(constants=c, batch=1)),
            "fig6_breakeven_b1": float(f6.breakeven_flash_pj_per_bit.sel(constants=c, batch=1)),
            "fig6_breakeven_b4": float(f6.breakeven_flash_pj_per_bit.sel(constants=c, batch=4)),
            "fig6_improvement_b4": float(f6.improvement_needed.sel(constants=c, batch=4)),
        })
    return rows


COLUMNS = {  # summary key: table header
    "constants": "constants",
    "mixtral_ssd_hbm_peak": "Mixtral SSD/HBM (peak)",
    "mixtral_ssd_share_b16": "Mixtral SSD copy share, B=16",
    "deepseek_ssd_hbm_peak": "DeepSeek-R1 SSD/HBM (peak)",
    "deepseek_ssd_share_b16": "DeepSeek-R1 SSD copy share, B=16",
    "mixtral_ssd_vs_ddr_breakeven_b1": "Mixtral e* SSD vs DDR, B=1 (pJ/bit)",
    "fig6_ratio_b1": "Maverick-SSD / Llama-3-70B, B=1",
    "fig6_breakeven_b1": "Fig. 6 e*, B=1 (pJ/bit)",
    "fig6_breakeven_b4": "Fig. 6 e*, B=4 (pJ/bit)",
    "fig6_improvement_b4": "Flash improvement needed, B=4",
}


def markdown_table(rows: list[dict]) -> str:
    def fmt(key, v):
        if isinstance(v, str):
            return v
        if "share" in key:
            return f"{100 * v:.0f}%"
        if "ratio" in key or "peak" in key or "improvement" in key:
            return "never" if not np.isfinite(v) else f"{v:.1f}x"
        return f"{v:.1f}"
    lines = ["| " + " | ".join(COLUMNS.values()) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(fmt(k, r[k]) for k in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)
