"""Sweeps at scale: one run evaluates its whole grid block by block with dask and writes NetCDF or Zarr.

``run(cfg, run_dir)`` is what the ``dse`` CLI calls with Hydra's composed config. Everything is validated
before any output file is created (grid parameters and ranges, the grid-size limit, the sweep settings, the
dask scheduler). The grid is cut into blocks (:mod:`dse.run.grid`) sized from a target chunk size; each block is one
dask task (threaded scheduler by default, or a distributed scheduler) that evaluates the kernel on the block with
numpy and writes it. Zarr is written block by block, so memory stays bounded whatever the grid size; the blocks
written are recorded, and an interrupted sweep re-run with the same config (and output path) resumes and gives
exactly the dataset an uninterrupted run would. Every file is written under a temporary name and renamed when
complete.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import socket
from dataclasses import replace
from pathlib import Path

import yaml

from dse import files as outputs
from dse.run import writers
from dse.run.layout import RESULT_NAME, Layout, auto_chunk_mb, written_values
from dse.run.schedule import _announce, _close, _quiet_dask
from dse.run.settings import Settings, host_port, settings
from dse.errors import DseError

def connect(s: Settings):
    """A distributed Client for ``dask.address`` or ``dask.local_cluster``, else None (threaded scheduler)."""
    if s.address is not None:
        host, port = host_port(s.address)
        try:
            socket.create_connection((host, port), timeout=3).close()
        except OSError as err:
            raise DseError(f"dask.address={s.address}: no dask scheduler reachable ({err.strerror or err})") from None
        from distributed import Client

        _quiet_dask()
        return _announce(Client(f"tcp://{host}:{port}", timeout="10s"))
    if s.local_cluster:
        from distributed import Client, LocalCluster

        _quiet_dask()

        cluster = LocalCluster(n_workers=s.n_workers or os.cpu_count(), threads_per_worker=1, processes=True,
                               dashboard_address=":0")   # a free port
        return _announce(Client(cluster))
    return None


# ------------------------------------------------------------------------------------------------- run
def plan(cfg: dict, run_dir: Path | str = "."):
    """Validate a config for a sweep (nothing is written): (grid, settings, variable names, format, path)."""
    from dse.run import engine

    s = settings(cfg)
    grid = engine.resolve(cfg=cfg)
    names = s.variables or list(grid.variables)
    unknown = [n for n in names if n not in grid.variables]
    if unknown:
        raise DseError(f"output.variables: unknown variable {unknown[0]!r}; known: {', '.join(grid.variables)}")
    nbytes = written_values(grid, names) * 8
    fmt = s.format if s.format != "auto" else ("zarr" if nbytes > s.zarr_above_gb * 1e9 else "netcdf")
    path = Path(s.path) if s.path else Path(run_dir) / f"{RESULT_NAME}.{'zarr' if fmt == 'zarr' else 'nc'}"
    if path.suffix not in (".nc", ".zarr"):
        raise DseError(f"output.path={str(path)!r}: use a .nc or .zarr name")
    if (path.suffix == ".zarr") != (fmt == "zarr"):
        raise DseError(f"output.path={str(path)!r} does not match output.format={fmt}")
    outputs.check_target(path, fmt, overwrite=s.overwrite)        # nothing dse did not write is replaced
    s = replace(s, chunk_mb=s.chunk_mb or auto_chunk_mb(grid, names))
    largest = nbytes if fmt == "netcdf" else s.chunk_mb * 2**20 * 8
    outputs.check_space(path, nbytes if fmt == "netcdf" else nbytes / 4, largest)
    return grid, s, names, fmt, path


def run(cfg: dict, run_dir: Path | str = ".", planned: tuple | None = None) -> Path:
    """Evaluate the config's whole grid and write it; returns the path written (``result.nc`` or ``result.zarr``
    in ``run_dir`` unless ``output.path`` is set). Bad input raises a one-line DseError before any file exists.
    ``planned``: what :func:`plan` returned for this config and run_dir (so the grid is not resolved twice)."""
    grid, s, names, fmt, path = planned or plan(cfg, run_dir)
    client = connect(s)
    try:
        run_yaml = yaml.safe_dump({k: v for k, v in cfg.items() if k != "hydra"}, sort_keys=False)
        attrs = {"run_config_yaml": run_yaml, "run_config_digest": hashlib.sha256(run_yaml.encode()).hexdigest(),
                 outputs.MARK_ATTR: "written by dse"}
        write = functools.partial(writers.write_zarr, compressor=s.compressor) if fmt == "zarr" else writers.write_netcdf
        with outputs.lock(path):
            if s.overwrite and (path.exists() or path.is_symlink()) and not outputs.is_dse_output(path):
                outputs._remove(path)          # the user asked for it (output.overwrite=true)
            layout = Layout(grid, names, s.chunk_mb)
            chosen = "" if (cfg.get("dask") or {}).get("chunk_mb") else " (dse's choice; dask.chunk_mb sets it)"
            blocks = math.prod(len(c) for c in layout.chunking.values())
            logging.getLogger("dse").info("%s blocks, chunks of %.3g MiB%s", f"{blocks:,}", s.chunk_mb, chosen)
            try:
                return write(layout, path, attrs, client=client, n_workers=s.n_workers, progress=s.progress)
            except OSError as err:
                raise outputs.os_error(err, path) from None
    finally:
        _close(client)


