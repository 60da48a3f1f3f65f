"""Readable text tables of a result dataset."""
from __future__ import annotations

import pandas as pd
import xarray as xr

from dse.cf import named


def _readable_index(frame: pd.DataFrame) -> pd.DataFrame:
    """Float coordinates in the index as people write them (102.4, not 102.40000000000002; 4 significant digits)."""
    def tidy(values):
        return [f"{v:.4g}" if isinstance(v, float) else v for v in values]

    if isinstance(frame.index, pd.MultiIndex):
        frame.index = frame.index.set_levels([tidy(level) if level.dtype.kind == "f" else level
                                              for level in frame.index.levels], verify_integrity=False)
    elif frame.index.dtype.kind == "f":
        frame.index = pd.Index(tidy(frame.index), name=frame.index.name)
    return frame


def energy_table(ds: xr.Dataset, max_rows: int = 80) -> str:
    """Energy per token (J) and its breakdown by component, step latency and offload share, per grid point.

    Rows whose configuration does not fit (``fits`` false: HBM or the offload tier over capacity) are marked
    ``NO`` in the ``fits`` column, with the fills beside, and counted below the table."""
    ds = ds.load()  # a table is small (the CLI prints one only below TABLE_MAX_POINTS)
    batch = ds["step_energy"] / ds["energy_per_token"]
    parts = (ds["energy"] / batch).to_dataset(dim="component")
    columns = [
        named(ds["energy_per_token"], "J_per_token"),
        parts,
        named(ds["step_latency"] * 1e3, "latency_ms"),
        ds["offload_share"],
    ]
    if "fits" in ds:
        columns += [ds["hbm_fill"], ds["offload_fill"], ds["fits"]]
    return _render(columns, max_rows, "(fits = NO: hbm_fill or offload_fill above 1); their energies are not "
                   "achievable as configured")


def _render(columns: list, max_rows: int, unfit_note: str) -> str:
    """The columns as a text table (at most ``max_rows`` rows), ``fits`` shown as yes / NO and the rows that do
    not fit counted below it with ``unfit_note``."""
    table = xr.broadcast(xr.merge(columns, compat="override"))[0].load()   # small (the CLI prints a few thousand points)
    frame: pd.DataFrame = table.to_dataframe() if table.dims else pd.DataFrame([table.to_pandas()])
    frame = frame[[v for v in table.data_vars]]
    n_out = 0
    if "fits" in frame:
        fits = frame["fits"].astype(bool)
        n_out = int((~fits).sum())
        frame["fits"] = fits.map({True: "yes", False: "NO"})
    text = _readable_index(frame.head(max_rows)).to_string(float_format=lambda x: f"{x:.4g}")
    if len(frame) > max_rows:
        text += f"\n... {len(frame) - max_rows} more rows (all of them are in the dataset)"
    if n_out:
        text += f"\n{n_out} of {len(frame)} rows do not fit {unfit_note}"
    return text


#: The request metrics a serving result is read by (dse.model.requests): column name, variable, scale.
REQUEST_COLUMNS = (("J_per_output_token", "energy_per_output_token", 1.0), ("J_per_request", "energy_per_request", 1.0),
                   ("TTFT_ms", "ttft", 1e3), ("TPOT_ms", "tpot", 1e3),
                   ("tokens_per_s_per_gpu", "tokens_per_s_per_gpu", 1.0))


def request_table(ds: xr.Dataset, max_rows: int = 80) -> str:
    """The request metrics per grid point: energy per output token (prefill included) and per request, time to
    first token and time per output token (ms), output tokens per second per GPU, and whether it fits.

    Rows that do not fit are marked ``NO`` in the ``fits`` column and counted below the table."""
    ds = ds.load()
    columns = [named(ds[v] * scale, col) for col, v, scale in REQUEST_COLUMNS if v in ds]
    if "fits" in ds:
        columns.append(ds["fits"])
    return _render(columns, max_rows, "(fits = NO); their metrics are not achievable as configured")
