"""dse-collect: merge a Hydra multirun's results into one dataset whose dimensions are the swept choices
(dse.run.collect)."""
from __future__ import annotations

import argparse
from pathlib import Path

from dse.cli.common import errors
from dse.errors import DseError
from dse.run.collect import collect

DESCRIPTION = "Merge a Hydra multirun's results into one dataset whose dimensions are the swept choices."


def main(argv=None) -> None:
    """``dse-collect DIR``: merge a multirun directory's results into DIR/merged.nc (or .zarr)."""
    ap = argparse.ArgumentParser(prog="dse-collect", description=DESCRIPTION)
    ap.add_argument("dir", help="a Hydra multirun directory (hydra.sweep.dir)")
    ap.add_argument("-o", "--output", help="where to write (a .nc or .zarr path; default DIR/merged.nc)")
    ap.add_argument("--format", default="auto", choices=("auto", "netcdf", "zarr"))
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--allow-missing", action="store_true",
                    help="merge even when jobs are missing, failed or unreadable: their values are NaN and they are "
                         "listed in the merged dataset's missing_jobs attribute")
    ap.add_argument("--overwrite", action="store_true", help="replace a file at the output path that dse did not write")
    a = ap.parse_args(argv)
    with errors("dse-collect"):
        if not Path(a.dir).is_dir():
            raise DseError(f"{a.dir}: not a directory")
        print(collect(a.dir, a.output, a.format, progress=not a.no_progress, allow_missing=a.allow_missing,
                      overwrite=a.overwrite))


if __name__ == "__main__":
    main()
