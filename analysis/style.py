"""Shared figure style: the Agg backend, component colours and labels, PNG + SVG writing."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COMPONENT_LABELS = {
    "hbm_weights": "HBM weight reads",
    "hbm_kv": "KV-cache reads",
    "hbm_activations": "HBM activation reads + writes",
    "offload_read": "offload tier reads (DDR / Flash)",
    "offload_link": "offload link",
    "offload_hbm_write": "HBM write of staged copies",
    "compute": "compute",
    "onchip": "on-chip traffic (L2 + L1)",
    "background": "background (static power x step)",
}
COMPONENT_COLORS = dict(zip(COMPONENT_LABELS, plt.get_cmap("tab10").colors))
PLACEMENT_LABELS = {"hbm": "HBM", "ddr": "DDR", "ssd": "SSD", "hbf": "HBF", "cxl": "CXL", "lpddr": "LPDDR"}


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 6.4, height: float = 4.4, **kw):
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)
    return fig, axes


def save(fig, out_dir, stem: str) -> list[Path]:
    """Write ``stem``.png and ``stem``.svg into ``out_dir`` (temporary name, then rename); return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in ("png", "svg"):
        path = out / f"{stem}.{fmt}"
        tmp = out / f".{stem}.{fmt}.tmp"
        fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")
        os.replace(tmp, path)
        paths.append(path)
    plt.close(fig)
    return paths


def out_dir_from_argv(argv, default: str = "figures") -> Path:
    return Path(argv[1]) if len(argv) > 1 else Path(default)
