"""Merge a Hydra multirun's results into one dataset whose dimensions are the swept choices.

Every job directory of a multirun holds ``.hydra/overrides.yaml`` and its ``result.nc`` (or ``result.zarr``). The
override keys whose values differ between jobs become new dimensions (``model=a,b`` -> ``model``;
``grid.batch=1,8`` -> ``batch``; a dotted path keeps its name), in the order the jobs ran, and the jobs' datasets
are concatenated along them (values missing from a job, e.g. a batch size another study lacks, are NaN). The
merged dataset records every job's overrides and resolved config. It is written next to the jobs as
``merged.nc`` (or ``merged.zarr`` when large) automatically at the end of a multirun (the Hydra callback
:class:`CollectOnMultirunEnd`), or by ``dse-collect DIR``.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from dse import cf
from dse.config.params import PARAMS
from dse.errors import DseError
from dse.run.results import open_results

MERGED_NAME = "merged"
RESULT_NAMES = ("result.nc", "result.zarr")


@dataclass
class Job:
    dir: Path | None     # None: a job Hydra planned that left no directory
    result: Path | None  # None: a missing, failed or unreadable job (merged as NaN with --allow-missing)
    overrides: list[str]
    choices: dict        # override key -> value
    problem: str = ""    # why the job has no result


def _choices(lines: list[str], parser) -> dict:
    choices = {}
    for o in parser.parse_overrides(lines):
        if o.key_or_group.startswith("hydra.") or o.key_or_group in ("output.path",):
            continue
        value = o.value()
        choices[o.key_or_group] = value if isinstance(value, (str, int, float, bool)) else o.get_value_element_as_str()
    return choices


def expected_jobs(sweep_dir: Path) -> list[list[str]] | None:
    """The override lists of every job Hydra's basic sweeper planned for this multirun (from multirun.yaml), in
    job order; None when they cannot be known (no multirun.yaml, another sweeper)."""
    f = Path(sweep_dir) / "multirun.yaml"
    if not f.is_file():
        return None
    try:
        h = yaml.safe_load(f.read_text())["hydra"]
        sweeper = h.get("sweeper") or {}
        if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
            return None
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        args = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()] + list(h["overrides"]["task"])
        batches = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(args), None)
    except Exception as err:  # noqa: BLE001
        raise DseError(f"{f}: cannot read the multirun's job list ({type(err).__name__})") from None
    return [list(job) for batch in batches for job in batch]


def _num(path: Path) -> tuple:
    try:
        return (0, int(yaml.safe_load((path / ".hydra" / "hydra.yaml").read_text())["hydra"]["job"]["num"]), path.name)
    except Exception:  # noqa: BLE001 - a job without a number sorts by its name
        return (1, 0, path.name)


def jobs(sweep_dir: Path) -> list[Job]:
    """The finished jobs under a multirun directory, in the order they ran."""
    return [j for j in all_jobs(sweep_dir) if j.result is not None]


def all_jobs(sweep_dir: Path) -> list[Job]:
    """Every job directory under a multirun directory (result None where it has none), in the order they ran."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    found = []
    for ov in sorted(Path(sweep_dir).glob("**/.hydra/overrides.yaml")):
        d = ov.parent.parent
        result = next((d / n for n in RESULT_NAMES if (d / n).exists()), None)
        try:
            lines = yaml.safe_load(ov.read_text()) or []
            choices = _choices(lines, parser)
        except Exception as err:  # noqa: BLE001
            raise DseError(f"{ov}: unreadable job overrides ({type(err).__name__})") from None
        found.append(Job(d, result, lines, choices, "" if result else "no result file (the job failed?)"))
    return sorted(found, key=lambda j: _num(j.dir))


def _describe(j: Job) -> str:
    name = j.dir.name if j.dir is not None else "never ran"
    return f"{name} ({' '.join(o for o in j.overrides if not o.startswith('hydra.'))}): {j.problem}"


