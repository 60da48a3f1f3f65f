"""Regression tests of issue 10's reproductions: each is now a one-line error, or the right answer."""
import dataclasses
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dse
from dse import DseError
from dse.run import schedule, sweep
from dse import files as outputs
from dse.config import specs
from dse.config import rules
from dse.model import routing
from dse.config.hf import from_hf_config
from dse.run.results import open_results

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg
    return msg


def cli(*args, cwd, tool="dse", **kw):
    return subprocess.run([str(BIN / tool), *args], cwd=cwd, capture_output=True, text=True, timeout=300, **kw)


# ------------------------------------------------------------------------------------------ silent wrong numbers
@pytest.mark.parametrize("kwargs, words", [
    ({"model.first_dense": 100}, ["model.first_dense=100", "n_layers=32"]),
    ({"model.n_kv_heads": -8}, ["model.n_kv_heads=-8", "[0,"]),
    ({"system.hop_latency_us": -5000}, ["system.hop_latency_us=-5000", "[0,"]),
    ({"model.n_shared": -1}, ["model.n_shared"]),
    ({"model.q_lora_rank": -5}, ["model.q_lora_rank"]),
    ({"model.d_ffn": -1}, ["model.d_ffn"]),
    ({"model.vocab": -1}, ["model.vocab"]),
    ({"system.gpus_per_node": 0}, ["system.gpus_per_node"]),
    ({"flash_read_pj_per_bit": float("inf")}, ["flash_read_pj_per_bit", "not finite"]),
    ({"batch": [1, float("inf")]}, ["batch=inf"]),
    ({"batch": [1, float("nan")]}, ["batch=nan"]),
    ({"batch": {"start": 1, "stop": 8, "num": float("nan")}}, ["grid.batch.num"]),
    ({"batch": {"start": 1, "stop": 8, "num": 2.5}}, ["grid.batch.num"]),
    ({"n_experts": 8, "top_k": 0}, ["top_k >= 1"]),
    ({"tp": 3}, ["system.tp=3", "n_heads=32"]),
    ({"ep": 16, "tp": 8, "dp": 2}, ["system.ep=16", "n_experts=8"]),
    ({"model.moe_every": 0}, ["model.moe_every"]),
    ({"system.tiers.ssd.bw_gbps": 0.0}, ["system.tiers.ssd.bw_gbps"]),
])
def test_impossible_inputs_are_refused(kwargs, words):
    with pytest.raises(DseError) as err:
        dse.evaluate(model="mixtral-8x7b", system="paper-4xh100", placement="ssd", **kwargs)
    msg = one_line(err)
    for w in words:
        assert w in msg, msg


def test_an_api_model_dict_names_its_missing_fields():
    with pytest.raises(DseError) as err:
        dse.evaluate(model={"name": "x"})
    msg = one_line(err)
    for field in ("n_layers", "hidden", "n_heads", "head_dim", "n_experts", "top_k", "n_kv_heads"):
        assert field in msg


