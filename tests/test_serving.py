"""Requests (dse.model.requests, dse.analyze.serving): prefill by hand, the decode sum against the explicit loop over steps, max_batch against a
brute-force scan, a KV tier at HBM constants, Flash endurance by hand, bad input."""
import numpy as np
import pytest

import dse
from dse.model import requests as serving
from dse.errors import DseError
from figure_checks import assert_png_drawn

# a small MoE on one GPU (tp = dp = ep = 1): every quantity below is derived from these numbers by hand
TINY = dict(name="tiny", attention="gqa", n_layers=2, hidden=64, n_heads=4, n_kv_heads=2, head_dim=16, d_ffn=0,
            d_expert=32, n_experts=4, top_k=1, vocab=0, max_context=4096)
ONE_GPU = dict(system="8xh200-c2c", tp=1, dp=1, ep=1)


def tiny(**kw):
    """The tiny model; the prefill tests below are of the lockstep batch (its prefill runs B prompts at once)."""
    return dse.evaluate(model=TINY, accounting="refined", **ONE_GPU, **{"batching": "lockstep", **kw})


# ------------------------------------------------------------------------------------------------ prefill by hand
@pytest.mark.parametrize("chunk", [None, 8, 12])   # the whole prompt; a divisor of it; chunks plus a remainder
def test_prefill_flops_offload_and_kv_by_hand(chunk):
    B, P, O = 3, 40, 5
    ds = tiny(batch=B, prompt_len=P, output_len=O, prefill_chunk=chunk, placement="ddr")
    h, H, Hkv, d, E, k, de, L = 64, 4, 2, 16, 4, 1, 32, 2
    tokens = B * P
    # per layer: q/k/v and output projections, router, the routed experts (k per token: gate, up, down), and
    # causal attention: token i of a prompt attends over i keys, sum_i i = P (P + 1) / 2, scores and context
    # products 2 d FLOPs per (head, key) each, softmax 7 FLOPs per score
    linear = 2 * tokens * h * d * (H + 2 * Hkv) + 2 * tokens * H * d * h + 2 * tokens * h * E + tokens * k * 6 * h * de
    scores = B * H * P * (P + 1) / 2
    attention = 2 * (2 * d * scores) + 7 * scores
    assert float(ds.prefill_flops) == pytest.approx(L * (linear + attention), rel=1e-12)
    # experts fetched from DDR once per chunk step: E (1 - (1 - k/E)^(tokens of the step)) experts per MoE layer
    c = P if chunk is None else chunk
    steps = [c] * (P // c) + ([P % c] if P % c else [])
    fetched = sum(E * (1 - (1 - k / E) ** (B * q)) for q in steps)
    expert_bytes = 3 * h * de * 2.0
    assert float(ds.prefill_offload_read_bytes) == pytest.approx(L * fetched * expert_bytes, rel=1e-12)
    # KV written: every prompt and output token's K and V, all layers
    assert float(ds.kv_written_bytes) == pytest.approx(B * (P + O) * 2 * Hkv * d * 2.0 * L, rel=1e-12)


def test_chunking_keeps_prefill_flops_and_costs_fetches():
    base = tiny(batch=2, prompt_len=64, output_len=4, placement="ssd")
    chunked = tiny(batch=2, prompt_len=64, output_len=4, placement="ssd", prefill_chunk=16)
    assert float(chunked.prefill_flops) == pytest.approx(float(base.prefill_flops), rel=1e-12)
    assert float(chunked.prefill_energy) > float(base.prefill_energy)     # 4 expert fetches instead of 1
    assert float(chunked.decode_energy) == pytest.approx(float(base.decode_energy), rel=1e-12)


# ------------------------------------------------------------------------------------- decode: the explicit loop
CASES = [  # (model, system settings, accounting, placements, batches, prompt, output)
    (TINY, ONE_GPU, "refined", ["hbm", "ddr", "ssd"], [1, 7, 64], 30, 300),
    ("mixtral-8x7b", dict(system="8xh200-c2c"), "paper", ["hbm", "ddr", "ssd", "hbf"], [1, 16, 256], 64, 200),
    ("mixtral-8x7b", dict(system="8xh200-c2c"), "paper-fig6", ["hbm", "ssd"], [4, 300], 500, 120),
    ("deepseek-r1", dict(system="8xh200-c2c"), "refined", ["hbm", "ssd"], [1, 64], 100, 60),
    # the copy / compute max of the paper's step composition changes side near context 4,500 at this batch
    ("mixtral-8x7b", dict(system="8xh200-c2c"), "paper", ["hbf", "ddr"], [1024], 4400, 300),
]


@pytest.mark.parametrize("model, sysk, acct, placements, batches, P, O", CASES)
def test_decode_sum_equals_the_explicit_loop(model, sysk, acct, placements, batches, P, O):
    req = dse.evaluate(model=model, accounting=acct, **sysk, placement=placements, batch=batches, prompt_len=P,
                       output_len=O, batching="lockstep")
    # every decode step, evaluated as today's decode-only step at its context P + j
    steps = dse.evaluate(model=model, accounting=acct, **sysk, placement=placements, batch=batches,
                         context_len=list(range(P, P + O)))
    lat = steps.step_latency
    np.testing.assert_allclose(req.tpot * O, lat.sum("context_len"), rtol=1e-9)
    np.testing.assert_allclose(req.tpot_max, lat.isel(context_len=-1), rtol=1e-12)
    np.testing.assert_allclose(req.ttft - req.prefill_latency, lat.isel(context_len=0), rtol=1e-12)
    np.testing.assert_allclose(req.decode_energy * req.batch, steps.step_energy.sum("context_len"), rtol=1e-9)
    total = req.prefill_energy + req.decode_energy
    np.testing.assert_allclose(req.energy_per_request, total, rtol=1e-12)
    np.testing.assert_allclose(req.energy_per_output_token, total / O, rtol=1e-12)
    for v in ("energy_per_request", "ttft", "tpot", "tokens_per_s_per_gpu", "prefill_energy"):
        assert np.all(np.isfinite(req[v])) and np.all(req[v] >= 0), v


def test_the_decode_latency_changes_regime_inside_a_case():
    """The explicit-loop cases exercise the closed form's regime switch: a step latency that is not affine in the
    context (the copy / compute max switching side) inside the last case's output."""
    steps = dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", accounting="paper", placement=["hbf", "ddr"],
                         batch=1024, context_len=list(range(4400, 4700)))
    second = steps.step_latency.diff("context_len").diff("context_len")
    assert bool((abs(second) > 1e-9 * float(steps.step_latency.max())).any("context_len").all())


