"""Outputs of a search: trials.nc, pareto.nc, trials.csv, pareto.png (and validation.json), written atomically."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from dse import files
from dse.run.engine import evaluate
from dse.search import points
from .pareto import Normalizer, nondominated
from .space import Space

KEY = "search output"
#: The files a search writes in its run directory (and pareto.png / .svg with the figure, validation.json with
#: search.validate): checked before any work (:func:`check_outputs`).
OUTPUT_NAMES = ("trials.nc", "pareto.nc", "trials.csv")


def output_paths(run_dir: Path, figure: bool, validation: bool) -> list[Path]:
    names = [*OUTPUT_NAMES, *(("pareto.png", "pareto.svg") if figure else ()), *(("validation.json",) if validation
                                                                                 else ())]
    return [Path(run_dir) / n for n in names]


def check_outputs(run_dir: Path, figure: bool, validation: bool) -> None:
    """Before any work: no output of the search would replace a file dse did not write (one-line error)."""
    files.check_free(output_paths(run_dir, figure, validation), KEY, flag="hydra.run.dir to another directory")


def trials_dataset(base: dict, space: Space, numbers, params, F, C, norm: Normalizer | None) -> xr.Dataset:
    """Every completed trial re-evaluated in one call, with feasibility, Pareto membership and HV history."""
    ds = points.evaluate_trials(base, space, params).assign_coords(trial=numbers)
    F_again, _, names = points.metrics(ds, space, ["trial"])
    if not np.allclose(F_again, F, rtol=1e-9, atol=0):
        warnings.warn("re-evaluated objectives differ from the stored ones (was the study run with other code?)")
    feasible = np.all(C <= 0, axis=1)
    pareto = np.zeros(len(F), dtype=bool)
    pareto[np.flatnonzero(feasible)[nondominated(F[feasible])]] = True
    ds["feasible"] = ("trial", feasible)
    ds["pareto"] = ("trial", pareto)
    ds["constraint_violation"] = (("trial", "constraint"), C)
    ds = ds.assign_coords(constraint=names if len(names) == C.shape[1] else list(space.constraints))
    ds["constraint_violation"].attrs.update(units="1", long_name="relative constraint violation (<= 0 satisfied)")
    ds["feasible"].attrs.update(long_name="all constraints satisfied")
    ds["pareto"].attrs.update(long_name="feasible and not dominated by another feasible trial")
    if norm is not None:
        hv = hypervolume_history(F, feasible, norm)
        ds["hypervolume"] = ("trial", hv)
        ds["hypervolume"].attrs.update(units="1", long_name="normalized hypervolume of the feasible trials so far")
    ds.attrs.pop("settings", None)
    ds.attrs.update(objectives=json.dumps(space.objectives),
                    constraints=json.dumps({k: list(v) for k, v in space.constraints.items()}),
                    search_space=json.dumps({k: repr(d) for k, d in space.distributions.items()}),
                    search_bounds=json.dumps(bounds(space), default=str),
                    search_fixed=json.dumps(space.fixed, default=str))
    return ds


def bounds(space: Space) -> dict:
    """{parameter: [low, high]} of the space's numeric parameters, {parameter: [choices]} of its categorical ones."""
    out = {}
    for name, d in space.distributions.items():
        if hasattr(d, "choices"):
            out[name] = [c.item() if hasattr(c, "item") else c for c in d.choices]
        else:
            out[name] = [d.low, d.high]
    return out


