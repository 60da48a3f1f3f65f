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


def open_results(path, chunks=None):
    """Open a result written by dse -- a NetCDF file (``result.nc``) or a Zarr store (``result.zarr``) -- lazily.

    Parameters
    ----------
    path : str or Path
        The dataset a ``dse`` run wrote (its run directory's ``result.nc`` / ``result.zarr``), a multirun's
        ``merged.nc``, or a file of ``dse-breakeven`` / ``dse-search`` (``breakeven.nc``, ``pareto.nc``).
    chunks : dict, optional
        ``{dimension: chunk size}`` for the dask arrays; default: the file's own chunks.

    Returns
    -------
    xarray.Dataset
        Dask-backed (nothing is read until ``.load()``, ``.values`` or a plot), every variable with ``units`` and
        ``long_name``, the run's resolved config and provenance in ``attrs``. The helpers of ``dse.results``
        (``ratio_to``, ``best``, ``crossing``) answer the common questions on it.

    Raises
    ------
    DseError
        One line: the path does not exist, is an unfinished Zarr sweep (``*.zarr.partial``: re-run its config to
        resume it), a temporary file of an interrupted write, or not a readable dataset.

    Example
    -------
    >>> ds = dse.open_results("outputs/2026-12-07/12-00-00/result.nc")    # doctest: +SKIP
    >>> dse.results.best(ds, "placement")                                   # doctest: +SKIP
    """
    from .run.results import open_results as _open_results

    return _open_results(path, chunks=chunks)


def breakeven(target, reference, *, today_pj_per_bit=None, include_unfit=False, **params):
    """Break-even Flash read energy e* of ``target`` against ``reference`` on every grid point (closed form).

    e* is the Flash read energy (pJ/bit) at which the target -- experts on a Flash tier -- costs exactly the
    reference's energy per generated token: ``e* = (E_reference - E_target(e=0)) / Flash bits per token``.

    Parameters
    ----------
    target, reference : dict or xarray.Dataset
        :func:`dse.evaluate` arguments (``study``, ``model``, ``system``, ``cfg``, ``chunks`` and parameter
        settings, e.g. ``{"study": "paper-fig6-maverick"}``) or already evaluated Datasets. Target placements that
        are not Flash tiers are left out; a Flash sweep in the target's grid is dropped (the closed form replaces
        it). Reference dimensions the target lacks are renamed ``reference_<dim>``.
    today_pj_per_bit : float, optional
        Today's Flash read energy [pJ/bit] (default: the target tier's configured value); sets
        ``improvement_needed = today / e*``.
    include_unfit : bool
        False (default): grid points where either side does not fit its capacity give e* NaN, reason "does not fit".
    **params
        Grid parameters shared by both dict sides (a list makes a dimension), e.g. ``batch=[1, 4, 16]``; a side's
        own settings win.

    Returns
    -------
    xarray.Dataset
        ``breakeven_flash_read_pj_per_bit`` [pJ/bit], ``breaks_even``, ``improvement_needed``, ``reason`` (why
        Flash never breaks even), ``today_flash_read_pj_per_bit``, ``target_energy_per_token_at_zero``,
        ``reference_energy_per_token`` and ``flash_read_bits_per_token`` on the grid.

    Example
    -------
    >>> be = dse.breakeven({"study": "paper-fig6-maverick"}, {"study": "paper-fig6-llama3"})   # doctest: +SKIP
    >>> be.improvement_needed.sel(batch=4)                                                     # doctest: +SKIP

    docs/breakeven.md has the derivation and the command line (``dse-breakeven``).
    """
    from .analyze.breakeven import breakeven as _breakeven

    return _breakeven(target, reference, today_pj_per_bit=today_pj_per_bit, include_unfit=include_unfit, **params)


def breakeven_param(target, reference, param, lo=None, hi=None, *, rtol=1e-6, **params):
    """Break-even value of any numeric parameter (link bandwidth, HBM cache fraction, batch, ...) on every grid
    point, by a vectorized bisection.

    Parameters
    ----------
    target, reference : dict or xarray.Dataset
        As for :func:`dse.breakeven`: :func:`dse.evaluate` arguments, or evaluated Datasets (which stay fixed).
    param : str
        The parameter to solve for, a canonical name (``link_bw_gbps``, ``hbm_cache_fraction``, ``batch``, ...)
        or a dotted config path; it is applied to each side given as a dict.
    lo, hi : float, optional
        The bracket; default: the parameter's allowed range where finite (``help(dse.evaluate)`` lists them).
    rtol : float
        Relative tolerance of the bisection (integer parameters stop at the integer crossing).
    **params
        Grid parameters shared by both dict sides.

    Returns
    -------
    xarray.Dataset
        ``breakeven_<param>`` (the value where the target's energy per token equals the reference's; for an integer
        parameter the one where the target is no costlier), ``bracketed`` (false: no crossing in [lo, hi]) and
        ``cheaper_above`` (the target is no costlier above the crossing).

    Example
    -------
    >>> dse.breakeven_param({"study": "paper-fig45-mixtral", "placement": "ssd"},               # doctest: +SKIP
    ...                     {"study": "paper-fig45-mixtral", "placement": "hbm"}, "hbm_cache_fraction")
    """
    from .analyze.bisection import breakeven_param as _breakeven_param

    return _breakeven_param(target, reference, param, lo, hi, rtol=rtol, **params)


