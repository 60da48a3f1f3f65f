"""One search run: check everything, open the study, add trials, write the outputs (and validate)."""
from __future__ import annotations

import contextlib
import json
import re
import time
from pathlib import Path

import numpy as np

from dse.errors import DseError
from dse import files
from dse.search import exhaustive, points, report, study as study_mod
from dse.search import verify as validate
from .pareto import Normalizer, nondominated
from .space import check_run_settings, parse


def _base(cfg: dict) -> dict:
    base = {k: v for k, v in cfg.items() if k not in ("search", "hydra")}
    base["grid"] = {}   # the search space replaces the grid
    return base


def _check(search: dict, base: dict, space, run_dir: Path) -> Path:
    """Every check of a search before any work: settings, method, marks, validation size, run directory, and every
    value the search may try (before any storage is touched)."""
    check_run_settings(search)
    exhaustive.check(search)
    study_mod.check_storage(search.get("storage"), run_dir)     # whatever the method: a bad URL is never ignored
    if search.get("mark_study") is not None:
        from dse.config.presets import check_preset

        check_preset("study", search["mark_study"])
    if search.get("validate"):
        if space.discrete_values() is None:
            validate.exact_front(base, space, 0)   # raises the not-discrete error
        if space.size() > exhaustive.max_enumerate(search):
            raise DseError(f"search.validate: the space has {space.size()} points; "
                           f"search.max_enumerate={search.get('max_enumerate')}")
    if not run_dir.is_dir():
        raise DseError(f"run directory {str(run_dir)!r} does not exist")
    from dse.analyze.figure_switch import figures_wanted

    report.check_outputs(run_dir, figures_wanted(search_plot(base)), bool(search.get("validate")))
    points.check_question(base, space)
    return run_dir


#: What a storage's driver says when its disk is full (SQLite, PostgreSQL, MySQL, the OS).
_FULL = re.compile(r"disk is full|no space left|disk full|errno = 28|\[Errno 28\]|quota exceeded|could not extend file",
                   re.IGNORECASE)


@contextlib.contextmanager
def storage_faults(search: dict, run_dir: Path):
    """A storage write that fails for want of space (or permission) ends the search with one line; every trial
    stored before it is complete (a journal's torn last record is repaired when the study is next opened)."""
    key = f"search.storage={study_mod.mask(study_mod.storage_url(search.get('storage'), run_dir))!r}"
    try:
        yield
    except DseError:
        raise
    except OSError as err:
        reason = files.FULL_REASONS.get(err.errno) or (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise DseError(f"{key}: writing failed ({study_mod.mask(reason)}); every trial stored before it is complete "
                       "(re-run to resume)") from None
    except Exception as err:  # noqa: BLE001 - a driver's error: one line when it is a full disk
        if _FULL.search(str(err)):
            raise DseError(f"{key}: writing failed (no space left on the device); every trial stored before it is "
                           "complete (free space and re-run to resume)") from None
        raise


def search_plot(cfg: dict):
    """The ``plot`` switch of a search config (checked: true or false)."""
    plot = cfg.get("plot", True)
    if not isinstance(plot, bool):
        raise DseError(f"plot={plot!r}: allowed true or false")
    return plot


def run(cfg: dict, run_dir: str | Path, progress: bool | None = None) -> dict:
    """Run the search described by ``cfg`` (a composed search config, as a dict) in ``run_dir``.

    Returns a summary (trials, wall time, front size, output paths, and the validation result if asked).
    """
    search = cfg.get("search")
    base = _base(cfg)
    space = parse(search, base)
    run_dir = _check(search, base, space, Path(run_dir))
    method, why = exhaustive.choose(search, space, base)
    if method == "exhaustive":
        return exhaustive.run_exhaustive(cfg, base, space, run_dir, why)

    with storage_faults(search, run_dir):
        study = study_mod.open_study(search, space, base, run_dir)       # storage errors: before any trial
        progress = bool(search.get("progress", True)) if progress is None else progress
        stats = study_mod.optimize(study, space, base, int(search["n_trials"]), int(search["batch_size"]), progress,
                                   local_share=float(search.get("local_search", 0.0)),
                                   random_share=float(search.get("random_share", 0.0)),
                                   seed=int(search.get("seed", 0)) + study.n_before)
        numbers, params, F, C = study_mod.completed(study, space)
    if len(numbers) == 0:
        raise DseError("search: the study has no completed trial (search.n_trials=0 on a new study?)")
    feasible = np.all(C <= 0, axis=1)
    exact = None
    summary = dict(method="optuna", **why, study=study.name, trials_in_study=len(numbers),
                   feasible=int(feasible.sum()), **stats)
    if search.get("validate"):
        exact = validate.exact_front(base, space, exhaustive.max_enumerate(search))
        result = validate.compare(F[feasible], exact["F"])
        exact["hypervolume"] = result["hypervolume_exact"]
        result.update(n_points=exact["n_points"], n_feasible_points=exact["n_feasible"],
                      exact_front_size=len(exact["F"]), exhaustive_wall_s=exact["wall_s"],
                      exhaustive_points_per_s=exact["n_points"] / exact["wall_s"],
                      trials=len(numbers), objectives=space.objectives,
                      exact_front=[dict(p, **dict(zip(space.objectives, f.tolist())))
                                   for p, f in zip(exact["params"], exact["F"])])
        files.write_text(run_dir / "validation.json", json.dumps(result, indent=1, default=str), report.KEY)
        summary["validation"] = {k: v for k, v in result.items() if k != "exact_front"}
    norm = None
    if exact is not None and len(exact["F"]):
        norm = Normalizer(exact["F"])
    elif feasible.any():
        norm = Normalizer(F[feasible][nondominated(F[feasible])])
    ds = report.trials_dataset(base, space, numbers, params, F, C, norm)
    mark = report.marks(search["mark_study"], space) if search.get("mark_study") else None
    from dse.analyze.plot import limit_text

    limits = ", ".join(limit_text(k, lo, hi) for k, (lo, hi) in space.constraints.items())
    title = f"{study.name}: {len(numbers)} trials ({int(feasible.sum())} feasible); {limits}"
    t0 = time.perf_counter()
    from dse.analyze.figure_switch import figures_wanted

    outputs = report.write(run_dir, ds, space, mark, exact, title, figure=figures_wanted(cfg.get("plot", True)))
    summary["outputs"] = {k: str(v) for k, v in outputs.items()}
    summary["write_s"] = time.perf_counter() - t0
    summary["pareto_size"] = int(ds["pareto"].sum())
    return summary
