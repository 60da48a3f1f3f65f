"""Regression tests of issue 26 (reliability, round two): each reproduction gives the right answer or a one-line
error, writes nothing foreign, leaves storage readable and prints no secret."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dse
from dse import DseError

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg
    return msg


def cli(*args, cwd, tool="dse", **kw):
    env = {**os.environ, **kw.pop("env", {})}
    return subprocess.run([str(BIN / tool), *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=env, **kw)


# ------------------------------------------------------------------------------------------ 2. routing scale
@pytest.mark.parametrize("scale", [1e308, 1e-320, 5e-324 * 3, 1e300, 1e-300])
def test_routing_frequencies_any_positive_scale_is_the_same_routing(scale):
    # uniform routing of top-2 of 8: every expert is picked with probability 2/8 whatever the scale
    from dse.model.routing import routing_probabilities

    p = routing_probabilities([scale] * 8, 2, 8)
    np.testing.assert_allclose(p, np.full(8, 0.25), rtol=1e-12)
    # a skewed vector: shares 4:2:1:1 scaled to sum 2 -> one expert capped at 1, the rest share 1 as 2:1:1
    p = routing_probabilities(np.array([4, 2, 1, 1, 0, 0, 0, 0]) * min(scale, 1e307), 2, 8)
    np.testing.assert_allclose(p, [1, 0.5, 0.25, 0.25, 0, 0, 0, 0], rtol=1e-12)


def test_routing_frequencies_extreme_scale_same_energy():
    kw = dict(model="mixtral-8x7b", system="8xh200-c2c", placement="ssd")
    a = float(dse.evaluate(routing_frequencies=[1] * 8, **kw).energy_per_token)
    for scale in (1e308, 1e-320):
        b = float(dse.evaluate(routing_frequencies=[scale] * 8, **kw).energy_per_token)
        assert b == pytest.approx(a, rel=1e-9)


# ------------------------------------------------------------------------------------------ 3. collect
@pytest.mark.slow
def test_collect_refuses_a_job_result_of_another_configuration(tmp_path):
    common = ["grid.batch=[1,8]", "workload.placement=ssd", "progress=false", "plot=false"]
    r = cli("-m", *common, "workload.hbm_cache_fraction=0.25,0.5", "hydra.sweep.dir=m1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert cli(*common, "workload.hbm_cache_fraction=0.5", "model=deepseek-r1", "system=8xh200-c2c",
               "hydra.run.dir=m2", cwd=tmp_path).returncode == 0
    r = cli("m1", "-o", "m1/again.nc", cwd=tmp_path, tool="dse-collect")
    assert r.returncode == 0, r.stderr                       # the multirun as written merges
    (tmp_path / "m1" / "1" / "result.nc").write_bytes((tmp_path / "m2" / "result.nc").read_bytes())
    r = cli("m1", "-o", "m1/foreign.nc", cwd=tmp_path, tool="dse-collect")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "model.name='deepseek-r1'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m1" / "foreign.nc").exists()


# ------------------------------------------------------------------------------------------ 4. foreign files
def test_the_ownership_rule_replaces_only_what_dse_wrote(tmp_path):
    from dse import files

    mine = tmp_path / "x.png"
    mine.write_text("MINE")
    with pytest.raises(DseError) as err:
        files.write_text(mine, "dse's", "plot")
    assert "x.png" in one_line(err) and mine.read_text() == "MINE"
    ours = tmp_path / "y.csv"
    files.write_text(ours, "one")
    files.write_text(ours, "two")                      # dse's own file, unchanged since: replaced
    assert ours.read_text() == "two"
    ours.write_text("edited by hand")                  # changed by the user: theirs now
    with pytest.raises(DseError):
        files.write_text(ours, "three")
    assert ours.read_text() == "edited by hand"
    files.write_text(ours, "forced", overwrite=True)
    assert ours.read_text() == "forced"
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_figures_refuse_a_foreign_file_before_writing_any(tmp_path):
    import matplotlib.pyplot as plt

    from dse.analyze.plot import save

    (tmp_path / "f.svg").write_text("MINE")
    fig = plt.figure()
    try:
        with pytest.raises(DseError):
            save(fig, tmp_path, "f")
    finally:
        plt.close(fig)
    assert not (tmp_path / "f.png").exists() and (tmp_path / "f.svg").read_text() == "MINE"


@pytest.mark.slow
def test_dse_refuses_foreign_figures_and_csv_before_any_work(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "x.png").write_text("MINE")
    (d / "x.svg").write_text("MINE")
    r = cli(f"output.path={d}/x.nc", "progress=false", "hydra.run.dir=r", cwd=tmp_path, env={"DSE_PLOT": "1"})
    assert r.returncode == 2 and "x.png" in r.stderr and "Traceback" not in r.stderr
    assert not (d / "x.nc").exists() and (d / "x.png").read_text() == "MINE" and (d / "x.svg").read_text() == "MINE"
    run = tmp_path / "c"
    run.mkdir()
    (run / "result.csv").write_text("MINE")
    r = cli("output.format=csv", "progress=false", "plot=false", f"hydra.run.dir={run}", cwd=tmp_path)
    assert r.returncode == 2 and "result.csv" in r.stderr
    assert not (run / "result.nc").exists() and (run / "result.csv").read_text() == "MINE"


@pytest.mark.slow
def test_dse_search_and_breakeven_refuse_foreign_outputs(tmp_path):
    s = tmp_path / "s"
    s.mkdir()
    names = ["trials.nc", "pareto.nc", "trials.csv", "pareto.png", "pareto.svg"]
    for n in names:
        (s / n).write_text("MINE")
    r = cli("search=mixtral-small", "search.progress=false", f"hydra.run.dir={s}", cwd=tmp_path, tool="dse-search",
            env={"DSE_PLOT": "1"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert all((s / n).read_text() == "MINE" for n in names) and not (s / "study.db").exists()
    b = tmp_path / "b"
    b.mkdir()
    (b / "breakeven.png").write_text("MINE")
    r = cli(f"hydra.run.dir={b}", cwd=tmp_path, tool="dse-breakeven", env={"DSE_PLOT": "1"})
    assert r.returncode == 2 and "breakeven.png" in r.stderr
    assert (b / "breakeven.png").read_text() == "MINE" and not (b / "breakeven.nc").exists()


@pytest.mark.parametrize("name", ["../..", "..", ".", "a/b", "/tmp/x", ""])
def test_search_name_is_confined_to_the_output_directory(tmp_path, name):
    from dse.search.space import check_run_settings

    with pytest.raises(DseError) as err:
        check_run_settings({"name": name, "n_trials": 1, "batch_size": 2})
    assert "search.name" in one_line(err)


@pytest.mark.slow
def test_search_name_dotdot_writes_nothing(tmp_path):
    r = cli("search=mixtral-small", "search.name=../..", cwd=tmp_path, tool="dse-search")
    assert r.returncode == 2 and "search.name" in r.stderr and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ 5. settings first
def test_plot_and_csv_settings_are_checked_with_the_others():
    from dse.run.settings import settings

    with pytest.raises(DseError) as err:
        settings({"plot": "maybe"})
    assert "plot='maybe'" in one_line(err)


@pytest.mark.slow
def test_plot_maybe_is_refused_before_any_write(tmp_path):
    r = cli("plot=maybe", "hydra.run.dir=p", "progress=false", cwd=tmp_path)
    assert r.returncode == 2 and "plot" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "p" / "result.nc").exists()


@pytest.mark.slow
def test_multirun_with_csv_output(tmp_path):
    r = cli("-m", "grid.batch=[1,8]", "output.format=csv", "workload.hbm_cache_fraction=0.25,0.5",
            "hydra.sweep.dir=mc", "progress=false", "plot=false", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for job in ("0", "1"):
        table = (tmp_path / "mc" / job / "result.csv").read_text().splitlines()
        assert table[0].startswith("batch,") and len(table) > 2


# ------------------------------------------------------------------------------------------ 7. secrets
@pytest.mark.parametrize("url, secret", [
    ("postgresql+psycopg://alice@127.0.0.1:1/dse?password=S3cretPassw0rd", "S3cretPassw0rd"),
    ("postgresql+psycopg://alice@127.0.0.1:1/dse?sslmode=off&PASSWORD=S3cretPassw0rd", "S3cretPassw0rd"),
    ("postgresql+psycopg://bob:Qp@ss:w0rd/Z@127.0.0.1:1/dse4", "Qp@ss:w0rd/Z"),
    ("postgresql+psycopg://bob:Qp%40ss@127.0.0.1:1/dse4", "Qp@ss"),
])
def test_every_secret_of_a_storage_url_is_masked(tmp_path, url, secret):
    from dse.search.study import mask, open_storage

    with pytest.raises(DseError) as err:
        open_storage(url, tmp_path)
    msg = one_line(err)
    for part in {secret, secret.split("@")[-1], secret.split(":")[-1], secret.replace("@", "%40")}:
        assert part not in msg and part not in mask(f"said {url} twice {url}", url)


@pytest.mark.slow
def test_storage_secrets_never_reach_hydra_files_or_output(tmp_path):
    url = "postgresql+psycopg://alice:Tail%40Pw@127.0.0.1:1/dse?password=S3cretPassw0rd"
    r = cli("search=mixtral-small", "search.method=optuna", f'search.storage="{url}"', "hydra.run.dir=q",
            cwd=tmp_path, tool="dse-search")
    assert r.returncode == 2
    cfg = cli("search=mixtral-small", "search.method=optuna", f'search.storage="{url}"', "--cfg", "job",
              cwd=tmp_path, tool="dse-search")
    for text in [r.stdout, r.stderr, cfg.stdout, cfg.stderr,
                 *(p.read_text() for p in (tmp_path / "q").rglob("*") if p.is_file())]:
        assert "S3cretPassw0rd" not in text and "Tail" not in text
    assert "password=***" in cfg.stdout


# ------------------------------------------------------------------------------------------ 8. warm tier dimension
def test_warm_tier_as_a_dimension_equals_each_value_alone():
    kw = dict(model="mixtral-8x7b", system="8xh200-c2c", placement="ssd", warm_fraction=0.3)
    ds = dse.evaluate(warm_tier=["ddr", "cxl"], **kw)
    assert list(ds.warm_tier.values) == ["ddr", "cxl"]
    for t in ("ddr", "cxl"):
        alone = dse.evaluate(warm_tier=t, **kw)
        for v in ("energy_per_token", "step_latency", "capacity_cost_usd"):
            assert float(ds[v].sel(warm_tier=t)) == pytest.approx(float(alone[v]), rel=1e-12)
    # DDR reads cost less energy than CXL memory: the DDR warm tier is the cheaper one per token
    assert float(ds.energy_per_token.sel(warm_tier="ddr")) < float(ds.energy_per_token.sel(warm_tier="cxl"))
    with pytest.raises(DseError) as err:
        dse.evaluate(warm_tier=["ddr", "ssd"], **kw)           # the cold tier cannot also be the warm one
    assert "warm_tier='ssd'" in one_line(err)


@pytest.mark.slow
def test_warm_tier_grid_and_search_categorical(tmp_path):
    r = cli("system=8xh200-c2c", "workload.placement=ssd", "grid.warm_tier=[ddr,cxl]", "workload.warm_fraction=0.3",
            "hydra.run.dir=w", "progress=false", "plot=false", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    from dse.run.results import open_results

    with open_results(tmp_path / "w" / "result.nc") as ds:
        assert list(ds.warm_tier.values) == ["ddr", "cxl"]
    r = cli("search=mixtral-small", "search.progress=false", "search.method=optuna", "search.n_trials=20",
            "system=8xh200-c2c", "search.space.placement.choices=[ssd]", "search.space.hbm_cache_fraction.high=0.5",
            "+search.space.warm_tier={type:categorical,choices:[ddr,cxl]}", "+search.fixed.warm_fraction=0.3",
            "hydra.run.dir=s", "plot=false", cwd=tmp_path, tool="dse-search")
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------------------------------ 6. journal, full disk
def _journal(path, records, tail=b""):
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records) + tail)


def test_a_torn_last_journal_record_is_moved_aside_before_anything_is_appended(tmp_path):
    from dse.search.study import check_journal

    j = tmp_path / "j.log"
    records = [{"op_code": 0, "worker_id": "a", "study_name": "s"}, {"op_code": 4, "worker_id": "a", "trial_id": 0}]
    torn = b'{"op_code": 4, "worker_id": "x", "trial_id": 3'
    _journal(j, records, torn)
    check_journal(j, "search.storage")
    assert [json.loads(line) for line in j.read_text().splitlines()] == records     # every whole record kept
    assert (tmp_path / "j.log.torn").read_bytes() == torn + b"\n"                    # the torn one kept aside
    check_journal(j, "search.storage")                                               # whole now: nothing to do
    assert [json.loads(line) for line in j.read_text().splitlines()] == records


def test_a_whole_last_record_without_its_newline_is_kept(tmp_path):
    from dse.search.study import check_journal

    j = tmp_path / "j.log"
    last = {"op_code": 4, "worker_id": "b", "trial_id": 1}
    _journal(j, [{"op_code": 0}], json.dumps(last).encode())
    check_journal(j, "search.storage")
    assert [json.loads(line) for line in j.read_text().splitlines()] == [{"op_code": 0}, last]


def test_a_damaged_record_inside_the_journal_is_refused_and_nothing_appended(tmp_path):
    from dse.search.study import open_storage

    j = tmp_path / "j.log"
    j.write_bytes(b'{"op_code": 0}\n{"op_code": 4, "wor\n{"op_code": 5}\n')
    before = j.read_bytes()
    with pytest.raises(DseError) as err:
        open_storage(f"journal:{j}", tmp_path)
    assert "record 2" in one_line(err) and j.read_bytes() == before


@pytest.mark.slow
def test_a_torn_journal_does_not_poison_later_searches(tmp_path):
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    j = tmp_path / "j.log"
    args = ["search=mixtral-small", "search.method=optuna", "search.progress=false", "search.n_trials=20",
            f"search.storage=journal:{j}", "plot=false"]
    assert cli(*args, "hydra.run.dir=a", cwd=tmp_path, tool="dse-search").returncode == 0
    with open(j, "ab") as f:
        f.write(b'{"op_code": 4, "worker_id": "x", "trial_id": 3')
    for run in ("b", "c"):
        r = cli(*args, f"hydra.run.dir={run}", cwd=tmp_path, tool="dse-search")
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    storage = JournalStorage(JournalFileBackend(str(j)))
    assert len(optuna.load_study(study_name="mixtral-small", storage=storage).trials) == 60


@pytest.fixture
def small_disk(tmp_path):
    """A 400 KiB tmpfs (CI runs as root); skipped where mounting is not permitted."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill_check(mnt):
    assert not [p for p in mnt.iterdir() if p.name.endswith(".tmp")], list(mnt.iterdir())


