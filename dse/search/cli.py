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


def scrub_secrets(run_dir, url) -> None:
    """Replace a storage password in the files Hydra wrote for this run (.hydra/*.yaml, the job log) by ***."""
    from pathlib import Path

    from .study import mask, password

    if not password(url):
        return
    for f in [*Path(run_dir).glob(".hydra/*.yaml"), *Path(run_dir).glob("*.log")]:
        try:
            text = f.read_text()
            clean = mask(text, url)
            if clean != text:
                f.write_text(clean)
        except OSError:
            pass


@hydra.main(config_path=str(CONF_DIR), config_name="search_config", version_base=None)
def _app(cfg: DictConfig) -> None:
    import xarray as xr

    from ..cliutil import fail, set_verbosity
    from .report import front_table
    from .run import run

    log = logging.getLogger("dse")
    run_dir = HydraConfig.get().runtime.output_dir
    url = OmegaConf.select(cfg, "search.storage", default=None)
    scrub_secrets(run_dir, url)
    try:
        c = OmegaConf.to_container(cfg, resolve=True)
        set_verbosity(c.pop("verbosity", "info"))
        summary = run(c, run_dir)
    except DseError as e:
        from .study import mask

        fail("dse-search", mask(str(e), url))
    except KeyboardInterrupt:
        fail("dse-search", "interrupted; every trial stored so far is complete (re-run to resume)", code=130)
    with xr.open_dataset(Path(run_dir) / "pareto.nc", engine="h5netcdf") as pareto:
        log.info(front_table(pareto.load()))
    from .study import mask

    log.info(mask(json.dumps(summary, indent=1, default=str), url))
    scrub_secrets(run_dir, url)   # the job log written during the run


def main() -> None:
    from ..cliutil import check_argv, fail

    try:   # a misspelt key or preset would otherwise surface as Hydra's multi-line composition error
        check_argv(sys.argv[1:], "search_config")
    except DseError as e:
        fail("dse-search", e)
    _app()


if __name__ == "__main__":
    main()
