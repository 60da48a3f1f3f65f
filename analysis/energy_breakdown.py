"""Per-token energy stacked by component versus batch, one bar per expert placement (the paper's Figs. 4/5).

    python -m analysis.energy_breakdown [out_dir]     # Mixtral-8x7B and DeepSeek-R1, paper setups
"""
from __future__ import annotations

import sys

import xarray as xr

from analysis.style import out_dir_from_argv, save
from dse.analyze import plot


def per_token_components(ds: xr.Dataset, normalize: str | None = "hbm") -> xr.DataArray:
    """Energy per generated token by component (J), or relative to the ``normalize`` placement's total."""
    e = ds.energy / ds.batch
    if normalize is not None and "placement" in ds.dims and normalize in ds.placement.values:
        e = e / ds.energy_per_token.sel(placement=normalize, drop=True)
    return e


def plot_energy_breakdown(ds: xr.Dataset, *, normalize: str | None = "hbm", title: str | None = None):
    """The paper's Figs. 4/5: for each batch one bar per placement (H / D / S over it), stacked by energy
    component and normalised to HBM per batch (:func:`dse.plot.breakdown`; segment gids
    ``placement|component|batch``). ``normalize=None`` plots J per token."""
    if "batch" not in ds.dims:
        raise ValueError("plot_energy_breakdown needs a dataset with a batch dimension")
    return plot.breakdown(ds, normalize=normalize, title=title)


def main(argv=sys.argv) -> list:
    import dse

    out = out_dir_from_argv(argv)
    paths = []
    for study in ("paper-fig45-mixtral", "paper-fig45-deepseek"):
        paths += save(plot_energy_breakdown(dse.evaluate(study)), out, f"energy_breakdown_{study}")
    print("\n".join(map(str, paths)))
    return paths


if __name__ == "__main__":
    main()
