"""dse: energy per token and capacity cost of placing MoE expert weights in HBM, DRAM or Flash."""
__version__ = "0.1.0"

from .params import DseError  # noqa: E402


def evaluate(*args, **kwargs):
    """See :func:`dse.engine.evaluate`."""
    from .engine import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


evaluate.__doc__ = "Energy, latency and capacity of one decode step over a grid of parameters (dse.engine.evaluate)."


def run_search(preset: str = "deepseek-r1-capacity", run_dir=".", overrides=()):
    """Run a Pareto search (conf/search/<preset>, Hydra-style ``overrides``) in ``run_dir``; see :mod:`dse.search`."""
    from .search import compose, run

    return run(compose(preset, list(overrides)), run_dir)


__all__ = ["DseError", "evaluate", "run_search", "__version__"]