FULL_DISK_NETCDF = """
import sys, numpy as np, xarray as xr
from dse import files, DseError
files.MEMORY_IMAGE_BYTES = int(sys.argv[2])
ds = xr.Dataset({"a": (("x", "y"), np.random.default_rng(0).random((300, 400)))})
try:
    files.write_netcdf(ds, sys.argv[1] + "/a.nc")
except DseError as e:
    print(e)
    sys.exit(2)
"""


@pytest.mark.parametrize("image_bytes", [2**30, 0], ids=["in-memory", "reserved"])
def test_a_netcdf_write_on_a_full_disk_is_one_line_no_signal_no_temp(small_disk, image_bytes):
    # 300 x 400 float64 = 960 kB, more than the 400 KiB disk
    r = subprocess.run([sys.executable, "-c", FULL_DISK_NETCDF, str(small_disk), str(image_bytes)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])       # not 139 (SIGSEGV)
    assert "no space left" in r.stdout and len(r.stdout.strip().splitlines()) == 1
    assert list(small_disk.iterdir()) == []


@pytest.mark.slow
def test_a_sweep_on_a_full_disk_is_one_line(small_disk, tmp_path):
    r = cli(f"output.path={small_disk}/r.nc", "grid.batch=[1,2,4,8,16,32,64,128]",
            "grid.context_len={start:0,stop:4000,num:200}", "progress=false", "plot=false", "hydra.run.dir=run",
            cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "no space left" in r.stderr.splitlines()[-1]
    assert list(small_disk.iterdir()) == []


@pytest.mark.slow
def test_a_search_on_a_full_disk_is_one_line_and_leaves_the_study_readable(small_disk, tmp_path):
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    j = small_disk / "j.log"
    args = ["search=mixtral-small", "search.method=optuna", "search.progress=false", "search.batch_size=50",
            f"search.storage=journal:{j}", "plot=false"]
    r = cli(*args, "search.n_trials=2000", "hydra.run.dir=a", cwd=tmp_path, tool="dse-search")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "no space left" in r.stderr
    n = len(optuna.load_study(study_name="mixtral-small", storage=JournalStorage(JournalFileBackend(str(j)))).trials)
    assert n > 0
    (small_disk / "j.log.claims").unlink()            # room again
    r = cli(*args, "search.n_trials=20", "hydra.run.dir=b", cwd=tmp_path, tool="dse-search")
    assert "Traceback" not in r.stderr
    storage = JournalStorage(JournalFileBackend(str(j)))
    assert len(optuna.load_study(study_name="mixtral-small", storage=storage).trials) >= n


# ------------------------------------------------------------------------------------------ 10. HF import
QWEN = ROOT / "tests" / "data" / "hf" / "qwen3-235b-a22b.json"


@pytest.mark.parametrize("digits", [401, 5001])
def test_hf_integers_of_hundreds_of_digits_are_one_line(tmp_path, digits):
    text = QWEN.read_text()
    cfg = json.loads(text)
    p = tmp_path / "config.json"
    p.write_text(text.replace(f'"hidden_size": {cfg["hidden_size"]}', '"hidden_size": ' + "9" * digits))
    assert ("9" * digits) in p.read_text()
    with pytest.raises(DseError) as err:
        dse.from_hf_config(p)
    assert "hidden_size" in one_line(err)


REFUSED = """
import sys, dse
try:
    {call}
except dse.DseError as e:
    print("refused:", e)
"""


def refused_quickly(call: str, path, timeout: float = 30.0) -> str:
    """Run ``call`` (``p`` is ``path``) in a fresh interpreter: its one-line refusal, or a failure if it blocks."""
    code = REFUSED.format(call=f"p = {str(path)!r}; {call}")
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{call} on {path} blocked for over {timeout:g} s")
    assert r.stdout.startswith("refused:") and len(r.stdout.strip().splitlines()) == 1, (r.stdout, r.stderr[-500:])
    return r.stdout


def test_hf_special_files_and_non_paths_are_refused_without_reading(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for bad in (fifo, "/dev/zero"):                      # never blocks on the FIFO, never reads /dev/zero
        refused_quickly("dse.from_hf_config(p)", bad)
    with pytest.raises(DseError) as err:
        dse.from_hf_config(tmp_path)
    one_line(err)
    for bad in (3, None, b"config.json", ["a"]):
        with pytest.raises(DseError) as err:
            dse.from_hf_config(bad)
        assert "path" in one_line(err)
    big = tmp_path / "big.json"
    big.write_text(" " * (5 * 2**20) + "{}")
    with pytest.raises(DseError) as err:
        dse.from_hf_config(big)
    assert "bytes" in one_line(err)


# ------------------------------------------------------------------------------------------ 11. dse.traces
UNIFORM = [0.25] * 8          # top-2 of 8, uniform: pick probabilities 2/8


@pytest.mark.parametrize("call, words", [
    (lambda tr: tr.generate(UNIFORM, 1, -1), "steps=-1"),
    (lambda tr: tr.generate([float("nan")] * 8, 1, 10), "p[0]=nan"),
    (lambda tr: tr.generate([-0.25] + UNIFORM[1:], 1, 10), "p[0]=-0.25"),
    (lambda tr: tr.generate([0.3] * 8, 1, 10), "sums to 2.4"),
    (lambda tr: tr.generate(UNIFORM, 1, 10, reuse=1.5), "reuse=1.5"),
    (lambda tr: tr.generate(UNIFORM, 10**6, 10**6), "steps=1000000 x batch=1000000"),
    (lambda tr: tr.simulate(UNIFORM, 2, 0.5, -1), "slots=-1"),
    (lambda tr: tr.simulate(UNIFORM, 2, 1.5, 1), "reuse=1.5"),
    (lambda tr: tr.simulate(UNIFORM, 2, 0.5, 1, hbm_count=9), "hbm_count=9"),
    (lambda tr: tr.simulate(UNIFORM, 2, 0.5, 1, hbm_count=4, warm_count=5), "warm_count=5"),
    (lambda tr: tr.simulate([1] * 8, 2, 1, steps=10**12), "steps=1000000000000"),
    (lambda tr: tr.tier_map(99999999999, 0, 0), "n_experts=99999999999"),
    (lambda tr: tr.replay(np.ones((3, 4), bool), [0, 1, 2, 3], 1), "tiers"),
    (lambda tr: tr.write("never.trace", {0: np.array([[[1, 1]]])}, 8), "same expert twice"),
])
def test_traces_refuse_bad_arguments_in_one_line(tmp_path, monkeypatch, call, words):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DseError) as err:
        call(dse.traces)
    assert words in one_line(err)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("body, words", [
    ("# n_experts=8 top_k=2\n0 0 0 3 3\n", "same expert twice"),
    ("# n_experts=99999999999 top_k=2\n0 0 0 1 2\n", "n_experts=99999999999"),
    ("# n_experts=8 top_k=9\n", "top_k=9"),
    ("# n_experts=8 top_k=2\n0 0 0 1 9\n", "out of range"),
])
def test_trace_files_are_checked(tmp_path, body, words):
    p = tmp_path / "t.trace"
    p.write_text(body)
    with pytest.raises(DseError) as err:
        dse.traces.read(p)
    assert words in one_line(err)
    for bad in (tmp_path / "missing.trace", tmp_path):
        with pytest.raises(DseError):
            dse.traces.read(bad)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "regular file" in refused_quickly("dse.traces.read(p)", fifo)


def test_a_valid_trace_round_trips_with_frequencies_summing_to_top_k(tmp_path):
    tr = dse.traces
    sets = tr.generate(UNIFORM, 3, 50, 0.5, seed=1)
    assert sets.shape == (50, 3, 2) and (sets[..., 0] != sets[..., 1]).all()
    tr.write(tmp_path / "ok.trace", {0: sets}, 8)
    f = tr.read(tmp_path / "ok.trace").frequencies()
    assert f.sum() == pytest.approx(2.0, rel=1e-12) and f.max() <= 1.0


# ------------------------------------------------------------------------------------------ 12. silently ignored
def test_a_parameter_given_twice_is_refused():
    with pytest.raises(DseError) as err:
        dse.evaluate(batch=8, **{"workload.batch": 16})
    assert "workload.batch" in one_line(err) and "batch" in str(err.value)


def test_a_warm_tier_with_every_expert_in_hbm_is_refused():
    with pytest.raises(DseError) as err:
        dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", placement="hbm", warm_tier="ddr", warm_fraction=0.3)
    assert "placement=hbm" in one_line(err)
    # a placement dimension that mixes hbm with tiers keeps its warm tier where the experts are offloaded
    ds = dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", placement=["hbm", "ssd"], warm_tier="ddr",
                      warm_fraction=0.3)
    assert float(ds.energy_per_token.sel(placement="hbm")) < float(ds.energy_per_token.sel(placement="ssd"))


