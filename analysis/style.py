"""The analysis scripts' figure style: dse.plot's (paper column widths, >= 8 pt text, one colour per placement and
component in every figure), re-exported here for the scripts (their command line and checked writes:
:mod:`analysis.common`)."""
from __future__ import annotations

from dse.analyze.plot import (COMPONENT_COLORS, COMPONENT_LABELS, HBF_COLOR, ONE_COLUMN, PLACEMENT_COLORS,  # noqa: F401
                      PLACEMENT_LABELS, PLACEMENT_MARKERS, TODAY_COLOR, TWO_COLUMN, batch_axis, figure, legend,
                      model_name, plain, plain_ticks, problems, save, style, styled)


def new_figure(ncols: int = 1, nrows: int = 1, width="two", height: float | None = None, **kw):
    """A figure one or two paper columns wide (``width`` "one" / "two") with a 2-D array of axes."""
    return figure(width, height, nrows=nrows, ncols=ncols, **kw)