def test_first_dense_up_to_n_layers_is_a_dense_model():
    """first_dense = n_layers leaves no MoE layer: the step then reads no expert and costs what the same network
    written as a dense model costs (Mixtral-8x7B with a dense 14336-wide FFN in every layer: Mistral-7B's shape,
    given here by hand with n_experts = 0) -- the same energy, latency and traffic. The traffic and the HBM energy
    are derived by hand below from the shapes (docs/model.md s.2, s.3, s.5), not taken from dse."""
    kw = dict(system="paper-4xh100", batch=[1, 8], placement="ssd")
    ds = dse.evaluate(model="mixtral-8x7b", **kw, **{"model.first_dense": 32})
    dense_model = {"name": "dense-by-hand", "attention": "gqa", "n_layers": 32, "hidden": 4096, "n_heads": 32,
                   "n_kv_heads": 8, "head_dim": 128, "d_ffn": 14336, "n_experts": 0, "top_k": 0, "vocab": 32000,
                   "max_context": 32768}
    dense = dse.evaluate(model=dense_model, **kw)
    moe = dse.evaluate(model="mixtral-8x7b", **kw)       # first_dense = 0: the experts are read from the SSDs
    assert np.all(moe.offload_read_bytes.values > 0)

    assert np.all(ds.offload_read_bytes.values == 0) and np.all(ds.offload_read_bits.values == 0)
    for c in ("offload_read", "offload_link", "offload_hbm_write", "warm_read", "warm_link"):
        assert np.all(ds.energy.sel(component=c).values == 0), c
    assert np.all(ds.offload_share.values == 0) and np.all(ds.copy_latency.values == 0)
    for name in ("experts_touched", "experts_fetched", "busiest_gpu_experts", "experts_fetched_warm"):
        assert np.all(ds[name].values == 0), name                 # no MoE layer: no expert per MoE layer
    for name in ("energy_per_token", "step_energy", "energy", "step_latency", "tokens_per_s", "hbm_read_bytes",
                 "hbm_activation_bytes", "flops", "hbm_bytes", "capacity_cost_usd", "hbm_fill"):
        np.testing.assert_allclose(ds[name].values, dense[name].values, rtol=1e-12, err_msg=name)

    # by hand, batch 1, context 1024, bf16, TP4 (the 4 GPUs together read every weight once; count_lm_head off):
    # per layer q/k/v 4096 x 128 (32 + 2 x 8), o 4096 x 4096, FFN gate / up / down 3 x 4096 x 14336
    params = 32 * (4096 * 128 * (32 + 2 * 8) + 4096 * 4096 + 3 * 4096 * 14336)
    assert params == 6_979_321_856
    weight_bytes = 2 * params
    kv_bytes = 1024 * 32 * 2 * 8 * 128 * 2                 # context x layers x (K, V) x KV heads x head_dim x bf16
    one = ds.sel(batch=1)
    assert float(one.hbm_read_bytes) == pytest.approx(weight_bytes + kv_bytes, rel=1e-12)
    hbm_pj = 4.2                                            # h100-sxm HBM3 read energy (docs/model.md s.8)
    assert float(one.energy.sel(component="hbm_weights")) == pytest.approx(8 * weight_bytes * hbm_pj * 1e-12, rel=1e-12)
    assert float(one.energy.sel(component="hbm_kv")) == pytest.approx(8 * kv_bytes * hbm_pj * 1e-12, rel=1e-12)
    # FLOPs: 2 per multiply-accumulate of the weights, the score and context products 2 x 2 x L x H x d per
    # layer, and 7 per attention score for the softmax (docs/model.md s.3)
    flops = 2 * params + 32 * (2 * 2 * 1024 * 32 * 128 + 7 * 32 * 1024)
    assert float(one.flops) == pytest.approx(flops, rel=1e-12)
    # memory-bound at batch 1: a step takes at least one GPU's quarter of the bytes at the HBM bandwidth
    assert float(one.step_latency) >= (weight_bytes + kv_bytes) / 4 / 3352e9


def test_every_numeric_schema_field_has_a_rule():
    """Adding a model / system field is one line in dse.config.rules.RULES: this test names a field without one."""
    def numeric(cls):
        return [f.name for f in dataclasses.fields(cls) if f.type in ("int", "float")]

    for section, cls in (("model", specs.ModelSpec), ("system", specs.SystemSpec), ("workload", specs.WorkloadSpec),
                         ("system.gpu", specs.GPUSpec), ("system.offload_link", specs.LinkSpec),
                         ("system.tiers.x", specs.TierSpec)):
        for name in numeric(cls):
            assert rules.rule_for(f"{section}.{name}") is not None, f"{section}.{name} has no rule"


