"""dse explore without a browser: the page object's numbers against dse.evaluate, widget ranges from PARAMS, the
command line and Python call it shows reproduce it, errors keep the last good view, exports read back, results
mode selections, the latency benchmark, and a clean stop on Ctrl-C. (The browser tests: tests/test_explore.py.)"""
from __future__ import annotations

import io
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("panel", reason="the explore extra (panel) is not installed")

import dse  # noqa: E402
from dse.config.params import PARAMS  # noqa: E402
from dse.explorer import app  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASE = dict(model="mixtral-8x7b", system="hgx-h200")


def live_parts():
    from dse.explorer.live import system_parts

    return system_parts("hgx-h200")


@pytest.fixture(scope="module")
def page():
    return app(placement=("hbm", "ssd", "hbf"), batch=(1, 8, 64), at_batch=8)


def test_numbers_follow_the_widgets_and_equal_evaluate(page):
    page.set(flash_read_pj_per_bit=12.5, hbm_cache_fraction=0.25, placement=["hbm", "ssd"])
    assert not page.error.visible, page.error.object
    want = dse.evaluate(**BASE, placement=["hbm", "ssd"], batch=[1, 8, 64], flash_read_pj_per_bit=12.5,
                        hbm_cache_fraction=0.25)
    got = page.last.ds
    for v in ("energy_per_token", "step_latency", "capacity_cost_usd", "hbm_fill", "offload_fill"):
        np.testing.assert_allclose(got[v].transpose(*want[v].dims).values, want[v].values, rtol=1e-12)
    shown = page.last.numbers()
    assert shown["energy_per_token"]["ssd"] == pytest.approx(float(want.energy_per_token.sel(placement="ssd",
                                                                                               batch=8)), rel=1e-12)
    assert 'data-col="ssd">' + f"{float(want.energy_per_token.sel(placement='ssd', batch=8)) * 1e3:.6g}<" in \
        page.numbers.object
    page.set(flash_read_pj_per_bit=page.defaults["flash_read_pj_per_bit"], hbm_cache_fraction=0.0,
             placement=["hbm", "ssd", "hbf"])
    assert page.settings().params == {}


def test_dse_explore_returns_the_page_and_stays_a_function():
    first = dse.explore(batch=(1, 8), at_batch=8)
    second = dse.explore(batch=(1, 8), at_batch=8)      # the package (dse.explorer) does not shadow the function
    assert callable(dse.explore) and type(first).__name__ == type(second).__name__ == "Row"


def test_widgets_carry_units_and_the_enforced_ranges(page):
    for name, w in page.numeric.items():
        p = PARAMS[name]
        assert w.start == p.lo
        assert w.end == (p.hi if math.isfinite(p.hi) else None)
        if p.units not in ("", "1", "bool"):
            assert f"[{p.units}]" in w.label
    # the browser's input keeps to [start, end]; a value set past it (from Python) is the API's one-line error
    with pytest.raises(dse.DseError) as err:
        dse.evaluate(**BASE, placement=["hbm", "ssd", "hbf"], batch=[1, 8, 64], hbm_cache_fraction=1.5)
    page.set(hbm_cache_fraction=1.5)
    assert page.error.visible and page.error.object == str(err.value)
    page.set(hbm_cache_fraction=0.0)
    assert not page.error.visible


def test_a_bad_setting_shows_the_api_error_and_keeps_the_view(page):
    before = page.numbers.object
    with pytest.raises(dse.DseError) as err:
        dse.evaluate(**BASE, placement=["hbm", "ssd", "hbf"], batch=[1, 8, 64], tp=3)
    page.set(tp=3)
    assert page.error.visible and page.error.object == str(err.value)
    assert page.numbers.object == before
    page.set(tp=8)
    assert not page.error.visible and page.numbers.object == before


