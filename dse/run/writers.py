"""Writing a sweep: piece by piece into Zarr (resumable: the pieces written are recorded in the partial store) or
NetCDF (under a temporary name), renamed into place when complete (:mod:`dse.files`)."""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np

from dse.errors import DseError
from dse import files as outputs
from dse.run import schedule
from dse.run.layout import DONE_FILE, Layout, Piece

class _ZarrWriter:
    """Task: evaluate a piece and write it into the (partial) Zarr store, on whichever worker runs it."""

    def __init__(self, layout: Layout, path: Path):
        self.layout, self.path, self._group = layout, path, None

    def __getstate__(self):
        return {"layout": self.layout, "path": self.path}

    def __setstate__(self, state):
        self.__init__(state["layout"], state["path"])

    def __call__(self, grid, piece: Piece):
        import zarr

        if self._group is None:   # every chunk is written once, whole: no need to compare it with the fill value
            group = zarr.open_group(str(self.path), mode="r+")
            self._group = {n: group[n].with_config({"write_empty_chunks": True}) for n in self.layout.names}
        for name, data in schedule.evaluate_piece(grid, piece).items():   # copied to the store's order here, in
            # parallel (flags as the store's 0 / 1 integers)
            array = self._group[name]
            array[self.layout.region(name, piece.box)] = np.asarray(data, order="C").astype(array.dtype, copy=False)


class _Recorder:
    """Sink: record a written piece in the partial store's done file (a line per piece)."""

    def __init__(self, path: Path):
        self.path, self._lock = path / DONE_FILE, threading.Lock()

    def __call__(self, piece: Piece, result):
        with self._lock, open(self.path, "a") as f:
            f.write(piece.key + "\n")


class _NetcdfWriter:
    """Sink: write a piece's arrays into the open NetCDF file (HDF5 takes one writer at a time)."""

    def __init__(self, layout: Layout, file):
        self.layout, self.file, self._lock = layout, file, threading.Lock()

    def __call__(self, piece: Piece, data: dict):
        with self._lock:
            for name, values in data.items():
                self.file.variables[name][self.layout.region(name, piece.box)] = values


def _done(path: Path) -> set[str]:
    """Pieces recorded as written; a line torn by an interruption (no newline yet) does not count."""
    return set((path / DONE_FILE).read_text().split("\n")[:-1])


def _stored_digest(path: Path) -> str | None:
    import zarr

    try:
        return zarr.open_group(str(path), mode="r").attrs.get("dse_run_digest")
    except Exception:  # noqa: BLE001 - an unreadable store is not ours to resume
        return None


def _zstd():
    from zarr.codecs import ZstdCodec

    return [ZstdCodec(level=-3)]


#: Zarr compressors (``output.compressor``): zstd at its fast level -3 (the default: on result chunks 5.2x smaller
#: at ~1.9 GB/s per core, where level 1 gives 5.4x at ~0.9 GB/s and Blosc lz4 1.04x at ~2.8 GB/s), or none (fast
#: disks). benchmarks/sweep_throughput.py measures the codecs and whole sweeps with each.
ZARR_COMPRESSORS = {"zstd": _zstd, "none": lambda: []}
#: Chunk files named ``c.0.1.2`` in the array's directory: one file created per chunk, not a directory per index.
FLAT_KEYS = {"name": "default", "separator": "."}
#: Threaded Zarr writers per core (``dask.n_workers`` unset): two keep the cores busy while zarr compresses.
ZARR_THREADS_PER_CORE = 2


def write_zarr(layout: Layout, path: Path, attrs: dict, compressor: str = "zstd", **run) -> Path:
    """Write piece by piece into ``<path>.partial``, recording each piece; resume a partial store of the same run;
    rename to ``path`` when every piece is in. A finished store of the same run is left as it is."""
    digest = layout.digest(f"zarr-{compressor}-keys{FLAT_KEYS['separator']}")
    if path.exists() and _stored_digest(path) == digest:
        return path
    partial = path.with_name(path.name + ".partial")
    if partial.exists() and not (_stored_digest(partial) == digest and (partial / DONE_FILE).exists()):
        if not outputs.is_dse_output(partial):     # checked before any work too (plan): never reached for others
            raise DseError(f"output.path={str(path)!r}: {str(partial)!r} was not written by dse; refusing to remove it")
        shutil.rmtree(partial)                           # a stale partial of another config
    if not partial.exists():
        encoding = {n: {"compressors": ZARR_COMPRESSORS[compressor](), "chunk_key_encoding": FLAT_KEYS}
                    for n in layout.names}
        try:
            layout.template({**attrs, "dse_run_digest": digest}).to_zarr(
                str(partial), mode="w", compute=False, consolidated=False, encoding=encoding)
            (partial / DONE_FILE).write_text("")
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    pieces = layout.pieces()
    done = _done(partial)
    if run.get("client") is None and not run.get("n_workers"):   # a thread waits while zarr compresses and writes
        run["n_workers"] = ZARR_THREADS_PER_CORE * (os.cpu_count() or 1)   # its chunks on zarr's own threads
    try:
        schedule.compute(layout.grid, [p for p in pieces if p.key not in done], _ZarrWriter(layout, partial),
                _Recorder(partial), **run)
    except BaseException:
        if not _done(partial):   # nothing to resume from: leave nothing behind
            shutil.rmtree(partial, ignore_errors=True)
        raise
    missing = {p.key for p in pieces} - _done(partial)
    if missing:
        raise DseError(f"output: {len(missing)} pieces of {partial} were not written; re-run to resume")
    (partial / DONE_FILE).unlink()
    consolidate(partial)
    _replace(partial, path)
    return path


def consolidate(path) -> None:
    """Consolidate a finished Zarr store's metadata (one read opens it: ``xr.open_zarr(path)`` as is, no warning).
    Zarr 3 warns that consolidated metadata is not yet in its format's specification; xarray and zarr read it."""
    import warnings

    import zarr

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(str(path))


def write_netcdf(layout: Layout, path: Path, attrs: dict, **run) -> Path:
    """Write piece by piece into ``<path>.tmp`` (evaluated on the workers, written here), then rename."""
    import h5netcdf

    ds = layout.template({**attrs, "dse_run_digest": layout.digest("netcdf")})
    with outputs.atomic(path) as tmp:
        ds.drop_vars(layout.names).to_netcdf(tmp, engine="h5netcdf")   # coordinates and attributes
        outputs.reserve(tmp, sum(ds[n].size * ds[n].dtype.itemsize for n in layout.names))   # full disk: here
        with h5netcdf.File(tmp, "a") as f:
            for d in layout.grid.dims:
                if d not in f.dimensions:
                    f.dimensions[d] = layout.grid.sizes[d]
            for name in layout.names:
                v = ds[name]
                flag = v.dtype.kind == "b"       # booleans as int8 tagged dtype=bool: read back as booleans (CF,
                var = f.create_variable(name, v.dims, np.int8 if flag else v.dtype,           # xarray's convention)
                                        chunks=tuple(c[0] for c in v.chunks) or None,
                                        fletcher32=bool(v.dims),   # a checksum per chunk: corruption is an error
                                        fillvalue=np.nan if v.dtype.kind == "f" else None)
                var.attrs.update({**v.attrs, **({"dtype": "bool"} if flag else {})})
            schedule.compute(layout.grid, layout.pieces(), schedule.evaluate_piece, _NetcdfWriter(layout, f), **run)
    return path


_replace = outputs.replace   # move a finished file or directory into place
