"""``dse``: the Hydra app. ``dse study=paper-fig45-mixtral`` prints a table and writes result.nc in the run dir.

Scalar settings are dotted config overrides (``workload.batch=8``, ``system.gpu.idle_w=90``); dimensions go in the
``grid`` section (``grid.batch=[1,8,64]``, ``grid.flash_read_pj_per_bit=[10,100]``, ``grid.system.gpu.idle_w=[90,
100]``). ``dse -m model=a,b ...`` runs one job per combination and merges their results at the end
(:mod:`dse.run.collect`). The grid is evaluated and written chunk by chunk (:mod:`dse.run.sweep`): NetCDF, or Zarr for
large grids; ``output.format=csv`` also writes a tidy long table. ``dse list models|systems|...`` lists presets.

Everything the run reports goes through :mod:`logging` (logger ``dse``), so Hydra's ``<job>.log`` in the run
directory keeps the run's story; ``verbosity=debug|info|warning|error`` sets how much of it is shown.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from dse.analyze import figure_switch as figure_size
from dse.analyze.figure_switch import figures_wanted
from dse.cli.common import check_argv, errors, set_verbosity
from dse.config.presets import CONF_DIR
from dse.errors import DseError

TABLE_MAX_POINTS = 20_000  # larger results are summarised by their path only (query them with dse.open_results)
CSV_MAX_ROWS = 10_000_000  # a CSV beyond this is refused before evaluating (use NetCDF / Zarr and dse.open_results)
log = logging.getLogger("dse")


def csv_rows(grid, names) -> int:
    """Rows of the tidy table of ``names`` on ``grid``: one per grid point of each variable (and part)."""
    import math

    return sum(math.prod(grid.sizes[d] for d in grid.layout[n][0]) * (len(grid.stacks[n][1]) if n in grid.stacks
                                                                       else 1) for n in names)


def write_csv(ds, path: Path, overwrite: bool = False) -> Path:
    """A tidy long table: one row per (grid point, variable[, component / cost part]), with units.

    Columns: the dataset's dimensions (blank where a variable does not depend on one), ``variable``, ``part``
    (the component or cost part of a stacked variable, else blank), ``value``, ``units``."""
    import pandas as pd

    dims = [d for d in ds.dims if d not in ("component", "cost_part")]
    frames = []
    for name, da in ds.data_vars.items():
        part = next((d for d in da.dims if d in ("component", "cost_part")), None)
        frame = da.to_dataframe(name="value").reset_index() if da.dims else pd.DataFrame({"value": [da.item()]})
        frame = frame.assign(part=frame.pop(part)) if part else frame.assign(part="")
        frame = frame.assign(variable=name, units=da.attrs.get("units", ""))
        present = [d for d in dims if d in frame.columns]
        frame = frame.astype({d: object for d in present})  # integer labels stay integers beside blanks
        frames.append(frame[present + ["variable", "part", "value", "units"]])
    table = pd.concat(frames, ignore_index=True)[[*dims, "variable", "part", "value", "units"]]
    from dse.files import atomic_write

    return atomic_write(Path(path), lambda tmp: table.to_csv(tmp, index=False), "output.format=csv", overwrite)


def without_csv(c: dict) -> dict:
    """``output.format=csv`` is the command's: the sweep writes NetCDF and the command adds the table."""
    if (c.get("output") or {}).get("format") == "csv":
        return {**c, "output": {**c["output"], "format": "netcdf"}}
    return c


