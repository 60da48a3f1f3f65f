"""Whether a result is small enough for its automatic figure -- decided before matplotlib is imported (importing it
costs a couple of seconds, a tenth of a 10^9-point sweep's budget)."""
from __future__ import annotations

MAX_AUTO_POINTS = 1_000_000    # a run's figure is skipped above this many grid points (plot a selection instead)


def too_large(ds, log) -> bool:
    """True (and says so in the log) when the result has more grid points than a figure shows."""
    var = "breakeven_flash_read_pj_per_bit" if "breakeven_flash_read_pj_per_bit" in ds else "energy_per_token"
    size = int(ds[var].size) if var in ds else 0
    if size > MAX_AUTO_POINTS:
        log.info("figure: skipped (%s grid points; plot a selection with dse.plot)", f"{size:,}")
        return True
    return False
