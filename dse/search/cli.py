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


@hydra.main(config_path=str(CONF_DIR), config_name="search_config", version_base=None)
def _app(cfg: DictConfig) -> None:
    from .run import run

    run_dir = HydraConfig.get().runtime.output_dir
    try:
        summary = run(OmegaConf.to_container(cfg, resolve=True), run_dir)
    except DseError as e:
        print(f"dse-search: error: {e}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(summary, indent=1, default=str))


def main() -> None:
    from ..cliutil import check_argv, fail

    try:   # a misspelt key or preset would otherwise surface as Hydra's multi-line composition error
        check_argv(sys.argv[1:], "search_config")
    except DseError as e:
        fail("dse-search", e)
    _app()


if __name__ == "__main__":
    main()