def max_batch(study=None, *, tpot_slo_s=None, ttft_slo_s=None, batch_max=65536, model=None, system=None,
              accounting=None, cfg=None, **params):
    """The largest batch meeting time-per-output-token and time-to-first-token targets and fitting in memory, on
    every point of the other dimensions, with what limits it and the request metrics at that batch.

    Parameters
    ----------
    study, model, system, accounting, cfg
        As for :func:`dse.evaluate`; the workload must describe requests: ``prompt_len`` and ``output_len``, or a
        ``profile`` (e.g. ``study="serving-sharegpt"``).
    tpot_slo_s : float, optional
        Target time per output token [s] (e.g. 0.05 for 20 tokens/s per user); None: no TPOT target.
    ttft_slo_s : float, optional
        Target time to first token [s]; None: no TTFT target.
    batch_max : int
        The upper end of the search (65,536); ``limited_by`` says ``batch_max`` where nothing else stopped it.
    **params
        Every other :func:`dse.evaluate` parameter except ``batch`` (a list makes a dimension).

    Returns
    -------
    xarray.Dataset
        ``max_batch`` [sequences] (0: not even batch 1 meets the targets), ``limited_by`` (tpot, ttft, memory or
        batch_max), ``meets_slo``, and every request output at that batch: ``energy_per_output_token`` [J],
        ``ttft`` and ``tpot`` [s], ``tokens_per_s_per_gpu``, ``energy_per_request`` [J], ...

    Every grid point runs its own integer bisection over ``1 .. batch_max``, all at once; TPOT, TTFT and memory all
    grow with the batch, so the answer equals a scan of every batch.

    Example
    -------
    >>> mb = dse.max_batch("serving-sharegpt", tpot_slo_s=0.05)      # doctest: +SKIP
    >>> mb[["max_batch", "limited_by", "energy_per_output_token"]].to_dataframe()   # doctest: +SKIP

    docs/serving.md explains the request model and the targets.
    """
    from .analyze.serving import max_batch as _max_batch

    params = {k: v for k, v in params.items() if v is not None}
    return _max_batch(study, tpot_slo_s=tpot_slo_s, ttft_slo_s=ttft_slo_s, batch_max=batch_max, model=model,
                      system=system, accounting=accounting, cfg=cfg, **params)


def pareto_front(objectives, constraints=None, *, study=None, model=None, system=None, accounting=None, cfg=None,
                 max_grid_points=None, block_points=4194304, scheduler=None, progress=True, **params):
    """The exact Pareto front (every objective minimized) of the feasible points of a whole grid, streamed block by
    block through dask with a tree reduction: grids of 10^8 points and more without holding them in memory.

    Parameters
    ----------
    objectives : list of str
        Output variables to minimize, e.g. ``["energy_per_token", "capacity_cost_usd"]``.
    constraints : dict, optional
        ``{variable: {"min": x, "max": y}}``, e.g. ``{"step_latency": {"max": 0.05}}``; where the grid has
        ``fits`` (capacity), a point must fit too.
    study, model, system, accounting, cfg, max_grid_points, **params
        The grid, as for :func:`dse.evaluate` (a list of values makes a dimension).
    block_points : int
        Grid points per block (4,194,304).
    scheduler : optional
        dask's scheduler: ``"threads"``, ``"sync"`` or a distributed ``Client`` (default: dask's current one).
    progress : bool
        A progress bar on long runs.

    Returns
    -------
    xarray.Dataset
        Along ``point``: the objectives, the constrained variables and each grid dimension's coordinate of every
        front point, sorted by the objectives; ``attrs`` give the grid's point count, its feasible count and the
        wall time.

    Example
    -------
    >>> front = dse.pareto_front(["energy_per_token", "capacity_cost_usd"], model="deepseek-r1",  # doctest: +SKIP
    ...                          system="8xh200-c2c", placement=["hbm", "ddr", "ssd"], batch=[1, 8, 64])

    docs/search.md compares it with the Optuna search (``dse-search``).
    """
    from .search.front import pareto_front as _pareto_front

    return _pareto_front(objectives, constraints, study=study, model=model, system=system, accounting=accounting,
                         cfg=cfg, max_grid_points=max_grid_points, block_points=block_points, scheduler=scheduler,
                         progress=progress, **params)


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


def __dir__():
    return sorted({*globals(), *_MODULES})


__all__ = ["DseError", "evaluate", "breakeven", "breakeven_param", "max_batch", "pareto_front", "open_results", "presets",
           "run_search", "from_hf_config", "explore", "plot", "results", "traces", "__version__"]
