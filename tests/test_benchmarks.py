"""Benchmarks count grid points only: the parts of stacked variables (component, cost_part) are not points."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dse

ROOT = Path(__file__).resolve().parent.parent


def _module(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sweep_throughput_counts_grid_points():
    ds = dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", placement=["hbm", "ssd"], batch=[1, 2, 4, 8, 16])
    assert ds.sizes["component"] == 14 and ds.sizes["cost_part"] == 4   # present, and not counted below
    assert _module("sweep_throughput").grid_points(ds) == 2 * 5


def _run(script, *args, timeout=300):
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True,
                         timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def _number(line, before, after=None):
    """The number printed in ``line`` between ``before`` and ``after`` (thousands separators dropped)."""
    text = line.split(before, 1)[1]
    text = text.split(after, 1)[0] if after else text.split()[0]
    return float(text.strip().rstrip("x").replace(",", ""))


def _line(out, start):
    lines = [line for line in out.splitlines() if line.startswith(start)]
    assert len(lines) == 1, (start, out[-2000:])
    return lines[0]


def test_every_benchmark_has_a_tiny_run_here():
    """A benchmark added to benchmarks/ gets its tiny run below (a layout change once broke one unnoticed)."""
    assert sorted(p.name for p in (ROOT / "benchmarks").glob("*.py")) == [
        "continuous_search.py", "kernel_throughput.py", "max_batch.py", "search_hypervolume.py", "sweep_throughput.py"]


@pytest.mark.slow
def test_kernel_throughput_tiny_run():
    """The vectorized grid against a 2-point loop: both rates, the speed-up and the agreement are printed."""
    out = _run("kernel_throughput.py", "--loop-points", "2")
    grid = _line(out, "vectorized grid:")
    assert _number(grid, "vectorized grid:", "points") == 4 * 256 * 100 * 4 * 4    # kernel_throughput.GRID
    assert _number(_line(out, "per-point loop :"), "per-point loop :", "points") == 2
    speed = _line(out, "speed-up       :")
    assert _number(speed, "speed-up       :", "x") > 1
    assert _number(speed, "max relative difference", ")") < 1e-9


@pytest.mark.slow
def test_max_batch_tiny_run():
    """dse.max_batch on its 10^5-point grid against 2 sampled points, whose answers must equal the grid's."""
    out = _run("max_batch.py", "--loop-points", "2")
    assert _number(_line(out, "dse.max_batch:"), "dse.max_batch:", "grid points") == 100_000
    loop = _line(out, "per-point loop:")
    assert "over 2 sampled points (answers equal)" in loop
    assert _number(_line(out, "speed-up:"), "speed-up:", "x") > 1


@pytest.mark.slow
def test_search_hypervolume_tiny_run():
    """One seed, 50 trials: each of the four searches prints its hypervolume ratio to the exact front, then the
    summaries (default, the two baselines, SQLite) and the exhaustive evaluation."""
    out = _run("search_hypervolume.py", "--seeds", "0", "--trials", "50")
    for label in ("default seed=0 ", "nsga2 only seed=0 ", "random seed=0 ", "default seed=0 sqlite "):
        row = [line for line in out.splitlines() if line.startswith(label)]
        assert row and "trials=   50" in row[-1], (label, out[-2000:])
        assert 0 < _number(row[-1], "HV ratio") <= 1 + 1e-12
    for name in ("default (nsga2 + local + random)", "baseline: nsga2 only", "baseline: random sampling"):
        summary = _line(out, name)
        assert 0 < _number(summary, "HV ratio min") <= _number(summary, "mean") <= 1 + 1e-12
        assert "0/1 seeds" in summary or "1/1 seeds" in summary
    assert "trials/s (journal file:" in _line(out, "default on SQLite")
    assert _number(_line(out, "exhaustive evaluation:"), "exhaustive evaluation:", "points") == 81_600


@pytest.mark.slow
def test_sweep_throughput_ratio_lines(capsys, monkeypatch):
    """The throughput part of benchmarks/sweep_throughput.py on a 4,608-point grid (its own grid is 2.8e7 points
    and takes gigabytes): the rates, the ratio line and the checksums, which must agree."""
    mod = _module("sweep_throughput")
    monkeypatch.setattr(mod, "GRID", {"flash_read_pj_per_bit": [10.0, 50.0, 100.0], "batch": list(range(1, 65)),
                                      "top_k": [1, 2, 4, 8], "context_len": [1024, 8192, 32768],
                                      "link_bw_gbps": [450.0, 900.0]})
    mod.throughput(repeats=1, loop_points=5, chunk_mb=0.05, threads=2)
    out = capsys.readouterr().out
    assert _number(_line(out, "grid:"), "grid:", "points") == 3 * 64 * 4 * 3 * 2
    for start in ("dask threaded, 2 threads:", "numpy block by block, 1 thread:", "plain numpy, one call:",
                  "per-point Python loop:"):
        assert _number(_line(out, start), start, "points/s") > 0
    ratios = _line(out, "ratios:")
    for part in ("dask 2 threads / numpy 1 thread =", "dask / one numpy call =", "numpy / loop ="):
        assert _number(ratios, part, ";" if part != "numpy / loop =" else None) > 0
    checks = _line(out, "checksums agree:")
    assert _number(checks, "dask vs numpy rel. diff", ";") < 1e-9
    assert "loop points equal the grid's (rtol 1e-12): True" in checks
    assert "--no-zarr" in _run("sweep_throughput.py", "--help")      # the script's own argument parsing


@pytest.mark.slow
def test_continuous_search_smoke_run():
    """The exact-front benchmark's smoke run: both sides run and the seeded and unseeded fronts agree."""
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "continuous_search.py"), "--tiny"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "the same front: True" in run.stdout and "Optuna on the continuous space" in run.stdout


@pytest.mark.slow
def test_sweep_throughput_parts_run(capsys):
    """The check grid's split and the codec measurement of benchmarks/sweep_throughput.py run (their numbers are
    timings, printed, not asserted)."""
    mod = _module("sweep_throughput")
    mod.small_grid(1)
    mod.codec_speeds(1)
    out = capsys.readouterr().out
    assert "two threads at best" in out and "zstd level -3 (dse's zstd)" in out
