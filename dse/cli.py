"""``dse``: the Hydra app. ``dse study=paper-fig45-mixtral`` prints a table and writes result.nc in the run dir.

Scalar settings are dotted config overrides (``workload.batch=8``, ``system.gpu.idle_w=90``); dimensions go in the
``grid`` section (``grid.batch=[1,8,64]``, ``grid.flash_read_pj_per_bit=[10,100]``). ``dse -m model=a,b ...`` runs
one job per combination and merges their results at the end (:mod:`dse.collect`). The grid is evaluated and written
chunk by chunk (:mod:`dse.sweep`): NetCDF, or Zarr for large grids.
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from .config import CONF_DIR
from .params import DseError

TABLE_MAX_POINTS = 20_000  # larger results are summarised by their path only (query them with dse.open_results)


def write_netcdf(ds, path: Path) -> Path:
    """Write atomically: a temporary name in the same directory, then rename."""
    from .outputs import atomic_write

    return atomic_write(Path(path), lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))


def run(cfg: DictConfig, run_dir: Path) -> Path:
    from .report import energy_table
    from .results import open_results
    from .sweep import run as sweep

    out = sweep(OmegaConf.to_container(cfg, resolve=True), run_dir)
    ds = open_results(out)
    print(f"dse {ds.attrs['dse_version']}: model {ds.attrs['model']}, system {ds.attrs['system']}"
          f"{', study ' + ds.attrs['study'] if ds.attrs.get('study') else ''}  (energy in J per generated token)")
    needed = {"energy", "energy_per_token", "step_energy", "step_latency", "offload_share"}
    if needed <= set(ds.data_vars) and ds["energy_per_token"].size <= TABLE_MAX_POINTS:
        print(energy_table(ds))
    print(f"dataset: {out}")
    return out


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base=None)
def _app(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    try:
        run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except DseError as err:
        print(f"dse: error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("dse: interrupted; temporary files removed (a Zarr sweep resumes when re-run)", file=sys.stderr)
        sys.exit(130)


def _check_argv(argv: list[str]) -> None:
    """Unknown presets fail in one line before Hydra composes anything."""
    from .config import check_preset

    for arg in argv:
        key, _, value = arg.partition("=")
        key = key.lstrip("+~")
        if key in ("model", "system", "study", "accounting") and value:
            for v in value.split(","):
                check_preset(key, v)


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

    from . import config
    from .sweep import plan

    if not any(a in ("-m", "--multirun") for a in argv):
        return
    jobs = _jobs(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for i, job in enumerate(jobs):
            try:
                cfg = config.compose(overrides=tuple(job))
                plan(cfg, tmp)
            except DseError as err:
                raise DseError(f"job {i} of {len(jobs)} ({' '.join(job)}): {err}") from None
            except Exception as err:  # noqa: BLE001 - a composition error: Hydra reports it when the job runs
                del err


def main() -> None:
    from .sweep import grid_override

    try:
        _check_argv(sys.argv[1:])
        _check_multirun([grid_override(a) for a in sys.argv[1:]])
    except DseError as err:
        print(f"dse: error: {err}", file=sys.stderr)
        sys.exit(2)
    sys.argv = [sys.argv[0], *map(grid_override, sys.argv[1:])]  # grid.X=... may add a grid entry
    _app()


if __name__ == "__main__":
    main()
