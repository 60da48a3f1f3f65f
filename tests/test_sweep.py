"""dse.run.sweep: chunked evaluation written to NetCDF / Zarr, resume, distributed, bad input."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dse
from approx import assert_close
from dse.config import presets
from dse.run import engine, layout, schedule, sweep, writers
from dse.errors import DseError
from dse.run.results import open_results

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
GRID = {"placement": ["hbm", "ssd", "hbf"], "batch": [1, 3, 16, 64, 256],
        "flash_read_pj_per_bit": {"start": 2.0, "stop": 200.0, "num": 7, "log": True}, "top_k": [1, 2, 8]}


def cfg_for(grid=None, **sections):
    cfg = presets.compose(model="deepseek-r1", system="8xh200-c2c")
    cfg["grid"] = dict(GRID if grid is None else grid)
    cfg["progress"] = False
    cfg["dask"] = {"chunk_mb": 0.002}             # 262 points a chunk: many pieces on a small grid
    for k, v in sections.items():
        cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) else v
    return cfg


def evaluated(cfg):
    return dse.evaluate(cfg=cfg)


def strip_run_attrs(ds):
    for k in ("run_config_yaml", "run_config_digest"):
        ds.attrs.pop(k, None)
    return ds


@pytest.mark.parametrize("fmt, compressor", [("netcdf", "zstd"), ("zarr", "zstd"), ("zarr", "none")])
def test_round_trip_keeps_values_units_and_provenance(tmp_path, fmt, compressor):
    cfg = cfg_for(output={"format": fmt, "compressor": compressor})
    path = sweep.run(cfg, tmp_path)
    assert path.name == ("result.zarr" if fmt == "zarr" else "result.nc")
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]           # no temporary left behind
    ds = open_results(path)
    assert ds.energy.chunks is not None                                         # lazy
    expect = evaluated(cfg)
    for name, var in expect.data_vars.items():
        assert_close(ds[name].transpose(*var.dims).values, var.values)
        assert ds[name].attrs["units"] == var.attrs["units"] and ds[name].attrs["long_name"]
    for c in ("placement", "batch", "flash_read_pj_per_bit", "top_k", "component"):
        assert list(ds[c].values) == list(expect[c].values)
    for key in ("config_yaml", "config_digest", "dse_version", "git_commit", "settings"):
        assert ds.attrs[key] == expect.attrs[key]
    assert ds.attrs["dse_version"] == dse.__version__
    assert "flash_read_pj_per_bit:" in ds.attrs["run_config_yaml"] and len(ds.attrs["run_config_digest"]) == 64
    # a second formula: energy per token is the step's components summed, over the batch
    np.testing.assert_allclose(ds.energy_per_token, ds.energy.sum("component") / ds.batch, rtol=1e-14)


def test_every_chunk_is_written_exactly_once():
    grid = engine.resolve(cfg=cfg_for())
    lay = layout.Layout(grid, list(grid.variables), 0.002)
    assert lay.chunked and lay.whole                                      # both kinds on this grid
    counts = {n: np.zeros(tuple(map(sum, lay.chunks(n)))) for n in lay.names}
    for piece in lay.pieces():
        for n in piece.names:
            counts[n][lay.region(n, piece.box)] += 1
    assert all((c == 1).all() for c in counts.values())


def test_chunks_follow_the_target_and_keep_cheap_dimensions_whole():
    grid = engine.resolve(cfg=cfg_for({"batch": list(range(1, 301)), "flash_read_pj_per_bit": [1.0, 2.0, 5.0],
                                       "top_k": [1, 2, 4, 8]}))
    chunks = layout.choose_chunks(grid, chunk_mb=1000 * 8 / 2**20)              # 1000 float64 per chunk
    assert math.prod(chunks.values()) <= 1000
    assert chunks["flash_read_pj_per_bit"] == 3           # only the energy depends on it: never split
    assert chunks == {"batch": 83, "flash_read_pj_per_bit": 3, "top_k": 4}


def test_default_chunks_shrink_as_the_variables_hold_more_values_a_point(tmp_path):
    """dask.chunk_mb: null: 16 MiB for one full-size variable; all of them hold (by hand, from the dataset's dims)
    so many values a point that a block's arrays would pass BLOCK_MB, so chunks are BLOCK_MB / values a point."""
    big = {"placement": ["ssd", "hbf"], "batch": list(range(1, 513)), "flash_read_pj_per_bit": list(np.geomspace(1, 200, 64)),
           "top_k": [1, 2, 4, 8]}
    grid = engine.resolve(cfg=cfg_for(big))
    assert layout.auto_chunk_mb(grid, ["energy_per_token"]) == layout.AUTO_CHUNK_MB == 16.0
    ds = grid.dataset(chunks={"batch": 64})
    values = sum(ds[n].nbytes for n in ds.data_vars) / 8 / grid.points     # float64 values a grid point
    assert values > layout.BLOCK_MB / layout.AUTO_CHUNK_MB        # enough to shrink the chunks
    assert_close(layout.auto_chunk_mb(grid, list(ds.data_vars)), layout.BLOCK_MB / values, rtol=0.02)
    planned = sweep.plan(cfg_for(big, dask={"chunk_mb": None}), tmp_path)     # what a sweep of every variable uses
    assert planned[1].chunk_mb == pytest.approx(layout.BLOCK_MB / values, rel=0.02)


SCRIPT_KILLED = """
import json, os, sys
from dse.run import sweep, writers
seen = []
record = writers._Recorder.__call__
def crash_after_three(self, piece, result):
    record(self, piece, result)
    seen.append(piece.key)
    if len(seen) == 3:
        os._exit(17)            # as a kill -9: no clean-up, other writes possibly half done
writers._Recorder.__call__ = crash_after_three
sweep.run(json.loads(sys.argv[1]), sys.argv[2])
"""


@pytest.mark.slow
def test_interrupted_zarr_sweep_resumes_to_the_same_dataset(tmp_path, monkeypatch):
    cfg = cfg_for(output={"format": "zarr"})
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    killed = subprocess.run([sys.executable, "-c", SCRIPT_KILLED, json.dumps(cfg), str(a)], env=ENV, cwd=ROOT, timeout=600)
    assert killed.returncode == 17
    assert not (a / "result.zarr").exists() and (a / "result.zarr.partial").is_dir()
    with pytest.raises(DseError, match="unfinished sweep"):
        open_results(a / "result.zarr.partial")
    n_pieces = len(layout.Layout(engine.resolve(cfg=cfg), list(dse.evaluate(cfg=cfg).data_vars), 0.002).pieces())
    evaluated_pieces = []
    original = schedule.evaluate_piece
    monkeypatch.setattr(schedule, "evaluate_piece", lambda g, p: evaluated_pieces.append(p.key) or original(g, p))
    sweep.run(cfg, a)                                                           # resume
    assert 0 < len(evaluated_pieces) <= n_pieces - 3
    assert sorted(p.name for p in a.iterdir()) == ["result.zarr"]
    monkeypatch.setattr(schedule, "evaluate_piece", original)
    sweep.run(cfg, b)                                                           # uninterrupted
    resumed, straight = open_results(a / "result.zarr").load(), open_results(b / "result.zarr").load()
    assert_close(resumed, straight)
    evaluated_pieces.clear()
    monkeypatch.setattr(schedule, "evaluate_piece", lambda g, p: evaluated_pieces.append(p.key) or original(g, p))
    sweep.run(cfg, a)                                                           # complete: nothing to redo
    assert evaluated_pieces == []


def test_a_torn_record_line_does_not_count(tmp_path):
    (tmp_path / layout.DONE_FILE).write_text("b 0 1 0\nb 0 2 0\nb 0 3")
    assert writers._done(tmp_path) == {"b 0 1 0", "b 0 2 0"}


@pytest.mark.slow
def test_distributed_local_cluster_matches_threaded(tmp_path):
    results = {}
    for name, dask_cfg in (("threads", {}), ("cluster", {"local_cluster": True, "n_workers": 2})):
        out = tmp_path / name
        out.mkdir()
        cfg = cfg_for(output={"format": "zarr"}, dask={"chunk_mb": 0.002, **dask_cfg})
        results[name] = strip_run_attrs(open_results(sweep.run(cfg, out)).load())
    assert_close(results["cluster"], results["threads"])


def test_progress_bar_only_when_asked(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(schedule, "PROGRESS_DELAY_S", 0)
    sweep.run(cfg_for(progress=True), tmp_path)
    assert "dse sweep" in capfd.readouterr().err
    sweep.run(cfg_for(progress=False, output={"path": str(tmp_path / "quiet.nc")}), tmp_path)
    assert "dse sweep" not in capfd.readouterr().err


@pytest.fixture
def refused_port():
    """A port nothing listens on, held bound (not listening) for the test so that no other process can take it:
    a connection to it is refused."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


BAD = [
    ({"grid": {"batch": [1, 2], "flash_energy": [1.0]}}, "flash_energy"),
    ({"grid": {"batch": []}}, "grid.batch: empty"),
    ({"grid": {"batch": {"start": 1, "stop": 10, "num": 0}}}, "grid.batch.num=0"),
    ({"grid": {"batch": {"start": "one", "stop": 10, "num": 4}}}, "grid.batch.start='one' is not a number"),
    ({"grid": {"flash_read_pj_per_bit": [10.0, "low"]}}, "flash_read_pj_per_bit='low' is not a number"),
    ({"grid": {"system.gpu.no_such_field": [1.0, 2.0]}}, "system.gpu.no_such_field"),
    ({"grid": {"batch": list(range(1, 101)), "top_k": [1, 2]}, "max_grid_points": 150}, "max_grid_points"),
    ({"grid": {"batch": {"start": 1, "stop": 1e9, "num": 1e6}, "flash_read_pj_per_bit": {"start": 1, "stop": 2,
                                                                                         "num": 1e5}}},
     "max_grid_points: the grid has 1e+11 points, over the limit 1e+10"),
    ({"dask": {"address": "127.0.0.1:PORT"}}, "dask.address=127.0.0.1:PORT: no dask scheduler reachable"),
    ({"dask": {"adress": "x:1"}}, "dask.adress: unknown setting"),
    ({"output": {"format": "csv"}}, "output.format='csv'"),
    ({"output": {"compressor": "gzip"}}, "output.compressor='gzip': allowed zstd, none"),
    ({"output": {"variables": ["energy_per_token", "joules"]}}, "output.variables: unknown variable 'joules'"),
]


@pytest.mark.parametrize("change,message", BAD, ids=[m.split(":")[0][:30] for _, m in BAD])
def test_bad_input_is_one_line_naming_the_key_before_any_file(tmp_path, change, message, refused_port):
    cfg = cfg_for({"batch": [1, 2]})
    port = str(refused_port)
    for k, v in json.loads(json.dumps(change).replace("PORT", port)).items():
        cfg[k] = v
    with pytest.raises(DseError) as err:
        sweep.run(cfg, tmp_path)
    assert message.replace("PORT", port) in str(err.value) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cli_bad_input_exits_2_with_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dse.cli.main", "grid.flash_energy=[1,2]", f"hydra.run.dir={tmp_path}"],
                       env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "flash_energy" in r.stderr and "Traceback" not in r.stderr
    assert not any(p.suffix in (".nc", ".zarr") for p in tmp_path.iterdir())
