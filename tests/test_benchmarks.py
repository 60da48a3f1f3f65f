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
    ds = dse.evaluate(model="mixtral-8x7b", system="8xh200", placement=["hbm", "ssd"], batch=[1, 2, 4, 8, 16])
    assert ds.sizes["component"] == 11 and ds.sizes["cost_part"] == 4   # present, and not counted below
    assert _module("sweep_throughput").grid_points(ds) == 2 * 5


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "benchmarks").glob("*.py")))
def test_benchmark_starts(script):
    """Every benchmark imports what it uses from dse and parses its arguments (a layout change broke one once)."""
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--help"], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "usage" in run.stdout


def test_continuous_search_smoke_run():
    """The exact-front benchmark's smoke run: both sides run and the seeded and unseeded fronts agree."""
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "continuous_search.py"), "--tiny"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "the same front: True" in run.stdout and "Optuna on the continuous space" in run.stdout


def test_sweep_throughput_parts_run(capsys):
    """The check grid's split and the codec measurement of benchmarks/sweep_throughput.py run (their numbers are
    timings, printed, not asserted)."""
    mod = _module("sweep_throughput")
    mod.small_grid(1)
    mod.codec_speeds(1)
    out = capsys.readouterr().out
    assert "two threads at best" in out and "zstd level -3 (dse's zstd)" in out
