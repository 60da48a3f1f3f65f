"""Latency per output token (the decode-step time) versus batch, one line per expert placement.

    python -m analysis.latency [out_dir]     # Mixtral-8x7B and DeepSeek-R1, paper setups
"""
from __future__ import annotations

from pathlib import Path

import xarray as xr

from analysis import common
from dse.analyze import plot


def plot_latency(ds: xr.Dataset, *, title: str | None = None):
    """Decode-step latency (ms per output token of each sequence) versus batch, one line per placement (gid
    ``step_latency|<placement>``); a line identical to another (DDR and SSD both limited by the same link) is
    drawn dashed and says so in the legend."""
    if "batch" not in ds.dims:
        raise ValueError("plot_latency needs a dataset with a batch dimension")
    return plot.lines(ds, "step_latency", "batch", title=title)


def figures(args):
    import dse

    for study in ("paper-fig45-mixtral", "paper-fig45-deepseek"):
        yield f"latency_{study}", plot_latency(dse.evaluate(study))


def main(argv=None) -> list[Path]:
    return common.main(figures, __doc__, argv)


if __name__ == "__main__":
    main()
