"""The view of any result, chosen from what it holds and its grid's dimensions (dse.plot)."""
from __future__ import annotations

import numpy as np
from dse.analyze.plot.breakeven_views import breakeven_view
from dse.analyze.plot.pareto import pareto
from dse.analyze.plot.views import breakdown, heatmap, lines


# ---------------------------------------------------------------- the view of any result


def auto(ds, *, title: str | None = None):
    """The figure of a result, chosen from what it holds and its grid's dimensions: a break-even result ->
    :func:`breakeven_view`; a search's trials -> :func:`pareto`; a grid with batch (or one point) ->
    :func:`breakdown` (normalised to HBM when the placements include it); one other dimension -> energy per
    token versus it (per placement); two -> a map of energy per token."""
    if "breakeven_flash_read_pj_per_bit" in ds:
        return breakeven_view(ds, title=title)
    if "pareto" in ds and "trial" in ds.dims:
        return pareto(ds, title=title)
    e = ds["energy_per_token"]
    dims = [d for d in e.dims if e.sizes[d] > 1]
    other = [d for d in dims if d not in ("batch", "placement")]
    if "energy" in ds and not other and (len(dims) <= 2):
        n = int(np.prod([ds.sizes[d] for d in dims])) if dims else 1
        return breakdown(ds, title=title, width="two" if n > 6 else "one") if n <= 48 else \
            lines(ds, "energy_per_token", "batch", title=title)
    if len(dims) == 1 or (len(dims) == 2 and "placement" in dims):
        return lines(ds, "energy_per_token", other[0] if other else dims[0], title=title)
    x, y = (dims + dims)[:2]
    if "batch" in dims:
        x, y = "batch", next(d for d in dims if d != "batch")
    return heatmap(e, x, y, title=title, width="one", masked_label="")