def test_prefill_equals_its_chunk_steps_one_by_one():
    """The prefill's closed-form sums over chunks equal its chunk steps run one at a time (n = 1: no sums)."""
    from dse.run import engine

    B, P, c = 8, 1000, 96           # 10 chunks of 96 and one of 40
    grid = engine.resolve(model="mixtral-8x7b", system="8xh200-c2c", batch=B, prompt_len=P, output_len=4,
                          placement=["hbm", "ssd"], prefill_chunk=c, batching="lockstep")
    ds = grid.dataset()
    x = {k: v for k, v in grid.whole().items() if k != "pre"}
    w = serving._with(x["w"], count_lm_head=0.0)

    plan = grid.compute.keywords["routing_plan"]
    lat, energy = 0.0, 0.0
    for k, q in enumerate([c] * (P // c) + [P % c]):
        one = serving.run(x["m"], x["g"], x["s"], x["link"], x["tier"], w, plan, q=float(q),
                          l0=k * c + (q + 1) / 2, dl=1.0, n=1.0, ndim=1)
        lat = lat + one.latency
        energy = energy + sum(one.energy.values())
    np.testing.assert_allclose(ds.prefill_latency.values, np.ravel(lat), rtol=1e-9)
    np.testing.assert_allclose(ds.prefill_energy.values * B, np.ravel(energy), rtol=1e-9)


def test_prefix_max_brute_force():
    rng = np.random.default_rng(3)
    f0, f1, b0, b1 = (rng.uniform(-1, 1, 400) for _ in range(4))
    n = rng.integers(0, 60, 400).astype(float)
    f1[::7] = b1[::7]                     # parallel lines
    want = [sum(max(a + s * j, c + r * j) for j in range(int(m))) for a, s, c, r, m in zip(f0, f1, b0, b1, n)]
    np.testing.assert_allclose(serving.prefix_max(f0, f1, b0, b1, n), want, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------ max_batch: brute force
@pytest.mark.parametrize("model, P, O", [("mixtral-8x7b", 1024, 128), ("qwen3-235b-a22b", 2000, 200)])
def test_max_batch_equals_a_brute_force_scan(model, P, O):
    N = 400
    kw = dict(model=model, system="8xh200-c2c", prompt_len=P, output_len=O, placement=["hbm", "ddr", "ssd"])
    ds = dse.evaluate(**kw, batch=list(range(1, N + 1)))
    for tpot in (0.01, 0.03, 0.2):
        for ttft in (0.3, 3.0, None):
            mb = dse.max_batch(**kw, tpot_slo_s=tpot, ttft_slo_s=ttft, batch_max=N)
            ok = (ds.tpot <= tpot) & ds.fits & ((ds.ttft <= ttft) if ttft else True)
            for p in kw["placement"]:
                good = ok.sel(placement=p).values
                want = int(ds.batch.values[good].max()) if good.any() else 0
                got = mb.sel(placement=p)
                assert int(got.max_batch) == want, (p, tpot, ttft)
                if want == N:
                    assert str(got.limited_by.values) == "batch_max"
                    continue
                nxt = ds.sel(placement=p, batch=want + 1)
                why = ("memory" if not bool(nxt.fits) else "tpot" if float(nxt.tpot) > tpot else "ttft")
                assert str(got.limited_by.values) == why, (p, tpot, ttft)
                if want:
                    at = ds.sel(placement=p, batch=want)
                    assert float(got.energy_per_output_token) == pytest.approx(float(at.energy_per_output_token),
                                                                               rel=1e-12)
                    assert float(got.tokens_per_s_per_gpu) == pytest.approx(float(at.tokens_per_s_per_gpu), rel=1e-12)


def test_max_batch_memory_limit_and_profiles():
    mb = dse.max_batch(model="mixtral-8x7b", system="8xh200-c2c", profile=["sharegpt", "longbench"], placement="hbm",
                       tpot_slo_s=10.0, ttft_slo_s=1e4)
    assert list(mb.profile.values) == ["sharegpt", "longbench"]
    assert set(mb.limited_by.values.tolist()) == {"memory"}
    # memory by hand: weights + batch x (prompt + output - 1) x KV per token within 8 x 141 GB
    kv_token = 32 * 2 * 8 * 128 * 2.0
    ds = dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", prompt_len=1660, output_len=373, batch=1)
    weights = float(ds.hbm_bytes) - 1 * (1660 + 373 - 1) * kv_token
    want = int(np.floor((float(ds.hbm_capacity_bytes) - weights) / ((1660 + 373 - 1) * kv_token)))
    assert int(mb.max_batch.sel(profile="sharegpt")) == want


# ------------------------------------------------------------------------------------------------- KV on a tier
def test_kv_tier_at_hbm_constants_reproduces_hbm():
    from dse.config import presets

    h200 = presets.preset("gpu", "h200-sxm")
    g = dict(model="mixtral-8x7b", system="8xh200-c2c", batch=[1, 32], prompt_len=500, output_len=50, placement="hbm",
             link_bw_gbps=h200["hbm_bw_gbps"], link_pj_per_bit=0.0)   # the KV's link: as fast as HBM, free
    ref = dse.evaluate(**g)
    like_hbm = {"system.tiers.ddr.read_pj_per_bit": h200["hbm_read_pj_per_bit"],
                "system.tiers.ddr.write_pj_per_bit": 0.0,               # HBM's KV writes are the qkv output's
                "system.tiers.ddr.bw_gbps": h200["hbm_bw_gbps"], "system.tiers.ddr.capacity_gb": 1e6,
                # HBM's KV writes ride in the qkv output's activation traffic: no write time of their own
                "system.tiers.ddr.write_bw_gbps": 1e30}
    kv = dse.evaluate(**g, kv_placement="ddr", **like_hbm)
    for v in ("energy_per_request", "prefill_energy", "ttft", "tpot", "step_energy", "step_latency"):
        np.testing.assert_allclose(kv[v], ref[v], rtol=1e-12, err_msg=v)
    np.testing.assert_allclose(ref.hbm_bytes - kv.hbm_bytes, kv.kv_tier_bytes, rtol=1e-12)   # the KV left HBM
    assert float(kv.kv_tier_bytes.max()) > 0


def test_kv_on_flash_endurance_by_hand():
    B, P, O = 64, 1000, 200
    ds = dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", batch=B, prompt_len=P, output_len=O,
                      kv_placement=["ssd", "hbf", "ddr"], service_life_years=5, batching="lockstep")
    kv_token = 32 * 2 * 8 * 128 * 2.0                          # all layers, K and V, bf16
    written = B * (P + O) * kv_token
    capacity = {"ssd": 8 * 4 * 15360e9, "hbf": 8 * 512e9}       # 4 PM1743 per GPU; one HBF stack per GPU
    cycles = {"ssd": 1825, "hbf": 3000}
    for t in ("ssd", "hbf"):
        d = ds.sel(kv_placement=t)
        years = cycles[t] * capacity[t] / (written / float(d.request_latency)) / (365.25 * 24 * 3600)
        assert float(d.flash_endurance_years) == pytest.approx(years, rel=1e-12)
        assert bool(d.endurance_ok) == (years >= 5)
    assert np.isinf(float(ds.flash_endurance_years.sel(kv_placement="ddr")))
    # KV read from Flash costs energy and time against HBM
    hbm = dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", batch=B, prompt_len=P, output_len=O, batching="lockstep")
    assert float(ds.tpot.sel(kv_placement="ssd")) > float(hbm.tpot)
    assert float(ds.energy_per_request.sel(kv_placement="ssd")) > float(hbm.energy_per_request)


# -------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw, key", [
    (dict(prompt_len=100, output_len=0), "output_len"),
    (dict(prompt_len=0, output_len=10), "prompt_len"),
    (dict(prompt_len=32000, output_len=1000), "max_context"),
    (dict(prompt_len=100, output_len=10, prefill_chunk=0), "prefill_chunk"),
    (dict(prompt_len=100), "output_len"),
    (dict(prompt_len=100, output_len=10, context_len=64), "context_len"),
    (dict(prompt_len=100, output_len=10, kv_placement="nvram"), "kv_placement"),
    (dict(profile="sharegpt2"), "profile"),
])
def test_bad_request_input_is_one_line(kw, key):
    with pytest.raises(DseError) as err:
        dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", **kw)
    msg = str(err.value)
    assert key in msg and "\n" not in msg


