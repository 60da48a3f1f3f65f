"""dse.explorer: the design space in the browser and in Jupyter (`dse explore`, `dse.explore()`; the explore extra).

- live mode (:mod:`dse.explorer.live_app`): presets, placements and parameters as widgets; the energy breakdown per
  placement, energy per token against batch, the break-even Flash read energy with its reason, request metrics and
  the largest batch under TPOT / TTFT targets, capacity; the configuration as a ``dse`` command line and a Python
  call; the figure and the data exported.
- results mode (:mod:`dse.explorer.results_app`): any result file (NetCDF, Zarr) or dse-search output directory, a
  widget per dimension, the view ``dse.plot.auto`` chooses, a search's Pareto front with hover and click.

``dse explore [PATH] [--port N] [--address A] [--no-browser]`` serves it (:mod:`dse.explorer.serve`);
``dse.explore()`` returns the same page for a notebook. This package sits at the top of the layering (beside
``dse.cli``): nothing below imports it. The computation of live mode (:mod:`dse.explorer.live`) needs no Panel.
"""
from __future__ import annotations

from dse.errors import DseError

EXTRA = "dse explore needs the explore extra: pip install 'dse[explore]' (Panel)"


def require_panel():
    """Import Panel, or a one-line DseError naming the extra to install."""
    try:
        import panel as pn
    except ImportError:
        raise DseError(EXTRA) from None
    return pn


def app(path=None, **settings):
    """The page's object: :class:`~dse.explorer.live_app.LiveApp` (no ``path``; ``settings`` are fields of
    :class:`~dse.explorer.live.Settings`) or :class:`~dse.explorer.results_app.ResultsApp` of ``path``."""
    require_panel()
    if path is None:
        from dse.explorer.live import Settings
        from dse.explorer.live_app import LiveApp

        return LiveApp(Settings(**settings))
    from dse.explorer.results_app import ResultsApp

    return ResultsApp(path)


def explore(path=None, **settings):
    """The explorer as a Panel layout, displayed inline in a Jupyter notebook: live mode without ``path``,
    results mode with a result file / Zarr store / dse-search directory."""
    pn = require_panel()
    pn.extension()
    return app(path, **settings).view
