"""``dse``: the Hydra app. ``dse study=paper-fig45-mixtral`` prints a table and writes result.nc in the run dir.

Scalar settings are dotted config overrides (``workload.batch=8``, ``system.gpu.idle_w=90``); dimensions go in the
``grid`` section (``grid.batch=[1,8,64]``, ``+grid.flash_read_pj_per_bit=[10,100]``).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from .config import CONF_DIR
from .params import DseError


def write_netcdf(ds, path: Path) -> Path:
    """Write atomically: a temporary name in the same directory, then rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    ds.to_netcdf(tmp, engine="h5netcdf")
    os.replace(tmp, path)
    return path


def run(cfg: DictConfig, run_dir: Path) -> Path:
    from .engine import evaluate
    from .report import energy_table

    ds = evaluate(cfg=OmegaConf.to_container(cfg, resolve=True))
    print(f"dse {ds.attrs['dse_version']}: model {ds.attrs['model']}, system {ds.attrs['system']}"
          f"{', study ' + ds.attrs['study'] if ds.attrs['study'] else ''}  (energy in J per generated token)")
    print(energy_table(ds))
    out = write_netcdf(ds, run_dir / "result.nc")
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


def _check_argv(argv: list[str]) -> None:
    """Unknown presets fail in one line before Hydra composes anything."""
    from .config import check_preset

    for arg in argv:
        key, _, value = arg.partition("=")
        key = key.lstrip("+~")
        if key in ("model", "system", "study", "accounting") and value and "," not in value:
            check_preset(key, value)


def main() -> None:
    try:
        _check_argv(sys.argv[1:])
    except DseError as err:
        print(f"dse: error: {err}", file=sys.stderr)
        sys.exit(2)
    _app()


if __name__ == "__main__":
    main()
