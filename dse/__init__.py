"""dse: energy per token and capacity cost of placing MoE expert weights in HBM, DRAM or Flash.

The package is laid out by what each part does:

- ``dse.model``     the physics: specs and presets, routing, the decode-step operation table, capacity
- ``dse.run``       parameters -> grid -> datasets: resolve, the grid engine, sweeps, collect, results, file I/O
- ``dse.analyze``   break-even, serving limits, the paper-versus-measured comparison, figures
- ``dse.search``    Pareto search over parameter spaces
- ``dse.calibrate`` constants measured on a GPU, written as presets
- ``dse.cli``       the command-line entry points (one error wrapper)

The public API is this module's functions; ``dse.plot`` and ``dse.results`` name the figure and query modules.
"""
import inspect

from .errors import DseError
from .provenance import version as _version

__version__ = _version()


def evaluate(study=None, *, model=None, system=None, accounting=None, chunks=None, cfg=None, max_grid_points=None,
             **settings):
    from .run.engine import evaluate as _evaluate

    # a canonical parameter left at None keeps the preset's value; a dotted path set to None is refused
    settings = {k: v for k, v in settings.items() if v is not None or "." in k}
    return _evaluate(study, model=model, system=system, accounting=accounting, chunks=chunks, cfg=cfg,
                     max_grid_points=max_grid_points, **settings)


def _evaluate_signature() -> inspect.Signature:
    """evaluate(study=None, *, model, system, accounting, chunks, cfg, <every canonical parameter>, **settings)."""
    from .config.params import PARAMS

    kw = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("study", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)]
    params += [inspect.Parameter(n, kw, default=None)
               for n in ("model", "system", "accounting", "chunks", "cfg", "max_grid_points")]
    params += [inspect.Parameter(n, kw, default=None) for n in PARAMS if n not in ("model", "system")]
    params.append(inspect.Parameter("settings", inspect.Parameter.VAR_KEYWORD))
    return inspect.Signature(params)


def _evaluate_doc() -> str:
    from .config.params import parameters_doc

    return f"""Energy, latency and capacity of one decode step over a grid of parameters, as an xarray Dataset.

    Every parameter left out keeps the value of the study or presets (dse/conf/config.yaml and the model, system,
    GPU, link and tier presets, each number with its source: ``dse list``). A list, tuple, range or array makes a
    dimension with those coordinates; a scalar sets one value. The physics is docs/model.md.

    study : a study preset (``dse list studies``): model, system, workload and its grid, e.g. "paper-fig45-mixtral"
    model, system : preset names (a list makes a dimension); ``model`` may also be a dict from
        ``dse.from_hf_config(path)``
    accounting : "paper" (the default: the paper's accounting) or "refined" (LM head counted, copies overlap only
        their own MoE layer); see docs/model.md s.6.4
    chunks : {{dimension: chunk size}} for a lazy, dask-backed result (one task per block of the grid)
    cfg : an already composed root config (what the ``dse`` command passes)

    Canonical parameters (units in brackets; out-of-range values are a one-line DseError naming the key):

{parameters_doc("    ")}
    **settings : any numeric config leaf by its dotted path, e.g. ``**{{"system.gpu.idle_w": [90, 100]}}``,
        ``**{{"system.tiers.hbf.bw_gbps": 3200}}``; ``routing_frequencies``: measured per-expert pick probabilities

    Returns a Dataset with ``energy_per_token`` [J], ``energy`` [J per step, by ``component``], ``step_latency``
    [s], ``tokens_per_s``, traffic, capacity (``hbm_fill``, ``offload_fill``, ``fits``) and ``capacity_cost_usd``;
    every variable has ``units`` and ``long_name``, the attributes carry the resolved config and its provenance.

    Example: ``dse.evaluate(model="deepseek-r1", system="8xh200-c2c", placement=["hbm", "ddr", "ssd"], batch=[1, 64])``
    """


evaluate.__signature__ = _evaluate_signature()
evaluate.__doc__ = _evaluate_doc()


def presets(group: str | None = None):
    """The shipped presets with a one-line description and the provenance grade of their numbers:
    ``{group: [Preset, ...]}`` for every group, or one group's list (model, system, gpu, tier, link, accounting,
    study, search). The command line equivalent is ``dse list``."""
    from .config.catalog import presets as _presets

    return _presets(group)


def open_results(*args, **kwargs):
    """See :func:`dse.results.open_results`."""
    from .run.results import open_results as _open_results

    return _open_results(*args, **kwargs)


