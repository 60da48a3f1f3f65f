"""dse explore in a real browser (headless Chromium through Selenium and the system chromedriver): the numbers the
page shows equal dse.evaluate / dse.breakeven / dse.max_batch for the same settings, after widgets are changed;
a bad setting shows the API's one-line error and keeps the last good numbers; results mode on a sweep and on a
dse-search output (the front's clicked trial equals trials.nc); the server stops cleanly on SIGTERM.

Skipped (with the reason) only where Chromium or its driver is not installed; .ci/run installs both.
"""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pn = pytest.importorskip("panel", reason="the explore extra (panel) is not installed")
webdriver = pytest.importorskip("selenium.webdriver", reason="the explore extra (selenium) is not installed")

import dse  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="chromium / chromedriver not installed "
                                 "(apt-get install chromium chromium-driver; .ci/run does)")]
ROOT = Path(__file__).resolve().parents[1]
REL = 5e-6      # the page shows 6 significant digits

# every element of the page through every shadow root (Bokeh 3 renders each view in one)
DEEP = """
const sel = arguments[0];
function walk(root, out) {
  root.querySelectorAll(sel).forEach(e => out.push(e));
  root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) walk(e.shadowRoot, out); });
  return out;
}
return walk(document, []);
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *args):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc = subprocess.Popen([sys.executable, "-m", "dse", "explore", *map(str, args), "--port",
                                      str(self.port), "--no-browser"], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
            if self.proc.poll() is not None:
                break
        raise AssertionError(f"dse explore did not answer: {self.stop()}")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.stdout.read()


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1500,1300"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


def deep(drv, css):
    return drv.execute_script(DEEP, css)


def wait_for(fn, timeout=30.0, what="condition"):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = fn()
            if last:
                return last
        except Exception as err:  # noqa: BLE001 - the page is still rendering
            last = err
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def cells(drv, table_id):
    """{(row, col): text} of a table of the page."""
    out = {}
    for td in deep(drv, f"#{table_id} td"):
        out[(td.get_attribute("data-row"), td.get_attribute("data-col"))] = td.text.strip()
    return out


def widget_input(drv, cls, tag="input"):
    host = wait_for(lambda: deep(drv, f".{cls}"), what=cls)[0]
    return drv.execute_script(f"return arguments[0].shadowRoot.querySelector('{tag}')", host)


def set_text(drv, cls, text):
    el = widget_input(drv, cls)
    keys = webdriver.common.keys.Keys
    el.click()
    el.send_keys(keys.CONTROL, "a")     # select the whole text: what is typed replaces it
    el.send_keys(text)
    if el.get_property("value") != text:   # a numeric input re-formats while typing: enter the text at once
        drv.execute_script("arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'))",
                           el, text)
    el.send_keys(keys.ENTER)
    drv.execute_script("arguments[0].dispatchEvent(new Event('change'))", el)
    return el


def click_tab(drv, label):
    tab = wait_for(lambda: [t for t in deep(drv, ".bk-tab") if t.text.strip() == label], what=f"tab {label}")[0]
    tab.click()


def not_blank(drv, path: Path) -> None:
    from PIL import Image

    drv.save_screenshot(str(path))
    img = np.asarray(Image.open(path).convert("L"), float)
    assert img.std() > 20, f"screenshot {path} is blank (std {img.std():.1f})"
    assert len(np.unique(img)) > 50


def console_errors(drv) -> list[str]:
    """The page's JavaScript errors so far (the console's SEVERE entries, favicon misses aside)."""
    return [e["message"] for e in drv.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]


def number(text: str) -> float:
    return float(text.replace(",", ""))


def assert_numbers(table, ds, var, scale, placements):
    for p in placements:
        want = float(ds[var].sel(placement=p)) * scale
        got = number(table[(var, p)])
        assert got == pytest.approx(want, rel=REL), (var, p, got, want)


def test_live_mode_shows_dse_numbers(browser, tmp_path):
    server = Server()
    try:
        drv = browser
        drv.get(server.url)
        base = dict(model="mixtral-8x7b", system="hgx-h200", batch=64)
        table = wait_for(lambda: cells(drv, "dse-numbers"), 60, "the numbers table")
        ds = dse.evaluate(placement=["hbm", "ddr", "ssd", "hbf"], **base)
        assert_numbers(table, ds, "energy_per_token", 1e3, ["hbm", "ddr", "ssd", "hbf"])
        assert_numbers(table, ds, "capacity_cost_usd", 1e-3, ["hbm", "ssd"])
        assert_numbers(table, ds, "step_latency", 1e3, ["hbm", "ssd"])

        # Flash read energy 20 pJ/bit: every Flash tier's numbers follow, HBM's stay
        before = table[("energy_per_token", "ssd")]
        el = set_text(drv, "dse-flash-read-pj-per-bit", "20")
        assert el.get_property("value") == "20"
        table = wait_for(lambda: (t := cells(drv, "dse-numbers")) and t[("energy_per_token", "ssd")] != before
                         and t, what="numbers after the Flash change")
        ds = dse.evaluate(placement=["hbm", "ddr", "ssd", "hbf"], flash_read_pj_per_bit=20.0, **base)
        assert_numbers(table, ds, "energy_per_token", 1e3, ["hbm", "ddr", "ssd", "hbf"])
        assert_numbers(table, ds, "offload_share", 100, ["ssd", "hbf"])

        # placement: DDR off
        box = wait_for(lambda: deep(drv, ".dse-placement"), what="placement")[0]
        ddr = drv.execute_script("return [...arguments[0].shadowRoot.querySelectorAll('label')]"
                                 ".find(l => l.textContent.trim() == 'ddr').querySelector('input')", box)
        ddr.click()
        table = wait_for(lambda: (t := cells(drv, "dse-numbers")) and ("energy_per_token", "ddr") not in t and t,
                         what="the table without ddr")
        assert {c for _, c in table} == {"hbm", "ssd", "hbf"}
        assert_numbers(table, ds, "energy_per_token", 1e3, ["hbm", "ssd", "hbf"])
        time.sleep(1)   # the views' new data drawn
        not_blank(drv, tmp_path / "live.png")
        assert not console_errors(drv)

        # a bad setting: the API's one-line error in the page, the last good numbers kept
        with pytest.raises(dse.DseError) as err:
            dse.evaluate(placement=["hbm", "ssd", "hbf"], model="mixtral-8x7b", system="hgx-h200", batch=[0, 64])
        set_text(drv, "dse-batch", "0, 64")
        shown = wait_for(lambda: " ".join(e.text for e in deep(drv, ".dse-error")).strip(), what="the error")
        assert shown == str(err.value)
        assert cells(drv, "dse-numbers") == table
        set_text(drv, "dse-batch", "1, 4, 16, 64, 256")
        wait_for(lambda: not " ".join(e.text for e in deep(drv, ".dse-error")).strip(), what="error gone")

        # break-even against HBM, as dse.breakeven computes it
        click_tab(drv, "Break-even")
        bt = wait_for(lambda: cells(drv, "dse-breakeven"), what="the break-even table")
        be = dse.breakeven({**{k: v for k, v in base.items() if k != "batch"}, "placement": ["ssd", "hbf"],
                            "flash_read_pj_per_bit": 20.0},
                           {"model": "mixtral-8x7b", "system": "hgx-h200", "placement": "hbm"}, batch=[64])
        for p in ("ssd", "hbf"):
            want = float(be.breakeven_flash_read_pj_per_bit.sel(placement=p, batch=64))
            assert number(bt[("breakeven_flash_read_pj_per_bit", p)]) == pytest.approx(want, rel=REL)
            assert bt[("reason", p)] == str(be.reason.sel(placement=p, batch=64).item()) or \
                bool(be.breaks_even.sel(placement=p, batch=64))

        # serving: request metrics and the largest batch under the targets, as dse.max_batch
        click_tab(drv, "Serving")
        st = wait_for(lambda: cells(drv, "dse-serving"), what="the serving table")
        mb = dse.max_batch(model="mixtral-8x7b", system="hgx-h200", placement=["hbm", "ssd", "hbf"],
                           flash_read_pj_per_bit=20.0, profile="sharegpt", tpot_slo_s=0.05, ttft_slo_s=5.0)
        rq = dse.evaluate(model="mixtral-8x7b", system="hgx-h200", placement=["hbm", "ssd", "hbf"], batch=64,
                          flash_read_pj_per_bit=20.0, profile="sharegpt")
        for p in ("hbm", "ssd", "hbf"):
            assert int(number(st[("max_batch", p)])) == int(mb.max_batch.sel(placement=p))
            assert st[("limited_by", p)] == str(mb.limited_by.sel(placement=p).item())
            assert number(st[("req:tpot", p)]) == pytest.approx(float(rq.tpot.sel(placement=p)) * 1e3, rel=REL)
        not_blank(drv, tmp_path / "serving.png")
        assert not console_errors(drv)

        # the shown Python call reproduces the page's numbers
        click_tab(drv, "Reproduce")
        code = wait_for(lambda: " ".join(e.text for e in deep(drv, ".dse-python")), what="the Python call")
        assert "flash_read_pj_per_bit=20.0" in code and "'ssd'" in code and "'ddr'" not in code
        ns = {}
        exec(code[code.index("import dse"):], ns)      # the call as shown
        assert_numbers(table, ns["ds"].sel(batch=64), "energy_per_token", 1e3, ["hbm", "ssd", "hbf"])
        assert int(ns["mb"].max_batch.sel(placement="ssd")) == int(mb.max_batch.sel(placement="ssd"))
        cli = " ".join(e.text for e in deep(drv, ".dse-cli"))
        assert "system.tiers.ssd.read_pj_per_bit=20.0" in cli and "'grid.placement=[hbm,ssd,hbf]'" in cli
    finally:
        log = server.stop()
    assert server.proc.returncode == 0, log
    assert "stopped" in log


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "result.nc"
    ds = dse.evaluate(model="mixtral-8x7b", system="hgx-h200", placement=["hbm", "ssd"], batch=[1, 8, 64],
                      flash_read_pj_per_bit=[10.0, 50.0])
    ds.to_netcdf(path, engine="h5netcdf")
    return path, ds


def test_results_mode_on_a_sweep(browser, sweep, tmp_path):
    path, ds = sweep
    server = Server(path)
    try:
        browser.get(server.url)
        table = wait_for(lambda: cells(browser, "dse-values"), 60, "the values table")
        s = ds.energy_per_token.to_series()
        assert len(table) == len(s)
        got = np.array([number(table[(str(i), "energy_per_token")]) for i in range(len(s))])
        np.testing.assert_allclose(got, s.values, rtol=REL)
        wait_for(lambda: [i for i in deep(browser, "img") if (i.get_attribute("src") or "").startswith("data:image/png")
                          and i.size["width"] > 100], what="the figure")
        not_blank(browser, tmp_path / "sweep.png")
        code = " ".join(e.text for e in deep(browser, ".dse-python"))
        assert "dse.open_results(" in code and "dse.plot.auto(ds)" in code
    finally:
        log = server.stop()
    assert server.proc.returncode == 0, log


@pytest.fixture(scope="module")
def search_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("search")
    dse.run_search("mixtral-small", run_dir, overrides=["search.method=optuna", "search.n_trials=20",
                                                         "search.batch_size=10", "search.progress=false"])
    return run_dir


def test_results_mode_on_a_search(browser, search_dir, tmp_path):
    trials = dse.open_results(search_dir / "trials.nc").load()
    server = Server(search_dir)
    try:
        browser.get(server.url)
        table = wait_for(lambda: cells(browser, "dse-values"), 60, "the front's table")
        front = np.flatnonzero(trials.pareto.values.astype(bool))
        assert {int(r) for r, _ in table} == set(front.tolist())
        for i in front:
            assert number(table[(str(i), "energy_per_token")]) == pytest.approx(
                float(trials.energy_per_token[i]), rel=REL)
        # the interactive front: a click on a point (its selection) shows that trial's values
        wait_for(lambda: deep(browser, ".dse-front"), what="the front plot")
        k = int(front[0])
        wait_for(lambda: browser.execute_script(
            "for (const d of Bokeh.documents) for (const m of (d._all_models ? d._all_models.values() : d.all_models))"
            "  if (m.data && m.data.trial && m.data.label) { m.selected.indices = [arguments[0]]; return true; }"
            "return false;", k), what="the front's data source")
        shown = wait_for(lambda: cells(browser, "dse-trial"), what="the clicked trial")
        assert number(shown[("energy_per_token", "value")]) == pytest.approx(float(trials.energy_per_token[k]),
                                                                             rel=REL)
        assert number(shown[("capacity_cost_usd", "value")]) == pytest.approx(float(trials.capacity_cost_usd[k]),
                                                                              rel=REL)
        not_blank(browser, tmp_path / "search.png")
        assert not console_errors(browser)
    finally:
        log = server.stop()
    assert server.proc.returncode == 0, log


def test_bad_path_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dse", "explore", str(tmp_path / "missing.nc"), "--no-browser"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"dse: error: dse explore: {str(tmp_path / 'missing.nc')!r} does not "
                                             "exist"]
