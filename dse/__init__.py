"""dse: energy per token and capacity cost of placing MoE expert weights in HBM, DRAM or Flash."""
__version__ = "0.1.0"

import inspect

from .params import DseError  # noqa: E402


def evaluate(study=None, *, model=None, system=None, accounting=None, chunks=None, cfg=None, max_grid_points=None,
             **settings):
    from .engine import evaluate as _evaluate

    # a canonical parameter left at None keeps the preset's value; a dotted path set to None is refused
    settings = {k: v for k, v in settings.items() if v is not None or "." in k}
    return _evaluate(study, model=model, system=system, accounting=accounting, chunks=chunks, cfg=cfg,
                     max_grid_points=max_grid_points, **settings)


def _evaluate_signature() -> inspect.Signature:
    """evaluate(study=None, *, model, system, accounting, chunks, cfg, <every canonical parameter>, **settings)."""
    from .params import PARAMS

    kw = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("study", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)]
    params += [inspect.Parameter(n, kw, default=None)
               for n in ("model", "system", "accounting", "chunks", "cfg", "max_grid_points")]
    params += [inspect.Parameter(n, kw, default=None) for n in PARAMS if n not in ("model", "system")]
    params.append(inspect.Parameter("settings", inspect.Parameter.VAR_KEYWORD))
    return inspect.Signature(params)


def _evaluate_doc() -> str:
    from .params import parameters_doc

    return f"""Energy, latency and capacity of one decode step over a grid of parameters, as an xarray Dataset.

    Every parameter left out keeps the value of the study or presets (dse/conf/config.yaml and the model, system,
    GPU, link and tier presets, each number with its source: ``dse list``). A list, tuple, range or array makes a
    dimension with those coordinates; a scalar sets one value. The physics is docs/model.md.

    study : a study preset (``dse list studies``): model, system, workload and its grid, e.g. "paper-fig45-mixtral"
    model, system : preset names (a list makes a dimension); ``model`` may also be a dict from
        ``dse.models.from_hf_config(path)``
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

    Example: ``dse.evaluate(model="deepseek-r1", system="8xh200", placement=["hbm", "ddr", "ssd"], batch=[1, 64])``
    """


evaluate.__signature__ = _evaluate_signature()
evaluate.__doc__ = _evaluate_doc()


def presets(group: str | None = None):
    """The shipped presets with a one-line description and the provenance grade of their numbers:
    ``{group: [Preset, ...]}`` for every group, or one group's list (model, system, gpu, tier, link, accounting,
    study, search). The command line equivalent is ``dse list``."""
    from .catalog import presets as _presets

    return _presets(group)


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


__all__ = ["DseError", "evaluate", "breakeven", "open_results", "presets", "run_search", "__version__"]
