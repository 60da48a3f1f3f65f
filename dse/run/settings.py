"""A sweep's settings (``dask:``, ``output:``, ``progress``, ``max_grid_points``), checked in one line each before
any work; their defaults and meaning are in dse/conf/config.yaml."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import yaml

from dse.config import presets
from dse.errors import DseError

#: The sweep's settings: their defaults and meaning are in dse/conf/config.yaml (the CLI passes them in ``cfg``).
SETTINGS_KEYS = ("dask", "output", "progress", "max_grid_points")
#: ``output.format`` of a sweep (the ``dse`` command adds csv: a NetCDF dataset plus its tidy table beside it).
FORMATS = ("auto", "netcdf", "zarr")


@functools.cache
def defaults() -> dict:
    """The sweep settings' defaults, read from dse/conf/config.yaml (plain YAML: no Hydra needed)."""
    raw = yaml.safe_load((presets.CONF_DIR / "config.yaml").read_text())
    return {k: raw[k] for k in SETTINGS_KEYS}


@dataclass(frozen=True)
class Settings:
    address: str | None
    local_cluster: bool
    n_workers: int | None
    chunk_mb: float | None        # None: chosen by the sweep (dse.run.layout.auto_chunk_mb)
    format: str
    zarr_above_gb: float
    path: str | None
    variables: list | None
    progress: bool
    max_grid_points: float
    overwrite: bool = False
    compressor: str = "zstd"


def settings(cfg: dict) -> Settings:
    """The sweep settings of a config, checked; a one-line DseError names any bad key."""
    base = defaults()
    d = {**base["dask"], **(cfg.get("dask") or {})}
    o = {**base["output"], **(cfg.get("output") or {})}
    for section, given, known in (("dask", cfg.get("dask") or {}, base["dask"]),
                                  ("output", cfg.get("output") or {}, base["output"])):
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise DseError(f"{section}.{unknown[0]}: unknown setting; allowed {', '.join(sorted(known))}")
    address = d["address"]
    if address is not None:
        host_port(address)
    if not isinstance(d["local_cluster"], bool):
        raise DseError(f"dask.local_cluster={d['local_cluster']!r}: allowed true or false")
    if d["local_cluster"] and address is not None:
        raise DseError("dask.local_cluster=true and dask.address are exclusive: give one")
    n = d["n_workers"]
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise DseError(f"dask.n_workers={n!r}: allowed an integer >= 1 (or null: one per core)")
    if d["chunk_mb"] is not None:
        _positive("dask.chunk_mb", d["chunk_mb"])
    if o["format"] not in FORMATS:
        raise DseError(f"output.format={o['format']!r}: allowed {', '.join(FORMATS)} or csv (csv: the dse command "
                       "writes NetCDF and a tidy result.csv)")
    _positive("output.zarr_above_gb", o["zarr_above_gb"])
    variables = o["variables"]
    if variables is not None and (isinstance(variables, str) or not list(variables)):
        raise DseError(f"output.variables={variables!r}: allowed null (all) or a non-empty list of names")
    if not isinstance(o["overwrite"], bool):
        raise DseError(f"output.overwrite={o['overwrite']!r}: allowed true or false")
    from dse.run.writers import ZARR_COMPRESSORS

    if o["compressor"] not in ZARR_COMPRESSORS:
        raise DseError(f"output.compressor={o['compressor']!r}: allowed {', '.join(ZARR_COMPRESSORS)}")
    plot = cfg.get("plot", True)
    if not isinstance(plot, bool):
        raise DseError(f"plot={plot!r}: allowed true or false")
    progress = cfg.get("progress", base["progress"])
    if not isinstance(progress, bool):
        raise DseError(f"progress={progress!r}: allowed true or false")
    limit = cfg.get("max_grid_points", base["max_grid_points"])
    _positive("max_grid_points", limit)
    chunk_mb = None if d["chunk_mb"] is None else float(d["chunk_mb"])
    return Settings(address, d["local_cluster"], n, chunk_mb, o["format"], float(o["zarr_above_gb"]),
                    o["path"], list(variables) if variables is not None else None, progress, float(limit),
                    o["overwrite"], o["compressor"])


def host_port(address) -> tuple[str, int]:
    """``[tcp://]HOST:PORT`` of a dask scheduler."""
    host, _, port = str(address).removeprefix("tcp://").rpartition(":")
    if not host or not port.isdigit():
        raise DseError(f"dask.address={address!r}: expected HOST:PORT")
    return host, int(port)


def _positive(key: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
        raise DseError(f"{key}={value!r}: allowed a finite number > 0")
