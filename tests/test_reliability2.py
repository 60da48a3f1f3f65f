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
