"""The physics: specs and presets, routing, the decode-step operation table, capacity (docs/model.md)."""
import os
from pathlib import Path

#: The shipped presets (YAML, each number with its source); DSE_CONF_DIR points elsewhere (tests, user presets).
CONF_DIR = Path(os.environ.get("DSE_CONF_DIR", Path(__file__).resolve().parent.parent / "conf"))


def namespace(tree):
    """A nested dict as nested SimpleNamespaces (how the kernel reads its inputs: ``m.hidden``, ``t.experts.flops``);
    anything else as it is."""
    from types import SimpleNamespace

    if not isinstance(tree, dict):
        return tree
    return SimpleNamespace(**{k: namespace(v) for k, v in tree.items()})
