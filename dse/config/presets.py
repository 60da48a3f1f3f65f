"""Presets and configs: compose Hydra configs from dse/conf/, list presets, turn a preset into plain numbers.

The YAML presets in dse/conf/ are the single source of physical defaults (each with its provenance). This module
composes them with Hydra (inside a running Hydra app it reuses the app's loader) and returns plain dicts.
"""
from __future__ import annotations

import copy
import functools
import logging

from omegaconf import OmegaConf

from dse.config import CONF_DIR, conf_dirs, user_conf_dirs  # noqa: F401 (where callers look)
from dse.errors import DseError, did_you_mean

log = logging.getLogger("dse")


def presets(group: str) -> list[str]:
    """Names of the presets of ``group`` on the search path: dse/conf/<group>/ and the user's directories
    (:func:`dse.config.conf_dirs`)."""
    return sorted({p.stem for d in conf_dirs() for p in (d / group).glob("*.yaml")})


def preset_file(group: str, name: str):
    """The YAML file of preset ``group=name``: the first on the search path (shipped presets first; a user preset
    of the same name is ignored, with a warning)."""
    check_preset(group, name)
    found = [d / group / f"{name}.yaml" for d in conf_dirs() if (d / group / f"{name}.yaml").is_file()]
    if len(found) > 1:
        _shadowed(tuple(map(str, found)))
    return found[0]


@functools.lru_cache(maxsize=None)
def _shadowed(found: tuple[str, ...]) -> None:
    log.warning("preset %s is used; %s %s ignored (give a user preset a name of its own)", found[0],
                ", ".join(found[1:]), "is" if len(found) == 2 else "are")


def searchpath_override() -> list[str]:
    """``hydra.searchpath=[file://DIR, ...]`` for the user's preset directories (none: [])."""
    dirs = user_conf_dirs()
    return [f"hydra.searchpath=[{','.join(f'file://{d}' for d in dirs)}]"] if dirs else []


def check_preset(group: str, name: str) -> None:
    known = presets(group)
    if name not in known:
        raise DseError(f"unknown {group} preset {name!r}{did_you_mean(name, known)}: known {group} presets are "
                       f"{', '.join(known)}")


def hydra_config(config_name: str = "config", overrides=(), resolve: bool = True) -> dict:
    """A primary config of dse/conf (``config``, ``breakeven``, ``search_config``) composed with Hydra-style
    overrides, as a plain dict; inside a running Hydra app its loader is reused. The one place dse composes."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if not any(str(o).startswith("hydra.searchpath=") for o in overrides):
        overrides = [*searchpath_override(), *overrides]
    if GlobalHydra.instance().is_initialized():
        cfg = compose(config_name=config_name, overrides=list(overrides))
    else:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = compose(config_name=config_name, overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=resolve)


@functools.lru_cache(maxsize=256)
def _compose_cached(overrides: tuple[str, ...], dirs: tuple = ()) -> dict:   # dirs: the search path (a key)
    return hydra_config("config", overrides)


def compose(study: str | None = None, model: str | None = None, system: str | None = None,
            overrides: tuple[str, ...] = ()) -> dict:
    """The composed root config as a plain dict (a fresh copy)."""
    ov = []
    if study is not None:
        check_preset("study", study)
        ov.append(f"study={study}")
    if model is not None:
        check_preset("model", model)
        ov.append(f"model={model}")
    if system is not None:
        check_preset("system", system)
        ov.append(f"system={system}")
    return copy.deepcopy(_compose_cached(tuple(ov) + tuple(overrides), tuple(user_conf_dirs())))


def preset(group: str, name: str) -> dict:
    """One preset of a group as a plain dict, checked against its schema (:mod:`dse.config.specs`); read once per
    process (a copy each call)."""
    check_preset(group, name)
    return copy.deepcopy(_preset_cached(group, name, tuple(user_conf_dirs())))


@functools.lru_cache(maxsize=256)
def _preset_cached(group: str, name: str, dirs: tuple = ()) -> dict:   # dirs: the search path (a key)
    from dse.config.specs import validated

    if group in ("model", "system"):
        return validated(group, compose(**{group: name})[group])
    if group in ("gpu", "link", "tier", "profile", "engine"):  # leaf presets: no defaults list
        return validated(group, OmegaConf.to_container(OmegaConf.load(preset_file(group, name))))
    raise DseError(f"presets of group {group!r} cannot be a dimension: use model, system, gpu or link")


def _missing(tree: dict, path: str, at: int) -> DseError:
    """A one-line error for the unknown key ``path`` (its part ``at`` is missing), with the closest known key."""
    parts = path.split(".")
    node = tree
    for part in parts[:at]:
        node = node[part]
    prefix = ".".join(parts[:at])
    known = [f"{prefix}.{k}" if prefix else str(k) for k in node] if isinstance(node, dict) else []
    where = f"; known keys of {prefix or 'the config'}: {', '.join(sorted(known))}" if known and len(known) <= 40 else ""
    return DseError(f"unknown config key {path!r}{did_you_mean(path, known)}{where}")


def get_path(tree: dict, path: str):
    node = tree
    for i, part in enumerate(path.split(".")):
        if not isinstance(node, dict) or part not in node:
            raise _missing(tree, path, i)
        node = node[part]
    return node


def set_path(tree: dict, path: str, value) -> None:
    parts = path.split(".")
    get_path(tree, path)
    node = tree
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def flat_grid(grid: dict | None) -> dict:
    """A ``grid:`` section with nested entries flattened to dotted names: ``{system: {gpu: {idle_w: [..]}}}`` (what
    Hydra makes of ``grid.system.gpu.idle_w=[..]``) -> ``{"system.gpu.idle_w": [..]}``. A range
    (``{start, stop, num[, log]}``) is a value, not a section."""
    out = {}
    for name, value in (grid or {}).items():
        is_range = isinstance(value, dict) and {"start", "stop", "num"} & set(value) and set(value) <= {
            "start", "stop", "num", "log"}
        if isinstance(value, dict) and value and not is_range:
            out.update({f"{name}.{k}": v for k, v in flat_grid(value).items()})
        else:
            out[name] = value
    return out


def to_yaml(tree: dict) -> str:
    import yaml

    return yaml.dump(tree, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)
