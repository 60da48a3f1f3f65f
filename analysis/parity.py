"""Target over reference energy per token versus Flash read energy, with the parity line (the paper's Fig. 6).

    python -m analysis.parity [out_dir]     # Llama-4 Maverick on SSD over Llama-3-70B in HBM, batch 1-4
"""
from __future__ import annotations

from pathlib import Path

import xarray as xr

from analysis import common
from dse.analyze import plot
from dse.analyze.plot import hbf_read_pj_per_bit  # noqa: F401 (used by the other scripts)


def today_of(be: xr.Dataset) -> float:
    """Today's Flash read energy of a break-even result (one value across its grid)."""
    return plot.today_of(be)


def plot_parity(be: xr.Dataset, flash_read_pj_per_bit=None, *, title: str | None = None):
    """The paper's Fig. 6 (:func:`dse.plot.parity`): one line per batch, linear Flash axis, the dashed parity
    line, e* dots (gid ``breakeven``) labelled with their values; lines carry gids ``ratio|batch=<b>``."""
    return plot.parity(be, flash_read_pj_per_bit, title=title)


def figures(args):
    from dse.analyze.breakeven import breakeven

    be = breakeven({"study": "paper-fig6-maverick"}, {"study": "paper-fig6-llama3"})
    yield "parity_maverick_ssd_vs_llama3_hbm", plot_parity(be)


def main(argv=None) -> list[Path]:
    return common.main(figures, __doc__, argv)


if __name__ == "__main__":
    main()
