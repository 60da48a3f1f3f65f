"""Continuous batching (dse.model.requests, docs/model.md s.11.5): the steady-state closed form against an explicit
step-by-step simulation of the batch, each step (decode with its prefill chunks fused in) evaluated with dse's own
decode-step kernel at that step's shape;
TTFT far below lockstep's at a large batch (by hand); the batching and attention_parallel settings."""
from types import SimpleNamespace

import numpy as np
import pytest

import dse
from dse.errors import DseError
from dse.model import kernel, namespace
from dse.run import engine

#: Tolerance of the closed form against the simulation. Over a period every slot runs through every context once
#: and every request's chunks are prefilled once, so the step means (tpot, energy, tokens/s) agree to ~1e-15 where
#: the prompt splits into equal chunks. With a shorter last chunk the closed form fuses chunks of the mean length,
#: the simulation the real ones (measured: 1.8e-4 and 2.3e-4 in CASES). TTFT: the closed form charges a request's
#: first-token step the average step (measured: 0 to 0.4 % below the simulation in CASES).
RTOL_STEP = 1e-3     # tpot, energy per request, tokens/s/GPU: means over one whole period
RTOL_TTFT = 0.01     # mean TTFT over the period's requests


def _kernel_step(x, plan, **shape):
    """One pass evaluated by dse's decode-step kernel (dse.model.kernel) at the given workload shape."""
    w = SimpleNamespace(**{**vars(x["w"]), **shape})
    t = namespace(kernel.routed_tables(x["m"], x["g"], x["s"], w, plan))
    out = kernel.decode_step(x["m"], x["g"], x["s"], x["link"], x["tier"], w, t)
    return np.asarray(out.latency, float), np.asarray(sum(out.energy[c] for c in kernel.COMPONENTS), float)


