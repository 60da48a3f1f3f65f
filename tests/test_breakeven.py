"""Break-even Flash read energy (dse.analyze.breakeven) and the dse-breakeven CLI.

Expected numbers come from a second route each time: evaluating the engine at e* or at two Flash energies
(secant), hand formulas from docs/model.md section 5 with the preset constants, or the paper's statement.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import dse
from approx import assert_close
from dse.config import presets
from dse.analyze.bisection import bisect, breakeven_param
from dse.analyze.breakeven import REASONS, breakeven, energy_ratio
from dse.errors import DseError

ROOT = Path(__file__).resolve().parent.parent
MAV, L3 = {"study": "paper-fig6-maverick"}, {"study": "paper-fig6-llama3"}
MIX = "paper-fig45-mixtral"


@pytest.fixture(scope="module")
def maverick():
    return breakeven(MAV, L3)


def _at_flash(target: dict, e_star: xr.DataArray, **params) -> xr.DataArray:
    """Target energy per token evaluated by the engine at each point's own e* (diagonal of a Flash sweep)."""
    flat = e_star.stack(point=e_star.dims) if e_star.dims else e_star.expand_dims(point=[0])
    values = flat.values.tolist()
    ds = dse.evaluate(target.get("study"), **{k: v for k, v in target.items() if k != "study"},
                      flash_read_pj_per_bit=values, **params)
    out = []
    for i, v in enumerate(values):
        sel = {d: flat[d].values[i] for d in e_star.dims} if e_star.dims else {}
        out.append(float(ds.energy_per_token.sel(sel).isel(flash_read_pj_per_bit=i)))
    return np.array(out), flat


# ------------------------------------------------------------------------------------------ closed form
grids = st.fixed_dictionaries({
    "case": st.sampled_from(["maverick-llama3", "mixtral-ddr", "mixtral-hbm", "deepseek-ddr"]),
    "batch": st.lists(st.integers(1, 512), min_size=1, max_size=4, unique=True),
    "link": st.lists(st.floats(150.0, 1500.0), min_size=1, max_size=3, unique=True),
    "context_len": st.sampled_from([256, 1024, 4096]),
    "cache": st.sampled_from([0.0, 0.25, 0.5]),
    "direct": st.booleans(),
})


@settings(max_examples=8, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow])
@given(grids)
def test_energy_at_breakeven_equals_reference(g):
    """Property: evaluating the target at e* reproduces the reference energy per token to 1e-9 (relative)."""
    if g["case"] == "maverick-llama3":
        target, reference = dict(MAV), dict(L3)
    else:
        study = MIX if g["case"].startswith("mixtral") else "paper-fig45-deepseek"
        target = {"study": study, "placement": "ssd"}
        reference = {"study": study, "placement": g["case"].split("-")[1]}
    target.update(hbm_cache_fraction=g["cache"], offload_path="direct" if g["direct"] else "staged")
    shared = dict(batch=sorted(g["batch"]), link_bw_gbps=sorted(g["link"]), context_len=g["context_len"])
    be = breakeven(target, reference, **shared)
    if "placement" in be.dims:
        assert list(be.placement.values) == ["ssd"]
        be = be.sel(placement="ssd", drop=True)
    e = be.breakeven_flash_read_pj_per_bit
    assert set(e.dims) == {"batch", "link_bw_gbps"}
    assert bool((be.breaks_even == (e > 0)).all())
    # E_target(0): engine at zero Flash energy, every point
    zero = dse.evaluate(target["study"], **{k: v for k, v in target.items() if k != "study"},
                        flash_read_pj_per_bit=0.0, **shared).energy_per_token
    np.testing.assert_allclose(be.target_energy_per_token_at_zero.transpose(*zero.dims), zero, rtol=1e-12)
    pos = e.where(be.breaks_even)
    if bool(pos.notnull().any()):
        got, flat = _at_flash(target, pos.fillna(1.0), **shared)
        ref = be.reference_energy_per_token.broadcast_like(pos).stack(point=pos.dims).values
        ok = np.isfinite(pos.stack(point=pos.dims).values)
        np.testing.assert_allclose(got[ok], ref[ok], rtol=1e-9)
    # where it never breaks even, even free Flash reads cost more than the reference
    never = ~be.breaks_even
    assert bool(((be.target_energy_per_token_at_zero >= be.reference_energy_per_token) | ~never).all())
    assert bool(((be.reason != "") == never).all())