def hypervolume_history(F: np.ndarray, feasible: np.ndarray, norm: Normalizer, points_: int = 200) -> np.ndarray:
    """Hypervolume of the feasible trials among the first i (in trial order), at ~``points_`` checkpoints."""
    n = len(F)
    hv = np.full(n, np.nan)
    if n == 0:
        return hv
    every = max(1, n // points_)
    marks = sorted(set(range(every - 1, n, every)) | {n - 1})
    last = 0.0
    for i in marks:
        sel = feasible[: i + 1]
        last = norm.hypervolume(F[: i + 1][sel]) if sel.any() else 0.0
        hv[i] = last
    # forward-fill between checkpoints
    idx = np.where(np.isfinite(hv), np.arange(n), 0)
    np.maximum.accumulate(idx, out=idx)
    filled = hv[idx]
    filled[: marks[0]] = np.nan
    return filled


def marks(study: str, space: Space) -> dict | None:
    """A fixed-scenario study (e.g. the paper's) evaluated with the same objectives and constraints."""
    ds = evaluate(study)
    dims = [d for d in ds.energy_per_token.dims]
    F, C, _ = points.metrics(ds, space, dims)
    coords = np.meshgrid(*[ds[d].values for d in dims], indexing="ij")
    labels = [dict(zip(dims, (c.ravel()[i].item() for c in coords))) for i in range(len(F))]
    return dict(study=study, F=F, feasible=np.all(C <= 0, axis=1), labels=labels,
                system=ds.attrs.get("system", ""))


def plot(path: Path, ds: xr.Dataset, space: Space, mark: dict | None, exact: dict | None, title: str) -> list[Path]:
    """The front figure (:func:`dse.plot.pareto`) as ``path`` (.png) and the same name .svg, atomically."""
    from dse.analyze import plot as dplot

    import logging

    fig = dplot.pareto(ds, tuple(space.objectives[:2]), mark=mark, exact=exact, title=title)
    for problem in dplot.problems(fig):     # checked before it is saved (the datasets are the result: said, not fatal)
        logging.getLogger("dse").warning("figure: %s", problem)
    return dplot.save(fig, Path(path).parent, Path(path).stem)


def write(run_dir: Path, ds: xr.Dataset, space: Space, mark: dict | None, exact: dict | None, title: str,
          figure: bool = True, trials: bool = True) -> dict:
    """trials.nc, pareto.nc, trials.csv and (``figure``) pareto.png + .svg in ``run_dir``; returns their paths.
    Without ``trials`` (an exhaustive run: its "trials" are the front itself) pareto.nc and pareto.csv only."""
    run_dir = Path(run_dir)
    names = ("trials.nc", "pareto.nc", "trials.csv", "pareto.png") if trials else ("pareto.nc", "pareto.csv",
                                                                                     "pareto.png")
    out = {k: run_dir / k for k in names}
    pareto = ds.isel(trial=np.flatnonzero(ds["pareto"].values))
    files.write_netcdf(pareto, out["pareto.nc"], KEY)
    table = ds if trials else pareto
    flat = [v for v in table.data_vars if table[v].dims == ("trial",)]
    if trials:
        files.write_netcdf(ds, out["trials.nc"], KEY)
    csv = out["trials.csv" if trials else "pareto.csv"]
    files.atomic_write(csv, lambda tmp: table[flat].to_dataframe().to_csv(tmp), KEY)
    if figure:
        plot(out["pareto.png"], ds, space, mark, exact, title)
        out["pareto.svg"] = run_dir / "pareto.svg"
    else:
        del out["pareto.png"]
    return out


FRONT_COLUMNS = {"gpu": "GPU", "n_gpus": "GPUs", "placement": "tier", "offload_path": "path",
                 "hbm_cache_fraction": "HBM cache", "warm_fraction": "warm", "dynamic_cache_experts": "LRU",
                 "batch": "batch", "energy_per_token": "J/token",
                 "capacity_cost_usd": "capacity $", "step_latency": "latency s"}


def front_table(pareto, max_rows: int = 60) -> str:
    """The feasible front as a text table, cheapest first: the usual columns (GPU, count, tier, path, cache, batch,
    J/token, capacity $) and every other search parameter that varies along the front; below it the parameters
    with one value on the whole front, flagged where that value is a bound of the search's range."""
    import pandas as pd

    from dse.analyze.plot.pareto import fixed_note, front_variables

    n = pareto.sizes.get("trial", 0)
    if n == 0:
        return "front: no feasible trial"
    varying, fixed = front_variables(pareto)
    columns = dict(FRONT_COLUMNS)
    for name in varying:
        columns.setdefault(name, name.rsplit(".", 1)[-1])
    cols = {}
    for name, label in columns.items():
        if name in fixed and name not in FRONT_COLUMNS:
            continue   # said once below the table
        if name in pareto.variables and set(pareto[name].dims) <= {"trial"}:
            values = pareto[name].values
            cols[label] = [values.item()] * n if values.ndim == 0 else list(values)
    df = pd.DataFrame(cols)
    if "capacity $" in df:
        df = df.sort_values("capacity $")
    df = df.drop_duplicates().reset_index(drop=True)
    fmt = {"capacity $": lambda v: f"{v:,.0f}", "J/token": lambda v: f"{v:.4g}", "latency s": lambda v: f"{v:.3g}",
           "HBM cache": lambda v: f"{v:.3g}"}
    for col in df.columns:   # any other number as people write it (463.1, not 463.119031)
        if col not in fmt and df[col].dtype.kind == "f":
            fmt[col] = lambda v: f"{v:.4g}"
    text = df.head(max_rows).to_string(formatters={k: f for k, f in fmt.items() if k in df}, index=False)
    more = f"\n... {len(df) - max_rows} more (pareto.nc)" if len(df) > max_rows else ""
    note = fixed_note(fixed)
    return f"front ({len(df)} designs):\n{text}{more}" + (f"\n{note}" if note else "")

