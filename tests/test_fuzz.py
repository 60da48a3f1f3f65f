"""Generated malformed inputs (hypothesis) across the API, the Hugging Face importer, the CLI and dse-search:
each is a one-line DseError naming the key (exit code 2 for the CLI), with no traceback and nothing written.

About 310 malformed inputs per run: API 200, HF import 80, CLI 15 (in-process, as the console script runs;
test_reliability runs the real console scripts), dse-search every one of its 18 listed cases.
"""
import contextlib
import io
import json
import math
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dse
from dse import DseError
from dse.config import rules
from dse.config.hf import from_hf_config

FAST = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
TIER = "ssd"
PATHS = sorted(p.replace("*", TIER) for p in rules.RULES)


def _bad_values(rule: rules.Rule):
    """Values outside a rule: below / above the range, not finite, not a number, not an integer."""
    out = [st.sampled_from([math.nan, math.inf, -math.inf, "x", None, True, [1, "y"]])]
    if rule.lo > -math.inf:
        out.append(st.floats(min_value=-1e12, max_value=rule.lo, exclude_max=True, allow_nan=False))
    if rule.hi < math.inf:
        out.append(st.floats(min_value=rule.hi, max_value=1e300, exclude_min=True, allow_nan=False))
    if rule.integer:
        out.append(st.floats(min_value=max(rule.lo, 0) + 0.01, max_value=1e6, allow_nan=False)
                   .filter(lambda v: v != int(v)))
    return st.one_of(*out)


def _in_default_config(path: str) -> bool:
    """Keys the default config spells out (Hydra refuses to override others without a +; a misspelt-key
    message is the CLI's own business)."""
    from dse.config import presets

    node = presets.compose(system="paper-4xh100")
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


CLI_PATHS = [p for p in PATHS if _in_default_config(p)]


@st.composite
def bad_setting(draw, paths=PATHS):
    path = draw(st.sampled_from(paths))
    value = draw(_bad_values(rules.rule_for(path)))
    if isinstance(value, list):
        return path, value
    as_grid = draw(st.booleans()) and value is not None
    return path, ([1, value] if path == "workload.batch" else [value]) if as_grid else value


def _key_named(path: str, msg: str) -> bool:
    return path.split(".")[-1] in msg or path in msg


@settings(max_examples=200, **FAST)
@given(bad=bad_setting())
def test_api_malformed_settings(bad):
    path, value = bad
    with pytest.raises(DseError) as err:
        dse.evaluate(model="mixtral-8x7b", system="paper-4xh100", placement="ssd", **{path: value})
    msg = str(err.value)
    assert "\n" not in msg and _key_named(path, msg), (path, value, msg)


# ------------------------------------------------------------------------------------------ HF configs
HF = {"hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
      "num_local_experts": 8, "num_experts_per_tok": 2, "intermediate_size": 32, "vocab_size": 100}
REQUIRED = ("hidden_size", "num_hidden_layers", "num_attention_heads")
RAW_BAD = ["-3", "2.5", '"12"', "[1]", '{"a": 1}', "true", "NaN", "Infinity", "-Infinity", "1e400", "-0.5"]


@settings(max_examples=80, **FAST)
@given(key=st.sampled_from(sorted(HF)),
       bad=st.one_of(st.sampled_from(RAW_BAD + ["null", "drop"]),
                     st.floats(-1e6, -1e-3).map(repr),
                     st.floats(0.01, 1e4).filter(lambda v: v != int(v)).map(repr)))
def test_hf_malformed_fields(tmp_path_factory, key, bad):
    if bad in ("null", "drop") and key not in REQUIRED:
        bad = "-1"
    fields = {k: json.dumps(v) for k, v in HF.items()}
    if bad == "drop":
        del fields[key]
    else:
        fields[key] = bad
    f = tmp_path_factory.mktemp("hf") / "config.json"
    f.write_text("{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}")
    with pytest.raises(DseError) as err:
        from_hf_config(f)
    msg = str(err.value)
    assert "\n" not in msg and key in msg, (key, bad, msg)


