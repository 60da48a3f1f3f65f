"""Per-token energy stacked by component versus batch, one bar per expert placement (the paper's Figs. 4/5).

    python -m analysis.energy_breakdown [out_dir]     # Mixtral-8x7B and DeepSeek-R1, paper setups
"""
from __future__ import annotations

from pathlib import Path

import xarray as xr

from analysis import common
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


def figures(args):
    import dse

    for study in ("paper-fig45-mixtral", "paper-fig45-deepseek"):
        yield f"energy_breakdown_{study}", plot_energy_breakdown(dse.evaluate(study))


def main(argv=None) -> list[Path]:
    return common.main(figures, __doc__, argv)


if __name__ == "__main__":
    main()