def simulate(B, P, O, c, x, plan, periods=2):
    """An explicit simulation of continuously batched serving, one step at a time.

    B decode slots, each holding a sequence that has decoded ``age`` of its O tokens (ages spread evenly over
    0 .. O - 1: the steady state). Each step every slot decodes one token at context P + age; a slot whose sequence
    has n_c steps left admits the next request, whose prompt is prefilled one chunk of c tokens (the last P mod c)
    per step, so that it joins decode (age 0) in the step after the old sequence's last. A step is one pass (chunked
    prefill fused with decode, as vLLM runs it): the kernel's table for B sequences of one token at their mean
    context (every attention operation's FLOPs and bytes are linear in a sequence's context) with the step's own
    chunks fused in (their tokens in the linear products, their attention over their own mean causal context) --
    the kernel evaluated at every step's shape. Returns the mean step time, the energy per request, and the mean
    TTFT (the start of a request's first chunk step to the end of its first decode step) over the last period of O
    steps."""
    sizes = [c] * (P // c) + ([P % c] if P % c else [])
    n_c = len(sizes)
    ages = [int(np.floor(i * O / B)) for i in range(B)]
    # requests already being prefilled at step 0 (their slots' sequences have fewer than n_c steps left)
    pending = [{"slot": i, "next": n_c - (O - a), "start": 0 if O - a == n_c else None}
               for i, a in enumerate(ages) if O - a <= n_c]
    steps, first_decode = [], {}
    for t in range(periods * O):
        for i, a in enumerate(ages):
            if O - a == n_c and not any(p["slot"] == i for p in pending):
                pending.append({"slot": i, "next": 0, "start": t})
        contexts = [P + a for a in ages]
        chunks = [p["next"] for p in pending]
        steps.append((float(np.mean(contexts)), chunks, [p["start"] for p in pending if p["next"] == 0]))
        # advance: decode one token per slot; prefill one chunk per pending request
        ages = [a + 1 for a in ages]
        for p in pending:
            p["next"] += 1
        for p in [p for p in pending if p["next"] == n_c]:
            assert ages[p["slot"]] == O, "the new request joins when its slot's sequence has finished"
            ages[p["slot"]] = 0
            if p["start"] is not None:
                first_decode.setdefault(t + 1, []).append(p["start"])
            pending.remove(p)
        assert all(a < O for a in ages)
    # evaluate every step at its shape (vectorized over the steps): its chunks' tokens, their mean size and their
    # token-weighted mean causal context (chunk k of a prompt: tokens k c + 1 .. k c + q attend over k c + (q + 1) / 2)
    tokens = np.array([float(sum(sizes[k] for k in s[1])) for s in steps])
    n_chunks = np.array([float(len(s[1])) for s in steps])
    context = np.array([sum(sizes[k] * (k * c + (sizes[k] + 1) / 2) for k in s[1]) for s in steps])
    step_t, step_e = _kernel_step(
        x, plan, context_len=np.array([s[0] for s in steps]), query_len=1.0, fused_tokens=tokens,
        fused_chunk=np.where(n_chunks > 0, tokens / np.maximum(n_chunks, 1), 1.0),
        fused_context=context / np.maximum(tokens, 1))
    ends = np.cumsum(step_t)
    begins = ends - step_t
    window = slice((periods - 1) * O, periods * O)
    ttft = [ends[t] - begins[s] for t, starts in first_decode.items() for s in starts
            if (periods - 1) * O <= s < periods * O - n_c - 1]
    return SimpleNamespace(tpot=float(step_t[window].mean()), energy_per_request=float(step_e[window].sum()) / B,
                           ttft=float(np.mean(ttft)), n_ttft=len(ttft), n_c=n_c,
                           chunks_per_step=float(np.mean([len(s[1]) for s in steps[window]])))


CASES = [  # (model, placement, B, P, O, prefill_chunk): r = B n_c / O chunks per step
    ("mixtral-8x7b", "hbm", 256, 1024, 256, 256),    # r = 4, an integer: every step alike
    ("mixtral-8x7b", "hbm", 64, 300, 100, 128),      # r = 1.92, chunks 128, 128, 44
    ("mixtral-8x7b", "ddr", 16, 512, 200, None),     # r = 0.08: most steps carry no chunk; experts from DDR
    ("qwen3-235b-a22b", "hbm", 100, 700, 150, 256),  # r = 2, B / O not an integer
]


@pytest.mark.parametrize("model, placement, B, P, O, c", CASES)
def test_continuous_equals_a_step_by_step_simulation(model, placement, B, P, O, c):
    kw = dict(model=model, system="8xh200-c2c", placement=placement, batch=B, prompt_len=P, output_len=O,
              batching="continuous", **({} if c is None else {"prefill_chunk": c}))
    grid = engine.resolve(**kw)
    ds = grid.dataset()
    x = {k: v for k, v in grid.whole().items() if k != "pre"}
    assert int(np.asarray(x["s"].dp)) == 1
    sim = simulate(B, P, O, P if c is None else c, x, grid.compute.keywords["routing_plan"])
    assert sim.n_ttft > 0
    assert sim.chunks_per_step == pytest.approx(B * sim.n_c / O, rel=1e-12)
    assert float(ds.tpot) == pytest.approx(sim.tpot, rel=RTOL_STEP)
    assert float(ds.energy_per_request) == pytest.approx(sim.energy_per_request, rel=RTOL_STEP)
    assert float(ds.energy_per_output_token) == pytest.approx(sim.energy_per_request / O, rel=RTOL_STEP)
    assert float(ds.tokens_per_s_per_gpu) == pytest.approx(B / sim.tpot / 8, rel=RTOL_STEP)
    assert float(ds.ttft) == pytest.approx(sim.ttft, rel=RTOL_TTFT)


def test_continuous_ttft_far_below_lockstep_by_hand():
    """Mixtral-8x7B on 8 x H200, B = 256, prompt 1024, output 256, the whole prompt per chunk (unset)."""
    B, P, O = 256, 1024, 256
    kw = dict(model="mixtral-8x7b", system="8xh200-c2c", batch=B, prompt_len=P, output_len=O)
    ds = dse.evaluate(**kw, batching=["continuous", "lockstep"])
    cont, lock = ds.sel(batching="continuous"), ds.sel(batching="lockstep")
    # lockstep: the batch's whole prefill comes first; at least its FLOPs at peak: 2 x active parameters x B P
    # tokens over 8 GPUs at 989.4 TFLOP/s (12.9e9 active parameters without the embedding: ~0.85 s)
    # (q, k, v, o: 4096 x 128 x (32 + 8 + 8 + 32) per layer; the router; 2 of 8 experts of 3 x 4096 x 14336)
    active = 32 * (4096 * 128 * 80 + 4096 * 8 + 2 * 3 * 4096 * 14336)
    assert float(lock.ttft) > 2 * active * B * P / (8 * 989.4e12) > 0.8
    # continuous: n_c = 1 and B / O = 1 prompt per step, so the new request's prompt takes one step carrying its
    # chunk (a whole step, as any other) and the next step yields its first token: ttft = 2 tpot
    assert float(cont.ttft) == pytest.approx(2 * float(cont.tpot), rel=1e-12)
    # the step: the decode pass at the mean context of a request's life with one 1024-token prompt fused in. Run as
    # two passes it would take t_d + t_p; fused, the weights are read once, not twice: it saves one read of a GPU's
    # weights, 46.7e9 parameters x 2 B / 8 GPUs at 4.8 TB/s = 2.43 ms (every expert is touched by both passes)
    t_d = float(dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", batch=B, context_len=[P + 127, P + 128])
                .step_latency.mean())            # the decode step is linear in the context: its mean at P + 127.5
    t_p = float(dse.evaluate(**{**kw, "batch": 1}, batching="lockstep").prefill_latency)   # one prompt's prefill pass
    assert t_d + t_p - float(cont.tpot) == pytest.approx(46.7e9 * 2 / 8 / 4.8e12, rel=0.05)
    assert float(cont.tpot) > max(t_d, t_p)
    assert float(cont.ttft) < 0.05 < float(lock.ttft) / 20
    # continuous serving pays the prefill inside the steps: its tpot exceeds lockstep's decode-only mean
    assert float(cont.tpot) > float(lock.tpot)
    assert float(cont.tokens_per_s_per_gpu) == pytest.approx(B / float(cont.tpot) / 8, rel=1e-12)


def test_continuous_prefill_chunking_and_dp_groups():
    """Smaller chunks: more steps before the first token but each step shorter; per-request prefill FLOPs are the
    prompt's whatever the chunking; on DP groups one prompt per group is prefilled at once."""
    kw = dict(model="mixtral-8x7b", system="8xh200-c2c", batch=64, prompt_len=2048, output_len=128)
    ds = dse.evaluate(**kw, prefill_chunk=[256, 512, 2048])
    np.testing.assert_allclose(ds.prefill_flops, ds.prefill_flops.isel(prefill_chunk=0), rtol=1e-12)
    lock = dse.evaluate(**kw, batching="lockstep")
    assert float(ds.prefill_flops.sel(prefill_chunk=2048)) == pytest.approx(float(lock.prefill_flops), rel=1e-12)
    # KV written per B requests is the lockstep batch's: every prompt and output token once
    np.testing.assert_allclose(ds.kv_written_bytes, float(lock.kv_written_bytes), rtol=1e-12)
    # the request latency is its TTFT plus O - 1 more steps
    np.testing.assert_allclose(ds.request_latency, ds.ttft + (128 - 1) * ds.tpot, rtol=1e-12)


def test_batching_setting_and_decode_only_studies():
    with pytest.raises(DseError, match="batching"):
        dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", prompt_len=100, output_len=10, batching="static")
    # decode-only studies do not depend on it
    a, b = (dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", batch=32, batching=x) for x in ("continuous",
                                                                                                "lockstep"))
    assert float(a.step_latency) == float(b.step_latency)
    # the default is continuous
    d = dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", batch=32, prompt_len=500, output_len=50)
    c = dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", batch=32, prompt_len=500, output_len=50,
                     batching="continuous")
    assert float(d.ttft) == float(c.ttft)