def _search(**over):
    from dse.search import compose

    cfg = compose("mixtral-small")
    cfg["search"].update(progress=False, **over)
    cfg["plot"] = False
    return cfg


def test_search_settings_are_checked_whatever_the_method(tmp_path):
    from dse.search.run import run

    with pytest.raises(DseError) as err:         # 900 points, over the limit: exhaustive refuses
        run(_search(method="exhaustive", max_enumerate=100), tmp_path)
    assert "search.max_enumerate=100" in one_line(err)
    for bad in ("nonsense", "foo://x", f"journal:{tmp_path}/missing/j.log"):
        with pytest.raises(DseError) as err:     # auto would enumerate: the storage is still checked
            run(_search(method="auto", storage=bad), tmp_path)
        assert "search.storage" in one_line(err)
    with pytest.raises(DseError) as err:
        run(_search(max_enumerate="many"), tmp_path)
    assert "search.max_enumerate" in one_line(err)
    with pytest.raises(DseError) as err:
        run(_search(constraints={"hbm_fill": {"max": float("nan")}}), tmp_path)
    assert "search.constraints.hbm_fill.max=nan" in one_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_collect_refuses_a_format_that_contradicts_the_name(tmp_path):
    from dse.run.collect import collect

    with pytest.raises(DseError) as err:
        collect(tmp_path, output=tmp_path / "x.zarr", fmt="netcdf")
    assert "format=netcdf" in one_line(err)
    assert not (tmp_path / "x.zarr").exists()


