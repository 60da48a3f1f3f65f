"""``dse-breakeven``: the break-even Flash read energy of a study against a reference, as a table and a NetCDF file.

    dse-breakeven study=paper-fig6-maverick reference.study=paper-fig6-llama3
    dse-breakeven study=paper-fig45-mixtral reference.placement=ddr grid.batch=[1,16,256]
    dse-breakeven study=paper-fig6-maverick reference.study=paper-fig6-llama3 +grid.top_k=[1,2,4]

The target is the composed config (dse/conf/breakeven.yaml extends dse/conf/config.yaml); its grid is shared with the
reference (less a Flash sweep, which the closed form replaces, and the placement). The dataset is written
atomically to Hydra's run directory (``output``, default breakeven.nc).
"""
from __future__ import annotations

import copy
import logging
import os
import sys
from pathlib import Path

import hydra
import xarray as xr
from omegaconf import DictConfig, OmegaConf

from dse.analyze import figure_switch as figure_size
from dse.config import presets
from dse.analyze.breakeven import FLASH, breakeven
from dse.config.params import lookup
from dse.errors import DseError

ROOT_SECTIONS = ("model", "system", "workload", "accounting", "grid")


def target_and_reference(cfg: dict, study: str | None = None) -> tuple[dict, dict]:
    """(target, reference) dicts for :func:`dse.analyze.breakeven.breakeven` from the composed breakeven config."""
    root = {k: copy.deepcopy(cfg[k]) for k in ROOT_SECTIONS}
    r = cfg.get("reference") or {}
    unknown = set(r) - {"study", "placement", "params"}
    if unknown:
        raise DseError(f"reference.{sorted(unknown)[0]}: unknown key; allowed reference.study, .placement, .params")
    # shared: the target's grid less the Flash sweep and the placement; another model keeps its own architecture
    shared = {k: v for k, v in (root["grid"] or {}).items() if k not in (FLASH, "placement")
              and not (r.get("study") and lookup(k)[0].startswith("model."))}
    if r.get("study"):
        presets.check_preset("study", r["study"])
        ref_cfg = presets.compose(study=r["study"])
    else:
        ref_cfg = copy.deepcopy(root)
    reference = {"study": r.get("study") or study, "cfg": ref_cfg, **shared}
    if r.get("placement"):
        reference["placement"] = r["placement"]
    reference.update(r.get("params") or {})
    return {"study": study, "cfg": root}, reference


def _number(v) -> str:
    """102.4, not 102.40000000000002 (4 significant digits); a JSON list of numbers likewise; anything else as is."""
    import json

    if isinstance(v, str) and v.startswith("["):
        try:
            return ", ".join(_number(x) for x in json.loads(v))
        except ValueError:
            return v
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def table(ds: xr.Dataset) -> str:
    """A readable table of the break-even result, one row per grid point."""
    cols = ["breakeven_flash_read_pj_per_bit", "breaks_even", "improvement_needed", "reason"]
    dims = [d for d in ds[cols[0]].dims]
    df = xr.Dataset({c: ds[c] for c in cols}).to_dataframe()[cols] if dims else None
    today = ds.attrs.get("today_flash_read_pj_per_bit")
    head = (f"break-even Flash read energy: target {ds.attrs.get('target_model')} ({ds.attrs.get('target_settings')}) "
            f"vs reference {ds.attrs.get('reference_model')} ({ds.attrs.get('reference_settings')}); "
            f"today {_number(today)} pJ/bit")
    if df is None:
        body = "\n".join(f"{c}: {_number(ds[c].item())}" for c in cols)
    else:
        df.columns = ["e* [pJ/bit]", "breaks even", "improvement x", "reason (never breaks even)"]
        body = df.to_string(float_format=lambda v: f"{v:.4g}")
    return head + "\n" + body


def write(ds: xr.Dataset, path: Path) -> Path:
    """The break-even dataset as NetCDF, written atomically; a file there that dse did not write is left alone
    (one-line error)."""
    from dse.files import MARK_ATTR, check_owned, write_netcdf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_owned(path, "output", flag="another output= name")
    return write_netcdf(ds.assign_attrs({MARK_ATTR: "written by dse"}), path, key="output",
                        flag="another output= name")


def run(cfg: DictConfig | dict, study: str | None = None) -> xr.Dataset:
    c = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    target, reference = target_and_reference(c, study)
    return breakeven(target, reference, today_pj_per_bit=c.get("today_pj_per_bit"))


@hydra.main(config_path=str(presets.CONF_DIR), config_name="breakeven", version_base=None)
def _app(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from dse.analyze.figure_switch import figures_wanted
    from dse.cli.common import errors

    hc = HydraConfig.get()
    with errors("dse-breakeven"):
        out_name = str(cfg.get("output") or "breakeven.nc")
        if os.sep in out_name or not out_name.endswith(".nc"):
            raise DseError(f"output={out_name!r}: give a file name ending in .nc (written in Hydra's run dir)")
        from dse.files import check_owned, confined

        confined(out_name, "output")
        target = Path(hc.runtime.output_dir) / out_name
        check_owned(target, "output", flag="another output= name")      # every file it writes, before any work
        figure_size.check_figures_free(target, cfg.get("plot", True), flag="plot=false or another output= name")
        ds = run(cfg, hc.runtime.choices.get("study"))
        print(table(ds))
        path = write(ds, target)
    print(f"wrote {path}")
    if figures_wanted(cfg.get("plot", True)) and not figure_size.too_large(ds, logging.getLogger("dse")):
        from dse.analyze.plot import write_next_to

        write_next_to(ds, path)


def main() -> None:
    from dse.cli.common import check_argv, errors, grid_override, prepare, shell_completion, version

    with errors("dse-breakeven"):
        version("dse-breakeven", sys.argv[1:])
        sys.argv = [sys.argv[0], *prepare(sys.argv[1:])]
        if not shell_completion(sys.argv):
            check_argv(sys.argv[1:], "breakeven")
    sys.argv = [sys.argv[0], *map(grid_override, sys.argv[1:])]  # grid.X=... may add a grid entry
    from dse.cli.common import run_app

    run_app("dse-breakeven", _app)


if __name__ == "__main__":
    main()