def test_breakeven_matches_a_secant_through_two_engine_evaluations(maverick):
    """Second route: the engine at 102.4 and 10.24 pJ/bit, linear in e, crosses the reference at e*."""
    m = dse.evaluate("paper-fig6-maverick", flash_read_pj_per_bit=[102.4, 10.24]).energy_per_token
    ref = dse.evaluate("paper-fig6-llama3").energy_per_token
    e1, e2 = m.isel(flash_read_pj_per_bit=0), m.isel(flash_read_pj_per_bit=1)
    secant = 102.4 + (ref - e1) * (10.24 - 102.4) / (e2 - e1)
    np.testing.assert_allclose(maverick.breakeven_flash_read_pj_per_bit, secant, rtol=1e-9)
    # the energy ratio at the two study energies equals the engine's ratio (affine form)
    np.testing.assert_allclose(energy_ratio(maverick, [102.4, 10.24]).transpose("batch", ...), (m / ref).transpose("batch", ...),
                               rtol=1e-12)


def test_paper_conclusion_maverick_vs_llama3(maverick):
    """Kyung et al. (Fig. 6): Maverick on SSD reaches parity with Llama-3-70B in HBM at batch 3 only after Flash
    read energy falls roughly an order of magnitude (still inside their sweep down to 0.1 x today), and not at
    all within that sweep at batch 4."""
    today = 102.4  # the paper's M.2 NVMe read energy (docs/model.md s.8)
    assert float(maverick.today_flash_read_pj_per_bit) == today
    assert maverick.attrs["today_flash_read_pj_per_bit"] == today
    e = maverick.breakeven_flash_read_pj_per_bit.sel
    assert 0.1 * today <= float(e(batch=3)) <= 0.2 * today          # parity inside the sweep, ~5-10x below today
    assert 5 <= float(maverick.improvement_needed.sel(batch=3)) <= 10
    assert float(e(batch=4)) < 0.1 * today                          # below the paper's whole sweep
    assert float(e(batch=1)) > float(e(batch=2)) > float(e(batch=3)) > float(e(batch=4))  # sparsity helps at small B
    np.testing.assert_allclose(maverick.improvement_needed, today / maverick.breakeven_flash_read_pj_per_bit)


def test_own_hbm_baseline_by_hand():
    """Mixtral on SSD vs its experts in HBM, same system: E_ssd(0) - E_hbm = Flash bits x HBM write (4.2 pJ/bit;
    the paper charges no link energy) + static power (4 x (70 W GPU + 57 W DDR)) x the longer step (docs/model.md s.5,
    s.8). So e* = -4.2 pJ/bit - 508 W x dt / bits: negative, never breaks even, the longer step dominating."""
    batches = [1, 64, 1024]
    be = breakeven({"study": MIX, "placement": "ssd"}, {"study": MIX, "placement": "hbm"}, batch=batches)
    d = dse.evaluate(MIX, batch=batches)
    ssd, hbm = d.sel(placement="ssd"), d.sel(placement="hbm")
    static_w = 4 * (70.0 + 57.0)
    dt = ssd.step_latency - hbm.step_latency
    hand = -4.2 - static_w * dt / ssd.offload_read_bits * 1e12
    np.testing.assert_allclose(be.breakeven_flash_read_pj_per_bit, hand, rtol=1e-9)
    assert not bool(be.breaks_even.any())
    assert set(be.reason.values.ravel()) == {REASONS["background"]}
    ex = be.excess_energy_per_token
    np.testing.assert_allclose(ex.sel(component="offload_hbm_write"), 4.2e-12 * ssd.offload_read_bits / ssd.batch, rtol=1e-9)
    np.testing.assert_allclose(ex.sel(component="background"), static_w * dt / ssd.batch, rtol=1e-9)
    assert np.all(np.isinf(be.improvement_needed))


def test_reason_hbm_write_when_static_power_is_free():
    """With no static power at all, the only excess left at free Flash reads is the HBM write of staged copies."""
    be = breakeven({"study": MIX, "placement": "ssd"}, {"study": MIX, "placement": "hbm"},
                   batch=[1, 32], idle_w=0.0, **{"system.tiers.ddr.idle_w": 0.0})
    np.testing.assert_allclose(be.breakeven_flash_read_pj_per_bit, -4.2, rtol=1e-9)  # -HBM write energy
    assert set(be.reason.values.ravel()) == {REASONS["offload_hbm_write"]}


def test_no_flash_traffic_points_and_flash_only_placements():
    be = breakeven({"study": MIX}, {"study": MIX, "placement": "ddr"}, batch=[1, 8], hbm_cache_fraction=[0.5, 1.0])
    assert list(be.placement.values) == ["ssd"]              # hbm and ddr placements of the study are left out
    full = be.sel(hbm_cache_fraction=1.0)
    assert bool(full.breakeven_flash_read_pj_per_bit.isnull().all())
    assert not bool(full.breaks_even.any())
    assert set(full.reason.values.ravel()) == {"no Flash traffic"}
    assert bool(be.sel(hbm_cache_fraction=0.5).breaks_even.all())


