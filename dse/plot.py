"""``dse.plot``: the project's figure style and the common views of any dse result (the implementation is the
package :mod:`dse.analyze.plot`: style, views, break-even, Pareto, the automatic view, saving and checks)."""
from dse.analyze.plot import *  # noqa: F401,F403
from dse.analyze.plot import __all__, __doc__ as _doc  # noqa: F401

__doc__ = _doc
