"""dse: energy per token and capacity cost of placing MoE expert weights in HBM, DRAM or Flash."""
__version__ = "0.1.0"

from .params import DseError  # noqa: E402


def evaluate(*args, **kwargs):
    """See :func:`dse.engine.evaluate`."""
    from .engine import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


evaluate.__doc__ = "Energy, latency and capacity of one decode step over a grid of parameters (dse.engine.evaluate)."

__all__ = ["DseError", "evaluate", "__version__"]
