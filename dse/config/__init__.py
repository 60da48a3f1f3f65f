"""Configuration: presets (YAML under dse/conf, each number with its source), model / system specs, the one rule
table of allowed ranges (:mod:`dse.config.rules`), parameter names (:mod:`dse.config.params`), Hugging Face import
and the steps that resolve a call's parameters into the kernel's inputs (:mod:`dse.config.inputs`).

The preset search path (docs/usage.md "Your own presets"): the shipped presets first, then every directory of the
environment variable ``DSE_CONF_DIR`` (several separated by ``os.pathsep``, ``:`` on Linux), then a command's
``--config-dir DIR``. Each directory is laid out like dse/conf (``DIR/gpu/my-h200.yaml`` is ``gpu=my-h200``); a
user preset adds to the shipped ones and never hides them (a name the shipped presets already use is refused).
"""
import os
from pathlib import Path

#: The shipped presets (YAML, each number with its source), inside the package.
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"

#: Directories added for this process (``--config-dir`` of a command); searched after ``DSE_CONF_DIR``.
EXTRA_DIRS: list[Path] = []


def user_conf_dirs() -> list[Path]:
    """The user's preset directories: ``DSE_CONF_DIR`` (``os.pathsep``-separated) then ``--config-dir``."""
    env = [Path(p).expanduser().resolve() for p in os.environ.get("DSE_CONF_DIR", "").split(os.pathsep) if p]
    out = []
    for d in env + EXTRA_DIRS:
        if d != CONF_DIR and d not in out:
            out.append(d)
    return out


def conf_dirs() -> list[Path]:
    """The whole preset search path, in the order Hydra searches it: shipped presets first, then the user's."""
    return [CONF_DIR, *user_conf_dirs()]
