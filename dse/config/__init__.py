"""Configuration: presets (YAML under dse/conf, each number with its source), model / system specs, the one rule
table of allowed ranges (:mod:`dse.config.rules`), parameter names (:mod:`dse.config.params`), Hugging Face import
and the steps that resolve a call's parameters into the kernel's inputs (:mod:`dse.config.inputs`)."""
import os
from pathlib import Path

#: The shipped presets (YAML, each number with its source); DSE_CONF_DIR points elsewhere (tests, user presets).
CONF_DIR = Path(os.environ.get("DSE_CONF_DIR", Path(__file__).resolve().parent.parent / "conf"))
