"""Bad input: one-line errors naming the key (and the allowed range), raised before any work."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dse
from dse import DseError
from dse.config.hf import from_hf_config

ROOT = Path(__file__).resolve().parent.parent


def _one_line(err):
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(DseError) as err:
        dse.evaluate(model="mixtral-9x9b")
    msg = _one_line(err)
    assert "mixtral-9x9b" in msg and "mixtral-8x7b" in msg and "deepseek-r1" in msg
    with pytest.raises(DseError) as err:
        dse.evaluate("paper-fig99")
    assert "paper-fig45-mixtral" in _one_line(err)


@pytest.mark.parametrize("kwargs, words", [
    (dict(top_k=9), ["top_k", "n_experts"]),
    (dict(batch=0), ["batch", "[1,"]),
    (dict(batch=[4, -1]), ["batch", "-1"]),
    (dict(flash_read_pj_per_bit=-5.0), ["flash_read_pj_per_bit", "[0,"]),
    (dict(hbm_read_pj_per_bit=[4.2, -1.0]), ["hbm_read_pj_per_bit"]),
    (dict(hbm_cache_fraction=1.5), ["hbm_cache_fraction", "[0, 1]"]),
    (dict(hbm_cache_fraction=-0.1), ["hbm_cache_fraction", "[0, 1]"]),
    (dict(placement="tape"), ["placement", "ssd"]),
    (dict(**{"system.gpu.idle_w": -3.0}), ["system.gpu.idle_w"]),
    (dict(nonsense=3), ["nonsense"]),
    (dict(**{"model.no_such_key": 3}), ["model.no_such_key"]),
    (dict(batch=[]), ["batch", "empty"]),
    (dict(offload_path="teleport"), ["offload_path", "staged"]),
])
def test_bad_values_fail_in_one_line_naming_the_key(kwargs, words):
    with pytest.raises(DseError) as err:
        dse.evaluate(**kwargs)
    msg = _one_line(err)
    for w in words:
        assert w in msg


def test_malformed_config_json(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text('{"hidden_size": 4096, "num_hidden_layers": 32,,}')
    with pytest.raises(DseError) as err:
        from_hf_config(bad)
    assert "not valid JSON" in _one_line(err)
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"num_hidden_layers": 32, "num_attention_heads": 32}))
    with pytest.raises(DseError) as err:
        from_hf_config(missing)
    assert "hidden_size" in _one_line(err)
    too_many = tmp_path / "k.json"
    too_many.write_text(json.dumps({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                                    "num_local_experts": 4, "num_experts_per_tok": 6, "intermediate_size": 8}))
    with pytest.raises(DseError) as err:
        from_hf_config(too_many)
    assert "num_experts_per_tok" in _one_line(err)


def _cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "dse.cli.main", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_cli_errors_are_one_line_and_write_nothing(tmp_path):
    for args, word in ((["model=foo"], "foo"), (["workload.batch=0"], "workload.batch"),
                       (["workload.hbm_cache_fraction=2"], "hbm_cache_fraction")):
        r = _cli(*args, "hydra.run.dir=out", cwd=tmp_path)
        assert r.returncode != 0
        err_lines = [line for line in r.stderr.splitlines() if line.startswith("dse: error")]
        assert len(err_lines) == 1 and word in err_lines[0]
        assert not list(tmp_path.rglob("*.nc"))


def test_schema_rejects_misspelt_keys_and_wrong_types():
    from dse.config.specs import validated

    with pytest.raises(DseError) as err:
        validated("model", {"hiden": 4096})
    assert "hiden" in _one_line(err)
    with pytest.raises(DseError) as err:
        validated("tier", {"read_pj_per_bit": "cheap"})
    assert "read_pj_per_bit" in _one_line(err)


def test_every_preset_matches_its_schema_and_has_provenance():
    from dse.config import presets

    for group in ("model", "system", "gpu", "link", "tier"):
        for name in presets.presets(group):
            presets.preset(group, name)  # raises if it does not match the schema
            if group in ("gpu", "link", "tier"):
                from omegaconf import OmegaConf

                p = OmegaConf.to_container(OmegaConf.load(presets.CONF_DIR / group / f"{name}.yaml"))
                for key in [k for k, v in p.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]:
                    assert key in p["provenance"], f"{group}/{name}: {key} has no provenance"
                    assert p["provenance"][key]["evidence"] in (
                        "datasheet", "paper", "derived", "assumption", "measured"), f"{group}/{name}: {key}"