@pytest.mark.parametrize("kw, key", [(dict(tpot_slo_s=0), "tpot_slo_s"), (dict(tpot_slo_s=-1.0), "tpot_slo_s"),
                                     (dict(tpot_slo_s=0.1, ttft_slo_s=0.0), "ttft_slo_s"),
                                     (dict(tpot_slo_s=0.1, batch=8), "batch")])
def test_bad_slo_is_one_line(kw, key):
    with pytest.raises(DseError) as err:
        dse.max_batch(model="mixtral-8x7b", system="8xh200-c2c", prompt_len=100, output_len=10, **kw)
    assert key in str(err.value) and "\n" not in str(err.value)


def test_long_summarization_needs_a_long_context_model():
    with pytest.raises(DseError, match="max_context"):
        dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", profile="long-summarization")
    ds = dse.evaluate(model="deepseek-r1", system="8xh200-c2c", profile="long-summarization", batch=1)
    assert np.isfinite(float(ds.energy_per_output_token)) and float(ds.ttft) > 0


def test_serving_study_script_writes_its_results(tmp_path):
    from analysis import serving_slo
    from analysis.style import save

    ds = serving_slo.study(models={"mixtral-8x7b": ["sharegpt"]}, placements=["hbm", "ssd"], tpot=[0.03, 0.3])
    assert dict(ds.max_batch.sizes) == {"model": 1, "profile": 1, "placement": 2, "tpot_slo_s": 2}
    d = ds.sel(model="mixtral-8x7b", profile="sharegpt")
    assert int(d.max_batch.sel(placement="ssd", tpot_slo_s=0.03)) == 0          # SSD cannot meet 30 ms
    assert int(d.max_batch.sel(placement="ssd", tpot_slo_s=0.3)) > 0
    found = serving_slo.not_harmful_from(ds)
    assert found[("mixtral-8x7b", "sharegpt", "ssd")] is None                  # ~2x HBM's energy per token
    fig = serving_slo.plot(ds)
    lines = {ln.get_gid(): ln for ax in fig.axes for ln in ax.lines if ln.get_gid()}
    for p in ("hbm", "ssd"):                 # the lines carry the study's numbers: max batch, energy where it runs
        b = lines[f"max_batch|mixtral-8x7b|sharegpt|{p}"]
        np.testing.assert_allclose(b.get_xdata(), [30.0, 300.0], rtol=1e-12)
        mb = d.max_batch.sel(placement=p).values       # none meets the target: no point (a log axis has no 0)
        np.testing.assert_array_equal(b.get_ydata(), np.where(mb > 0, mb, np.nan))
        e = lines[f"energy|mixtral-8x7b|sharegpt|{p}"].get_ydata()
        runs = d.max_batch.sel(placement=p).values > 0
        np.testing.assert_allclose(e[runs], d.energy_per_request.sel(placement=p).values[runs], rtol=1e-12)
        assert np.isnan(e[~runs]).all()
    paths = save(fig, tmp_path, "serving_slo")
    assert all(p.stat().st_size > 0 for p in paths)
    png = [p for p in paths if p.suffix == ".png"]
    assert png and all(assert_png_drawn(p) is not None for p in png)


def test_search_objectives_and_constraints_may_name_request_outputs():
    from dse.config import presets
    from dse.search import space

    base = presets.compose()
    search = dict(objectives=["energy_per_output_token", "capacity_cost_usd"],
                  constraints={"tpot": {"max": 0.05}, "ttft": {"max": 2.0}},
                  space={"placement": {"type": "categorical", "choices": ["hbm", "ssd"]},
                         "batch": {"type": "categorical", "choices": [1, 64]}},
                  fixed={"profile": "sharegpt", "system": "8xh200-c2c"})
    parsed = space.parse(search, base)
    assert parsed.objectives[0] == "energy_per_output_token" and parsed.constraints["tpot"] == (-np.inf, 0.05)
    with pytest.raises(DseError, match="request variable"):
        space.parse({**search, "fixed": {"system": "8xh200-c2c"}}, base)