def check_jobs(sweep_dir: Path, allow_missing: bool = False) -> tuple[list[Job], list[Job]]:
    """(jobs with a readable result, jobs without) checked against the job list Hydra recorded. Any job without
    a result is a one-line error unless ``allow_missing``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    found = all_jobs(sweep_dir)
    for j in found:
        if j.result is not None:
            try:
                with open_results(j.result) as ds:
                    run_yaml = ds.attrs.get("run_config_yaml")
            except DseError as err:
                j.result, j.problem = None, f"unreadable result ({str(err)[:120]})"
                continue
            mismatch = config_mismatch(j, run_yaml)
            if mismatch:
                raise DseError(f"{j.result}: the result was computed with {mismatch}, not the job's own config "
                               f"({' '.join(o for o in j.overrides if not o.startswith('hydra.'))}); "
                               "re-run the job (or remove the foreign result)")
    expected = expected_jobs(sweep_dir)
    if expected is not None:
        by_overrides = {tuple(j.overrides): j for j in found}
        parser = OverridesParser.create()
        ordered = []
        for lines in expected:
            j = by_overrides.get(tuple(lines))
            if j is None:
                j = Job(None, None, lines, _choices(lines, parser), "never ran (the multirun stopped?)")
            ordered.append(j)
        found = ordered
    ok = [j for j in found if j.result is not None]
    bad = [j for j in found if j.result is None]
    if bad and not allow_missing:
        shown = "; ".join(_describe(j) for j in bad[:4]) + (f"; and {len(bad) - 4} more" if len(bad) > 4 else "")
        raise DseError(f"{sweep_dir}: {len(bad)} of {len(found)} jobs have no readable result: {shown}. "
                       "Re-run them, or pass --allow-missing to merge them as NaN")
    return ok, bad


#: Settings that change how a run is written or shown, never its numbers (not compared by :func:`config_mismatch`).
PRESENTATION_KEYS = ("hydra", "progress", "plot", "verbosity", "dask", "output")


def _leaves(tree, prefix: str = "") -> dict:
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(_leaves(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: tree}


def config_mismatch(job: Job, run_yaml: str | None) -> str:
    """How a job's result config differs from the config Hydra composed for the job from its own overrides
    (``.hydra/config.yaml`` of the job's directory): ``"key=value"`` of the first difference, or "" when they
    agree (or either is unknown: a result written before dse recorded its config)."""
    from omegaconf import OmegaConf

    composed = job.dir / ".hydra" / "config.yaml" if job.dir is not None else None
    if not run_yaml or composed is None or not composed.is_file():
        return ""
    try:
        result = yaml.safe_load(run_yaml) or {}
        cfg = OmegaConf.load(composed)
        try:
            own = OmegaConf.to_container(cfg, resolve=True)
        except Exception:  # noqa: BLE001 - an interpolation of Hydra's own: compare the overridden keys only
            own = OmegaConf.to_container(cfg, resolve=False)
    except Exception as err:  # noqa: BLE001
        raise DseError(f"{composed}: unreadable job config ({type(err).__name__})") from None
    mine = {k: v for k, v in _leaves({k: v for k, v in own.items() if k not in PRESENTATION_KEYS}).items()
            if not (isinstance(v, str) and "${" in v)}
    theirs = _leaves({k: v for k, v in result.items() if k not in PRESENTATION_KEYS})
    for key, value in mine.items():
        if key in theirs and theirs[key] != value and not _same_number(theirs[key], value):
            return f"{key}={theirs[key]!r} (the job's config has {value!r})"
    return ""


def _same_number(a, b) -> bool:
    try:
        return not isinstance(a, (bool, str)) and not isinstance(b, (bool, str)) and float(a) == float(b)
    except (TypeError, ValueError):
        return False


def dim_name(key: str) -> str:
    """Dimension name of a swept override key: grid.batch -> batch; workload.batch -> batch; model -> model."""
    key = key.removeprefix("grid.")
    for name, p in PARAMS.items():
        if key == p.path and not p.preset_group:
            return name
    return key


def _swept(jobs: list) -> tuple[list, dict, list]:
    """The override keys whose values differ between jobs, their values in the order the jobs ran, and the
    dimension names they become."""
    keys = list(dict.fromkeys(k for j in jobs for k in j.choices))
    for j in jobs:
        missing = [k for k in keys if k not in j.choices]
        if missing:
            raise DseError(f"{j.dir}: override {missing[0]!r} is missing (the other jobs set it)")
    swept = [k for k in keys if len({repr(j.choices[k]) for j in jobs}) > 1]
    dims = [dim_name(k) for k in swept]
    if len(set(dims)) < len(dims):
        raise DseError(f"two swept overrides map to one dimension: {swept}")
    return swept, {k: list(dict.fromkeys(j.choices[k] for j in jobs)) for k in swept}, dims


def _by_choice(js: list, swept: list, dims: list) -> dict:
    """{choices: job}; two jobs with the same choices are refused."""
    out = {}
    for j in js:
        combo = tuple(j.choices[k] for k in swept)
        if combo in out:
            raise DseError(f"{j.dir} and {out[combo].dir} ran the same choices {dict(zip(dims, combo))}")
        out[combo] = j
    return out


def _nan_like(ds: xr.Dataset) -> xr.Dataset:
    return ds.map(lambda v: xr.full_like(v, np.nan, dtype=float) if v.dtype.kind in "iufb" else v, keep_attrs=True)


def _combine(js: list, opened: dict, by_choice: dict, swept: list, values: dict, dims: list, where) -> xr.Dataset:
    """The jobs' datasets nested along the swept dimensions (a missing combination is NaN) and combined."""
    def load(j, combo: tuple = ()) -> xr.Dataset:
        if j is None or j.result is None:
            return _nan_like(opened[js[0].dir]).expand_dims({d: [v] for d, v in zip(dims, combo)})
        ds = opened[j.dir]
        clash = [d for d in dims if d in ds.dims or d in ds.coords]
        if clash:
            raise DseError(f"{j.result}: swept override {clash[0]!r} is also a dimension of the job's grid")
        return ds.expand_dims({d: [j.choices[k]] for d, k in zip(dims, swept)})

    def nest(level: int, prefix: tuple):
        if level == len(swept):
            return load(by_choice.get(prefix), prefix)
        return [nest(level + 1, prefix + (v,)) for v in values[swept[level]]]

    if swept:
        return xr.combine_nested(nest(0, ()), concat_dim=dims, join="outer", combine_attrs="drop_conflicts",
                                 data_vars="all", coords="different", compat="equals")
    if len(js) == 1:
        return load(js[0])
    raise DseError(f"{where}: {len(js)} jobs ran the same overrides; nothing to merge along")


def merge(sweep_dir, allow_missing: bool = False) -> xr.Dataset:
    """The jobs' datasets (opened lazily) concatenated along the swept choices, with the multirun's provenance.

    Every job Hydra recorded (multirun.yaml) must have a readable result; with ``allow_missing`` the missing
    ones are NaN and listed in the ``missing_jobs`` attribute."""
    js, lost = check_jobs(Path(sweep_dir), allow_missing)
    if not js:
        raise DseError(f"{sweep_dir}: no job results (*/.hydra/overrides.yaml beside result.nc or result.zarr)")
    swept, values, dims = _swept(js + lost)
    by_choice = _by_choice(js, swept, dims)
    absent = [combo for combo in itertools.product(*(values[k] for k in swept)) if combo not in by_choice]
    if absent and not allow_missing:
        raise DseError(f"{sweep_dir}: no result for {dict(zip(dims, absent[0]))} (a job failed or is missing); "
                       "pass --allow-missing to merge it as NaN")
    missing_records = [dict(zip(dims, map(str, (j.choices[k] for k in swept))), job=_describe(j)) for j in lost]
    missing_records += [dict(zip(dims, map(str, combo)), job="no job") for combo in absent
                        if not any(tuple(j.choices[k] for k in swept) == combo for j in lost)]
    opened = {j.dir: open_results(j.result) for j in js}
    merged = _combine(js, opened, by_choice, swept, values, dims, sweep_dir)
    for d, k in zip(dims, swept):
        p = PARAMS.get(d)
        merged[d].attrs.update(cf.attrs(p.units if p else "", p.doc if p else f"multirun choice {k}"))
    merged = merged.assign_attrs(_provenance(js, {j.dir: ds.attrs for j, ds in zip(js, opened.values())},
                                             swept, dims, merged.attrs))
    if missing_records:
        merged.attrs["missing_jobs"] = json.dumps(missing_records)
    merged.set_close(lambda: [ds.close() for ds in opened.values()])
    return merged


def _provenance(js: list[Job], job_attrs: dict, swept: list, dims: list, kept: dict) -> dict:
    records = []
    for j in js:
        attrs = job_attrs[j.dir]
        records.append({"dir": j.dir.name, "choice": {d: j.choices[k] for d, k in zip(dims, swept)},
                        "overrides": j.overrides, "config_digest": attrs.get("config_digest"),
                        "config": yaml.safe_load(attrs.get("run_config_yaml") or attrs.get("config_yaml") or "{}"),
                        "settings": json.loads(attrs.get("settings") or "{}")})
    config_yaml = yaml.safe_dump({"multirun_dims": dims, "jobs": records}, sort_keys=False)
    out = {"multirun_dims": json.dumps(dims), "config_yaml": config_yaml,
           "config_digest": hashlib.sha256(config_yaml.encode()).hexdigest()}
    for key in ("dse_version", "git_commit"):
        if key not in kept:
            out[key] = ",".join(sorted({str(job_attrs[j.dir].get(key)) for j in js}))
    return out


def write(ds: xr.Dataset, path: Path, progress: bool = True, overwrite: bool = False) -> Path:
    """Write a (lazy) dataset to ``path`` (.nc or .zarr) under a temporary name, renamed when complete."""
    from contextlib import nullcontext

    from dask.diagnostics import ProgressBar

    from dse import files as outputs
    from dse.run.schedule import PROGRESS_DELAY_S

    path = Path(path)
    ds = ds.assign_attrs({outputs.MARK_ATTR: "written by dse"})
    for v in ds.variables.values():   # a flag merged with a missing job's NaN is float now: not cast back to 0 / 1
        if v.dtype.kind == "f" and v.encoding.get("dtype") is not None and np.dtype(v.encoding["dtype"]).kind in "biu":
            del v.encoding["dtype"]
    with outputs.lock(path, "dse-collect"), outputs.atomic(path, "dse-collect output", overwrite,
                                                                             "--overwrite") as tmp:
        with ProgressBar(minimum=PROGRESS_DELAY_S) if progress else nullcontext():
            if path.suffix == ".zarr":
                ds = ds.unify_chunks()
                ds = ds.chunk({d: max(c) for d, c in ds.chunks.items()})
                for c in ds.coords:
                    if ds[c].dtype.kind == "U":
                        ds[c] = ds[c].astype(object)
                for v in ds.variables.values():
                    v.encoding.pop("chunks", None)
                    v.encoding.pop("preferred_chunks", None)
                ds.to_zarr(tmp, mode="w", consolidated=False)
                from dse.run.writers import consolidate

                consolidate(tmp)   # as every store dse writes: xr.open_zarr reads it without a warning
            else:
                encoding = {n: {"chunksizes": tuple(max(c) for c in v.chunks)} for n, v in ds.data_vars.items()
                            if v.chunks and v.ndim}
                outputs.write_reserved(ds, tmp, encoding=encoding)   # a full disk: one line, before HDF5
    return path


def collect(sweep_dir, output=None, fmt: str = "auto", zarr_above_gb: float = 2.0, progress: bool = True,
            allow_missing: bool = False, overwrite: bool = False) -> Path:
    """Merge a multirun directory's results and write ``merged.nc`` / ``merged.zarr`` there (or ``output``).
    Every job Hydra planned must have a readable result unless ``allow_missing`` (NaN, listed in an attribute);
    a file at the output path that dse did not write is replaced only with ``overwrite``."""
    from dse import files as outputs

    if fmt not in ("auto", "netcdf", "zarr"):
        raise DseError(f"format={fmt!r}: allowed auto, netcdf, zarr")
    if output is not None and Path(output).suffix not in (".nc", ".zarr"):
        raise DseError(f"output {str(output)!r}: use a .nc or .zarr name")
    if output is not None and fmt != "auto" and (Path(output).suffix == ".zarr") != (fmt == "zarr"):
        raise DseError(f"output {str(output)!r} does not match format={fmt}: use a "
                       f"{'.zarr' if fmt == 'zarr' else '.nc'} name, or leave the format to the name")
    ds = merge(sweep_dir, allow_missing)
    if output is None:
        big = fmt == "zarr" or (fmt == "auto" and ds.nbytes > zarr_above_gb * 1e9)
        output = Path(sweep_dir) / f"{MERGED_NAME}.{'zarr' if big else 'nc'}"
    output = Path(output)
    if output.suffix not in (".nc", ".zarr"):
        raise DseError(f"output {str(output)!r}: use a .nc or .zarr name")
    try:
        outputs.check_target(output, "zarr" if output.suffix == ".zarr" else "netcdf", "dse-collect output",
                             overwrite, "--overwrite")
        outputs.check_space(output, ds.nbytes if output.suffix == ".nc" else ds.nbytes / 4,
                            key="dse-collect output")
        return write(ds, output, progress, overwrite)
    finally:
        ds.close()


try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover - hydra is a dependency
    Callback = object


class CollectOnMultirunEnd(Callback):
    """Hydra callback (dse/conf/hydra/callbacks/collect.yaml): merge a multirun's results when it ends."""

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        out = config.get("output") or {}
        try:
            fmt = out.get("format", "auto")
            fmt = "auto" if fmt == "csv" else fmt   # each job wrote its own CSV; the merge is a dataset
            path = collect(sweep_dir, fmt=fmt, zarr_above_gb=out.get("zarr_above_gb", 2.0),
                           progress=bool(config.get("progress", True)))
        except OSError as err:   # never a traceback at the end of a multirun
            print(f"dse-collect: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", file=sys.stderr)
            return
        except DseError as err:
            print(f"dse-collect: {err}", file=sys.stderr)
            return
        print(f"merged: {path}")
