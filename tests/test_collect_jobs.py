"""dse-collect checks the job list Hydra recorded: missing, failed, truncated or never-run jobs are a one-line
error naming them, unless --allow-missing (NaN there, listed in the missing_jobs attribute)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dse.cli import dse_collect as collect_cli
from dse import DseError
from dse.run import collect
from dse.run.results import open_results

BIN = Path(sys.executable).parent
# every test here reads one Hydra multirun of the dse command (a subprocess, seconds)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def multirun(tmp_path_factory):
    d = tmp_path_factory.mktemp("mr") / "m"
    r = subprocess.run([str(BIN / "dse"), "-m", "workload.hbm_cache_fraction=0.25,0.5", "workload.context_len=512,1024",
                        "grid.batch=[1,8]", "workload.placement=ssd", f"hydra.sweep.dir={d}", "progress=false"],
                       capture_output=True, text=True, timeout=600, cwd=d.parent)
    assert r.returncode == 0, r.stderr
    (d / "merged.nc").unlink()
    return d


@pytest.fixture
def sweep_dir(multirun, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(multirun, d)
    return d


def job_of(d: Path, fraction: float, context: int) -> Path:
    for ov in d.glob("*/.hydra/overrides.yaml"):
        text = ov.read_text()
        if f"hbm_cache_fraction={fraction}" in text and f"context_len={context}" in text:
            return ov.parent.parent
    raise LookupError


def dse_collect(*args):
    """``dse-collect ARGS`` in this process (as the console script runs it): (exit code, stdout, stderr)."""
    import contextlib
    import io
    from types import SimpleNamespace

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            collect_cli.main(["--no-progress", *map(str, args)])
        except SystemExit as e:
            code = e.code
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def test_complete_multirun_merges(sweep_dir):
    ds = open_results(collect.collect(sweep_dir, progress=False))
    assert dict(ds.energy_per_token.sizes) == {"hbm_cache_fraction": 2, "context_len": 2, "batch": 2}
    assert np.all(np.isfinite(ds.energy_per_token.values)) and "missing_jobs" not in ds.attrs


def test_missing_result_is_refused_naming_the_job(sweep_dir):
    job = job_of(sweep_dir, 0.5, 512)
    (job / "result.nc").unlink()
    r = dse_collect(sweep_dir)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert f"{job.name} (" in r.stderr and "--allow-missing" in r.stderr
    assert not (sweep_dir / "merged.nc").exists()


def test_allow_missing_fills_nan_and_records_the_job(sweep_dir):
    job = job_of(sweep_dir, 0.5, 512)
    (job / "result.nc").unlink()
    r = dse_collect(sweep_dir, "--allow-missing")
    assert r.returncode == 0, r.stderr
    ds = open_results(sweep_dir / "merged.nc")
    e = ds.energy_per_token
    assert np.all(np.isnan(e.sel(hbm_cache_fraction=0.5, context_len=512).values))
    assert np.all(np.isfinite(e.sel(hbm_cache_fraction=0.25).values))
    missing = json.loads(ds.attrs["missing_jobs"])
    assert len(missing) == 1 and missing[0]["hbm_cache_fraction"] == "0.5" and missing[0]["context_len"] == "512"


def test_a_missing_row_keeps_its_dimension(sweep_dir):
    for c in (512, 1024):
        shutil.rmtree(job_of(sweep_dir, 0.5, c))
    with pytest.raises(DseError) as err:
        collect.collect(sweep_dir, progress=False)
    assert "2 of 4 jobs" in str(err.value)
    ds = open_results(collect.collect(sweep_dir, progress=False, allow_missing=True))
    assert ds.sizes["hbm_cache_fraction"] == 2
    assert np.all(np.isnan(ds.energy_per_token.sel(hbm_cache_fraction=0.5).values))


def test_an_aborted_multirun_is_not_merged_from_its_first_job(sweep_dir):
    first = job_of(sweep_dir, 0.25, 512)
    for job in [p.parent.parent for p in sweep_dir.glob("*/.hydra/overrides.yaml")]:
        if job != first:
            shutil.rmtree(job)
    with pytest.raises(DseError) as err:
        collect.collect(sweep_dir, progress=False)
    assert "3 of 4 jobs" in str(err.value) and "never ran" in str(err.value)


def test_a_truncated_job_file_is_one_line(sweep_dir):
    f = job_of(sweep_dir, 0.25, 1024) / "result.nc"
    f.write_bytes(f.read_bytes()[:2000])
    r = dse_collect(sweep_dir)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "unreadable result" in r.stderr


def test_collect_never_replaces_a_foreign_output(sweep_dir):
    (sweep_dir / "merged.nc").write_text("mine")
    r = dse_collect(sweep_dir)
    assert r.returncode == 2 and "--overwrite" in r.stderr and (sweep_dir / "merged.nc").read_text() == "mine"
