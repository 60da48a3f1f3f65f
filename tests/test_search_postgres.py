"""Two dse-search workers on one study in a real PostgreSQL server (started here in a temporary directory).

Skipped, with the reason in the test output, only where no PostgreSQL server binary (initdb, pg_ctl) exists.
The storage URL reaches the workers through DSE_SEARCH_STORAGE, never the command line.
"""
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

ROOT = Path(__file__).resolve().parent.parent
INITDB, PG_CTL = shutil.which("initdb"), shutil.which("pg_ctl")
for _d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True) if not INITDB else []:
    INITDB, PG_CTL = str(_d / "initdb"), str(_d / "pg_ctl")
    break

pytestmark = pytest.mark.skipif(not (INITDB and PG_CTL and Path(INITDB).exists()),
                                reason="no PostgreSQL server binary (initdb / pg_ctl) on this machine")


def _as_server_user(cmd):
    """PostgreSQL refuses to run as root: run its binaries as nobody then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "nobody", "--", *cmd]
    return cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    psycopg = pytest.importorskip("psycopg", reason="psycopg 3 (the 'postgres' extra) is not installed")
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="dse-pg-"))    # not under pytest's 0700 directory: the server user needs it
    os.chmod(d, 0o777)
    data = d / "data"
    subprocess.run(_as_server_user([INITDB, "-D", str(data), "-U", "dse", "--auth=trust", "-E", "UTF8"]),
                   check=True, capture_output=True, timeout=120, cwd=d)
    for attempt in range(5):   # a free port can be taken between the probe and the server's bind: try another
        port = _free_port()
        started = subprocess.run(_as_server_user([PG_CTL, "-D", str(data), "-l", str(d / "server.log"), "-w", "-t",
                                                  "60", "-o", f"-p {port} -k {d} -c listen_addresses=127.0.0.1",
                                                  "start"]), capture_output=True, timeout=120, cwd=d)
        if started.returncode == 0:
            break
    else:
        pytest.fail(f"PostgreSQL did not start: {started.stderr.decode(errors='replace')[-300:]}")
    try:
        for _ in range(50):
            try:
                with psycopg.connect(f"host=127.0.0.1 port={port} user=dse dbname=postgres", autocommit=True) as c:
                    c.execute("CREATE DATABASE dse")
                break
            except psycopg.OperationalError:
                time.sleep(0.2)
        yield f"postgresql+psycopg://dse@127.0.0.1:{port}/dse"
    finally:
        subprocess.run(_as_server_user([PG_CTL, "-D", str(data), "-m", "fast", "-w", "stop"]), capture_output=True,
                       timeout=120, cwd=d)
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_share_a_server_study(tmp_path, postgres):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DSE_SEARCH_STORAGE": postgres}
    n = 30
    procs = [subprocess.Popen([sys.executable, "-m", "dse.cli.dse_search", "search=mixtral-small", "search.method=optuna", f"search.n_trials={n}",
                               "search.batch_size=10",
                               f"search.seed={seed}", "search.progress=false", f"hydra.run.dir={tmp_path}/run{seed}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for seed in (1, 2)]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    study = optuna.load_study(study_name="mixtral-small", storage=postgres)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(study.trials) == len(complete) == 2 * n          # totals; no failed or half-stored trial
    assert len({tuple(sorted(t.params.items())) for t in complete}) == 2 * n   # no duplicate design point
    assert all(len(t.constraints) == 3 + 1 and all(map(lambda v: v == v, t.values)) for t in complete)  # + fits
    # the URL came from the environment: it is in no file Hydra wrote
    for f in tmp_path.rglob(".hydra/*.yaml"):
        assert postgres not in f.read_text() and "psycopg:" not in f.read_text()
