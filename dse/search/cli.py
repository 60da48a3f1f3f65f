"""``dse-search``: a Hydra app. ``dse-search search=deepseek-r1-capacity search.n_trials=2000 search.seed=1``.

Bad input prints one line to stderr and exits with status 2, before any trial runs.
"""
from __future__ import annotations

import json
import sys

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
    from .run import run

    run_dir = HydraConfig.get().runtime.output_dir
    url = OmegaConf.select(cfg, "search.storage", default=None)
    scrub_secrets(run_dir, url)
    try:
        summary = run(OmegaConf.to_container(cfg, resolve=True), run_dir)
    except DseError as e:
        from .study import mask

        print(f"dse-search: error: {mask(str(e), url)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("dse-search: interrupted; every trial stored so far is complete (re-run to resume)", file=sys.stderr)
        sys.exit(130)
    print(json.dumps(summary, indent=1, default=str))


def main() -> None:
    from ..config import check_preset

    try:   # a missing preset would otherwise surface as Hydra's multi-line composition error
        for arg in sys.argv[1:]:
            if arg.startswith("search="):
                check_preset("search", arg.split("=", 1)[1])
    except DseError as e:
        print(f"dse-search: error: {e}", file=sys.stderr)
        sys.exit(2)
    _app()


if __name__ == "__main__":
    main()