def test_fits_reads_back_as_a_boolean(tmp_path):
    from dse.config import presets
    from dse.run import sweep
    from dse.run.results import open_results

    for fmt in ("netcdf", "zarr"):
        cfg = presets.compose()
        cfg.update(grid={"batch": [1, 8], "placement": ["hbm", "ssd"]}, progress=False)
        cfg["output"].update(format=fmt)
        out = sweep.run(cfg, tmp_path / fmt if (tmp_path / fmt).mkdir() is None else None)
        direct = dse.evaluate(model="mixtral-8x7b", system="paper-4xh100", batch=[1, 8], placement=["hbm", "ssd"])
        with open_results(out) as ds:
            assert ds.fits.dtype == bool
            np.testing.assert_array_equal((~ds.fits).values, ~direct.fits.transpose(*ds.fits.dims).values)


# ------------------------------------------------------------------------------------------ 9. bounded work
def _synthetic(L):
    """Traffic-like increments: affine in the context, tile ceilings of 16 and 512, and a change of tiling at
    L = 2e6 (a ceiling of 384 and a new slope), as each field."""
    L = np.asarray(L, float)
    v = 3.0 * L + 7.0 * np.ceil(L / 16) + 11.0 * np.ceil(L / 512) + np.where(L > 2e6, 2.0 * L + 5 * np.ceil(L / 384),
                                                                               0.0)
    from dse.model.requests import _FIELDS

    return {f: v * (i + 1) for i, f in enumerate(_FIELDS)}