def test_break_even_and_serving_equal_the_api(page):
    page.tabs.active = 1
    be = dse.breakeven({**BASE, "placement": ["ssd", "hbf"]}, {**BASE, "placement": "hbm"}, batch=[1, 8, 64])
    np.testing.assert_allclose(page.last.breakeven.breakeven_flash_read_pj_per_bit.transpose(
        *be.breakeven_flash_read_pj_per_bit.dims).values, be.breakeven_flash_read_pj_per_bit.values, rtol=1e-12)
    assert (page.last.breakeven.reason.transpose(*be.reason.dims).values == be.reason.values).all()
    page.tabs.active = 2
    mb = dse.max_batch(**BASE, placement=["hbm", "ssd", "hbf"], profile="sharegpt", tpot_slo_s=0.05, ttft_slo_s=5.0)
    assert (page.last.serving.max_batch.values == mb.max_batch.values).all()
    assert 'data-row="max_batch" data-col="hbm">' + str(int(mb.max_batch.sel(placement="hbm"))) in page.serving.object
    # without a profile: prompt and output lengths
    page.set(profile="(none)", prompt_len=2000, output_len=200)
    mb = dse.max_batch(**BASE, placement=["hbm", "ssd", "hbf"], prompt_len=2000, output_len=200, tpot_slo_s=0.05,
                       ttft_slo_s=5.0)
    assert (page.last.serving.max_batch.values == mb.max_batch.values).all()
    assert "prompt 2000, output 200 tokens" in page.serving.object
    page.set(profile="sharegpt", prompt_len=None, output_len=None)
    page.tabs.active = 0


