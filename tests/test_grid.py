"""Open-grid block evaluation (dse.run.grid, engine.resolve): same numbers as the engine before it, for any chunking."""
import json
import itertools

import numpy as np
import pytest
import xarray as xr

import dse
from dse.run import engine
from approx import assert_close
from engine_cases import CASES, evaluate

REFERENCE = __import__("pathlib").Path(__file__).parent / "data" / "engine_reference.nc"


@pytest.mark.parametrize("name", list(CASES))
def test_engine_reproduces_the_reference(name):
    """A regression guard, not a physics check: every variable, coordinate and attribute as the engine computed
    them when tests/data/engine_reference.nc was last regenerated on purpose (issue 22: the expert-parallel combine
    under the refined accounting; before: the direct path and copies' HBM writes; 86a62c2, the operation-table kernel;
    regenerate with ``python tests/engine_cases.py`` only when the physics changes deliberately). It exists so that
    restructuring (the layout, the grid engine, speed work) cannot move a number unnoticed; the numbers themselves
    are checked against hand derivations, Monte Carlo and the authors' tool in test_kernel_hand.py,
    test_fidelity.py and test_paper.py. Floats agree to a relative 1e-9: the last bits depend on the CPU's SIMD
    code path (AVX-512 or not); only git_commit may differ."""
    ref = xr.load_dataset(REFERENCE, group=name, engine="h5netcdf")
    new = evaluate(name)
    new = new[list(ref.data_vars)]  # variables added since (e.g. capacity cost) are checked elsewhere
    new = new.drop_vars([c for c in new.coords if c not in ref.coords])
    # energy components and cost parts added since (the warm tier, docs/model.md s.12) are 0 in these studies
    for var, dim in (("energy", "component"), ("capacity_cost", "cost_part")):
        if var in ref:
            added = new[var].drop_sel({dim: ref[dim].values})
            assert added.sizes[dim] == 0 or float(abs(added).max()) == 0.0
            new = new.sel({dim: ref[dim].values})
    for key in ("git_commit", "config_yaml", "config_digest", "conventions"):  # presets gain fields over time
        ref.attrs.pop(key)
        assert new.attrs.pop(key)
    # the cases now pin attention_parallel=tp (the reference predates its auto default); the rest as given
    settings, ref_settings = json.loads(new.attrs.pop("settings")), json.loads(ref.attrs.pop("settings"))
    settings.pop("attention_parallel", None)
    ref_settings.pop("attention_parallel", None)
    assert settings == ref_settings
    for obj_new, obj_ref in [(new, ref)] + [(new[v], ref[v]) for v in ref.variables]:
        for key in set(obj_new.attrs) - set(obj_ref.attrs):  # attributes added since (CF Conventions, ...)
            del obj_new.attrs[key]
        if obj_new is not new:  # units / long names became CF / UDUNITS (tests/test_cf.py); numbers must not move
            for key in ("units", "long_name"):
                obj_new.attrs.pop(key, None)
                obj_ref.attrs.pop(key, None)
    assert_close(new, ref, rtol=1e-9)


@pytest.mark.parametrize("name", ["flash_grid", "zipf_cache", "models_systems", "gpu_link_ep"])
def test_any_chunking_gives_the_same_numbers(name):
    whole = evaluate(name)
    dims = [d for d in whole.dims if d != "component"]
    for chunks in ({d: 2 for d in dims}, {d: 1 if i % 2 else 3 for i, d in enumerate(dims)}):
        lazy = dse.evaluate(**CASES[name], chunks=chunks)
        assert lazy.energy.chunks is not None
        assert_close(lazy.compute(), whole)


def test_blocks_are_slices_of_the_whole_grid():
    grid = engine.resolve(**CASES["flash_grid"])
    whole = grid.block(grid.box())
    rng = np.random.default_rng(1)
    for _ in range(5):
        index = {}
        for d, n in grid.sizes.items():
            a, b = sorted(rng.choice(n + 1, 2, replace=False))
            index[d] = slice(int(a), int(b)) if rng.random() < 0.5 else sorted(rng.choice(n, 2).tolist())
        part = grid.block(grid.box(index))
        for name, values in part.items():
            dims = grid.layout[name][0]
            expect = whole[name]
            for axis, d in enumerate(dims):
                expect = np.take(expect, np.arange(grid.sizes[d])[index[d]], axis=axis)
            assert_close(values, expect)


