"""Latency per output token (the decode-step time) versus batch, one line per expert placement.

    python -m analysis.latency [out_dir]     # Mixtral-8x7B and DeepSeek-R1, paper setups
"""
from __future__ import annotations

import sys

import xarray as xr

from analysis.style import PLACEMENT_LABELS, new_figure, out_dir_from_argv, save


def plot_latency(ds: xr.Dataset, *, title: str | None = None):
    """Decode-step latency (ms per output token of each sequence) versus batch; lines labelled by placement."""
    if "batch" not in ds.dims:
        raise ValueError("plot_latency needs a dataset with a batch dimension")
    lat = ds.step_latency
    if "placement" not in lat.dims:
        lat = lat.expand_dims(placement=[str(ds.attrs.get("placement", "experts"))])
    fig, axes = new_figure()
    ax = axes[0, 0]
    for p in lat.placement.values:
        y = lat.sel(placement=p).transpose("batch").values * 1e3
        (line,) = ax.plot(ds.batch.values, y, marker="o", ms=3, label=f"experts in {PLACEMENT_LABELS.get(str(p), p)}")
        line.set_gid(f"latency|{p}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ds.batch.values, [str(b) for b in ds.batch.values])
    ax.set_yscale("log")
    ax.set_xlabel("batch (sequences per decode step)")
    ax.set_ylabel("latency per output token = decode-step time (ms)")
    ax.set_title(title or f"Decode-step latency: {ds.attrs.get('model', '')} on {ds.attrs.get('system', '')}",
                 fontsize=10)
    ax.legend(fontsize=8, title="placement", title_fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return fig


def main(argv=sys.argv) -> list:
    import dse

    out = out_dir_from_argv(argv)
    paths = []
    for study in ("paper-fig45-mixtral", "paper-fig45-deepseek"):
        paths += save(plot_latency(dse.evaluate(study)), out, f"latency_{study}")
    print("\n".join(map(str, paths)))
    return paths


if __name__ == "__main__":
    main()
