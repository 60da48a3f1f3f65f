"""Open sweep results lazily and answer the common questions with xarray.

    ds = dse.open_results("multirun/paper-fig45/merged.nc")
    ratio_to(ds.energy_per_token, "placement", "hbm")          # each placement relative to HBM
    best(ds, "placement")                                       # the cheapest placement that fits, and its energy
    crossing(ratio, "flash_read_pj_per_bit", 1.0)               # where SSD offloading breaks even

Every helper takes and returns xarray objects, keeps the other dimensions, and stays lazy on dask-backed data.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from dse.errors import DseError
from dse import cf
from dse.cf import named
from dse.files import MARK_ATTR
from dse.run.layout import DONE_FILE


def _consolidated(path: Path) -> bool:
    """Whether a Zarr store's metadata is consolidated (dse consolidates every store it finishes)."""
    import json

    try:
        return "consolidated_metadata" in json.loads((path / "zarr.json").read_text())
    except (OSError, ValueError):
        return False


def open_results(path, chunks=None) -> xr.Dataset:
    """Open a NetCDF file or Zarr store written by dse, lazily (dask-backed, in the file's own chunks).

    An unfinished Zarr sweep (``*.zarr.partial``) is refused: re-run its config to resume it.
    """
    p = Path(path)
    if not p.exists():
        raise DseError(f"results path {str(p)!r} does not exist")
    if p.name.endswith(".partial") or (p.is_dir() and (p / DONE_FILE).exists()):
        raise DseError(f"{str(p)!r} is an unfinished sweep: re-run the same config to resume it")
    if p.name.endswith((".tmp", ".old", ".lock")):
        raise DseError(f"{str(p)!r} is a temporary file of an interrupted or running write, not a result")
    try:
        if p.is_dir():
            ds = xr.open_zarr(p, consolidated=(p / "zarr.json").is_file() and _consolidated(p), chunks={} if chunks is None else chunks)
        else:
            ds = xr.open_dataset(p, engine="h5netcdf", chunks={} if chunks is None else chunks)
    except Exception as err:  # noqa: BLE001 - truncated, empty, text, bit-flipped: one line
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise DseError(f"{str(p)!r} is not a readable dse result ({type(err).__name__}: {reason})") from None
    if "dse_version" not in ds.attrs and MARK_ATTR not in ds.attrs:
        ds.close()
        raise DseError(f"{str(p)!r} was not written by dse (no dse_version attribute)")
    # flags (fits, endurance_ok) are stored as CF 0 / 1 integers (NetCDF has no boolean) and read back as booleans
    for name in cf.FLAGS:
        if name in ds and ds[name].dtype.kind in "iu" and "flag_values" in ds[name].attrs:
            attrs = {k: v for k, v in ds[name].attrs.items() if k not in ("flag_values", "flag_meanings")}
            ds[name] = ds[name].astype(bool).assign_attrs(attrs)
    return ds


def ratio_to(data, dim: str = "placement", reference="hbm"):
    """``data`` divided by its value at ``dim=reference`` (e.g. each placement's energy relative to HBM)."""
    _check_dim(data, dim)
    if reference not in data[dim].values:
        raise DseError(f"{dim}={reference!r} is not in the results: {list(data[dim].values)}")
    return data / data.sel({dim: reference}, drop=True)


def best(data, dim: str, minimize: bool = True, *, variable: str = "energy_per_token", fits=None,
         include_unfit: bool = False) -> xr.Dataset:
    """The best choice along ``dim`` at every point of the other dimensions: ``value`` (the min, or max) and
    ``choice`` (its coordinate label along ``dim``). Points where every value is NaN get NaN / no choice.

    ``data`` is a DataArray, or a dse Dataset whose ``variable`` is compared. Configurations that do not fit their
    capacity are skipped by default: the Dataset's own ``fits`` variable, or ``fits=`` given with a DataArray
    (``best(ds.energy_per_token, "placement", fits=ds.fits)``); ``include_unfit=True`` compares everything."""
    if isinstance(data, xr.Dataset):
        if variable not in data:
            raise DseError(f"best: no variable {variable!r} in the dataset: variables are {sorted(data.data_vars)}")
        if fits is None and "fits" in data:
            fits = data["fits"]
        data = data[variable]
    _check_dim(data, dim)
    if fits is not None and not include_unfit:
        data = data.where(fits.astype(bool))
    value = data.min(dim) if minimize else data.max(dim)
    choice = data.idxmin(dim) if minimize else data.idxmax(dim)
    return xr.Dataset({"value": value, "choice": choice})


def crossing(data: xr.DataArray, dim: str, threshold: float) -> xr.DataArray:
    """Where ``data`` crosses ``threshold`` along the numeric dimension ``dim``, by linear interpolation between
    neighbouring grid values: the smallest such coordinate at every point of the other dimensions (NaN where it
    never crosses). E.g. the Flash read energy below which offloading costs no more energy than HBM:
    ``crossing(ratio_to(ds.energy_per_token).sel(placement="ssd"), "flash_read_pj_per_bit", 1.0)``."""
    _check_dim(data, dim)
    x = data[dim]
    if x.dtype.kind not in "iuf":
        raise DseError(f"crossing: dimension {dim!r} is not numeric")
    if data.sizes[dim] < 2:
        raise DseError(f"crossing: dimension {dim!r} needs at least 2 values")
    y = (data - threshold).drop_vars(dim)
    x = x.astype(float).drop_vars(dim)
    y0, y1 = y.isel({dim: slice(None, -1)}), y.isel({dim: slice(1, None)})
    x0, x1 = x.isel({dim: slice(None, -1)}), x.isel({dim: slice(1, None)})
    y0, y1, x1 = (a.assign_coords({dim: np.arange(a.sizes[dim])}) for a in (y0, y1, x1))
    x0 = x0.assign_coords({dim: np.arange(x0.sizes[dim])})
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = x0 + (x1 - x0) * y0 / (y0 - y1)
    at = xr.where(y0 == 0, x0, xr.where(y0 * y1 < 0, inner, np.nan))
    last = xr.where(y.isel({dim: -1}) == 0, x.isel({dim: -1}), np.nan)       # touching at the last grid value
    found = xr.concat([at, last.expand_dims({dim: [at.sizes[dim]]})], dim=dim).min(dim)
    return named(found, f"{data.name or 'value'}_crossing").assign_attrs(
        units=data[dim].attrs.get("units", ""), long_name=f"{dim} where {data.name or 'the value'} = {threshold}")


def _check_dim(data, dim: str) -> None:
    if dim not in data.dims:
        raise DseError(f"no dimension {dim!r} in the results: dimensions are {list(data.dims)}")
