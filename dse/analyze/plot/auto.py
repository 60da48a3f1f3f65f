"""The view of any result, chosen from what it holds and its grid's dimensions (dse.plot)."""
from __future__ import annotations

import numpy as np
from dse.analyze.plot.breakeven_views import breakeven_view
from dse.analyze.plot.pareto import pareto
from dse.analyze.plot.views import breakdown, facets, heatmap, lines

#: What a result of whole requests is read by (dse.model.requests): the figure shows these, not the decode step.
REQUEST_VIEW = ("energy_per_output_token", "ttft", "tpot")


# ---------------------------------------------------------------- the view of any result


def auto(ds, *, title: str | None = None):
    """The figure of a result, chosen from what it holds and its grid's dimensions; every swept dimension is shown
    (an axis, a line per value, or a panel per value: small multiples), the values held fixed are in the caption
    and configurations that do not fit their capacity are marked.

    A break-even result -> :func:`breakeven_view`; a search's trials -> :func:`pareto`; requests (``ttft``) ->
    energy per output token, TTFT and TPOT in columns (:func:`facets`); a grid with batch and placement only (or
    one point) -> :func:`breakdown` (normalised to HBM when other placements are beside it); one other dimension
    -> energy per token versus it (per placement); two -> a map of energy per token; more -> small multiples."""
    if "breakeven_flash_read_pj_per_bit" in ds:
        return breakeven_view(ds, title=title)
    if "pareto" in ds and "trial" in ds.dims:
        return pareto(ds, title=title)
    if all(v in ds for v in REQUEST_VIEW):
        e = ds["energy_per_output_token"]
        dims = [d for d in e.dims if e.sizes[d] > 1]
        x = "batch" if "batch" in dims else None
        return facets(ds, x=x, variables=REQUEST_VIEW, title=title)
    e = ds["energy_per_token"]
    dims = [d for d in e.dims if e.sizes[d] > 1]
    other = [d for d in dims if d not in ("batch", "placement")]
    if "energy" in ds and not other and (len(dims) <= 2):
        n = int(np.prod([ds.sizes[d] for d in dims])) if dims else 1
        return breakdown(ds, title=title, width="two" if n > 6 else "one") if n <= 48 else \
            lines(ds, "energy_per_token", "batch", title=title)
    if len(dims) == 1 or (len(dims) == 2 and "placement" in dims):
        return lines(ds, "energy_per_token", other[0] if other else dims[0], title=title)
    if len(dims) == 2 and all(e.sizes[d] <= 12 for d in dims):
        x, y = dims
        if "batch" in dims:
            x, y = "batch", next(d for d in dims if d != "batch")
        return heatmap(e, x, y, title=title, width="one", masked_label="", fits=ds.get("fits"))
    return facets(ds, "energy_per_token", title=title)