# ------------------------------------------------------------------------------------------ measured routing
def test_routing_probabilities_by_hand():
    # shares 0.6, 0.2, 0.1, 0.1 with top_k = 2 -> 1.2 0.4 0.2 0.2: the first is capped at 1 and the remaining
    # mass 1 is split 2:1:1 -> 0.5, 0.25, 0.25
    p = routing.routing_probabilities([0.6, 0.2, 0.1, 0.1], 2, 4)
    np.testing.assert_allclose(p, [1.0, 0.5, 0.25, 0.25], rtol=1e-12)
    # counts on any scale give the same probabilities
    np.testing.assert_allclose(routing.routing_probabilities([60, 20, 10, 10], 2, 4), p, rtol=1e-12)
    # already valid pick probabilities are kept as they are
    np.testing.assert_allclose(routing.routing_probabilities([0.5, 0.5, 0.5, 0.5], 2, 4), [0.5] * 4, rtol=1e-12)
    # exactly top_k non-zero experts: each is picked by every token
    np.testing.assert_allclose(routing.routing_probabilities([5, 1, 0, 0], 2, 4), [1, 1, 0, 0], rtol=1e-12)


def test_measured_routing_touched_experts_by_hand():
    # Mixtral (8 experts, top 2), shares 6:2:1:1:0:0:0:0 -> p = 1, 0.5, 0.25, 0.25 (see above).
    # E[touched](B) = sum_i 1 - (1 - p_i)^B: B=1 -> 2; B=2 -> 1 + 0.75 + 2 * 0.4375 = 2.625;
    # B=3 -> 1 + 0.875 + 2 * (1 - 0.421875) = 3.03125
    ds = dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", routing_frequencies=[6, 2, 1, 1, 0, 0, 0, 0],
                      batch=[1, 2, 3], placement="ssd")
    np.testing.assert_allclose(ds.experts_touched.values, [2.0, 2.625, 3.03125], rtol=1e-12)


@pytest.mark.parametrize("freqs, words", [
    ([1, 0, 0, 0, 0, 0, 0, 0], ["top_k=2", "1 experts"]),
    ([0] * 8, ["0 experts"]),
    ([1, float("nan"), 0, 0, 0, 0, 0, 0], ["routing_frequencies[1]=nan"]),
    ([1, -1, 1, 0, 0, 0, 0, 0], ["routing_frequencies[1]=-1"]),
    ([1, 1, 1], ["3 entries", "n_experts is 8"]),
    ([[1, 1, 1, 1], [1, 1, 1, 1]], ["flat list"]),
    (["a"] * 8, ["routing_frequencies"]),
])
def test_impossible_routing_vectors_are_refused(freqs, words):
    with pytest.raises(DseError) as err:
        dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", routing_frequencies=freqs, batch=[1, 2], placement="ssd")
    msg = one_line(err)
    for w in words:
        assert w in msg, msg


# ------------------------------------------------------------------------------------------ HF configs
HF = {"hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
      "num_local_experts": 8, "num_experts_per_tok": 2, "intermediate_size": 32, "vocab_size": 100}


@pytest.mark.parametrize("content, words", [
    (b"\x00\x01\xff\xfe", ["not a UTF-8"]),
    (b'{"hidden_size": 1e400, "num_hidden_layers": 2, "num_attention_heads": 2}', ["hidden_size=inf"]),
    (b'{"hidden_size": NaN, "num_hidden_layers": 2, "num_attention_heads": 2}', ["hidden_size=nan"]),
    (json.dumps({**HF, "kv_lora_rank": 8, "qk_nope_head_dim": None}).encode(), ["qk_nope_head_dim"]),
    (json.dumps({**HF, "num_hidden_layers": "4"}).encode(), ["num_hidden_layers='4'"]),
    (json.dumps({**HF, "num_local_experts": 8.7}).encode(), ["num_local_experts=8.7", "integer"]),
    (json.dumps({**HF, "first_k_dense_replace": 64}).encode(), ["first_dense=64", "n_layers=4"]),
    (json.dumps({**HF, "num_key_value_heads": 3}).encode(), ["n_kv_heads=3"]),
    (json.dumps({**HF, "vocab_size": -1}).encode(), ["vocab_size=-1"]),
    (b"[1, 2]", ["JSON object"]),
    (b"", ["not valid JSON"]),
])
def test_malformed_hf_configs(tmp_path, content, words):
    f = tmp_path / "config.json"
    f.write_bytes(content)
    with pytest.raises(DseError) as err:
        from_hf_config(f)
    msg = one_line(err)
    for w in words:
        assert w in msg, msg


