"""``dse-search``: a Hydra app. ``dse-search search=deepseek-r1-capacity search.n_trials=2000 search.seed=1``.

Bad input prints one line to stderr and exits with status 2, before any trial runs.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dse.config.presets import CONF_DIR

#: Storage URLs given on the command line with a secret: the masked URL Hydra sees -> the real one (this process
#: only; the secret never reaches Hydra's config, its saved .hydra/*.yaml, ``--cfg job`` or the job log).
_REAL_URLS: dict[str, str] = {}

def scrub_secrets(run_dir, url) -> None:
    """Replace a storage password in the files Hydra wrote for this run (.hydra/*.yaml, the job log) by ***."""
    from pathlib import Path

    from dse.files import write_text
    from dse.search.study import mask

    for f in [*Path(run_dir).glob(".hydra/*.yaml"), *Path(run_dir).glob("*.log")]:
        try:
            text = f.read_text()
            clean = mask(text, url)
            if clean != text:      # Hydra's own files of this run: rewritten in place, masked
                write_text(f, clean, "search.storage", overwrite=True)
        except OSError:
            pass


def hide_secrets(argv: list[str]) -> list[str]:
    """``search.storage=URL`` overrides with a secret (user-info password or secret query value) replaced by the
    masked URL before Hydra sees them; the real URL is kept in this process (:data:`_REAL_URLS`). Setting the
    URL in the environment variable DSE_SEARCH_STORAGE keeps it off the command line altogether (docs/search.md)."""
    from dse.search.study import mask, secrets

    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+") == "search.storage":
            raw = value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value
            if secrets(raw):
                masked = mask(raw, raw)
                _REAL_URLS[masked] = raw
                arg = f'{key}="{masked}"'
        out.append(arg)
    return out


@hydra.main(config_path=str(CONF_DIR), config_name="search_config", version_base=None)
def _app(cfg: DictConfig) -> None:
    import xarray as xr

    from dse.cli.common import errors, set_verbosity
    from dse.search.report import front_table
    from dse.search.run import run
    from dse.search.study import mask

    from dse.search.study import STORAGE_ENV

    log = logging.getLogger("dse")
    run_dir = HydraConfig.get().runtime.output_dir
    given = OmegaConf.select(cfg, "search.storage", default=None)
    url = _REAL_URLS.get(given, given) or os.environ.get(STORAGE_ENV)   # for masking: whichever URL is used
    scrub_secrets(run_dir, url)
    with errors("dse-search", "interrupted; every trial stored so far is complete (re-run to resume)",
                scrub=lambda msg: mask(msg, url)):
        c = OmegaConf.to_container(cfg, resolve=True)
        if given in _REAL_URLS:
            c["search"]["storage"] = _REAL_URLS[given]
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
        sys.argv = [sys.argv[0], *prepare(hide_secrets(sys.argv[1:]))]
        if not shell_completion(sys.argv):
            check_argv(sys.argv[1:], "search_config")
            check_name(sys.argv[1:])
    from dse.cli.common import run_app

    run_app("dse-search", _app)


def check_name(argv: list[str]) -> None:
    """``search.name`` names the run directory outputs/search/<name>: a plain name, checked before Hydra makes it."""
    from dse.files import confined

    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+") == "search.name":
            confined(value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value,
                     "search.name")


if __name__ == "__main__":
    main()
