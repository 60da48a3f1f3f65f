"""Where a result came from: dse's version (from the installed package's metadata) and the git commit of the code."""
from __future__ import annotations

import functools
import subprocess
from pathlib import Path


@functools.cache
def version() -> str:
    """dse's version as installed (pyproject.toml's ``version``)."""
    from importlib.metadata import PackageNotFoundError, version as _version

    try:
        return _version("dse")
    except PackageNotFoundError:   # run from a source tree that was never installed
        return "0+unknown"


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=5).stdout.strip() or "unknown"
    except Exception:  # noqa: BLE001 - provenance is best effort
        return "unknown"