def test_hf_config_directory_is_refused(tmp_path):
    with pytest.raises(DseError) as err:
        from_hf_config(tmp_path)
    assert "directory" in one_line(err)


# ------------------------------------------------------------------------------------------ grid size, chunks
def test_grid_size_limit_before_allocating():
    with pytest.raises(DseError) as err:
        dse.evaluate(batch={"start": 1, "stop": 1e6, "num": 1e6}, context_len={"start": 0, "stop": 1e6, "num": 1e5})
    assert "max_grid_points" in one_line(err)
    with pytest.raises(DseError) as err:
        dse.evaluate(batch=[1, 2, 3], context_len=[1, 2], max_grid_points=5)
    assert "6 points" in one_line(err)


def test_in_memory_grid_must_fit(monkeypatch):
    import psutil

    class Tiny:
        available = 1000
    monkeypatch.setattr(psutil, "virtual_memory", lambda: Tiny())
    with pytest.raises(DseError) as err:
        dse.evaluate(batch=[1, 2, 3, 4])
    assert "chunks" in one_line(err)
    dse.evaluate(batch=[1, 2, 3, 4], chunks={"batch": 2})       # lazy: allowed


@pytest.mark.parametrize("chunks", [{"batch": "x"}, {"batch": 0}, {"nonsense": 2}, [2], {"batch": 1.5}])
def test_bad_chunks(chunks):
    with pytest.raises(DseError) as err:
        dse.evaluate(batch=[1, 2, 3], chunks=chunks)
    assert "chunks" in one_line(err)


# ------------------------------------------------------------------------------------------ outputs
def cfg_for(tmp_path, **output):
    from dse.config import presets

    cfg = presets.compose()
    cfg["grid"] = {"batch": [1, 8]}
    cfg["progress"] = False
    cfg["output"].update(output)
    return cfg


def test_foreign_zarr_directory_survives(tmp_path):
    store = tmp_path / "notdse.zarr"
    store.mkdir()
    (store / "important.txt").write_text("keep")
    with pytest.raises(DseError) as err:
        sweep.run(cfg_for(tmp_path, path=str(store), format="zarr"), tmp_path)
    assert "output.overwrite" in one_line(err)
    assert (store / "important.txt").read_text() == "keep"
    out = sweep.run(cfg_for(tmp_path, path=str(store), format="zarr", overwrite=True), tmp_path)
    assert not (store / "important.txt").exists() and open_results(out).attrs["dse_version"]


def test_foreign_netcdf_survives_and_dse_results_are_replaced(tmp_path):
    target = tmp_path / "result.nc"
    target.write_text("my notes")
    with pytest.raises(DseError) as err:
        sweep.run(cfg_for(tmp_path, path=str(target)), tmp_path)
    assert "output.overwrite" in one_line(err) and target.read_text() == "my notes"
    target.unlink()
    sweep.run(cfg_for(tmp_path, path=str(target)), tmp_path)
    sweep.run(cfg_for(tmp_path, path=str(target)), tmp_path)       # dse's own result: replaced
    assert outputs.is_dse_output(target)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temporaries or lock left


def test_netcdf_path_that_is_a_directory_is_refused_before_work(tmp_path):
    (tmp_path / "x.nc").mkdir()
    with pytest.raises(DseError) as err:
        sweep.plan(cfg_for(tmp_path, path=str(tmp_path / "x.nc")), tmp_path)
    assert "directory" in one_line(err)


