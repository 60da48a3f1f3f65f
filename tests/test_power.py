"""The board power limit and the energy boundary (docs/model.md "Power and the energy boundary"), by hand."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import dse

BASE = dict(model="mixtral-8x7b", system="hgx-h200", placement="hbm", context_len=1024)


def test_the_serving_floor_by_hand():
    """hgx-h200's engine constants (the sglang engine preset): the boards draw idle + 0.28 x (700 - 122.5) W whatever
    they do, and every operation runs at 0.94 of its achievable rate, so a memory-bound step takes longer (and 60 us
    of host time for its one sequence and 45 us per layer more)."""
    roofline = dse.evaluate(**BASE, batch=1, boundary="gpu", serving_efficiency=1.0, active_power_fraction=0.0,
                            host_us_per_sequence=0.0, layer_overhead_us=0.0)
    served = dse.evaluate(**BASE, batch=1, boundary="gpu")
    floor = 122.5 + 0.28 * (700.0 - 122.5)
    n, t = float(served.n_gpus), float(served.step_latency)
    # batch 1: every operation is memory-bound and the collectives are latency-bound (not scaled)
    assert t > float(roofline.step_latency) * 1.3
    assert float(served.energy.sel(component="background")) == pytest.approx(n * floor * t, rel=1e-9)
    dynamic = float(served.energy.sel(component=["hbm_weights", "hbm_kv", "hbm_activations", "compute"]).sum())
    assert float(served.gpu_power_w) == pytest.approx(floor + dynamic / (n * t), rel=1e-9)
    # the dynamic energy of the same bytes and FLOPs does not change with the engine
    for c in ("hbm_weights", "compute"):
        assert float(served.energy.sel(component=c)) == pytest.approx(float(roofline.energy.sel(component=c)),
                                                                      rel=1e-9)


def test_throttle_stretches_the_step_by_the_dynamic_power_over_its_budget():
    """A step whose boards would draw 1.3x their dynamic budget (limit - idle) takes 1.3x as long: dynamic energy
    unchanged, static energy x 1.3, mean board power = the limit."""
    free = dse.evaluate(**BASE, batch=256, power_limit_w=1e5, boundary="gpu", active_power_fraction=0.0,
                        host_us_per_sequence=0.0)
    n = float(free.n_gpus)
    board = float(free.energy.sel(component=["hbm_weights", "hbm_kv", "hbm_activations", "offload_hbm_write",
                                             "compute", "onchip"]).sum())
    idle = 122.5                                        # h200-hgx idle_w (measured, the preset's provenance)
    dynamic_w = board / (n * float(free.step_latency))  # by hand: the boards' dynamic power per GPU
    assert float(free.gpu_power_w) == pytest.approx(idle + dynamic_w, rel=1e-9) and not bool(free.power_limited)
    limit = idle + dynamic_w / 1.3                      # the budget is 1/1.3 of what the step would draw
    tight = dse.evaluate(**BASE, batch=256, power_limit_w=limit, boundary="gpu", active_power_fraction=0.0,
                         host_us_per_sequence=0.0)
    assert bool(tight.power_limited)
    assert float(tight.step_latency) == pytest.approx(1.3 * float(free.step_latency), rel=1e-9)
    assert float(tight.gpu_power_w) == pytest.approx(limit, rel=1e-9)
    for c in ("hbm_weights", "compute", "onchip"):
        assert float(tight.energy.sel(component=c)) == pytest.approx(float(free.energy.sel(component=c)), rel=1e-9)
    assert float(tight.energy.sel(component="background")) == pytest.approx(
        1.3 * float(free.energy.sel(component="background")), rel=1e-9)


def test_node_and_facility_terms_by_hand():
    ds = dse.evaluate(**BASE, batch=64, boundary=["gpu", "node", "facility"], pue=1.5)
    e = ds.energy.sel(component=["node_other", "psu_loss", "facility"])
    gpu = float(ds.step_energy.sel(boundary="gpu"))
    t = float(ds.step_latency)
    node_other = 1600.0 * t                     # hgx-h200: node_other_w = 1600 W for its 8 GPUs, all used here
    psu = (gpu + node_other) * (1 / 0.95 - 1)   # psu_efficiency 0.95
    assert float(e.sel(boundary="gpu").sum()) == 0.0
    assert float(ds.step_energy.sel(boundary="node")) == pytest.approx(gpu + node_other + psu, rel=1e-9)
    assert float(ds.step_energy.sel(boundary="facility")) == pytest.approx(1.5 * (gpu + node_other + psu), rel=1e-9)


@settings(max_examples=25, deadline=None)
@given(system=st.sampled_from(["hgx-h100", "hgx-h200", "hgx-b200"]),
       model=st.sampled_from(["mixtral-8x7b", "deepseek-r1", "qwen3-235b-a22b", "gpt-oss-120b"]),
       batch=st.integers(1, 4096), wb=st.sampled_from([0.5, 1.0, 2.0]),
       placement=st.sampled_from(["hbm", "ddr", "ssd"]), limit_share=st.floats(0.3, 1.0))
def test_board_power_never_above_the_limit_and_boundaries_nest(system, model, batch, wb, placement, limit_share):
    limit = {"hgx-h100": 700.0, "hgx-h200": 700.0, "hgx-b200": 1000.0}[system]
    idle = {"hgx-h100": 122.5, "hgx-h200": 122.5, "hgx-b200": 175.0}[system]
    cap = idle + limit_share * (limit - idle)
    ds = dse.evaluate(model=model, system=system, placement=placement, batch=batch, weight_bytes=wb,
                      power_limit_w=cap, boundary=["gpu", "node", "facility"])
    assert float(ds.gpu_power_w.max()) <= cap * (1 + 1e-9)
    e = ds.energy_per_token
    assert np.isfinite(e.values).all() and (e.values >= 0).all()
    assert (e.sel(boundary="node") >= e.sel(boundary="gpu")).all()
    assert (e.sel(boundary="facility") >= e.sel(boundary="node")).all()


@settings(max_examples=15, deadline=None)
@given(system=st.sampled_from(["hgx-h100", "hgx-h200", "hgx-b200"]),
       model=st.sampled_from(["mixtral-8x7b", "deepseek-r1", "qwen3-235b-a22b", "gpt-oss-120b"]),
       batch=st.integers(1, 2048), prompt=st.integers(1, 8192), output=st.integers(1, 2048),
       chunk=st.sampled_from([None, 256, 2048]), wb=st.sampled_from([0.5, 1.0, 2.0]))
def test_continuous_batching_stays_under_the_limit_and_boundaries_nest(system, model, batch, prompt, output, chunk,
                                                                       wb):
    """Steps with prefill chunks fused in, at any mix: the boards' mean power over a step (B / O requests' energy
    per step over tpot, experts and KV in HBM, boundary gpu) never exceeds the limit; energies are finite and
    non-negative, the prefill's share too, and they nest gpu <= node <= facility."""
    limit = {"hgx-h100": 700.0, "hgx-h200": 700.0, "hgx-b200": 1000.0}[system]
    ds = dse.evaluate(model=model, system=system, placement="hbm", batch=batch, weight_bytes=wb, prompt_len=prompt,
                      output_len=output, boundary=["gpu", "node", "facility"],
                      **({} if chunk is None else {"prefill_chunk": chunk}))
    gpu = ds.sel(boundary="gpu")
    step_w = float(gpu.energy_per_request * batch / output / gpu.tpot / gpu.n_gpus)
    assert step_w <= limit * (1 + 1e-9)
    e = ds.energy_per_request
    for v in (e, ds.prefill_energy, ds.decode_energy, ds.ttft, ds.tpot):
        assert np.isfinite(v.values).all() and (v.values >= 0).all()
    assert (e.sel(boundary="node") >= e.sel(boundary="gpu")).all()
    assert (e.sel(boundary="facility") >= e.sel(boundary="node")).all()


