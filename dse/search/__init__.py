"""Pareto search over a dse design space with Optuna (``dse-search``): energy per token versus capacity cost.

``compose(preset, overrides)`` builds the search config; ``run(cfg, run_dir)`` runs it (see :mod:`.run`).
"""
from __future__ import annotations

from .run import run


def compose(preset: str = "deepseek-r1-capacity", overrides: tuple[str, ...] | list[str] = ()) -> dict:
    """The composed search config (root config + ``search=<preset>`` + Hydra-style overrides) as a dict."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from dse.model.config import CONF_DIR, check_preset

    check_preset("search", preset)
    ov = [f"search={preset}", *overrides]
    if GlobalHydra.instance().is_initialized():
        cfg = hydra_compose(config_name="search_config", overrides=ov)
    else:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = hydra_compose(config_name="search_config", overrides=ov)
    return OmegaConf.to_container(cfg, resolve=True)


__all__ = ["compose", "run"]
