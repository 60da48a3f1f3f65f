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
import itertools
import json
import logging
import math
import os
import socket
import sys
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml

from dse.run import io as outputs
from dse.run import writers
from dse.run.settings import Settings, check_size, grid_size_bound, host_port, settings
from dse.model.params import DseError

RESULT_NAME = "result"
DONE_FILE = "dse-done-blocks.txt"   # inside a partial Zarr store: the pieces already written, one per line
PROGRESS_DELAY_S = 2.0


# ------------------------------------------------------------------------------------------------- layout
def chunk_points(chunk_mb: float) -> int:
    """Grid points in a float64 chunk of about ``chunk_mb`` MiB."""
    return max(1, int(chunk_mb * 2**20 // 8))


#: ``dask.chunk_mb: null``: chunks of 16 MiB (Zarr's fixed work per chunk -- a file, its compression and write --
#: makes smaller ones costlier: benchmarks/sweep_throughput.py), smaller when the variables written hold so many
#: values a point that a block's arrays would pass BLOCK_MB (all variables: about 14 values a point, ~7 MiB chunks).
AUTO_CHUNK_MB, BLOCK_MB = 16.0, 96.0


def written_values(grid, names) -> int:
    """Values the variables ``names`` hold over the whole grid (each at its own dims, stacks counted)."""
    return sum(math.prod(grid.sizes[d] for d in grid.layout[n][0]) * (len(grid.stacks[n][1]) if n in grid.stacks else 1)
               for n in names)


def auto_chunk_mb(grid, names) -> float:
    """The default chunk size for writing ``names`` (see :data:`AUTO_CHUNK_MB`)."""
    return min(AUTO_CHUNK_MB, BLOCK_MB / max(written_values(grid, names) / grid.points, 1.0))


def choose_chunks(grid, chunk_mb: float) -> dict[str, int]:
    """Chunk sizes whose full-size float64 chunk is about ``chunk_mb`` MiB.

    Dimensions few variables depend on (a Flash pJ/bit, say) are kept whole first: within a block everything that
    does not depend on them is computed once, so splitting them would repeat that work in every block.
    """
    room = chunk_points(chunk_mb)
    deps = {d: sum(d in grid.layout[v][0] for v in grid.variables) for d in grid.dims}
    chunks = {}
    for d in sorted(grid.dims, key=lambda d: (deps[d], -grid.dims.index(d))):
        chunks[d] = max(1, min(grid.sizes[d], room))
        room = max(1, room // chunks[d])
    return {d: chunks[d] for d in grid.dims}


@dataclass(frozen=True)
class Piece:
    """One unit of work: evaluate the grid on ``box`` and write the variables ``names`` of it."""

    key: str
    box: tuple
    names: tuple


class Layout:
    """How a run's variables are chunked and which pieces of work write them.

    A variable that fits in one chunk is written whole, by a piece whose box is whole along the variable's dims
    and one point along the others (so it is evaluated once, at its own size). The others are chunked like the
    grid's blocks; each block writes the chunks of the variables it owns: those for which it is the first block
    along every dimension the variable does not depend on.
    """

    def __init__(self, grid, names: list, chunk_mb: float):
        self.grid, self.names = grid, list(names)
        self.chunking = grid.chunking(choose_chunks(grid, chunk_mb))
        room = chunk_points(chunk_mb)
        self.whole = [n for n in names if math.prod(grid.sizes[d] for d in grid.layout[n][0]) <= room]
        self.chunked = [n for n in names if n not in self.whole]

    def chunks(self, name: str) -> tuple[tuple[int, ...], ...]:
        dims = self.grid.layout[name][0]
        own = tuple((self.grid.sizes[d],) if name in self.whole else self.chunking[d] for d in dims)
        return own + (((len(self.grid.stacks[name][1]),),) if name in self.grid.stacks else ())

    def pieces(self) -> list[Piece]:
        g = self.grid
        out = []
        for dims in dict.fromkeys(g.layout[n][0] for n in self.whole):
            box = tuple(slice(None) if d in dims else slice(0, 1) for d in g.dims)
            out.append(Piece("w " + " ".join(dims), box, tuple(n for n in self.whole if g.layout[n][0] == dims)))
        if self.chunked:
            for idx, box in g.blocks(self.chunking):
                owned = tuple(n for n in self.chunked
                              if all(i == 0 for d, i in zip(g.dims, idx) if d not in g.layout[n][0]))
                if owned:
                    out.append(Piece("b " + " ".join(map(str, idx)), box, owned))
        return out

    def region(self, name: str, box: tuple) -> tuple:
        dims = self.grid.layout[name][0]
        return tuple(b for d, b in zip(self.grid.dims, box) if d in dims) + ((slice(None),) if name in self.grid.stacks
                                                                             else ())

    def digest(self, fmt: str) -> str:
        """What a finished or partial output must match to be reused: the evaluation, the code, the layout."""
        a = self.grid.attrs
        key = json.dumps([a.get("config_digest"), a.get("dse_version"), a.get("git_commit"), a.get("settings"),
                          {n: self.chunks(n) for n in self.names}, fmt])
        return hashlib.sha256(key.encode()).hexdigest()

    def template(self, attrs: dict):
        """The output as a Dataset of unevaluated zeros: coordinates, dims, chunks, dtypes and attributes."""
        import dask.array as da
        import xarray as xr

        g = self.grid
        ds = xr.Dataset(attrs={**g.attrs, **attrs})
        for d, v in g.coords.items():
            ds.coords[d] = xr.Variable(d, v.astype(object) if v.dtype.kind == "U" else v, g.coord_attrs.get(d, {}))
        for dim, labels in g.stacks.values():
            ds.coords[dim] = xr.Variable(dim, np.asarray(labels, dtype=object), g.coord_attrs.get(dim, {}))
        for name in self.names:
            chunks = self.chunks(name)
            units, long_name = g.variables[name]
            ds[name] = xr.Variable(g.dims_of(name), da.zeros(tuple(map(sum, chunks)), g.layout[name][1], chunks=chunks),
                                   dict(units=units, long_name=long_name))
        return ds


# ------------------------------------------------------------------------------------------------- dask
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


def _quiet_dask() -> None:
    """dask distributed logs every cluster event at INFO: keep it to warnings unless dse runs at debug level."""
    if logging.getLogger("dse").getEffectiveLevel() > logging.DEBUG:
        for name in ("distributed", "distributed.http.proxy"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _announce(client):
    """Log where to watch the computation: the dask dashboard of the distributed cluster."""
    import importlib.util

    link = getattr(client, "dashboard_link", None)
    plots = "" if importlib.util.find_spec("bokeh") else " (pip install bokeh for its plots)"
    logging.getLogger("dse").info("dask dashboard: %s%s", link or "none (the scheduler serves no dashboard)", plots)
    return client


def _close(client) -> None:
    if client is not None:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None:
            cluster.close()


def _bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="pt", unit_scale=True, delay=PROGRESS_DELAY_S, disable=not enabled,
                file=sys.stderr, desc="dse sweep", dynamic_ncols=True)


def compute(grid, pieces: list, task, sink=None, *, client=None, n_workers=None, progress=True) -> None:
    """Run ``task(grid, piece)`` for every piece as one dask computation, with a progress bar (shown once it
    runs for more than a couple of seconds); ``sink(piece, result)`` takes each result in this process.

    Threaded scheduler (the sink then runs in the worker thread, so it must be thread-safe) unless ``client`` (a
    distributed Client) is given; then a few pieces per worker are in flight at a time. Either way memory holds
    only the pieces in flight.
    """
    points = {p.key: math.prod(len(range(grid.sizes[d])[b]) for d, b in zip(grid.dims, p.box)) for p in pieces}
    with _bar(sum(points.values()), progress) as bar:
        if client is not None:
            from distributed import as_completed

            g = client.scatter(grid, broadcast=True)
            todo = iter(pieces)
            running = {}
            done = as_completed()

            def submit(n):
                for piece in itertools.islice(todo, n):
                    future = client.submit(task, g, piece, pure=False)
                    running[future] = piece
                    done.add(future)

            submit(2 * max(1, len(client.scheduler_info().get("workers", {}))))
            for future in done:
                piece = running.pop(future)
                result = future.result()
                if sink is not None:
                    sink(piece, result)
                bar.update(points[piece.key])
                submit(1)
            return
        _threaded(grid, pieces, task, sink, n_workers, lambda piece: bar.update(points[piece.key]))


def _threaded(grid, pieces: list, task, sink, n_workers, done) -> None:
    """The pieces on dask's threaded scheduler, as a flat graph (the grid one key, a task per piece): building it
    costs microseconds per piece, where ``dask.delayed`` calls cost a millisecond (they walk every argument)."""
    import dask.threaded

    def run_one(grid, piece):
        result = task(grid, piece)
        if sink is not None:
            sink(piece, result)
        done(piece)

    token = uuid.uuid4().hex
    grid_key = f"dse-grid-{token}"
    graph = {grid_key: grid}
    keys = [(f"dse-piece-{token}", i) for i in range(len(pieces))]
    graph.update({key: (run_one, grid_key, piece) for key, piece in zip(keys, pieces)})
    dask.threaded.get(graph, keys, num_workers=n_workers)


def evaluate_piece(grid, piece: Piece) -> dict:
    return grid.block(piece.box, list(piece.names))


# ------------------------------------------------------------------------------------------------- run
def plan(cfg: dict, run_dir: Path | str = "."):
    """Validate a config for a sweep (nothing is written): (grid, settings, variable names, format, path)."""
    from dse.run import engine

    s = settings(cfg)
    check_size(grid_size_bound(cfg.get("grid") or {}), s.max_grid_points)
    grid = engine.resolve(cfg=cfg)
    check_size(grid.points, s.max_grid_points)
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


# ------------------------------------------------------------------------------------------------- CLI
def grid_override(arg: str) -> str:
    """``grid.NAME=...`` -> ``++grid.NAME=...``: a grid entry may be set whether or not the config has it."""
    return f"++{arg}" if arg.startswith("grid.") and "=" in arg else arg