@pytest.mark.parametrize("l0, dl", [(1000.0, 1.0), (128.5, 256.0)])
def test_long_runs_are_summed_by_periods_exactly(l0, dl):
    from dse.model import requests as rq

    n = np.array([[3_000_000.0], [1_234_567.0], [4097.0], [1.0]])         # a grid point per run length
    base = _synthetic(l0)
    got = rq._summed_increments(_synthetic, base, l0, dl, n, int(n.max()), 2)
    for i, steps in enumerate(n[:, 0]):
        j = np.arange(1, int(steps))                                        # brute force, one step at a time
        want = (_synthetic(l0 + dl * j)[rq._FIELDS[0]] - base[rq._FIELDS[0]]).sum()
        assert float(np.asarray(got[rq._FIELDS[0]])[i, 0]) == pytest.approx(want, rel=1e-12)


BOUNDED = """
import json, sys, time, numpy as np, dse
model = dse.from_hf_config(sys.argv[1])
ds = dse.evaluate(model=model, system="8xh200-c2c", placement="ssd", batching="lockstep", prompt_len=10**9,
                  output_len=[10**6, 10**9])
print(json.dumps({"e": (ds.decode_energy / ds.output_len).values.ravel().tolist(),
                  "tpot": ds.tpot.values.ravel().tolist()}))
"""


