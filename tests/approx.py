"""Float comparisons that hold on every machine.

Two evaluations of the same formula may differ in the last bit when numpy takes another code path (AVX2 vs
AVX-512 vs NEON loops, a SIMD body vs its scalar tail, a different block shape). A changed formula moves results
by far more than 1e-12, so these helpers compare floats with that relative tolerance and everything else
(dimensions, coordinates, attributes, strings, integers) exactly.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

RTOL = 1e-12
ATOL = 1e-300  # only so that 0 == 0 passes; every physical value here is either exactly 0 or far above this


def _numeric_float(a) -> bool:
    return np.asarray(a).dtype.kind in "fc"


def _same_attrs(a: dict, b: dict) -> bool:
    """Attributes equal key by key; array-valued ones (CF ``flag_values``) by value, whatever their container (a
    NetCDF attribute reads back as an array, a Zarr one as a list)."""
    if set(a) != set(b):
        return False
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, (np.ndarray, list, tuple)) or isinstance(y, (np.ndarray, list, tuple)):
            if not np.array_equal(np.asarray(x), np.asarray(y)):
                return False
        elif x != y:
            return False
    return True


def assert_close(actual, desired, rtol: float = RTOL, attrs: bool = True) -> None:
    """Like ``xr.testing.assert_identical``, but floating-point values only need to agree to ``rtol``.

    Works on Datasets, DataArrays and numpy arrays (NaN equals NaN; shapes, dims and names must match)."""
    if isinstance(actual, (xr.Dataset, xr.DataArray)):
        assert type(actual) is type(desired), (type(actual), type(desired))
        xr.testing.assert_allclose(actual, desired, rtol=rtol, atol=ATOL)  # values, dims, coordinates
        if attrs:
            assert _same_attrs(actual.attrs, desired.attrs)
            for name in (actual.variables if isinstance(actual, xr.Dataset) else actual.coords):
                assert _same_attrs(actual[name].attrs, desired[name].attrs), name
            for name in actual.coords:
                if not _numeric_float(actual[name]):  # labels: exact
                    assert actual[name].values.tolist() == desired[name].values.tolist(), name
        return
    a, d = np.asarray(actual), np.asarray(desired)
    assert a.shape == d.shape, (a.shape, d.shape)
    if _numeric_float(a) or _numeric_float(d):
        np.testing.assert_allclose(a, d, rtol=rtol, atol=ATOL, equal_nan=True)
    else:
        np.testing.assert_array_equal(a, d)
