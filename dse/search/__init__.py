"""Pareto search over a dse design space with Optuna (``dse-search``): energy per token versus capacity cost.

``compose(preset, overrides)`` builds the search config; ``run(cfg, run_dir)`` runs it (see :mod:`.run`).
"""
from __future__ import annotations

from .run import run


def compose(preset: str = "deepseek-r1-capacity", overrides: tuple[str, ...] | list[str] = ()) -> dict:
    """The composed search config (root config + ``search=<preset>`` + Hydra-style overrides) as a dict."""
    from dse.config.presets import check_preset, hydra_config

    check_preset("search", preset)
    return hydra_config("search_config", [f"search={preset}", *overrides])


__all__ = ["compose", "run"]