def test_read_only_directory_is_one_line(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    if os.geteuid() == 0:       # root may write anywhere: make the permission check see what a user would
        monkeypatch.setattr(outputs.os, "access", lambda p, mode: Path(p) != ro)
    with pytest.raises(DseError) as err:
        sweep.plan(cfg_for(tmp_path), ro)
    assert "not writable" in one_line(err)


def test_lock_refuses_a_second_writer(tmp_path):
    target = tmp_path / "r.nc"
    with outputs.lock(target):
        with pytest.raises(DseError) as err:
            with outputs.lock(target):
                pass
        assert "another dse process" in one_line(err)
    with outputs.lock(target):   # released: free again
        pass
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_atomic_removes_temporaries_on_failure_and_ctrl_c(tmp_path, exc):
    target = tmp_path / "r.nc"
    with pytest.raises(type(exc)):
        with outputs.atomic(target) as tmp:
            tmp.write_text("half")
            raise exc
    assert not list(tmp_path.iterdir())


def test_full_disk_is_one_line(tmp_path, monkeypatch):
    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(schedule, "compute", full)
    with pytest.raises(DseError) as err:
        sweep.run(cfg_for(tmp_path), tmp_path)
    assert "no space left" in one_line(err)
    assert not [p for p in tmp_path.iterdir() if p.suffix or p.name.startswith(".")]


def test_free_space_and_file_size_limit_checked_before_writing(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda p: type("U", (), {"free": 10})())
    with pytest.raises(DseError) as err:
        sweep.plan(cfg_for(tmp_path), tmp_path)
    assert "GB free" in one_line(err)


@pytest.mark.slow
def test_file_size_limit_is_one_line(tmp_path):
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY));"
            "sys.argv = ['dse', 'grid.batch={start:1,stop:500,num:500}', 'grid.context_len={start:0,stop:1000,num:100}',"
            f"'hydra.run.dir={tmp_path}/r', 'progress=false']; from dse.cli.main import main; main()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "ulimit -f" in r.stderr and "Traceback" not in r.stderr
    assert not list((tmp_path / "r").glob("*.nc*")) and not list((tmp_path / "r").glob(".*.tmp"))


def test_kill_dash_nine_temporary_is_refused_and_cleaned(tmp_path):
    target = tmp_path / "result.nc"
    stale = tmp_path / ".result.nc.999999999.tmp"      # a pid that cannot run
    stale.write_bytes(b"\x89HDF half")
    with pytest.raises(DseError) as err:
        open_results(stale)
    assert "temporary" in one_line(err)
    with outputs.atomic(target) as tmp:
        tmp.write_text("new")
    assert not stale.exists() and target.read_text() == "new"


@pytest.fixture(scope="module")
def result_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("res")
    return sweep.run(cfg_for(d), d)


@pytest.mark.parametrize("damage", ["truncate", "empty", "text", "bitflip", "foreign"])
def test_open_results_refuses_damaged_files(tmp_path, result_file, damage):
    data = result_file.read_bytes()
    bad = tmp_path / "bad.nc"
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 3])
    elif damage == "empty":
        bad.write_bytes(b"")
    elif damage == "text":
        bad.write_text("energy,1\n")
    elif damage == "bitflip":
        b = bytearray(data)
        for i in range(0, 512):
            b[i] ^= 0xFF
        bad.write_bytes(bytes(b))
    else:
        import xarray as xr

        xr.Dataset({"x": ("a", [1.0])}).to_netcdf(bad, engine="h5netcdf")
    with pytest.raises(DseError) as err:
        open_results(bad)
    assert str(bad) in one_line(err)


def test_open_results_refuses_partial_and_tmp_names(tmp_path, result_file):
    for name in ("result.nc.tmp", ".result.nc.123.tmp", "result.zarr.partial"):
        p = tmp_path / name
        p.write_bytes(result_file.read_bytes())
        with pytest.raises(DseError):
            open_results(p)