def run(cfg: DictConfig | dict, run_dir: Path, study: str | None = None) -> Path:
    """Evaluate a composed root config in ``run_dir``: the dataset, a table of it, its figure (and CSV).
    ``study``: the study preset the config was composed from (Hydra's choice), recorded as the ``study`` attribute."""
    from dse.run.table import energy_table, request_table
    from dse.run.results import open_results
    from dse.run.sweep import plan
    from dse.files import check_free
    from dse.run.sweep import run as sweep

    c = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    set_verbosity(c.pop("verbosity", "info"))
    want_csv = (c.get("output") or {}).get("format") == "csv"
    c = without_csv(c)
    planned = plan(c, run_dir)            # every setting checked (plot included)
    grid, s, names, fmt, path = planned
    if study and not grid.attrs.get("study"):
        grid.attrs["study"] = str(study)
    if want_csv and csv_rows(grid, names) > CSV_MAX_ROWS:
        raise DseError(f"output.format=csv: {csv_rows(grid, names):,} rows, over {CSV_MAX_ROWS:,}; "
                       "use output.format=netcdf or zarr (or output.variables=[...] to write fewer variables)")
    # every file the run will write is checked before any work: nothing dse did not write is replaced
    figure_size.check_figures_free(path, c.get("plot", True), s.overwrite, "plot=false or output.overwrite=true")
    if want_csv:
        check_free([Path(path).with_suffix(".csv")], "output.format=csv", s.overwrite)
    log.info("grid: %s = %s points; writing %s", " x ".join(f"{d} {n}" for d, n in grid.sizes.items()) or "one point",
             f"{grid.points:,}", fmt)
    out = sweep(c, run_dir, planned)
    ds = open_results(out)
    requests = "ttft" in ds.data_vars and "energy_per_output_token" in ds.data_vars
    log.info(f"dse {ds.attrs['dse_version']}: model {ds.attrs['model']}, system {ds.attrs['system']}"
             f"{', study ' + ds.attrs['study'] if ds.attrs.get('study') else ''}  "
             + ("(requests: energy per output token with prefill, TTFT, TPOT; the decode-step variables are in the "
                "dataset)" if requests else "(energy in J per generated token)"))
    needed = {"energy", "energy_per_token", "step_energy", "step_latency", "offload_share"}
    if requests and ds["ttft"].size <= TABLE_MAX_POINTS:
        log.info(request_table(ds))
    elif needed <= set(ds.data_vars) and ds["energy_per_token"].size <= TABLE_MAX_POINTS:
        log.info(energy_table(ds))
    elif "fits" in ds:
        n_out = int((~ds["fits"].astype(bool)).sum())
        if n_out:
            log.warning("%s of %s grid points do not fit their capacity (variable fits)", f"{n_out:,}",
                        f"{ds['fits'].size:,}")
    log.info(f"dataset: {out}")
    if figures_wanted(c.get("plot", True)) and not figure_size.too_large(ds, log):
        from dse.analyze.plot import write_next_to

        write_next_to(ds, out, log=log, overwrite=s.overwrite)
    if want_csv:
        log.info(f"table: {write_csv(ds.load(), Path(out).with_suffix('.csv'), s.overwrite)}")
    return out


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base=None)
def _app(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    with errors("dse", "interrupted; temporary files removed (a Zarr sweep resumes when re-run)"):
        hc = HydraConfig.get()
        run(cfg, Path(hc.runtime.output_dir), study=hc.runtime.choices.get("study"))


def list_presets(argv: list[str]) -> int:
    """``dse list [models|systems|gpus|tiers|links|accountings|studies|searches]``."""
    from dse.config.catalog import PLURAL, describe

    if len(argv) > 1 or (argv and argv[0] not in PLURAL):
        from dse.errors import did_you_mean

        what = argv[0] if argv else ""
        raise DseError(f"dse list {' '.join(argv)}: unknown list{did_you_mean(what, PLURAL)}; "
                       f"allowed {', '.join(PLURAL)}")
    for plural in argv or PLURAL:
        rows = describe(PLURAL[plural])
        width = max(len(r.name) for r in rows)
        print(f"{plural} ({'workload.' if plural == 'profiles' else ''}{PLURAL[plural]}=NAME):")
        for r in rows:
            print(f"  {r.name:<{width}}  [{r.grade}]  {r.description}")
    return 0


def _jobs(argv: list[str]) -> list[list[str]]:
    """The override lists of the jobs a multirun (``-m``) will run, as Hydra's basic sweeper expands them."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    args = [a for a in argv if "=" in a and not a.startswith("-") and not a.lstrip("+~").startswith("hydra")]
    try:
        parsed = OverridesParser.create().parse_overrides(args)
    except Exception as err:  # noqa: BLE001 - Hydra reports a bad override itself
        del err
        return []
    return [list(job) for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def _check_multirun(argv: list[str]) -> None:
    """A multirun validates every job's values before the first job runs (nothing is written)."""
    import tempfile

    from dse.config import presets
    from dse.run.sweep import plan

    if not any(a in ("-m", "--multirun") for a in argv):
        return
    jobs = _jobs(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for i, job in enumerate(jobs):
            try:
                cfg = presets.compose(overrides=tuple(job))
                plan(without_csv(cfg), tmp)
            except DseError as err:
                raise DseError(f"job {i} of {len(jobs)} ({' '.join(job)}): {err}") from None
            except Exception as err:  # noqa: BLE001 - a composition error: Hydra reports it when the job runs
                del err


def _quiet_pipe(command, argv: list[str]) -> int:
    """A printing command, quiet when its reader stops early (``dse list | head -1``, ``dse validate | head``)."""
    import os

    try:
        code = command(argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:   # the reader closed the pipe: nothing more to say (Python's documented recipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def main() -> None:
    from dse.cli.common import grid_override, prepare, shell_completion, version

    argv = sys.argv[1:]
    with errors("dse"):
        version("dse", argv)
        if argv[:1] == ["list"]:
            sys.exit(_quiet_pipe(list_presets, argv[1:]))
        if argv[:1] == ["validate"]:   # dse against published measurements (dse.analyze.validation)
            from dse.analyze.validation import main as validate

            sys.exit(_quiet_pipe(validate, argv[1:]))
        if argv[:1] == ["explore"]:    # the explorer in the browser (dse.explore; the explore extra)
            from dse.explorer.serve import main as explore

            sys.exit(explore(argv[1:]))
        argv = prepare(argv)
        if not shell_completion(argv):
            check_argv(argv, "config")
            _check_multirun([grid_override(a) for a in argv])
    sys.argv = [sys.argv[0], *map(grid_override, argv)]  # grid.X=... may add a grid entry
    from dse.cli.common import run_app

    run_app("dse", _app)


if __name__ == "__main__":
    main()
