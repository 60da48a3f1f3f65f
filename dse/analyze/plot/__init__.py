"""dse.plot: the project's figure style and the common views of any dse result.

    import dse
    ds = dse.evaluate("paper-fig45-mixtral")
    fig = dse.plot.breakdown(ds)                      # stacked energy by component, normalised to HBM per batch
    fig = dse.plot.ratio(ds, reference="hbm")         # energy per token relative to a reference placement
    fig = dse.plot.auto(ds)                           # the view chosen from the grid's dimensions
    dse.plot.save(fig, "out", "breakdown")            # out/breakdown.png and .svg, written atomically

The style: figures exactly one IEEE column (3.5 in) or two columns (7.16 in) wide, every text >= 8 pt at that
size, a colour-blind-safe palette (Okabe-Ito for placements / tiers, Tol's muted for energy components) with one
fixed colour per placement and component in every figure, human labels with units from the variables'
attributes, and plain-number ticks (1, 4, 16 for batch; ms; $k). :func:`problems` lists what a reviewer would
reject (small text, clipped labels, a legend over data, a width outside the paper's sizes); the tests use it.

Every plotting function draws inside :func:`style` and returns the Figure; artists carry gids so that the plotted
data can be read back (tests compare them with dse's numbers).
"""
from dse.analyze.plot.style import (COMPONENT_COLORS, COMPONENT_LABELS, DISPLAY, DPI, HBF_COLOR, MIN_FONT_PT,  # noqa: F401
                                    NEVER_COLOR, ONE_COLUMN, PLACEMENT_COLORS, PLACEMENT_LABELS, PLACEMENT_MARKERS,
                                    TODAY_COLOR, TWO_COLUMN, batch_axis, display, figure, finish, label, legend,
                                    model_name, placement_label, plain, plain_ticks, style, styled)
from dse.analyze.plot.views import breakdown, facets, heatmap, lines, ratio  # noqa: F401
from dse.analyze.plot.breakeven_views import (breakeven_map, breakeven_view, hbf_read_pj_per_bit, map_classes,  # noqa: F401
                                        parity, today_of)
from dse.analyze.plot.pareto import design_label, label_points, limit_text, pareto  # noqa: F401
from dse.analyze.plot.auto import auto  # noqa: F401
from dse.analyze.plot.output import MAX_AUTO_POINTS, problems, save, write_next_to  # noqa: F401

__all__ = [
    "COMPONENT_COLORS",
    "COMPONENT_LABELS",
    "DISPLAY",
    "DPI",
    "HBF_COLOR",
    "MIN_FONT_PT",
    "NEVER_COLOR",
    "ONE_COLUMN",
    "PLACEMENT_COLORS",
    "PLACEMENT_LABELS",
    "PLACEMENT_MARKERS",
    "TODAY_COLOR",
    "TWO_COLUMN",
    "batch_axis",
    "display",
    "figure",
    "finish",
    "label",
    "legend",
    "model_name",
    "placement_label",
    "plain",
    "plain_ticks",
    "style",
    "styled",
    "breakdown",
    "facets",
    "heatmap",
    "lines",
    "ratio",
    "breakeven_map",
    "breakeven_view",
    "hbf_read_pj_per_bit",
    "map_classes",
    "parity",
    "today_of",
    "design_label",
    "label_points",
    "limit_text",
    "pareto",
    "auto",
    "MAX_AUTO_POINTS",
    "problems",
    "save",
    "write_next_to",
]
