"""Readable text tables of a result dataset."""
from __future__ import annotations

import pandas as pd
import xarray as xr


def energy_table(ds: xr.Dataset, max_rows: int = 80) -> str:
    """Energy per token (J) and its breakdown by component, step latency and offload share, per grid point."""
    batch = ds["step_energy"] / ds["energy_per_token"]
    parts = (ds["energy"] / batch).to_dataset(dim="component")
    table = xr.merge([
        ds["energy_per_token"].rename("J_per_token"),
        parts,
        (ds["step_latency"] * 1e3).rename("latency_ms"),
        ds["offload_share"],
    ], compat="override")
    table = xr.broadcast(table)[0].load()   # small (the CLI prints at most a few thousand points): numpy
    frame: pd.DataFrame = table.to_dataframe() if table.dims else pd.DataFrame([table.to_pandas()])
    frame = frame[[v for v in table.data_vars]]
    text = frame.head(max_rows).to_string(float_format=lambda x: f"{x:.4g}")
    if len(frame) > max_rows:
        text += f"\n... {len(frame) - max_rows} more rows (all of them are in the dataset)"
    return text
