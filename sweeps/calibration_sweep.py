"""Recipe: the paper's scenarios under paper constants and under board-level measured GPU constants.

    python sweeps/calibration_sweep.py [--out results/calibration_compare]

Writes <out>/{mixtral,deepseek,fig6}.nc (dimension ``constants``: paper, the cumulative steps, measured,
calibrated) and <out>/summary.md, and prints the summary table (the one in docs/findings.md). Runs in seconds on a CPU.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dse import DseError
from dse.analyze import calibration as cc


def write(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, ds in results.items():
        tmp = out / f".{name}.nc.tmp"
        ds.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, out / f"{name}.nc")
    tmp = out / ".summary.md.tmp"
    tmp.write_text(cc.markdown_table(cc.summary(results)) + "\n")
    os.replace(tmp, out / "summary.md")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="results/calibration_compare", help="output directory")
    args = p.parse_args(argv)
    try:
        results = cc.compare()
        write(results, Path(args.out))
    except DseError as e:
        print(f"calibration_compare: {e}", file=sys.stderr)
        return 2
    print(cc.markdown_table(cc.summary(results)))
    print(f"\nwritten to {args.out}/ (mixtral.nc, deepseek.nc, fig6.nc, summary.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
