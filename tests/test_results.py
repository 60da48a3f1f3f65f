"""dse.results: lazy opening and the query helpers, checked against hand-computed and closed-form answers."""
import numpy as np
import pytest
import xarray as xr

import dse
from dse.errors import DseError
from dse.run.results import best, crossing, open_results, ratio_to


def table():
    # energy per token (J) by placement x batch, made up so the answers can be read off
    return xr.DataArray([[1.0, 2.0, 4.0], [3.0, 3.0, 3.0], [0.5, 5.0, 8.0]], dims=["placement", "batch"],
                        coords={"placement": ["hbm", "ddr", "ssd"], "batch": [1, 2, 4]}, name="energy_per_token")


def test_ratio_to_a_reference_placement():
    r = ratio_to(table(), "placement", "hbm")
    np.testing.assert_array_equal(r.sel(placement="ssd"), [0.5, 2.5, 2.0])
    np.testing.assert_array_equal(r.sel(placement="ddr"), [3.0, 1.5, 0.75])
    with pytest.raises(DseError, match="placement='cxl' is not in the results"):
        ratio_to(table(), "placement", "cxl")


def test_best_choice_along_a_dimension():
    b = best(table(), "placement")
    assert list(b.choice.values) == ["ssd", "hbm", "ddr"]
    np.testing.assert_array_equal(b.value, [0.5, 2.0, 3.0])
    assert list(best(table(), "placement", minimize=False).choice.values) == ["ddr", "ssd", "ssd"]
    lazy = best(table().chunk({"batch": 1}), "placement")
    assert list(lazy.choice.values) == ["ssd", "hbm", "ddr"]


def test_crossing_interpolates_between_grid_values():
    y = xr.DataArray([[4.0, 2.0, 0.0, -2.0], [5.0, 5.0, 5.0, 5.0], [0.0, 1.0, 3.0, 1.0]], dims=["case", "x"],
                     coords={"x": [10.0, 20.0, 30.0, 40.0]})
    # case 0 reaches 1.0 halfway between 20 (2.0) and 30 (0.0): 25; case 1 never; case 2 rises through 1.0 at
    # x = 20 exactly and comes back down at 35: the smallest crossing is reported
    np.testing.assert_allclose(crossing(y, "x", 1.0), [25.0, np.nan, 20.0])
    np.testing.assert_allclose(crossing(y.isel(x=slice(None, None, -1)), "x", 1.0), [25.0, np.nan, 20.0])
    with pytest.raises(DseError, match="no dimension 'flash'"):
        crossing(y, "flash", 1.0)


def test_crossing_finds_the_closed_form_flash_break_even():
    """Energy is affine in Flash read energy (docs/model.md s.5): e* = (E_ref - E_flash(e=0)) / Flash bits per token,
    so two grid values bracket it exactly. Maverick on SSD against Llama-3-70B in HBM (the paper's Fig. 6)."""
    mav = dse.evaluate("paper-fig6-maverick", flash_read_pj_per_bit=[0.0, 400.0])
    ref = dse.evaluate("paper-fig6-llama3").energy_per_token
    e0 = mav.energy_per_token.sel(flash_read_pj_per_bit=0.0)
    bits_per_token = mav.offload_read_bits / mav.batch
    closed_form = (ref - e0) / (bits_per_token * 1e-12)                      # pJ per bit
    found = crossing(mav.energy_per_token / ref, "flash_read_pj_per_bit", 1.0)
    np.testing.assert_allclose(found, closed_form.where(closed_form > 0), rtol=1e-9)
    assert np.isfinite(found).sum() >= 2                                     # some batch sizes break even


def test_open_results_errors_are_one_line(tmp_path):
    with pytest.raises(DseError, match="does not exist"):
        open_results(tmp_path / "nothing.nc")
    partial = tmp_path / "result.zarr.partial"
    partial.mkdir()
    with pytest.raises(DseError, match="unfinished sweep"):
        open_results(partial)
