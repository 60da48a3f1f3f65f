"""dse: energy per token and capacity cost of placing MoE expert weights in HBM, DRAM or Flash."""
__version__ = "0.1.0"

from .params import DseError  # noqa: E402


def evaluate(*args, **kwargs):
    """See :func:`dse.engine.evaluate`."""
    from .engine import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


evaluate.__doc__ = "Energy, latency and capacity of one decode step over a grid of parameters (dse.engine.evaluate)."


def open_results(*args, **kwargs):
    """See :func:`dse.results.open_results`."""
    from .results import open_results as _open_results

    return _open_results(*args, **kwargs)


open_results.__doc__ = "Open a dse NetCDF file or Zarr store lazily (dse.results.open_results)."


def breakeven(*args, **kwargs):
    """See :func:`dse.break_even.breakeven`."""
    from .break_even import breakeven as _breakeven

    return _breakeven(*args, **kwargs)


breakeven.__doc__ = "Break-even Flash read energy e* of a target against a reference on every grid point (dse.breakeven)."


def run_search(preset: str = "deepseek-r1-capacity", run_dir=".", overrides=()):
    """Run a Pareto search (dse/conf/search/<preset>, Hydra-style ``overrides``) in ``run_dir``; see :mod:`dse.search`."""
    from .search import compose, run

    return run(compose(preset, list(overrides)), run_dir)


__all__ = ["DseError", "evaluate", "breakeven", "open_results", "run_search", "__version__"]
