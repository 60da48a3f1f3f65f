"""Whether a run draws a figure: its ``plot`` switch and ``DSE_PLOT``, and whether the result is small enough for its automatic figure -- decided before matplotlib is imported (importing it
costs a couple of seconds, a tenth of a 10^9-point sweep's budget)."""
from __future__ import annotations

import os

from dse.errors import DseError

MAX_AUTO_POINTS = 1_000_000    # a run's figure is skipped above this many grid points (plot a selection instead)
FORMATS = ("png", "svg")        # the formats of every figure a run writes


def figure_paths(dataset_path) -> list:
    """The figure files a run writes next to its dataset (``<stem>.png`` and ``.svg``)."""
    from pathlib import Path

    path = Path(dataset_path)
    return [path.parent / f"{path.name.split('.')[0]}.{fmt}" for fmt in FORMATS]


def check_figures_free(dataset_path, switch, overwrite: bool = False, flag: str = "plot=false") -> None:
    """Before any work: the figures a run will write next to ``dataset_path`` replace nothing dse did not write
    (one-line error naming ``flag``, the way out); nothing to check when the figures are off."""
    from dse.files import check_free

    if figures_wanted(switch):
        check_free(figure_paths(dataset_path), "plot", overwrite, flag)


def too_large(ds, log) -> bool:
    """True (and says so in the log) when the result has more grid points than a figure shows."""
    var = "breakeven_flash_read_pj_per_bit" if "breakeven_flash_read_pj_per_bit" in ds else "energy_per_token"
    size = int(ds[var].size) if var in ds else 0
    if size > MAX_AUTO_POINTS:
        log.info("figure: skipped (%s grid points; plot a selection with dse.plot)", f"{size:,}")
        return True
    return False


def figures_wanted(switch) -> bool:
    """Whether a run writes the figure of its result: its ``plot`` switch, unless the environment sets
    ``DSE_PLOT=0`` (off for every run at once; the test suite does, except where it tests the figures)."""
    if not isinstance(switch, bool):
        raise DseError(f"plot={switch!r}: allowed true or false")
    return switch and os.environ.get("DSE_PLOT", "1") != "0"