@pytest.mark.slow
def test_the_shown_command_line_and_python_call_reproduce_the_page(page, tmp_path):
    page.set(gpu="h100-sxm", flash_read_pj_per_bit=30.0, routing_skew=0.8)
    s = page.settings()
    ns = {}
    exec(page.py.object.split("```python\n")[1].split("```")[0], ns)
    np.testing.assert_allclose(ns["ds"].energy_per_token.values, page.last.ds.energy_per_token.transpose(
        *ns["ds"].energy_per_token.dims).values, rtol=1e-12)
    cmd = shlex.split(page.cli.object.split("```sh\n")[1].split("```")[0])
    assert cmd[0] == "dse"
    run = subprocess.run([sys.executable, "-m", "dse", *cmd[1:], "plot=false", f"hydra.run.dir={tmp_path}"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    out = dse.open_results(tmp_path / "result.nc").load()
    want = page.last.ds.energy_per_token
    np.testing.assert_allclose(out.energy_per_token.transpose(*want.dims).values, want.values, rtol=1e-12)
    assert s.params == {"gpu": "h100-sxm", "flash_read_pj_per_bit": 30.0, "routing_skew": 0.8}
    page.set(system="hgx-h200")
    assert page.settings().params == {}


def test_a_tier_preset_puts_its_numbers_in_the_slot(page):
    """nvme-gen4 in the hgx-h200's ssd slot: its numbers as written in dse/conf/tier/nvme-gen4.yaml."""
    page.set(**{"tiers.ssd": "nvme-gen4"})
    assert not page.error.visible, page.error.object
    gen4 = {"read_pj_per_bit": 102.4, "bw_gbps": 7.0, "capacity_gb": 7680.0, "idle_w": 3.5, "usd_per_gb": 0.10,
            "write_pj_per_bit": 406.0, "pe_cycles": 1825, "write_bw_gbps": 4.0, "read_latency_us": 80.0}
    want = dse.evaluate(**BASE, placement=["hbm", "ssd", "hbf"], batch=[1, 8, 64],
                        **{f"system.tiers.ssd.{k}": v for k, v in gen4.items()})
    np.testing.assert_allclose(page.last.ds.energy_per_token.transpose(*want.energy_per_token.dims).values,
                               want.energy_per_token.values, rtol=1e-12)
    assert "system.tiers.ssd.bw_gbps=7.0" in page.cli.object
    assert "<b>nvme-gen4</b>" in page.tier_box.objects[-1].object and "Evidence:" in page.tier_box.objects[-1].object
    page.set(**{"tiers.ssd": "nvme-gen5"})
    assert page.settings().tiers == {}


def test_gpu_and_link_presets(page):
    """Another GPU and link than the system's: the parameter widgets show the new presets' values, the numbers
    equal dse.evaluate(gpu=, link=), and the command line reproduces them."""
    page.set(gpu="h100-sxm", link="nvlink-c2c-gen4")
    assert not page.error.visible, page.error.object
    h100 = dse.presets("gpu")
    assert any(p.name == "h100-sxm" for p in h100) and "h100-sxm" in page.preset_notes.object
    from dse.config import presets

    assert page.numeric["idle_w"].value == presets.preset("gpu", "h100-sxm")["idle_w"]
    assert page.numeric["link_bw_gbps"].value == presets.preset("link", "nvlink-c2c-gen4")["bw_gbps"]
    want = dse.evaluate(**BASE, placement=["hbm", "ssd", "hbf"], batch=[1, 8, 64], gpu="h100-sxm",
                        link="nvlink-c2c-gen4")
    np.testing.assert_allclose(page.last.ds.energy_per_token.transpose(*want.energy_per_token.dims).values,
                               want.energy_per_token.values, rtol=1e-12)
    assert "'grid.gpu=[h100-sxm]'" in page.cli.object and "'grid.link=[nvlink-c2c-gen4]'" in page.cli.object
    page.set(system="hgx-h200")           # the system's own GPU and link again
    assert page.gpu.value == live_parts()["gpu"] and page.settings().params == {}


def test_exports_read_back(page):
    ds = xr.open_dataset(io.BytesIO(page._export("nc").getvalue()), engine="h5netcdf")
    np.testing.assert_array_equal(ds.energy_per_token.values, page.last.ds.energy_per_token.values)
    import pandas as pd

    table = pd.read_csv(io.BytesIO(page._export("csv").getvalue()))
    e = table[table.variable == "energy_per_token"]
    assert len(e) == page.last.ds.energy_per_token.size
    assert set(e.units) == {"J"}
    assert page._export("png").getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in page._export("svg").getvalue()[:2000]


def test_results_mode_selection(tmp_path):
    path = tmp_path / "r.nc"
    dse.evaluate(**BASE, placement=["hbm", "ssd"], batch=[1, 8, 64], flash_read_pj_per_bit=[10.0, 50.0]).to_netcdf(
        path, engine="h5netcdf")
    r = app(path)
    assert set(r.widgets) == {"placement", "batch", "flash_read_pj_per_bit"}
    r.widgets["flash_read_pj_per_bit"].value = [1]
    assert not r.error.visible and r.last.sizes["flash_read_pj_per_bit"] == 1
    assert "flash_read_pj_per_bit=[50.0]" in r.code.object
    ns = {}
    exec(r.code.object.split("```python\n")[1].split("```")[0].replace("fig = dse.plot.auto(ds)", ""), ns)
    np.testing.assert_array_equal(ns["ds"].energy_per_token.values, r.last.energy_per_token.values)
    good = r.figure.object
    r.widgets["placement"].value = []
    assert r.error.visible and r.error.object == "placement: choose at least one value"
    assert r.figure.object is good


def test_search_front_hover_and_click(tmp_path):
    """A dse-search directory: every trial on the interactive front, its hover naming the configuration as
    dse.plot labels it, a click (the selection) listing that trial's values from trials.nc."""
    from bokeh.models import HoverTool

    dse.run_search("mixtral-small", tmp_path, overrides=["search.method=optuna", "search.n_trials=10",
                                                          "search.batch_size=10", "search.progress=false"])
    r = app(tmp_path)
    trials = dse.open_results(tmp_path / "trials.nc").load()
    assert r.kind == "search" and r.front is not None
    fig = r.front.object
    tips = [dict(t.tooltips) for t in fig.tools if isinstance(t, HoverTool)]
    assert tips and tips[0]["design"] == "@label" and tips[0]["trial"] == "@trial"
    data = r._source.data
    assert list(data["trial"]) == list(trials.trial.values)
    assert list(data["label"]) == [dse.plot.design_label(trials, i) for i in range(trials.sizes["trial"])]
    np.testing.assert_allclose(data["y"], trials.energy_per_token.values * 1e3, rtol=1e-12)
    k = int(np.flatnonzero(trials.pareto.values)[-1])
    r._source.selected.indices = [k]
    assert f"trial {int(trials.trial[k])}" in r.selected.object
    assert f'data-row="energy_per_token" data-col="value">{float(trials.energy_per_token[k]):.6g}<' in \
        r.selected.object


@pytest.mark.slow
def test_a_taken_port_is_one_line():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "dse", "explore", "--port", str(port), "--no-browser"],
                           capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (f"dse: error: --address 127.0.0.1 --port {port}: cannot listen "
                                                 "(Address already in use)")


def test_bad_paths_are_one_line(tmp_path):
    with pytest.raises(dse.DseError, match="does not exist"):
        app(tmp_path / "nothing.nc")
    with pytest.raises(dse.DseError, match="holds no dse output"):
        app(tmp_path)


@pytest.mark.slow
def test_latency_benchmark_prints_its_number():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "explore_latency.py"), "--repeats", "2",
                          "--batches", "5"], capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr[-2000:]
    line = [x for x in run.stdout.splitlines() if x.startswith("widget change -> updated view:")]
    assert line and float(line[0].split(":")[1].split("ms")[0]) > 0
    assert "for 20 points" in line[0]


@pytest.mark.slow
def test_ctrl_c_stops_the_server_cleanly():
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "dse", "explore", "--port", str(port), "--no-browser"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except OSError:
                time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=20)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert f"serving http://127.0.0.1:{port}/" in out and "stopped" in out
