"""Reproduce the paper's findings (Kyung, Yun, Ahn, IEEE CAL 2025) and print them. Run by `make demo`.

Writes the datasets to results/paper/*.nc (atomically), prints the headline numbers, and ends by writing the
paper's figures (PNG + SVG) to results/paper/figures/.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the analysis/ scripts live beside dse/

import dse
from dse.files import write_netcdf
from dse.run.table import energy_table

OUT = Path(__file__).resolve().parent.parent / "results" / "paper"


def main() -> dict:
    OUT.mkdir(parents=True, exist_ok=True)
    results = {}
    for study in ("paper-fig45-mixtral", "paper-fig45-deepseek", "paper-fig6-maverick", "paper-fig6-llama3"):
        ds = dse.evaluate(study)
        write_netcdf(ds, OUT / f"{study}.nc")
        results[study] = ds

    for study in ("paper-fig45-mixtral", "paper-fig45-deepseek"):
        ds = results[study]
        e = ds.energy_per_token
        ratio = e.sel(placement="ssd") / e.sel(placement="hbm")
        print(f"\n=== {study}: energy per token (J) by placement and batch, with the breakdown ===")
        print(energy_table(ds, max_rows=40))
        b = int(ratio.idxmax("batch"))
        print(f"SSD / HBM energy per token: up to {float(ratio.max()):.1f}x (batch {b}); "
              f"DDR / HBM up to {float((e.sel(placement='ddr') / e.sel(placement='hbm')).max()):.1f}x")
        share = ds.offload_share.sel(placement="ssd")
        print(f"share of step energy spent copying SSD-offloaded weights: {float(share.min()):.0%}-{float(share.max()):.0%}")

    mav, llama = results["paper-fig6-maverick"], results["paper-fig6-llama3"]
    ratio = mav.energy_per_token / llama.energy_per_token
    print("\n=== paper-fig6: Llama-4 Maverick (experts on SSD) / Llama-3-70B (all in HBM), energy per token ===")
    print(ratio.to_pandas().T.to_string(float_format=lambda x: f"{x:.2f}"))
    for b in ratio.batch.values:
        r = ratio.sel(batch=b)
        below = r.flash_read_pj_per_bit.where(r <= 1.0, drop=True)
        where = f"parity at <= {float(below.max()):.2f} pJ/bit" if below.size else "no parity down to 10.24 pJ/bit"
        print(f"batch {b}: {where}")
    print(f"\ndatasets written to {OUT}")

    from analysis.paper_figures import write_all

    figures = write_all(OUT / "figures")
    print(f"{len(figures)} figure files written to {OUT / 'figures'}")
    return results


if __name__ == "__main__":
    main()