@pytest.mark.parametrize("kw, word", [(dict(boundary="rack"), "boundary"), (dict(pue=0.9), "pue"),
                                      (dict(power_limit_w=100.0), "power_limit_w"),
                                      (dict(mem_efficiency=0.0), "mem_efficiency"),
                                      (dict(compute_efficiency=1.2), "compute_efficiency"),
                                      (dict(serving_efficiency=0.0), "serving_efficiency"),
                                      (dict(active_power_fraction=1.0), "active_power_fraction"),
                                      (dict(host_us_per_sequence=-1.0), "host_us_per_sequence"),
                                      (dict(layer_overhead_us=-1.0), "layer_overhead_us"),
                                      (dict(fp8_layer_overhead_us=-1.0), "fp8_layer_overhead_us")])
def test_bad_reality_inputs_are_one_line_errors_naming_the_key(kw, word):
    with pytest.raises(dse.DseError) as err:
        dse.evaluate(**BASE, batch=1, **kw)
    assert word in str(err.value) and "\n" not in str(err.value)


def test_fp8_weights_compute_at_the_fp8_rate():
    """h200-hgx: fp8 peak 1978.9 TFLOP/s at 0.4345 pJ/FLOP, bf16 989.4 at 0.869 (the preset)."""
    a = dse.evaluate(**BASE, batch=512, weight_bytes=1.0, compute_precision=["bf16", "fp8"], boundary="gpu")
    flops = float(a.flops)
    assert float(a.energy.sel(component="compute", compute_precision="bf16")) == pytest.approx(flops * 0.869e-12)
    assert float(a.energy.sel(component="compute", compute_precision="fp8")) == pytest.approx(flops * 0.4345e-12)