# ------------------------------------------------------------------------------------------ CLI
@pytest.mark.slow
def test_cli_without_grid_prints_its_table(tmp_path):
    r = cli("workload.batch=8", f"hydra.run.dir={tmp_path}/r", "progress=false", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "J_per_token" in r.stdout and (tmp_path / "r" / "result.nc").exists()


@pytest.mark.slow
def test_cli_bad_values_are_one_line_exit_2(tmp_path, monkeypatch, capsys):
    from dse.cli.main import main

    for args in (["model.first_dense=100", "grid.batch=[1,8]", "workload.placement=ssd"],
                 ["system.hop_latency_us=-5000"], ["grid.batch=[1,inf]"]):
        monkeypatch.setattr(sys, "argv", ["dse", *args, f"hydra.run.dir={tmp_path}/r", "progress=false"])
        with pytest.raises(SystemExit) as exit_:
            main()
        out = capsys.readouterr()
        assert exit_.value.code == 2 and len((out.out + out.err).strip().splitlines()) == 1, out
    assert not list(tmp_path.rglob("*.nc"))


@pytest.mark.slow
def test_multirun_validates_every_job_before_the_first(tmp_path):
    r = cli("-m", "workload.hbm_cache_fraction=0.25,2", "grid.batch=[1,8]", f"hydra.sweep.dir={tmp_path}/m",
            "progress=false", cwd=tmp_path)
    assert r.returncode == 2 and "job 1 of 2" in r.stderr and "hbm_cache_fraction" in r.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_ctrl_c_during_a_write_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    """KeyboardInterrupt while the blocks are written (raised from the computation, as Ctrl-C would be)."""
    from dse.cli.main import main

    def interrupted(*a, **k):
        assert list((tmp_path / "r").glob(".result.nc.*.tmp"))     # the temporary exists at that moment
        raise KeyboardInterrupt

    monkeypatch.setattr(schedule, "compute", interrupted)
    monkeypatch.setattr(sys, "argv", ["dse", "grid.batch=[1,8]", f"hydra.run.dir={tmp_path}/r", "progress=false"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "interrupted" in err[0]
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [".hydra", "dse.log"]


def test_huge_expert_counts_are_refused_not_hung():
    with pytest.raises(DseError) as err:
        dse.evaluate(n_experts=10**12)
    assert "n_experts" in one_line(err)


def test_storage_passwords_are_masked(tmp_path):
    from dse.cli.dse_search import scrub_secrets
    from dse.search.study import open_storage

    url = "postgresql+psycopg://alice:S3cret%2Fpw@127.0.0.1:1/dse"
    with pytest.raises(DseError) as err:
        open_storage(url, tmp_path)
    assert "S3cret" not in one_line(err) and "alice:***@" in str(err.value)
    hydra = tmp_path / ".hydra"
    hydra.mkdir()
    (hydra / "overrides.yaml").write_text(f"- search.storage={url}\n")
    scrub_secrets(tmp_path, url)
    assert "S3cret" not in (hydra / "overrides.yaml").read_text()


def test_storage_url_from_the_environment(tmp_path, monkeypatch):
    from dse.search.study import storage_url

    monkeypatch.setenv("DSE_SEARCH_STORAGE", f"journal:{tmp_path}/j.log")
    assert storage_url(None, tmp_path) == f"journal:{tmp_path}/j.log"
    assert storage_url("sqlite:///x.db", tmp_path) == "sqlite:///x.db"       # an explicit setting wins


def test_bit_flips_in_netcdf_data_are_errors_not_numbers(tmp_path):
    """Every chunk of a NetCDF result carries a Fletcher-32 checksum: corrupted data fails to read."""
    cfg = cfg_for(tmp_path)
    cfg["grid"] = {"batch": list(range(1, 301)), "context_len": list(range(0, 4000, 40))}
    out = sweep.run(cfg, tmp_path)
    data = bytearray(out.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0xFF
    bad = tmp_path / "flipped.nc"
    bad.write_bytes(bytes(data))
    with pytest.raises(Exception) as err:
        with open_results(bad) as ds:
            for v in ds.data_vars.values():
                v.values
    assert isinstance(err.value, (OSError, DseError))
