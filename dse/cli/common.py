"""What the command-line entry points share: one-line errors (:func:`errors`, used by every command), checking a
Hydra app's command line before Hydra composes anything (so that a misspelt key, preset or grid parameter is one
line with a suggestion), and the logging verbosity switch.
"""
from __future__ import annotations

import contextlib
import logging
import sys

from dse.errors import DseError

#: Preset groups selectable as ``group=name`` on the command line.
PRESET_KEYS = ("model", "system", "study", "accounting", "search", "gpu", "link")
#: Preset groups that set a part of the system: ``gpu=NAME`` is Hydra's ``gpu@system.gpu=NAME`` (the system
#: preset's GPU replaced by the preset NAME), ``link=NAME`` its offload link.
SYSTEM_PARTS = {"gpu": "gpu@system.gpu", "link": "link@system.offload_link"}
#: Hydra's own flags that take the next argument as their value.
FLAGS_WITH_VALUE = ("--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn", "--experimental-rerun",
                    "--info", "-i")
LEVELS = ("debug", "info", "warning", "error")


def fail(prog: str, err: Exception, code: int = 2) -> None:
    """Print ``prog: error: message`` (one line) to stderr and exit."""
    logging.getLogger("dse").debug("error: %s", err)
    print(f"{prog}: error: {err}", file=sys.stderr)
    sys.exit(code)


@contextlib.contextmanager
def errors(prog: str, interrupted: str = "interrupted; temporary files removed", scrub=str):
    """Run a command's work: a :class:`DseError` becomes one line and exit status 2, Ctrl-C one line and 130.
    ``scrub`` filters the message (``dse-search`` masks storage passwords)."""
    try:
        yield
    except DseError as err:
        fail(prog, scrub(str(err)))
    except KeyboardInterrupt:
        fail(prog, interrupted, code=130)


def run_app(prog: str, app) -> None:
    """Run a Hydra app so that Hydra's own failures are one line too: a run directory it cannot create (read-only,
    full), a config file it cannot load (``!!python`` tags are refused by the safe YAML loader: never executed),
    a composition error. Hydra is asked to raise instead of printing its traceback (HYDRA_FULL_ERROR, unless the
    user set it: then the full traceback is what they asked for); anything else, a bug, keeps its traceback."""
    import os

    if os.environ.get("HYDRA_FULL_ERROR"):
        app()
        return
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        app()
    except Exception as err:  # noqa: BLE001 - only Hydra's, the OS's and YAML's own errors become one line
        if not _reported(err):
            raise
        text = " ".join(str(err).split())[:300] or type(err).__name__
        fail(prog, f"{text}" if isinstance(err, DseError) else f"{type(err).__name__}: {text}")
    finally:
        del os.environ["HYDRA_FULL_ERROR"]


def _reported(err: BaseException) -> bool:
    """An error of the input or the environment (one line), not of dse's code."""
    import yaml
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return isinstance(err, (DseError, OSError, yaml.YAMLError, HydraException, OmegaConfBaseException))


def _flag_values(argv: list[str], *flags: str) -> list[str]:
    """The values of ``--flag VALUE`` / ``--flag=VALUE`` in ``argv``."""
    out = []
    for i, arg in enumerate(argv):
        for flag in flags:
            if arg == flag and i + 1 < len(argv):
                out.append(argv[i + 1])
            elif arg.startswith(flag + "="):
                out.append(arg[len(flag) + 1:])
    return out


def prepare(argv: list[str]) -> list[str]:
    """A command line as Hydra should see it: ``--config-dir DIR`` joins the preset search path (so its presets
    are checked and listed with the shipped ones), the directories of ``DSE_CONF_DIR`` become
    ``hydra.searchpath`` (after the shipped presets), and ``gpu=NAME`` / ``link=NAME`` select a part of the
    system (:data:`SYSTEM_PARTS`). Raises a one-line :class:`DseError` for a missing ``--config-dir``."""
    from pathlib import Path

    from dse import config

    for d in _flag_values(argv, "--config-dir", "-cd"):
        path = Path(d).expanduser().resolve()
        if not path.is_dir():
            raise DseError(f"--config-dir {d}: not a directory (a directory laid out like dse/conf: gpu/, "
                           "link/, model/, system/, study/ ...)")
        if path not in config.EXTRA_DIRS:
            config.EXTRA_DIRS.append(path)
    out = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if eq and key in SYSTEM_PARTS:
            arg = f"{SYSTEM_PARTS[key]}={value}"
        out.append(arg)
    env = [d for d in config.user_conf_dirs() if d not in config.EXTRA_DIRS]
    if env and not any(a.startswith("hydra.searchpath=") for a in out):
        out.append(f"hydra.searchpath=[{','.join(f'file://{d}' for d in env)}]")
    return out


def shell_completion(argv: list[str]) -> bool:
    """Whether this is Hydra's shell completion (``-sc install=bash``, ``-sc query=bash``): left to Hydra."""
    return any(a in ("-sc", "--shell-completion") or a.startswith("--shell-completion=") for a in argv)


def version(prog: str, argv: list[str]) -> None:
    """``--version``: print dse's version (and Hydra's) and exit."""
    if "--version" in argv:
        import hydra

        from dse.provenance import version as dse_version

        print(f"{prog} {dse_version()} (Hydra {hydra.__version__})")
        sys.exit(0)


