"""Regression tests of issue 26 (reliability, round two): each reproduction gives the right answer or a one-line
error, writes nothing foreign, leaves storage readable and prints no secret."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dse
from dse import DseError

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg
    return msg


def cli(*args, cwd, tool="dse", **kw):
    env = {**os.environ, **kw.pop("env", {})}
    return subprocess.run([str(BIN / tool), *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=env, **kw)


# ------------------------------------------------------------------------------------------ 2. routing scale
@pytest.mark.parametrize("scale", [1e308, 1e-320, 5e-324 * 3, 1e300, 1e-300])
def test_routing_frequencies_any_positive_scale_is_the_same_routing(scale):
    # uniform routing of top-2 of 8: every expert is picked with probability 2/8 whatever the scale
    from dse.model.routing import routing_probabilities

    p = routing_probabilities([scale] * 8, 2, 8)
    np.testing.assert_allclose(p, np.full(8, 0.25), rtol=1e-12)
    # a skewed vector: shares 4:2:1:1 scaled to sum 2 -> one expert capped at 1, the rest share 1 as 2:1:1
    p = routing_probabilities(np.array([4, 2, 1, 1, 0, 0, 0, 0]) * min(scale, 1e307), 2, 8)
    np.testing.assert_allclose(p, [1, 0.5, 0.25, 0.25, 0, 0, 0, 0], rtol=1e-12)


def test_routing_frequencies_extreme_scale_same_energy():
    kw = dict(model="mixtral-8x7b", system="8xh200", placement="ssd")
    a = float(dse.evaluate(routing_frequencies=[1] * 8, **kw).energy_per_token)
    for scale in (1e308, 1e-320):
        b = float(dse.evaluate(routing_frequencies=[scale] * 8, **kw).energy_per_token)
        assert b == pytest.approx(a, rel=1e-9)


# ------------------------------------------------------------------------------------------ 3. collect
@pytest.mark.slow
def test_collect_refuses_a_job_result_of_another_configuration(tmp_path):
    common = ["grid.batch=[1,8]", "workload.placement=ssd", "progress=false", "plot=false"]
    r = cli("-m", *common, "workload.hbm_cache_fraction=0.25,0.5", "hydra.sweep.dir=m1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert cli(*common, "workload.hbm_cache_fraction=0.5", "model=deepseek-r1", "system=8xh200",
               "hydra.run.dir=m2", cwd=tmp_path).returncode == 0
    r = cli("m1", "-o", "m1/again.nc", cwd=tmp_path, tool="dse-collect")
    assert r.returncode == 0, r.stderr                       # the multirun as written merges
    (tmp_path / "m1" / "1" / "result.nc").write_bytes((tmp_path / "m2" / "result.nc").read_bytes())
    r = cli("m1", "-o", "m1/foreign.nc", cwd=tmp_path, tool="dse-collect")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "model.name='deepseek-r1'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m1" / "foreign.nc").exists()
