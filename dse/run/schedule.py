"""Running a sweep's pieces of work: dask's threaded scheduler (one task a block) or a distributed client, with a
progress bar; each finished piece goes to a sink (a writer of :mod:`dse.run.writers`)."""
from __future__ import annotations

import itertools
import logging
import math
import sys
import uuid

from dse.run.layout import Piece

PROGRESS_DELAY_S = 2.0

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

    return tqdm(total=total, unit="pt", unit_scale=total >= 10_000, delay=PROGRESS_DELAY_S, disable=not enabled,
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


