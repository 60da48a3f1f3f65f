"""The analysis scripts' figure style: dse.plot's (paper column widths, >= 8 pt text, one colour per placement and
component in every figure), re-exported here with the output-directory convention of the scripts."""
from __future__ import annotations

from pathlib import Path

from dse.analyze.plot import (COMPONENT_COLORS, COMPONENT_LABELS, HBF_COLOR, ONE_COLUMN, PLACEMENT_COLORS,  # noqa: F401
                      PLACEMENT_LABELS, PLACEMENT_MARKERS, TODAY_COLOR, TWO_COLUMN, batch_axis, figure, legend,
                      model_name, plain, plain_ticks, problems, save, style, styled)


def new_figure(ncols: int = 1, nrows: int = 1, width="two", height: float | None = None, **kw):
    """A figure one or two paper columns wide (``width`` "one" / "two") with a 2-D array of axes."""
    return figure(width, height, nrows=nrows, ncols=ncols, **kw)


def out_dir_from_argv(argv, default: str = "results/figures") -> Path:
    """The output directory: the first argument, else results/figures (untracked; never the tracked docs/)."""
    return Path(argv[1]) if len(argv) > 1 else Path(default)