def test_dependencies_follow_the_physics_even_on_single_valued_dimensions():
    """A dimension of one value is kept exactly where a variable depends on it: Flash read energy enters the
    energy only; FLOPs depend on neither where experts live nor Flash energy (docs/model.md s.3, s.5)."""
    ds = dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", placement=["ssd"], flash_read_pj_per_bit=[50.0],
                      batch=[1, 4])
    assert set(ds.energy_per_token.dims) == {"placement", "flash_read_pj_per_bit", "batch"}
    assert ds.flops.dims == ("batch",)
    assert "flash_read_pj_per_bit" not in ds.step_latency.dims


#: The energy of copying offloaded weights, written out from docs/model.md (s.5: the cold tier's read, the link, the
#: staged HBM write; s.12.4: the warm tier's read and link), not read from dse.model.kernel.OFFLOAD_COMPONENTS.
OFFLOAD = ["offload_read", "offload_link", "offload_hbm_write", "warm_read", "warm_link"]


def test_step_energy_is_the_sum_of_its_components():
    ds = evaluate("flash_grid")
    np.testing.assert_allclose(ds.step_energy, ds.energy.sum("component"), rtol=1e-15)
    np.testing.assert_allclose(ds.energy_per_token, ds.step_energy / ds.batch, rtol=1e-15)
    offload = ds.energy.sel(component=OFFLOAD).sum("component")
    np.testing.assert_allclose(ds.offload_share, offload / ds.step_energy, rtol=1e-15)
    # with a warm tier (DDR) between HBM and the SSDs every one of the five offload components is non-zero, so
    # offload_share counts each of them: a component left out of the share moves it
    warm = dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", accounting="refined", ep=1, batch=[1, 16],
                        placement="ssd", routing_frequencies=[8, 6, 4, 3, 2, 1, 1, 1], hbm_cache_fraction=0.25,
                        warm_tier="ddr", warm_fraction=0.25)
    for c in OFFLOAD:
        assert np.all(warm.energy.sel(component=c).values > 0), c
    np.testing.assert_allclose(warm.step_energy, warm.energy.sum("component"), rtol=1e-15)
    share = warm.energy.sel(component=OFFLOAD).sum("component") / warm.step_energy
    np.testing.assert_allclose(warm.offload_share, share, rtol=1e-14)
    for c in ("warm_read", "warm_link"):   # each warm component is a visible part of the share
        without = warm.energy.sel(component=[o for o in OFFLOAD if o != c]).sum("component") / warm.step_energy
        assert np.all(warm.offload_share.values - without.values > 1e-6), c


def test_the_grid_reports_its_size_before_evaluating():
    grid = engine.resolve(model="deepseek-r1", system="8xh200-c2c", batch=list(range(1, 1001)),
                          flash_read_pj_per_bit=list(np.linspace(1, 100, 1000)), top_k=[1, 2, 4, 8])
    assert grid.points == 1000 * 1000 * 4
    assert grid.sizes == {"batch": 1000, "flash_read_pj_per_bit": 1000, "top_k": 4}
    assert list(itertools.islice(grid.blocks(grid.chunking({"batch": 500})), 1))[0][0] == (0, 0, 0)


def test_sums_added_once_over_the_grid_give_each_blocks_own_sum(monkeypatch):
    """The energy's small parts are added once over the whole grid (engine._heads) and every block adds the rest:
    with the cut in the middle of the sum, chunked results equal the components summed here, and the blocks that
    compute their own parts (no whole-grid parts, no heads)."""
    grid = engine.resolve(**CASES["flash_grid"])
    parts = grid._compute_box(grid.box())
    sizes = sorted(np.size(p) for p in parts["energy"])
    monkeypatch.setattr(engine, "HEAD_MAX", sizes[len(sizes) // 2])
    heads = engine._heads(parts, grid.layout and grid.part_points)   # the layout probe counts the parts
    assert 2 <= heads["energy_head"][1] < len(parts["energy"])        # a head and a rest: both code paths run
    ds = dse.evaluate(**CASES["flash_grid"], chunks={"batch": 2}).compute()
    offload = ds.energy.sel(component=OFFLOAD).sum("component")
    np.testing.assert_allclose(ds.step_energy, ds.energy.sum("component"), rtol=1e-15)
    np.testing.assert_allclose(ds.energy_per_token, ds.energy.sum("component") / ds.batch, rtol=1e-15)
    np.testing.assert_allclose(ds.offload_share, offload / ds.step_energy, rtol=1e-15)
    monkeypatch.setattr(dse.run.grid, "WHOLE_PARTS_MAX", 0)              # every block computes its own parts
    own = dse.evaluate(**CASES["flash_grid"], chunks={"batch": 2}).compute()
    for name in ("step_energy", "energy_per_token", "offload_share"):
        assert_close(ds[name], own[name], rtol=1e-15)