def test_dask_and_determinism():
    a = breakeven({"study": MIX, "placement": "ssd"}, {"study": MIX, "placement": "ddr"}, batch=[1, 4, 16, 64])
    b = breakeven({"study": MIX, "placement": "ssd", "chunks": {"batch": 2}}, {"study": MIX, "placement": "ddr"},
                  batch=[1, 4, 16, 64])
    xr.testing.assert_allclose(a.drop_vars("reason"), b.drop_vars("reason"), rtol=1e-12)
    assert (a.reason == b.reason).all()
    c = breakeven({"study": MIX, "placement": "ssd"}, {"study": MIX, "placement": "ddr"}, batch=[1, 4, 16, 64])
    assert_close(a.drop_vars("reason"), c.drop_vars("reason"))
    assert (a.reason == c.reason).all()


def test_datasets_as_inputs_and_reference_only_dimensions(maverick):
    t = dse.evaluate("paper-fig6-maverick", flash_read_pj_per_bit=102.4)
    r = dse.evaluate("paper-fig6-llama3")
    be = breakeven(t, r)
    xr.testing.assert_allclose(be.breakeven_flash_read_pj_per_bit, maverick.breakeven_flash_read_pj_per_bit)
    # a reference dimension the target lacks becomes reference_<dim>
    be2 = breakeven({"study": MIX, "placement": "ssd"}, {"study": MIX, "placement": ["hbm", "ddr"]}, batch=[1, 16])
    assert "reference_placement" in be2.dims
    only_ddr = breakeven({"study": MIX, "placement": "ssd"}, {"study": MIX, "placement": "ddr"}, batch=[1, 16])
    np.testing.assert_allclose(be2.breakeven_flash_read_pj_per_bit.sel(reference_placement="ddr"),
                               only_ddr.breakeven_flash_read_pj_per_bit, rtol=1e-12)


# --------------------------------------------------------------------------------------------- bad input
def _one_line(excinfo):
    msg = str(excinfo.value)
    assert msg and "\n" not in msg
    return msg


def test_reference_not_on_target_grid():
    r = dse.evaluate("paper-fig6-llama3", batch=[1, 2, 8, 16])
    with pytest.raises(DseError) as ei:
        breakeven(MAV, r)
    assert "not on the target's grid" in _one_line(ei) and "batch" in str(ei.value)
    with pytest.raises(DseError) as ei:  # the reference lacks the workload's batch dimension entirely
        breakeven(MAV, dse.evaluate("paper-fig6-llama3", batch=3))
    assert "lacks dimension 'batch'" in _one_line(ei)


@pytest.mark.parametrize("target", [
    {"study": MIX, "placement": "hbm"},
    {"study": MIX, "placement": ["hbm", "ddr"]},
    {"study": MIX, "placement": "ssd", "hbm_cache_fraction": 1.0},
])
def test_target_without_flash_traffic(target):
    with pytest.raises(DseError) as ei:
        breakeven(target, {"study": MIX, "placement": "hbm"})
    assert "no Flash traffic" in _one_line(ei)


def test_other_bad_input():
    with pytest.raises(DseError) as ei:
        breakeven({**MAV, "flash_read_pj_per_bit": [10.0, 20.0]}, L3)
    assert "flash_read_pj_per_bit" in _one_line(ei)
    with pytest.raises(DseError) as ei:
        breakeven(MAV, L3, placement=["ssd"])
    assert "placement" in _one_line(ei)
    with pytest.raises(DseError) as ei:
        breakeven(MAV, L3, today_pj_per_bit=-1.0)
    assert "today_pj_per_bit" in _one_line(ei)
    with pytest.raises(DseError) as ei:
        breakeven(MAV, "llama3")
    assert "reference" in _one_line(ei)
    with pytest.raises(DseError) as ei:
        breakeven(MAV, dse.evaluate("paper-fig6-llama3"), batch=[1, 2])
    assert "Dataset" in _one_line(ei)


# ------------------------------------------------------------------------------------------- bisection
def test_bisect_on_arrays():
    a = xr.DataArray([2.0, 9.0, 0.25, -1.0], dims=["p"])
    root, ok = bisect(lambda x: x * x - a, 0.0, 4.0, rtol=1e-12)
    np.testing.assert_allclose(root[:3], np.sqrt([2.0, 9.0, 0.25]), rtol=1e-11)
    assert list(ok.values) == [True, True, True, False] and np.isnan(root[3])
    # integer mode: the integer at the crossing on the side where f <= 0
    c = xr.DataArray([3.5, 10.2, 1.0, 64.0], dims=["p"])
    for points in (1, 7):  # plain bisection and 8-section give the same integers
        r_dec, _ = bisect(lambda x: c - x, 1, 64, integer=True, points=points)  # f <= 0 above the crossing
        assert list(r_dec.values) == [4, 11, 1, 64]
        r_inc, _ = bisect(lambda x: x - c, 1, 64, integer=True, points=points)  # f <= 0 below the crossing
        assert list(r_inc.values) == [3, 10, 1, 64]
    root7, _ = bisect(lambda x: x * x - a, 0.0, 4.0, rtol=1e-12, points=7)
    np.testing.assert_allclose(root7[:3], np.sqrt([2.0, 9.0, 0.25]), rtol=1e-11)


