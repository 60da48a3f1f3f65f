"""How a sweep's output is laid out: chunk sizes, the pieces of work that write each variable's chunks, the digest
a partial output must match to be resumed, and the dataset template. Nothing here evaluates or schedules work
(:mod:`dse.run.schedule`) or writes files (:mod:`dse.run.writers`)."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np

from dse import cf

RESULT_NAME = "result"
DONE_FILE = "dse-done-blocks.txt"   # inside a partial Zarr store: the pieces already written, one per line


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
            flag = name in cf.FLAGS or g.layout[name][1] == bool
            dtype = np.dtype(np.int8) if flag else np.dtype(np.float64)   # flags as 0 / 1 integers, values float
            meta = dict(units=units, long_name=long_name, **cf.flag_attrs(name, dtype))
            ds[name] = xr.Variable(g.dims_of(name), da.zeros(tuple(map(sum, chunks)), dtype=dtype, chunks=chunks),
                                   meta)
        return ds