def _single(value: str) -> bool:
    """A plain value, not a Hydra sweep (``a,b``, ``range(...)``, ``choice(...)``, ``glob(...)``)."""
    return "," not in value and "(" not in value


def check_argv(argv: list[str], config_name: str = "config") -> None:
    """Check presets, config keys and grid parameters of ``key=value`` overrides against the composed config.

    Raises a one-line :class:`DseError` naming the key and the closest known one. Overrides Hydra handles itself
    (``hydra.*``, ``+key`` / ``++key`` additions, ``~key`` deletions, ``group/sub=...``) are left to Hydra; with
    ``--config-dir`` / ``--config-name`` only presets are checked (the primary config is then another one)."""
    from dse.config import presets
    from dse.config.params import lookup

    custom = _custom_config(argv, config_name)
    choices, keys, values = _scan_overrides(argv)
    grid_keys = [k for k in keys if k.startswith("grid.")]
    for key in grid_keys:
        name = key[len("grid."):]
        if "." not in name:
            lookup(name)  # a canonical parameter (or a one-line error with a suggestion)
    if custom:
        return
    tree = presets.hydra_config(config_name, tuple(choices), resolve=False)
    _check_keys(tree, keys, values)


def _custom_config(argv: list[str], config_name: str) -> bool:
    """Whether the primary config is another one (``--config-name`` / ``--config-path``, or the user's own)."""
    from dse import config

    return any(a in ("--config-name", "-cn", "--config-path", "-cp")
               or a.startswith(("--config-name=", "--config-path=")) for a in argv) or any(
        (d / f"{config_name}.yaml").is_file() for d in config.EXTRA_DIRS)   # a primary config of the user's


def _scan_overrides(argv: list[str]) -> tuple[list[str], list[str], dict]:
    """Check the presets named in ``argv``; return the preset choices, the config keys set and their values."""
    from dse.config import presets

    choices, keys, skip, values = [], [], False, {}
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg.startswith("-"):
            skip = arg in FLAGS_WITH_VALUE
            continue
        if "=" not in arg:
            continue
        key, _, value = arg.partition("=")
        bare = key.lstrip("+~")
        bare = next((g for g, part in SYSTEM_PARTS.items() if bare == part), bare)
        if bare in PRESET_KEYS:
            if value and not value.startswith("null"):
                for v in value.split(","):
                    presets.check_preset(bare, v)
                if _single(value):
                    choices.append(f"{SYSTEM_PARTS.get(bare, bare)}={value}")
            continue
        if "@" in bare and bare.split("@")[0] in ("gpu", "link", "tier", "profile"):   # Hydra's group@package
            for v in (value.split(",") if value and not value.startswith("null") else []):
                presets.check_preset(bare.split("@")[0], v)
            if _single(value):
                choices.append(f"{bare}={value}")
            continue
        if key.startswith(("+", "~")) or bare.startswith("hydra") or "/" in bare:
            continue
        keys.append(bare)
        values[bare] = value
    return choices, keys, values


def _check_keys(tree, keys: list[str], values: dict) -> None:
    """Each key must name a node of the composed config ``tree``, and a section only set to a mapping or null."""
    from dse.config import presets

    for key in keys:
        if key.startswith("grid."):
            name = key[len("grid."):]
            if "." in name and not name.startswith("flash."):
                presets.get_path(tree, name)  # a dotted grid parameter must name a config leaf
            continue
        node = presets.get_path(tree, key)
        if isinstance(node, dict) and not values.get(key, "").lstrip().startswith(("{", "null")):
            raise DseError(_section_error(key, values.get(key, "")))


#: Config sections that are presets of a group: the override that picks one.
SECTION_GROUPS = {"system.gpu": "gpu", "system.offload_link": "link", "model": "model", "system": "system",
                  "accounting": "accounting"}


def _section_error(key: str, value: str) -> str:
    """``system.offload_link=nvlink-c2c-gen4``: a section set to a value; name the override that was meant."""
    group = SECTION_GROUPS.get(key) or (
        "tier" if key.startswith("system.tiers.") and key.count(".") == 2 else None)
    if group == "tier":
        return (f"{key}={value}: {key} is a section (a tier's settings), not a value; pick a tier preset with "
                f"tier@{key}={value}, or set one of its numbers ({key}.read_pj_per_bit=...)")
    if group:
        return (f"{key}={value}: {key} is a section, not a value; pick a {group} preset with {group}={value}"
                f" (dse list {group if group.endswith('s') else group + 's'})")
    return f"{key}={value}: {key} is a section, not a value; set one of its keys ({key}.NAME=...)"


def set_verbosity(level: str | None) -> None:
    """``verbosity=debug|info|warning|error``: the level of dse's loggers (console and Hydra's <job>.log)."""
    level = str(level or "info").lower()
    if level not in LEVELS:
        raise DseError(f"verbosity={level!r}: allowed {', '.join(LEVELS)}")
    logging.getLogger("dse").setLevel(level.upper())


def grid_override(arg: str) -> str:
    """``grid.NAME=...`` -> ``++grid.NAME=...``: a grid entry may be set whether or not the config has it."""
    return f"++{arg}" if arg.startswith("grid.") and "=" in arg else arg
