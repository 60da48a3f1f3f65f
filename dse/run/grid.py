"""Open-grid block evaluation: how ``dse.evaluate`` turns resolved inputs into a (possibly dask-backed) Dataset.

:func:`dse.run.engine.resolve` gives input trees whose leaves are numbers or DataArrays over the grid's dimensions
(1-D for a swept parameter, a few dimensions for stacked presets). A :class:`Grid` turns every such leaf into a
numpy array with one axis per grid dimension, of length 1 where the leaf does not vary, so numpy broadcasting in
the kernel computes each term at the size of the dimensions it depends on (an open grid), with no per-operation
overhead beyond numpy's. A *block* is a box of the grid (one slice per dimension); evaluating it is one call of the
kernel on numpy arrays. A chunked Dataset is one dask task per block; each output variable takes its chunk from
the block with index 0 along the dimensions it does not depend on. Blocks only slice inputs, and every loop bound
is fixed for the whole grid, so any chunking gives bit-identical numbers.

A kernel may split its work in two (``combine``): ``compute`` gives the *parts* -- open arrays, each over the few
dimensions it depends on -- and ``combine(parts, name, part_points)`` the few variables that span many dimensions
(sums of parts; ``part_points``: each part's point count over the whole grid, so that sums run in an order that
is the same for every block). When the parts of the whole grid are small (:data:`WHOLE_PARTS_MAX` values), they are
computed once, and a chunked Dataset is one blockwise task per variable chunk that slices them and combines what it
needs: the work that does not depend on a block's dimensions is done once, and a block's work is a few long numpy
loops that release the GIL (docs/scale.md). ``prepare(parts, part_points)`` may add parts derived once from the
whole grid's (the engine's sums of small energy parts, which every block would otherwise redo).
"""
from __future__ import annotations

import functools
import itertools
import math
import threading
import uuid

import numpy as np
import xarray as xr

from dse import cf
from dse.model import namespace
from dse.errors import DseError
from dse.run.malloc import reuse_freed_memory

#: Largest total of part values (float64: 256 MiB) computed once for the whole grid and sliced by every block.
WHOLE_PARTS_MAX = 32_000_000
_ALL = slice(None)


def _tree_map(tree, fn):
    return {k: _tree_map(v, fn) for k, v in tree.items()} if isinstance(tree, dict) else fn(tree)


def _leaves(tree):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _leaves(v)
    else:
        yield tree


class _Open:
    """A leaf as an open-grid numpy array; ``axes`` marks the grid dimensions it varies along."""

    __slots__ = ("array", "axes")

    def __init__(self, array: np.ndarray, axes: tuple[bool, ...]):
        self.array, self.axes = array, axes

    def cut(self, box: tuple):
        """The leaf on a box: slices (basic indexing, a view) or index lists (outer indexing, one axis at a time)."""
        a = self.array[tuple(b if ax and isinstance(b, slice) else slice(None) for ax, b in zip(self.axes, box))]
        for i, (ax, b) in enumerate(zip(self.axes, box)):
            if ax and not isinstance(b, slice):
                a = np.take(a, b, axis=i)
        return a


def _own_axes(a, keep: tuple) -> np.ndarray:
    """An open-grid output without the (length-1) axes of the dimensions the variable does not depend on."""
    a = np.asarray(a)
    a = a.reshape((1,) * len(keep)) if a.ndim == 0 else a
    return a.reshape([n for n, k in zip(a.shape, keep) if k])


def _cut_part(part, box: tuple, order: tuple | None, sliced: bool = False):
    """A whole-grid part (an open array, a number, or a tuple of them) on a box (``sliced``: all slices, so one
    basic index cuts it), its axes in ``order``."""
    if isinstance(part, tuple):
        return tuple(_cut_part(p, box, order, sliced) for p in part)
    if not isinstance(part, np.ndarray) or part.ndim != len(box):
        return part
    if sliced:
        a = part[tuple([b if n > 1 else _ALL for b, n in zip(box, part.shape)])]
    else:
        a = _Open(part, tuple(n > 1 for n in part.shape)).cut(box)
    return a if order is None else a.transpose(order)


def index_length(index, size: int) -> int:
    return len(range(size)[index]) if isinstance(index, slice) else len(index)