# ------------------------------------------------------------------------------------------ CLI (in-process)
def _cli(args: list[str], run_dir: Path) -> tuple[int, str]:
    from dse.cli.main import main

    argv, sys.argv = sys.argv, ["dse", *args, f"hydra.run.dir={run_dir}", "progress=false"]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                main()
                code = 0
            except SystemExit as e:
                code = e.code
    finally:
        sys.argv = argv
    return code, err.getvalue()


def _hydra(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if v is True:
        return "true"
    if v is None:
        return "null"
    if isinstance(v, list):
        return "[" + ",".join(map(_hydra, v)) + "]"
    return str(v)


@pytest.mark.slow
@settings(max_examples=15, **FAST)
@given(bad=bad_setting(CLI_PATHS))
def test_cli_malformed_settings(tmp_path_factory, bad):
    path, value = bad
    if isinstance(value, list) and not path.startswith(("workload.", "model.n_experts", "model.top_k")):
        value = value[-1] if value[-1] is not None and not isinstance(value[-1], list) else "x"
    if isinstance(value, list):
        name = {"workload.batch": "batch"}.get(path, path)
        arg = f"grid.{name}={_hydra(value)}"
    else:
        arg = f"{path}={_hydra(value)}"
    d = tmp_path_factory.mktemp("cli")
    code, err = _cli(["system=paper-4xh100", arg], d / "run")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (arg, err)
    assert _key_named(path, lines[0]), (arg, err)
    assert not list(d.rglob("*.nc")) and not list(d.rglob("*.zarr"))


# ------------------------------------------------------------------------------------------ dse-search
SEARCH_BAD = [
    ("placement", {"type": "categorical", "choices": ["hbm", "tape"]}, "placement"),
    ("batch", {"type": "categorical", "choices": [1, -4]}, "batch"),
    ("batch", {"type": "categorical", "choices": [1, 2.5]}, "batch"),
    ("batch", {"type": "int", "low": 0, "high": 8}, "batch"),
    ("tp", {"type": "categorical", "choices": [1, 3]}, "tp"),
    ("gpu", {"type": "categorical", "choices": ["h100-sxm", "nope"]}, "nope"),
    ("hbm_cache_fraction", {"type": "float", "low": 0.0, "high": 1.5}, "hbm_cache_fraction"),
    ("hbm_cache_fraction", {"type": "float", "low": 0.8, "high": 0.2}, "hbm_cache_fraction"),
    ("hbm_cache_fraction", {"type": "float", "low": 0.0, "high": 1.0, "step": -0.1}, "hbm_cache_fraction"),
    ("flash_read_pj_per_bit", {"type": "float", "low": -1.0, "high": 10.0}, "flash_read_pj_per_bit"),
    ("context_len", {"type": "wild"}, "context_len"),
    ("nonsense", {"type": "int", "low": 1, "high": 2}, "nonsense"),
]
FIXED_BAD = [({"top_k": 9}, "top_k"), ({"batch": -1}, "batch"), ({"system": {"gpu": {"idle_w": -5.0}}}, "idle_w"),
             ({"hbm_cache_fraction": float("nan")}, "hbm_cache_fraction"), ({"ep": 64}, "ep"),
             ({"model": {"first_dense": 99}}, "first_dense")]


@pytest.fixture(scope="module")
def search_cfg():
    from dse.search import compose

    return compose("mixtral-small", ["search.method=optuna", "search.progress=false", "search.n_trials=10"])


@settings(max_examples=60, **FAST)
@given(case=st.one_of(st.sampled_from(SEARCH_BAD).map(lambda c: ("space", c)),
                      st.sampled_from(FIXED_BAD).map(lambda c: ("fixed", c))))
def test_search_malformed_questions_touch_no_storage(tmp_path_factory, search_cfg, case):
    import copy

    from dse.search import run

    cfg = copy.deepcopy(search_cfg)
    kind, c = case
    if kind == "space":
        name, spec, word = c
        cfg["search"]["space"][name] = spec
    else:
        fixed, word = c
        cfg["search"]["fixed"] = fixed
    d = tmp_path_factory.mktemp("search")
    with pytest.raises(DseError) as err:
        run(cfg, d)
    msg = str(err.value)
    assert "\n" not in msg and word in msg, (case, msg)
    assert not list(d.iterdir())          # no study.db, no output