def test_host_time_per_sequence_by_hand():
    """64 sequences in one data-parallel group, 50 us of host time each: 3.2 ms more per step (no limit: no
    throttle to mix in); with dp = 2 each group's host has half of them."""
    ds = dse.evaluate(**BASE, batch=64, power_limit_w=1e6, host_us_per_sequence=[0.0, 50.0])
    assert float(ds.step_latency.diff("host_us_per_sequence").squeeze()) == pytest.approx(64 * 50e-6, rel=1e-9)
    ds = dse.evaluate(**BASE, batch=64, power_limit_w=1e6, tp=4, dp=2, host_us_per_sequence=[0.0, 50.0])
    assert float(ds.step_latency.diff("host_us_per_sequence").squeeze()) == pytest.approx(32 * 50e-6, rel=1e-9)


def test_layer_overhead_by_hand():
    """Mixtral's 32 layers, 40 us of fixed GPU time each: 1.28 ms more per step whatever the batch or the
    parallelism; a request of 1 + 16 output tokens (one prefill pass, 16 decode steps) has it 17 times over."""
    for kw in (dict(batch=1), dict(batch=256, tp=4, dp=2)):
        ds = dse.evaluate(**BASE, **kw, power_limit_w=1e6, layer_overhead_us=[0.0, 40.0])
        assert float(ds.step_latency.diff("layer_overhead_us").squeeze()) == pytest.approx(32 * 40e-6, rel=1e-9)
    req = dse.evaluate(model="mixtral-8x7b", system="hgx-h200", batch=1, power_limit_w=1e6, prompt_len=64, output_len=16, batching="lockstep",
                       layer_overhead_us=[0.0, 40.0])
    assert float(req.request_latency.diff("layer_overhead_us").squeeze()) == pytest.approx(17 * 32 * 40e-6,
                                                                                            rel=1e-9)


def test_fp8_layer_overhead_by_hand():
    """Where products compute in fp8 (fp8 weights, or 16-bit ones at compute_precision=fp8) a step takes
    fp8_layer_overhead_us more per layer: Mixtral's 32 layers x 100 us = 3.2 ms. 16-bit products take none, nor do
    4-bit weights: on an H200 (no fp4 units) they run on the fp8 units as 4-bit kernels, on a B200 on its fp4 units."""
    cases = [(dict(weight_bytes=1.0), 1), (dict(weight_bytes=2.0, compute_precision="fp8"), 1),
             (dict(weight_bytes=2.0), 0), (dict(weight_bytes=1.0, compute_precision="bf16"), 0),
             (dict(weight_bytes=0.5), 0), (dict(weight_bytes=0.5, system="hgx-b200"), 0),
             (dict(weight_bytes=1.0, system="hgx-b200"), 1)]
    for kw, fp8 in cases:
        ds = dse.evaluate(**{**BASE, **kw}, batch=8, power_limit_w=1e6, fp8_layer_overhead_us=[0.0, 100.0])
        diff = float(ds.step_latency.diff("fp8_layer_overhead_us").squeeze())
        assert diff == pytest.approx(fp8 * 32 * 100e-6, rel=1e-9, abs=1e-12), kw


@pytest.mark.parametrize("batching", ["lockstep", "continuous"])
def test_requests_respect_the_power_limit(batching):
    """A request's energy over its time is a power: lockstep, ``batch`` requests run together for request_latency
    (continuous: ``batch`` in flight, each for request_latency); per GPU it never exceeds the limit, and at a tight
    limit the boards run at it (the runs stretch, as one step does)."""
    kw = dict(model="mixtral-8x7b", system="hgx-h200", placement="hbm", boundary="gpu", prompt_len=512, output_len=128, batch=64, batching=batching,
              active_power_fraction=0.0)
    free = dse.evaluate(**kw, power_limit_w=1e6)
    n = float(free.n_gpus)
    free_w = float(64 * free.energy_per_request / free.request_latency) / n
    assert free_w > 300.0                       # the step draws well above the tight limit below
    for limit in (250.0, 400.0, 700.0):
        ds = dse.evaluate(**kw, power_limit_w=limit)
        mean_w = float(64 * ds.energy_per_request / ds.request_latency) / n
        assert mean_w <= limit * (1 + 1e-9)
        assert float(ds.tpot) >= float(free.tpot) * (1 - 1e-12)
    tight = dse.evaluate(**kw, power_limit_w=250.0)
    assert float(64 * tight.energy_per_request / tight.request_latency) / n == pytest.approx(250.0, rel=0.02)


def test_max_batch_counts_the_throttle():
    """On a node with a power limit the largest batch under a TPOT target is the brute-force one, where the
    throttle stretches the steps (its times need the energy, so the search cannot skip the traffic)."""
    kw = dict(model="mixtral-8x7b", system="hgx-h200", prompt_len=1024, output_len=256, placement="hbm",
              power_limit_w=400.0)
    ds = dse.evaluate(**kw, batch=list(range(60, 200)))
    free = dse.evaluate(**(kw | dict(power_limit_w=1e6)), batch=list(range(60, 200)))
    assert bool((ds.tpot > free.tpot * 1.01).any())                 # the throttle binds in this range
    target = float(ds.tpot.sel(batch=130))
    want = int(ds.batch.where(ds.tpot <= target, drop=True).max())
    got = int(dse.max_batch(**kw, tpot_slo_s=target).max_batch)
    assert got == want