class Grid:
    """The resolved inputs of one evaluation over an open grid (see the module docstring).

    ``inputs`` maps argument names of ``compute`` to input trees; ``compute(**namespaces)`` returns a dict of
    output arrays (for a variable listed in ``stacks``, a tuple of arrays stacked along that trailing dimension).
    ``coords`` gives the swept dimensions in output order; other dimensions of array-valued inputs follow.
    """

    def __init__(self, inputs: dict, compute, coords: dict, *, variables: dict, stacks: dict,
                 coord_attrs: dict | None = None, attrs: dict | None = None, combine=None, combined=None,
                 prepare=None):
        reuse_freed_memory()   # before any worker thread allocates (it then shares the tuned main arena)
        self.compute, self.variables, self.stacks = compute, variables, stacks
        self.combine, self.combined = combine, dict(combined or {})   # name -> the parts it combines
        self.prepare = prepare   # (whole-grid parts, part_points) -> more parts derived once from them
        self._lock, self._parts, self._plans = threading.Lock(), None, {}
        self.coord_attrs, self.attrs = coord_attrs or {}, attrs or {}
        self.sizes = {d: len(v) for d, v in coords.items()}
        self.coords = dict(coords)
        for leaf in _leaves(inputs):
            if isinstance(leaf, xr.DataArray):
                for d in leaf.dims:
                    if self.sizes.setdefault(d, leaf.sizes[d]) != leaf.sizes[d]:
                        raise DseError(f"dimension {d!r} has {self.sizes[d]} values in one input and "
                                       f"{leaf.sizes[d]} in another")
                    if d not in self.coords and d in leaf.coords:
                        self.coords[d] = leaf[d].values
        self.dims = tuple(self.sizes)
        self._open = _tree_map(inputs, self._to_open)

    # ------------------------------------------------------------------------------------------- inputs
    def whole(self) -> dict:
        """The inputs over the whole grid as namespaces of open arrays (what ``compute`` gets for one block)."""
        tree = _tree_map(self._open, lambda a: a.array if isinstance(a, _Open) else a)
        return {k: namespace(v) if isinstance(v, dict) else v for k, v in tree.items()}

    def input_dims(self, selection: dict) -> tuple[str, ...]:
        """The grid dimensions along which the selected inputs vary: ``{input: None (all its leaves) or field
        names}``."""
        varying = set()
        for name, fields in selection.items():
            tree = self._open[name]
            leaves = _leaves(tree) if fields is None else (tree[f] for f in fields if f in tree)
            for leaf in leaves:
                if isinstance(leaf, _Open):
                    varying |= {d for d, ax, n in zip(self.dims, leaf.axes, leaf.array.shape) if ax and n > 1}
        return tuple(d for d in self.dims if d in varying)

    def with_inputs(self, **trees) -> "Grid":
        """The same grid with more inputs for ``compute``: trees of arrays over the whole grid as ``compute`` gives
        them (open arrays, numpy broadcasting, or numbers), taken as they are."""
        def leaf(a):
            a = np.asarray(a)
            if a.ndim == 0:
                return float(a)
            a = a.reshape((1,) * (len(self.dims) - a.ndim) + a.shape)   # numpy broadcasting: missing axes lead
            return _Open(a, tuple(n > 1 for n in a.shape))

        grid = Grid.__new__(Grid)   # the same grid (its layout is probed again: compute's inputs changed)
        grid.__setstate__({k: v for k, v in self.__getstate__().items()
                           if k not in ("layout", "part_points", "_probe_values")})
        grid._open = {**self._open, **{name: _tree_map(tree, leaf) for name, tree in trees.items()}}
        return grid

    def __getstate__(self):   # shipped to dask workers without its lock and whole-grid parts (they recompute them)
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_parts", "_plans")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock, self._parts, self._plans = threading.Lock(), None, {}

    def _to_open(self, leaf):
        if not isinstance(leaf, xr.DataArray):
            return leaf
        for d in leaf.dims:  # align labelled inputs on the grid's coordinates
            if d in leaf.coords and d in self.coords and not np.array_equal(leaf[d].values, self.coords[d]):
                try:
                    leaf = leaf.sel({d: self.coords[d]})
                except KeyError as err:
                    raise DseError(f"an input along {d!r} lacks the grid's coordinate {err}") from None
        leaf = leaf.transpose(*[d for d in self.dims if d in leaf.dims])
        shape = [self.sizes[d] if d in leaf.dims else 1 for d in self.dims]
        return _Open(np.asarray(leaf.values).reshape(shape), tuple(d in leaf.dims for d in self.dims))

    @property
    def points(self) -> int:
        """Number of grid points (product of the dimension sizes)."""
        return math.prod(self.sizes.values())

    def _evaluate(self, box: tuple, order: tuple | None = None, names=None) -> dict:
        """Raw kernel outputs (parts) on one box (a slice or index list per grid dimension), with the grid's
        axes in ``order`` (a permutation; default: the grid's own order): sliced from the whole grid's parts when
        they are small (only the parts of ``names`` when given), else computed on the box."""
        whole = self._whole_parts()
        if whole is None:
            return self._compute_box(box, order)
        keys = whole if names is None else {k for n in names for k in self.combined.get(n, (n,))}
        sliced = all(isinstance(b, slice) for b in box)
        return {k: _cut_part(whole[k], box, order, sliced) for k in keys if k in whole}

    def _whole_parts(self) -> dict | None:
        """The parts over the whole grid, computed once (thread-safe) when they hold few values, else None."""
        if self._parts is None and self.combine is not None and self.part_values <= WHOLE_PARTS_MAX:
            with self._lock:
                if self._parts is None:
                    parts = self._compute_box(self.box())
                    self._parts = {**parts, **(self.prepare(parts, self.part_points) if self.prepare else {})}
        return self._parts

    def value(self, out: dict, name: str):
        """A variable from a block's parts: the part itself, or combined from the parts."""
        if name not in self.combined:
            return out[name]
        if "part_points" not in self.__dict__:
            self.layout  # noqa: B018 - the probe counts the parts' points
        return self.combine(out, name, self.part_points)

    def _compute_box(self, box: tuple, order: tuple | None = None) -> dict:
        def cut(a):
            if not isinstance(a, _Open):
                return a
            a = a.cut(box)
            return a if order is None else np.ascontiguousarray(np.transpose(a, order))

        inputs = _tree_map(self._open, cut)
        return self.compute(**{k: namespace(v) if isinstance(v, dict) else v for k, v in inputs.items()})

    @functools.cached_property
    def layout(self) -> dict:
        """name -> (grid dims the variable depends on, dtype), found by evaluating a 2-point-per-dimension probe.

        Numpy broadcasting is structural, so an output has length 2 exactly along the dimensions it depends on
        (dimensions of size 1 are probed with their one value twice)."""
        out = self._compute_box(tuple([0, 1] if self.sizes[d] > 1 else [0, 0] for d in self.dims))
        self.part_points = {k: tuple(self._points(np.shape(p)) for p in v) if isinstance(v, tuple) else
                            self._points(np.shape(v)) for k, v in out.items()}
        self._probe_values = sum(sum(n) if isinstance(n, tuple) else n for n in self.part_points.values())
        layout = {}
        for name in self.variables:
            value = self.value(out, name)
            parts = value if name in self.stacks else (value,)
            shape = np.broadcast_shapes(*(np.shape(p) for p in parts))
            shape = shape if len(shape) == len(self.dims) else (1,) * len(self.dims)
            layout[name] = (tuple(d for d, n in zip(self.dims, shape) if n == 2), np.result_type(*parts))
        return layout

    def _points(self, probe_shape: tuple) -> int:
        """Values of an output over the whole grid from its shape on the 2-point probe."""
        return math.prod(self.sizes[d] for d, n in zip(self.dims, probe_shape) if n == 2) if probe_shape else 1

    @property
    def part_values(self) -> int:
        """Values the kernel's parts hold over the whole grid (what computing them once would keep in memory)."""
        self.layout  # noqa: B018 - the probe counts them
        return self._probe_values

    # ------------------------------------------------------------------------------------------- blocks
    def box(self, index: dict | None = None) -> tuple:
        """A box from {dim: slice or index list}; dimensions not named are whole."""
        return tuple((index or {}).get(d, slice(None)) for d in self.dims)

    def block(self, box: tuple | dict | None = None, names=None) -> dict[str, np.ndarray]:
        """Evaluate one box: {name: array over the variable's own dims (then its stacked dim)}.

        The kernel runs with the box's longest dimensions innermost (numpy's inner loops then run long; the same
        numbers in any order); the arrays returned are views in the grid's order."""
        box = box if isinstance(box, tuple) else self.box(box)
        reuse_freed_memory()
        order, names = self._order(box), names or list(self.variables)
        return self._take(self._evaluate(box, order, names), box, names, order)

    def _order(self, box: tuple) -> tuple:
        lengths = [index_length(b, self.sizes[d]) for d, b in zip(self.dims, box)]
        return tuple(sorted(range(len(self.dims)), key=lambda i: lengths[i]))

    def _take(self, out: dict, box: tuple, names, order: tuple) -> dict:
        """The named outputs of a box computed in ``order``, each over its own dims in the grid's order."""
        lengths = tuple(index_length(b, self.sizes[d]) for d, b in zip(self.dims, box))
        result = {}
        for name in names:
            keep, shape, back, dtype = self._plan(name, order, lengths)
            if name in self.stacks:  # written part by part (contiguous), shown with the stacked dim last
                parts = self.value(out, name)
                data = np.empty((len(parts),) + shape, dtype)
                for i, part in enumerate(parts):
                    data[i] = _own_axes(part, keep)
                result[name] = data.transpose([1 + i for i in back] + [0])
            else:
                a = _own_axes(self.value(out, name), keep)
                result[name] = (a if a.shape == shape else np.broadcast_to(a, shape)).transpose(back)
        return result

    def _plan(self, name: str, order: tuple, lengths: tuple) -> tuple:
        """How :meth:`_take` lays out a variable for boxes of these lengths computed in ``order``, worked out once
        per box shape: the computed axes it keeps, its shape as computed, the permutation back, its dtype."""
        plan = self._plans.get((name, order, lengths))
        if plan is None:
            dims, dtype = self.layout[name]
            computed = [self.dims[i] for i in order]
            keep = tuple(d in dims for d in computed)
            inner = [d for d in computed if d in dims]                 # the variable's dims as computed
            shape = tuple(lengths[self.dims.index(d)] for d in inner)
            plan = self._plans[name, order, lengths] = (keep, shape, [inner.index(d) for d in dims], dtype)
        return plan

    # ------------------------------------------------------------------------------------------- datasets
    def chunking(self, chunks: dict | None) -> dict[str, tuple[int, ...]]:
        """Chunk lengths per grid dimension from {dim: size} (a dimension not named, or -1/None, is whole);
        {dim: tuple of lengths} is taken as it is."""
        result = {}
        for d, n in self.sizes.items():
            c = (chunks or {}).get(d) or n
            if isinstance(c, tuple):
                result[d] = c
                continue
            c = n if c < 0 else min(int(c), n)
            result[d] = (c,) * (n // c) + ((n % c,) if n % c else ())
        return result

    def dims_of(self, name: str) -> tuple[str, ...]:
        return self.layout[name][0] + ((self.stacks[name][0],) if name in self.stacks else ())

    def dataset(self, chunks: dict | None = None, names=None) -> xr.Dataset:
        """The output Dataset: numpy (one block) without ``chunks``, else dask-backed with one task per block."""
        names = list(names or self.variables)
        data = self.block(self.box(), names) if chunks is None else self._dask(self.chunking(chunks), names)
        coords = {d: xr.Variable(d, v, self.coord_attrs.get(d, {})) for d, v in self.coords.items()}
        coords.update({dim: xr.Variable(dim, list(labels), self.coord_attrs.get(dim, {}))
                       for dim, labels in self.stacks.values()})
        variables = {name: xr.Variable(self.dims_of(name), data[name], {
            **dict(zip(("units", "long_name"), self.variables[name])), **cf.flag_attrs(name, data[name].dtype)})
            for name in names}
        return xr.Dataset(variables, coords=coords, attrs=dict(self.attrs))   # one merge, not one per variable

    def blocks(self, chunking: dict) -> list[tuple[tuple[int, ...], tuple]]:
        """Every block of a chunking, in C order: (block index, box of slices)."""
        starts = {d: np.cumsum((0,) + c).tolist() for d, c in chunking.items()}
        return [(idx, tuple(slice(starts[d][i], starts[d][i + 1]) for d, i in zip(self.dims, idx)))
                for idx in itertools.product(*(range(len(chunking[d])) for d in self.dims))]

    def _dask(self, chunking: dict, names) -> dict:
        """Dask arrays of the variables: where blocks slice the whole grid's parts, one blockwise task per variable
        chunk (so that dask fuses it with what follows, a reduction's chunk step say); else one task per block (its
        parts) and one per variable chunk taken from it. The grid is one key of the graph, so a distributed
        scheduler ships it once per worker."""
        import dask

        token = uuid.uuid4().hex
        grid = dask.delayed(self, name=f"dse-grid-{token}")
        if self.combine is not None and self.part_values <= WHOLE_PARTS_MAX:
            return {name: self._blockwise(grid, chunking, name, token) for name in names}
        return self._per_block(grid, chunking, names, token)

    def _var_chunks(self, chunking: dict, name: str) -> tuple:
        dims = self.layout[name][0]
        stacked = ((len(self.stacks[name][1]),),) if name in self.stacks else ()
        return tuple(chunking[d] for d in dims) + stacked

    def _blockwise(self, grid, chunking: dict, name: str, token: str):
        import dask.array as da

        dtype, chunks = self.layout[name][1], self._var_chunks(chunking, name)
        starts = {d: np.cumsum((0,) + c).tolist() for d, c in chunking.items()}
        return da.map_blocks(_chunk_at, grid, name=f"{name}-{token}", dtype=dtype, chunks=chunks,
                             meta=np.empty((0,) * len(chunks), dtype), variable=name, starts=starts)

    def _per_block(self, grid, chunking: dict, names, token: str) -> dict:
        import dask.array as da
        from dask.highlevelgraph import HighLevelGraph

        grid_key, block_name = grid.key, f"dse-block-{token}"
        boxes = dict(self.blocks(chunking))
        blocks = {(block_name, *idx): (_block, grid_key, box, self._order(box)) for idx, box in boxes.items()}
        arrays = {}
        for name in names:
            dims, dtype = self.layout[name]
            n_stacked = int(name in self.stacks)
            var = f"{name}-{token}"
            layer = {}
            for vidx in itertools.product(*(range(len(chunking[d])) for d in dims)):
                at = dict(zip(dims, vidx))
                idx = tuple(at.get(d, 0) for d in self.dims)
                layer[(var, *vidx) + (0,) * n_stacked] = (_take_block, grid_key, (block_name, *idx), boxes[idx], name)
            graph = HighLevelGraph({grid_key: {grid_key: self}, block_name: blocks, var: layer},
                                   {grid_key: set(), block_name: {grid_key}, var: {block_name, grid_key}})
            chunks = self._var_chunks(chunking, name)
            arrays[name] = da.Array(graph, var, chunks, dtype=dtype, meta=np.empty((0,) * len(chunks), dtype))
        return arrays


def _block(grid: Grid, box: tuple, order: tuple) -> dict:
    reuse_freed_memory()   # on whichever process runs the block (dask workers too)
    return grid._evaluate(box, order)


def _chunk_at(grid: Grid, *, variable: str, starts: dict, block_id: tuple) -> np.ndarray:
    """A variable's chunk (``block_id`` along its own dims) from the whole grid's parts: slice what it needs,
    combine, take. Along the dims the variable does not depend on, the grid's first block is used."""
    reuse_freed_memory()
    at = dict(zip(grid.layout[variable][0], block_id))
    box = tuple(slice(starts[d][at.get(d, 0)], starts[d][at.get(d, 0) + 1]) for d in grid.dims)
    order = grid._order(box)
    return grid._take(grid._evaluate(box, order, [variable]), box, [variable], order)[variable]


def _take_block(grid: Grid, out: dict, box: tuple, name: str) -> np.ndarray:
    return grid._take(out, box, [name], grid._order(box))[name]
