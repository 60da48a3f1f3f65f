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

from dse.config.presets import CONF_DIR


def scrub_secrets(run_dir, url) -> None:
    """Replace a storage password in the files Hydra wrote for this run (.hydra/*.yaml, the job log) by ***."""
    from pathlib import Path

    from dse.files import write_text
    from dse.search.study import mask, password

    if not password(url):
        return
    for f in [*Path(run_dir).glob(".hydra/*.yaml"), *Path(run_dir).glob("*.log")]:
        try:
            text = f.read_text()
            clean = mask(text, url)
            if clean != text:
                write_text(f, clean, "search.storage")
        except OSError:
            pass


@hydra.main(config_path=str(CONF_DIR), config_name="search_config", version_base=None)
def _app(cfg: DictConfig) -> None:
    import xarray as xr

    from dse.cli.common import errors, set_verbosity
    from dse.search.report import front_table
    from dse.search.run import run
    from dse.search.study import mask

    log = logging.getLogger("dse")
    run_dir = HydraConfig.get().runtime.output_dir
    url = OmegaConf.select(cfg, "search.storage", default=None)
    scrub_secrets(run_dir, url)
    with errors("dse-search", "interrupted; every trial stored so far is complete (re-run to resume)",
                scrub=lambda msg: mask(msg, url)):
        c = OmegaConf.to_container(cfg, resolve=True)
        set_verbosity(c.pop("verbosity", "info"))
        summary = run(c, run_dir)
    with xr.open_dataset(Path(run_dir) / "pareto.nc", engine="h5netcdf") as pareto:
        log.info(front_table(pareto.load()))
    log.info(mask(json.dumps(summary, indent=1, default=str), url))
    scrub_secrets(run_dir, url)   # the job log written during the run


def main() -> None:
    from dse.cli.common import check_argv, errors, prepare, shell_completion, version

    with errors("dse-search"):   # a misspelt key or preset would otherwise be Hydra's multi-line composition error
        version("dse-search", sys.argv[1:])
        sys.argv = [sys.argv[0], *prepare(sys.argv[1:])]
        if not shell_completion(sys.argv):
            check_argv(sys.argv[1:], "search_config")
    _app()


if __name__ == "__main__":
    main()
