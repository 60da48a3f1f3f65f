"""``dse-search``: a Hydra app. ``dse-search search=deepseek-r1-capacity search.n_trials=2000 search.seed=1``.

Bad input prints one line to stderr and exits with status 2, before any trial runs.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from ..config import CONF_DIR
from ..params import DseError


@hydra.main(config_path=str(CONF_DIR), config_name="search_config", version_base=None)
def _app(cfg: DictConfig) -> None:
    import xarray as xr

    from ..cliutil import fail, set_verbosity
    from .report import front_table
    from .run import run

    log = logging.getLogger("dse")
    run_dir = HydraConfig.get().runtime.output_dir
    try:
        c = OmegaConf.to_container(cfg, resolve=True)
        set_verbosity(c.pop("verbosity", "info"))
        summary = run(c, run_dir)
    except DseError as e:
        fail("dse-search", e)
    with xr.open_dataset(Path(run_dir) / "pareto.nc", engine="h5netcdf") as pareto:
        log.info(front_table(pareto.load()))
    log.info(json.dumps(summary, indent=1, default=str))


def main() -> None:
    from ..cliutil import check_argv, fail

    try:   # a misspelt key or preset would otherwise surface as Hydra's multi-line composition error
        check_argv(sys.argv[1:], "search_config")
    except DseError as e:
        fail("dse-search", e)
    _app()


if __name__ == "__main__":
    main()