def test_breakeven_batch_agrees_with_closed_form(maverick):
    """Second method: the largest batch whose e* is at least the Flash energy, from the closed form."""
    flash = [10.24, 51.2]
    r = breakeven_param({**MAV, "flash_read_pj_per_bit": flash}, L3, "batch", 1, 16)
    e = maverick.breakeven_flash_read_pj_per_bit
    for f in flash:
        expected = int(max(b for b in e.batch.values if float(e.sel(batch=b)) >= f))
        assert int(r.breakeven_batch.sel(flash_read_pj_per_bit=f)) == expected
    assert not bool(r.cheaper_above.any())  # larger batches touch more experts: Flash only pays below


def test_breakeven_link_bandwidth_and_cache_fraction():
    """At the bisected value the engine's energies are equal (to the tolerance)."""
    t = {**MAV, "flash_read_pj_per_bit": 10.24}
    r = breakeven_param(t, L3, "link_bw_gbps", 150.0, 900.0, batch=[1, 3])
    bw = r.breakeven_link_bw_gbps
    assert bool(r.bracketed.all()) and bool(r.cheaper_above.all())
    m = dse.evaluate("paper-fig6-maverick", flash_read_pj_per_bit=10.24, batch=[1, 3],
                     link_bw_gbps=[float(bw.sel(batch=1)), float(bw.sel(batch=3))])
    l3 = dse.evaluate("paper-fig6-llama3", batch=[1, 3]).energy_per_token
    np.testing.assert_allclose([float(m.energy_per_token.isel(batch=i, link_bw_gbps=i) / l3.isel(batch=i))
                                for i in range(2)], 1.0, rtol=1e-5)
    # batch 4 at 10.24 pJ/bit costs more than Llama-3-70B (e* = 2.6 < 10.24): keep the hottest experts in HBM
    r = breakeven_param(t, L3, "hbm_cache_fraction", batch=[3, 4])
    assert not bool(r.bracketed.sel(batch=3))   # already no costlier with nothing cached (e* = 12.7 > 10.24)
    f = float(r.breakeven_hbm_cache_fraction.sel(batch=4))
    assert bool(r.cheaper_above.sel(batch=4)) and 0 < f < 1
    m = dse.evaluate("paper-fig6-maverick", flash_read_pj_per_bit=10.24, batch=4, hbm_cache_fraction=f)
    np.testing.assert_allclose(m.energy_per_token, dse.evaluate("paper-fig6-llama3", batch=4).energy_per_token,
                               rtol=1e-5)
    with pytest.raises(DseError) as ei:
        breakeven_param(MAV, L3, "batch", 1, 8, batch=[1, 2])
    assert "grid dimension" in _one_line(ei)


# ------------------------------------------------------------------------------------------------ CLI
def _cli(tmp_path, *args):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "dse.cli.dse_breakeven", *args, f"hydra.run.dir={tmp_path}"],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.slow
def test_cli_table_and_dataset(tmp_path, maverick):
    p = _cli(tmp_path, "study=paper-fig6-maverick", "reference.study=paper-fig6-llama3")
    assert p.returncode == 0, p.stderr
    assert "e* [pJ/bit]" in p.stdout and "today 102.4 pJ/bit" in p.stdout
    ds = xr.open_dataset(tmp_path / "breakeven.nc", engine="h5netcdf")
    np.testing.assert_allclose(ds.breakeven_flash_read_pj_per_bit, maverick.breakeven_flash_read_pj_per_bit, rtol=1e-12)
    assert ds.attrs["target_study"] == "paper-fig6-maverick" and json.loads(ds.attrs["reference_settings"])["batch"]
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.slow
def test_cli_bad_input_one_line_no_file(tmp_path):
    p = _cli(tmp_path, f"study={MIX}", "grid.placement=[hbm,ddr]")
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "no Flash traffic" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "breakeven.nc").exists()


def test_breakeven_conf_composes_the_root_config():
    assert (presets.CONF_DIR / "breakeven.yaml").is_file()
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(presets.CONF_DIR), version_base=None):
        c = compose(config_name="breakeven", overrides=["study=paper-fig6-maverick", "reference.study=paper-fig6-llama3"])
    assert c.model.name == "llama4-maverick" and c.reference.placement == "hbm" and "grid" in c
