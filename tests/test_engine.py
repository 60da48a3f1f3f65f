"""Serving-engine presets (dse/conf/engine, the ``engine`` setting): what they set, what wins over them, and the
node presets' own."""
import numpy as np
import pytest

import dse
from dse.config import presets

KW = dict(model="mixtral-8x7b", placement="hbm", batch=32, context_len=1024)
KEYS = ("serving_efficiency", "active_power_fraction", "host_us_per_sequence", "layer_overhead_us",
        "fp8_layer_overhead_us")


def _constants(name):
    p = presets.preset("engine", name)
    return {k: p[k] for k in KEYS}


def test_an_engine_sets_the_systems_five_constants():
    """On a datasheet system (no engine of its own) engine=X is the same as giving X's five constants."""
    for name in ("vllm", "sglang"):
        a = dse.evaluate(**KW, system="8xh200-c2c", engine=name)
        b = dse.evaluate(**KW, system="8xh200-c2c", **_constants(name))
        assert float(a.step_latency) == pytest.approx(float(b.step_latency), rel=1e-12)
        assert float(a.energy_per_token) == pytest.approx(float(b.energy_per_token), rel=1e-12)
    # roofline: the datasheet system's own (no engine losses)
    r = dse.evaluate(**KW, system="8xh200-c2c", engine="roofline")
    plain = dse.evaluate(**KW, system="8xh200-c2c")
    assert float(r.step_latency) == pytest.approx(float(plain.step_latency), rel=1e-12)


def test_given_constants_win_and_a_list_is_a_dimension():
    one = dse.evaluate(**KW, system="hgx-h200", engine="vllm", layer_overhead_us=10.0)
    mixed = dse.evaluate(**KW, system="hgx-h200", **{**_constants("vllm"), "layer_overhead_us": 10.0})
    assert float(one.step_latency) == pytest.approx(float(mixed.step_latency), rel=1e-12)
    ds = dse.evaluate(**KW, system="hgx-h200", engine=["vllm", "sglang", "roofline"])
    assert list(ds.engine.values) == ["vllm", "sglang", "roofline"]
    t = ds.step_latency.values
    # by hand: the engines differ in their fixed time per layer (32 layers x (80 - 45) us: bf16 products, no fp8
    # time) and nothing else that matters between vllm and sglang; roofline is the fastest
    assert t[0] - t[1] == pytest.approx(32 * (80 - 45) * 1e-6, rel=1e-6)
    assert t[2] < t[1] < t[0]


def test_the_node_presets_serve_with_the_sglang_engine():
    for system in ("hgx-h100", "hgx-h200", "hgx-b200", "gh200"):
        p = presets.preset("system", system)
        assert {k: p[k] for k in KEYS} == _constants("sglang"), system
        a = dse.evaluate(**KW, system=system)
        b = dse.evaluate(**KW, system=system, engine="sglang")
        assert float(a.step_latency) == pytest.approx(float(b.step_latency), rel=1e-12)


def test_a_bad_engine_is_a_one_line_error():
    with pytest.raises(dse.DseError) as err:
        dse.evaluate(**KW, system="hgx-h200", engine="tgi")
    assert "engine" in str(err.value) and "sglang" in str(err.value) and "\n" not in str(err.value)


def test_engines_are_listed_with_their_grades():
    listed = {p.name: p for p in dse.presets("engine")}
    assert set(listed) >= {"vllm", "sglang", "roofline"}
    assert listed["vllm"].grade.startswith("fitted") and np.all([p.description != "-" for p in listed.values()])


def test_sglang_borrows_the_vllm_fit_for_what_it_has_no_data_for():
    """No SGLang energy measurement was found: its efficiency, power floor and host time are the vllm fit's (the
    preset says so), only its time per layer is its own."""
    sg, vl = _constants("sglang"), _constants("vllm")
    for key in ("serving_efficiency", "active_power_fraction", "host_us_per_sequence"):
        assert sg[key] == vl[key], key
        assert presets.preset("engine", "sglang")["provenance"][key]["evidence"] == "assumption"
    assert sg["layer_overhead_us"] < vl["layer_overhead_us"]
