"""CF conventions: a Conventions attribute, UDUNITS-valid units on every variable and numeric coordinate, long
names on the label coordinates of stacked variables. The allowed unit strings are written out here by hand from
the UDUNITS-2 grammar (SI symbols with prefixes, products by space, powers by exponent, numeric scale factors)."""
import numpy as np
import pytest

import dse

# every unit string a dse dataset may carry, checked by hand against UDUNITS-2 (byte and bit are UDUNITS units)
UDUNITS_OK = {"J", "s", "W", "1", "byte", "bit", "pJ bit-1", "pJ", "1e9 byte s-1", "1e12 s-1", "s-1"}


@pytest.fixture(scope="module")
def ds():
    return dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", placement=["hbm", "ssd"], batch=[1, 16],
                        link_bw_gbps=[64.0, 900.0], idle_w=[70.0, 120.0], peak_tflops=[989.4],
                        weight_bytes=[1.0, 2.0])


def test_conventions_attribute(ds):
    assert ds.attrs["Conventions"] == "CF-1.11"
    assert "docs/model.md" in ds.attrs["conventions"]


def test_every_variable_and_numeric_coordinate_has_udunits_units(ds):
    for name, var in ds.variables.items():
        numeric = var.dtype.kind in "iufb"
        if numeric:
            assert var.attrs.get("units") in UDUNITS_OK, (name, var.attrs.get("units"))
        assert var.attrs.get("long_name"), name


def test_specific_units(ds):
    assert ds.energy_per_token.attrs["units"] == "J"
    assert ds.hbm_bytes.attrs["units"] == "byte" and ds.offload_read_bits.attrs["units"] == "bit"
    assert ds.tokens_per_s.attrs["units"] == "s-1" and "tokens per second" in ds.tokens_per_s.attrs["long_name"]
    assert ds.link_bw_gbps.attrs["units"] == "1e9 byte s-1"          # GB/s = 10^9 bytes per second
    assert ds.peak_tflops.attrs["units"] == "1e12 s-1"               # TFLOP/s = 10^12 operations per second
    assert ds.batch.attrs["units"] == "1" and "sequences" in ds.batch.attrs["long_name"]
    assert ds.capacity_cost_usd.attrs["units"] == "1" and "US dollars" in ds.capacity_cost_usd.attrs["long_name"]
    assert "units" not in ds.placement.attrs                         # a label coordinate


def test_stack_coordinates_are_described(ds):
    assert "energy component" in ds.component.attrs["long_name"]
    assert "capacity cost" in ds.cost_part.attrs["long_name"]
    lazy = dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", batch=[1, 16], chunks={"batch": 1})
    assert lazy.component.attrs == ds.component.attrs


def test_breakeven_dataset_is_cf_too():
    be = dse.breakeven({"study": "paper-fig45-mixtral", "placement": "ssd"},
                       {"study": "paper-fig45-mixtral", "placement": "ddr"}, batch=[1, 16])
    assert be.attrs["Conventions"] == "CF-1.11"
    assert be.breakeven_flash_read_pj_per_bit.attrs["units"] == "pJ bit-1"
    assert be.breaks_even.attrs["units"] == "1"
    np.testing.assert_allclose(be.breakeven_flash_read_pj_per_bit, 9.2, rtol=1e-6)  # DDR's read energy (s.5)
