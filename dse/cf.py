"""CF conventions for dse's datasets: UDUNITS-valid ``units`` and descriptive ``long_name`` on every variable and
coordinate, and the ``Conventions`` global attribute.

dse's own unit names (``sequences``, ``B/param``, ``TFLOP/s``, ``experts``, ``USD``) are readable but not UDUNITS;
:func:`udunits` maps each to a UDUNITS-2 string (counts are dimensionless ``1``, bytes ``byte``, a FLOP rate
``1e12 s-1``) and :func:`long_name` keeps the readable unit in the long name. Currency has no UDUNITS unit: it is
``1`` with ``currency: USD``.
"""
from __future__ import annotations

CONVENTIONS = "CF-1.11"

#: dse unit -> (UDUNITS-2 string, readable unit kept in the long name or None).
UNITS = {
    "J": ("J", None), "s": ("s", None), "W": ("W", None), "1": ("1", None), "bit": ("bit", None),
    "B": ("byte", None), "B/param": ("byte", "bytes per parameter"), "B/value": ("byte", "bytes per value"),
    "pJ/bit": ("pJ bit-1", None), "pJ/FLOP": ("pJ", "per FLOP"), "GB/s": ("1e9 byte s-1", "GB/s"),
    "TFLOP/s": ("1e12 s-1", "TFLOP/s"), "tokens/s": ("s-1", "tokens per second"), "FLOP": ("1", "FLOP"),
    "sequences": ("1", "sequences"), "tokens": ("1", "tokens"), "experts": ("1", "experts"), "GPUs": ("1", "GPUs"),
    "drives": ("1", "drives"), "bool": ("1", None), "USD": ("1", "US dollars"), "values": ("1", "values"),
    "KiB": ("1024 byte", "KiB"), "MiB": ("1048576 byte", "MiB"),
}


#: The unit of a config leaf named by its dotted path (``system.gpu.idle_w``), from its name's ending (the
#: presets' naming convention: docs/architecture.md); first match wins.
SUFFIX_UNITS = (("_pj_per_bit", "pJ/bit"), ("_pj_per_flop", "pJ/FLOP"), ("_pj", "pJ/FLOP"), ("_gbps", "GB/s"),
                ("_tflops", "TFLOP/s"), ("_usd_per_gb", "USD/GB"), ("_usd", "USD"), ("_gb", "GB"),
                ("_bytes", "B"), ("_w", "W"), ("_us", "us"), ("_ms", "ms"), ("_s", "s"), ("_years", "years"))


def path_unit(path: str) -> str:
    """The dse unit of a dotted config path from its leaf's name (``system.gpu.idle_w`` -> W; ``""`` unknown)."""
    leaf = path.rsplit(".", 1)[-1]
    return next((u for suffix, u in SUFFIX_UNITS if leaf.endswith(suffix)), "")


#: Flag variables (0 / 1 where true): CF ``flag_values`` and ``flag_meanings`` instead of units.
FLAGS = {"fits": "does_not_fit fits", "endurance_ok": "wears_out_early lasts_service_life",
         "meets_slo": "misses_targets meets_targets", "breaks_even": "never_breaks_even breaks_even",
         "bracketed": "no_crossing crossing", "power_limited": "below_power_limit at_power_limit"}


def flag_attrs(name: str, dtype) -> dict:
    """CF flag attributes of a 0 / 1 variable (``fits``): flag_values in its own type, and their meanings."""
    import numpy as np

    dtype = np.int8 if np.dtype(dtype) == bool else dtype   # NetCDF has no boolean type
    return {"flag_values": np.array([0, 1], dtype=dtype), "flag_meanings": FLAGS[name]} if name in FLAGS else {}


def udunits(unit: str) -> str | None:
    """The UDUNITS-2 form of a dse unit; None for a label (categorical) coordinate, which gets no units."""
    if not unit:
        return None
    return UNITS[unit][0] if unit in UNITS else unit


def attrs(unit: str, long_name: str) -> dict:
    """CF attributes for a variable or coordinate in dse unit ``unit``."""
    readable = UNITS.get(unit, (None, None))[1]
    if readable and readable.lower() in long_name.lower():
        readable = None    # "sequences decoded per step" already says its unit: no "[sequences]" after it
    out = {"long_name": f"{long_name} [{readable}]" if readable else long_name}
    cf_unit = udunits(unit)
    if cf_unit is not None:
        out["units"] = cf_unit
    if unit == "USD":
        out["currency"] = "USD"
    return out


def variables(table: dict) -> dict:
    """{name: (units, long_name)} in dse units -> the same with UDUNITS units and readable long names."""
    out = {}
    for name, (unit, long_name) in table.items():
        a = attrs(unit, long_name)
        out[name] = (a.get("units", ""), a["long_name"])
    return out


#: Attributes of the label coordinates of stacked variables.
STACK_COORDS = {
    "component": {"long_name": "energy component of a decode step (docs/model.md s.5)"},
    "cost_part": {"long_name": "part of the capacity cost: GPUs less their HBM, HBM bytes held, offload-tier bytes "
                               "held (docs/model.md s.7)"},
}


# ---------------------------------------------------------------------------------------- names
# (xarray's DataArray.rename would do; these keep "rename" for files, which only dse.files does atomically)
def named(da, name: str):
    """The DataArray under another variable name (a shallow copy: the data are shared)."""
    out = da.copy(deep=False)
    out.name = name
    return out


def relabel_dims(obj, mapping: dict):
    """A Dataset or DataArray with dimensions (and their coordinates) under new names."""
    mapping = {k: v for k, v in mapping.items() if k in obj.dims}
    if not hasattr(obj, "data_vars"):   # a DataArray: through a one-variable Dataset
        return named(relabel_dims(obj.to_dataset(name="value"), mapping)["value"], obj.name)
    return obj.rename_dims(mapping).rename_vars({k: v for k, v in mapping.items() if k in obj.variables})
