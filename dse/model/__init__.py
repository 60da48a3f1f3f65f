"""The physics: specs and presets, routing, the decode-step operation table, capacity (docs/model.md)."""
import os
from pathlib import Path

#: The shipped presets (YAML, each number with its source); DSE_CONF_DIR points elsewhere (tests, user presets).
CONF_DIR = Path(os.environ.get("DSE_CONF_DIR", Path(__file__).resolve().parent.parent / "conf"))