# --------------------------------------------------------------------------------------- attention_parallel: auto
def test_attention_parallel_auto():
    """auto: dp for MLA models on more than one GPU, tp otherwise, per point of a model / system dimension."""
    kw = dict(system="8xh200-c2c", batch=32)
    # (tp = 1: dp and tp attention are the same split)
    for model, tp, want in (("deepseek-r1", 8, "dp"), ("deepseek-r1", 1, "tp"), ("mixtral-8x7b", 8, "tp")):
        dp = 1 if tp > 1 else 8
        auto = dse.evaluate(model=model, **kw, tp=tp, dp=dp, ep=8)
        pinned = dse.evaluate(model=model, **kw, tp=tp, dp=dp, ep=8, attention_parallel=want)
        assert float(auto.step_latency) == float(pinned.step_latency), (model, tp)
        assert float(auto.hbm_bytes) == float(pinned.hbm_bytes), (model, tp)
    both = dse.evaluate(model=["deepseek-r1", "mixtral-8x7b"], **kw, attention_parallel=["auto", "tp", "dp"])
    s = both.step_latency
    assert float(s.sel(model="deepseek-r1", attention_parallel="auto")) == float(
        s.sel(model="deepseek-r1", attention_parallel="dp"))
    assert float(s.sel(model="mixtral-8x7b", attention_parallel="auto")) == float(
        s.sel(model="mixtral-8x7b", attention_parallel="tp"))
    # the head-divisibility rule reads the resolved setting: tp = 3 does not divide Mixtral's 32 heads (tp), but
    # DeepSeek's MLA under auto (dp) needs no head split
    with pytest.raises(DseError, match="does not divide"):
        dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", tp=3, ep=3, batch=8)
    ok = dse.evaluate(model="deepseek-r1", system="8xh200-c2c", tp=3, ep=3, batch=8)
    assert np.isfinite(float(ok.step_latency))
    with pytest.raises(DseError, match="does not divide"):
        dse.evaluate(model="deepseek-r1", system="8xh200-c2c", tp=3, ep=3, batch=8, attention_parallel="tp")


def test_paper_studies_pin_tp_attention():
    from dse.config import presets

    for study in ("paper-fig45-deepseek", "paper-fig45-mixtral", "paper-fig6-llama3", "paper-fig6-maverick"):
        assert presets.compose(study=study)["workload"]["attention_parallel"] == "tp", study