open_results.__doc__ = "Open a dse NetCDF file or Zarr store lazily (dse.results.open_results)."


def breakeven(*args, **kwargs):
    """See :func:`dse.analyze.breakeven.breakeven`."""
    from .analyze.breakeven import breakeven as _breakeven

    return _breakeven(*args, **kwargs)


breakeven.__doc__ = "Break-even Flash read energy e* of a target against a reference on every grid point (dse.breakeven)."


def breakeven_param(*args, **kwargs):
    """See :func:`dse.analyze.bisection.breakeven_param`."""
    from .analyze.bisection import breakeven_param as _breakeven_param

    return _breakeven_param(*args, **kwargs)


breakeven_param.__doc__ = ("Break-even value of a numeric parameter (link bandwidth, HBM cache fraction, batch, ...) "
                           "by a vectorized bisection on every grid point (dse.analyze.bisection.breakeven_param).")


def max_batch(study=None, **kwargs):
    """See :func:`dse.analyze.serving.max_batch`."""
    from .analyze.serving import max_batch as _max_batch

    kwargs = {k: v for k, v in kwargs.items() if v is not None or k in ("tpot_slo_s", "ttft_slo_s")}
    return _max_batch(study, **kwargs)


max_batch.__doc__ = ("The largest batch meeting TPOT / TTFT targets (tpot_slo_s, ttft_slo_s, seconds) and fitting in "
                     "memory, per grid point, with what limits it and energy_per_output_token, tokens_per_s_per_gpu "
                     "at it (dse.analyze.serving.max_batch).")


def pareto_front(objectives, constraints=None, **kwargs):
    """See :func:`dse.search.front.pareto_front`."""
    from .search.front import pareto_front as _pareto_front

    return _pareto_front(objectives, constraints, **kwargs)


pareto_front.__doc__ = ("The exact Pareto front of a whole grid's feasible points, streamed block by block through "
                        "dask with a tree reduction (dse.search.front.pareto_front).")


def run_search(preset: str = "deepseek-r1-capacity", run_dir=".", overrides=()):
    """Run a Pareto search (dse/conf/search/<preset>, Hydra-style ``overrides``) in ``run_dir``; see :mod:`dse.search`."""
    from .search import compose, run

    return run(compose(preset, list(overrides)), run_dir)


def from_hf_config(path):
    """A model dict in dse's schema from a Hugging Face ``config.json`` (file or directory); see dse.config.hf."""
    from .config.hf import from_hf_config as _from_hf_config

    return _from_hf_config(path)


def explore(path=None, **settings):
    """The explorer (live mode, or results mode of a result file / Zarr store / dse-search directory) as a Panel
    layout, shown inline in a Jupyter notebook; ``dse explore [PATH]`` serves the same page. Needs the explore extra
    (``pip install 'dse[explore]'``); docs/explore.md."""
    from .explorer import explore as _explore

    return _explore(path, **settings)


#: The public modules, loaded on first use: ``dse.plot`` (figures), ``dse.results`` (query results), ``dse.traces``
#: (routing traces).
_MODULES = {"plot": "dse.analyze.plot", "results": "dse.run.results", "traces": "dse.model.traces"}


def __getattr__(name):
    if name in _MODULES:
        import importlib

        return importlib.import_module(_MODULES[name])
    raise AttributeError(f"module 'dse' has no attribute {name!r}")


class _PublicModule:
    """``import dse.traces`` (``dse.plot``, ``dse.results``) imports the module it names (its one copy, still
    loaded on first use), as ``dse.traces`` does: an import-system finder and loader for those three names."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname.startswith("dse.") and fullname[4:] in _MODULES:
            import importlib.util

            return importlib.util.spec_from_loader(fullname, cls())
        return None

    def create_module(self, spec):
        import importlib

        module = importlib.import_module(_MODULES[spec.name[4:]])
        self._spec = module.__spec__
        return module

    def exec_module(self, module):
        module.__spec__ = self._spec           # the import system set the public name's; keep the module's own


import sys as _sys  # noqa: E402

if not any(f is _PublicModule for f in _sys.meta_path):
    _sys.meta_path.append(_PublicModule)


__all__ = ["DseError", "evaluate", "breakeven", "breakeven_param", "max_batch", "pareto_front", "open_results", "presets",
           "run_search", "from_hf_config", "explore", "plot", "results", "traces", "__version__"]