def test_requests_cost_is_independent_of_output_len(tmp_path):
    from dse.model import requests as rq

    cfg = json.loads(QWEN.read_text())
    cfg.pop("max_position_embeddings")                                      # no max_context: any length
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    try:                                                                    # a run of 10^9 steps, in seconds
        r = subprocess.run([sys.executable, "-c", BOUNDED, str(p)], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("a request of 10^9 output tokens took over 60 s (work grows with output_len)")
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    # a longer output attends over more context at every step: more KV read per token, more decode energy and a
    # longer mean step per token
    assert np.all(np.isfinite(out["e"])) and out["e"][1] > out["e"][0] and out["tpot"][1] > out["tpot"][0]
    model = dse.from_hf_config(p)
    kw = dict(model=model, system="8xh200-c2c", placement="ssd", batching="lockstep")
    # the bounded sums equal the step-by-step ones on a run long enough to use them
    short = dict(prompt_len=3000, output_len=[9000, 25000], prefill_chunk=[256, 1000], **kw)
    a = dse.evaluate(**short)
    rq_exact = rq.EXACT_STEPS
    try:
        rq.EXACT_STEPS = 10**9
        b = dse.evaluate(**short)
    finally:
        rq.EXACT_STEPS = rq_exact
    for v in ("energy_per_request", "request_latency", "kv_written_bytes", "prefill_energy", "decode_energy"):
        np.testing.assert_allclose(a[v].values, b[v].values, rtol=1e-12)


def test_public_modules_import_by_their_public_names():
    import dse.model.traces
    import dse.traces as tr
    from dse.traces import generate

    assert tr is dse.model.traces and generate is dse.model.traces.generate and tr.__name__ == "dse.model.traces"


# ------------------------------------------------------------------------------------------ 8. Hydra's own failures
@pytest.fixture
def read_only_dir(tmp_path):
    mnt = tmp_path / "ro"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here (not root?)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.slow
@pytest.mark.parametrize("tool, args", [("dse", []), ("dse-search", ["search=mixtral-small"]),
                                        ("dse-breakeven", [])])
def test_a_read_only_run_directory_is_one_line(read_only_dir, tmp_path, tool, args):
    r = cli(*args, f"hydra.run.dir={read_only_dir}/run", cwd=tmp_path, tool=tool)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Read-only file system" in r.stderr


@pytest.mark.slow
def test_a_python_yaml_tag_is_refused_in_one_line_and_never_run(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "mine.yaml").write_text("defaults:\n  - config\n  - _self_\n"
                                    f"x: !!python/object/apply:os.mkdir [\"{tmp_path}/pwned\"]\n")
    r = cli("--config-dir", str(conf), "--config-name", "mine", "hydra.run.dir=r", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "python/object/apply" in r.stderr and not (tmp_path / "pwned").exists()
