"""``dse.results``: open sweep results lazily and answer the common questions with xarray (the implementation is
:mod:`dse.run.results`)."""
from dse.run.results import *  # noqa: F401,F403
from dse.run.results import __doc__ as _doc

__doc__ = _doc
