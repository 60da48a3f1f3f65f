"""Memory hierarchy (docs/model.md s.12): a 3-tier split of Mixtral's 8 experts derived by hand, the exact
reductions to today's model at neutral settings, hand-solvable cache cases, and one-line errors for bad input.
The analytic reuse / residency model against the Monte-Carlo simulator is in tests/test_traces.py."""
from __future__ import annotations

import numpy as np
import pytest

import dse
from dse.model import hierarchy
from dse.config import presets
from dse.errors import DseError

from approx import assert_close

# Mixtral-8x7B (its config.json): 32 MoE layers, hidden 4096, expert width 14336, top-2 of 8, bf16 weights
N_MOE, EXPERT_BYTES = 32, 3 * 4096 * 14336 * 2.0
WEIGHTS = [8, 6, 4, 3, 2, 1, 1, 1]          # measured routing counts, hottest first (sum 26)
P = [2 * x / 26 for x in WEIGHTS]          # pick probabilities: scaled to sum to top_k = 2
HAND = dict(model="mixtral-8x7b", system="8xh200-c2c", accounting="refined", ep=1, batch=1, placement="ssd",
            routing_frequencies=WEIGHTS, hbm_cache_fraction=0.25, warm_tier="ddr", warm_fraction=0.25)


def _tier(name):
    return presets.preset("tier", name)


def test_three_tier_split_of_eight_experts_by_hand():
    """2 hottest experts static in HBM, the next 2 in DDR, the last 4 on the SSDs; one sequence touches expert i
    with probability p_i, so the warm tier serves p_3 + p_4 experts per layer and the SSDs p_5 + ... + p_8."""
    d = dse.evaluate(**HAND)
    warm, cold = P[2] + P[3], sum(P[4:])
    assert float(d.experts_fetched_warm) == pytest.approx(warm, rel=1e-12)
    assert float(d.experts_fetched) == pytest.approx(warm + cold, rel=1e-12)
    warm_bits, cold_bits = N_MOE * warm * EXPERT_BYTES * 8, N_MOE * cold * EXPERT_BYTES * 8
    assert float(d.warm_read_bits) == pytest.approx(warm_bits, rel=1e-12)
    assert float(d.offload_read_bits) == pytest.approx(cold_bits, rel=1e-12)
    ddr, ssd = _tier("ddr5"), _tier("nvme-gen5")
    e = d.energy.squeeze()
    assert float(e.sel(component="warm_read")) == pytest.approx(warm_bits * ddr["read_pj_per_bit"] * 1e-12, rel=1e-12)
    assert float(e.sel(component="offload_read")) == pytest.approx(cold_bits * ssd["read_pj_per_bit"] * 1e-12,
                                                                   rel=1e-12)
    link_pj = presets.preset("link", "nvlink-c2c-gen4")["pj_per_bit"]      # the warm tier shares the offload link
    assert float(e.sel(component="warm_link")) == pytest.approx(warm_bits * link_pj * 1e-12, rel=1e-12)
    assert float(e.sel(component="offload_link")) == pytest.approx(cold_bits * link_pj * 1e-12, rel=1e-12)
    # time: 4 SSDs x 13 GB/s = 52 GB/s for the cold bytes, DDR 460.8 GB/s, both over the 450 GB/s link
    # and the SSD's page read, exposed with the chance of a cold copy (its expected count, below one here)
    t_layer = max(cold * EXPERT_BYTES / (4 * ssd["bw_gbps"] * 1e9), (warm + cold) * EXPERT_BYTES / 450e9) + (
        ssd["read_latency_us"] * 1e-6 * min(cold, 1.0))
    assert float(d.copy_latency) == pytest.approx(N_MOE * t_layer, rel=1e-12)
    # capacity: 2 experts per layer in DDR, 4 on the SSDs, priced at their $/GB
    assert float(d.warm_tier_bytes) == pytest.approx(N_MOE * 2 * EXPERT_BYTES, rel=1e-12)
    assert float(d.offload_tier_bytes) == pytest.approx(N_MOE * 4 * EXPERT_BYTES, rel=1e-12)
    cost = dict(zip(d.cost_part.values.tolist(), d.capacity_cost.values.ravel().tolist()))
    assert cost["warm"] == pytest.approx(N_MOE * 2 * EXPERT_BYTES / 1e9 * ddr["usd_per_gb"], rel=1e-12)


def test_own_warm_link_and_its_bandwidth():
    """A warm tier on a PCIe-5 link of its own (64 GB/s): its copies no longer share the C2C link."""
    d = dse.evaluate(**{**HAND, "warm_link": "pcie-gen5-x16", "ssd_per_gpu": 64})
    pcie = presets.preset("link", "pcie-gen5-x16")
    warm, cold = P[2] + P[3], sum(P[4:])
    # 64 SSDs (832 GB/s) out-run the 450 GB/s C2C link: cold bytes at 450, warm bytes at 64 GB/s in parallel
    t_layer = max(warm * EXPERT_BYTES / (pcie["bw_gbps"] * 1e9), cold * EXPERT_BYTES / 450e9) + (
        _tier("nvme-gen5")["read_latency_us"] * 1e-6 * min(cold, 1.0))
    assert float(d.copy_latency) == pytest.approx(N_MOE * t_layer, rel=1e-12)
    e = d.energy.squeeze()
    assert float(e.sel(component="warm_link")) == pytest.approx(
        N_MOE * warm * EXPERT_BYTES * 8 * pcie["pj_per_bit"] * 1e-12, rel=1e-12)


def test_prefetch_accuracy_by_hand():
    """Accuracy a: (1 - a) of the prefetched experts are wrong and fetched again on demand: bits x (2 - a); the
    demand fetches add (1 - a) t_copy per MoE layer to the step."""
    base = dse.evaluate(**HAND)
    half = dse.evaluate(**HAND, prefetch_accuracy=0.5)
    assert float(half.offload_read_bits) == pytest.approx(1.5 * float(base.offload_read_bits), rel=1e-12)
    assert float(half.warm_read_bits) == pytest.approx(1.5 * float(base.warm_read_bits), rel=1e-12)
    assert float(half.step_latency - base.step_latency) == pytest.approx(0.5 * float(base.copy_latency), rel=1e-9)
    off = dse.evaluate(**HAND, prefetch=False, prefetch_accuracy=0.5)      # nothing prefetched: nothing wrong
    assert float(off.offload_read_bits) == pytest.approx(float(base.offload_read_bits), rel=1e-12)


@pytest.mark.parametrize("routing", [{}, {"routing_skew": 1.2}, {"routing_frequencies": "zipf"}])
@pytest.mark.parametrize("placement", ["ssd", "ddr", "hbm"])
def test_neutral_settings_are_todays_model(routing, placement):
    """warm_fraction = 0, reuse without a dynamic cache, and prefetch_accuracy = 1 give today's outputs; the
    hierarchy path itself (forced by a warm_fraction dimension) gives them at warm_fraction = 0."""
    if routing.get("routing_frequencies") == "zipf":
        routing = {"routing_frequencies": [1.0 / (i + 1) for i in range(256)]}
    base = dict(model="deepseek-r1", system="8xh200-c2c", placement=placement, batch=[1, 8, 64],
                hbm_cache_fraction=0.25, **routing)
    ref = dse.evaluate(**base)
    warm = "cxl" if placement != "cxl" else "ddr"
    for extra in (dict(warm_tier=warm, warm_fraction=0.0), dict(expert_reuse=0.9), dict(prefetch_accuracy=1.0),
                  dict(dynamic_cache_experts=0, expert_reuse=0.3)):
        d = dse.evaluate(**base, **extra)
        for name in ref.data_vars:
            assert_close(d[name], ref[name], rtol=1e-12, attrs=False)
    forced = dse.evaluate(**base, warm_tier=warm, warm_fraction=[0.0, 0.25]).sel(warm_fraction=0.0)
    for name in ("energy_per_token", "step_latency", "offload_read_bits", "experts_fetched", "capacity_cost_usd"):
        np.testing.assert_allclose(forced[name].values, ref[name].values, rtol=1e-9)


def test_cache_cases_solvable_by_hand():
    """Uniform top-2 of 8 experts, one sequence. reuse = 1: the same 2 experts every step; one LRU slot keeps one of
    them (random order), so 1 fetch per step. A cache as large as every non-static expert: nothing fetched."""
    classes = hierarchy.uniform_classes(2, 8, 0.0, 0.0)
    assert float(sum(hierarchy.fetches(classes, 1, 1.0, 1))) == pytest.approx(1.0, rel=1e-9)
    assert float(sum(hierarchy.fetches(classes, 1, 0.5, 8))) == pytest.approx(0.0, abs=1e-9)
    # no cache: today's touch probability 1 - (1 - p)^B, whatever the reuse
    assert float(sum(hierarchy.fetches(classes, 4, 0.7, 0))) == pytest.approx(8 * (1 - 0.75 ** 4), rel=1e-12)


def test_dynamic_cache_and_reuse_lower_fetches_and_hold_hbm():
    base = dict(model="deepseek-r1", system="8xh200-c2c", placement="ssd", batch=8, hbm_cache_fraction=0.25)
    ref = dse.evaluate(**base)
    d = dse.evaluate(**base, expert_reuse=[0.0, 0.5, 0.9], dynamic_cache_experts=32)
    fetched = d.experts_fetched.values
    assert np.all(np.diff(fetched) < 0) and fetched[0] < float(ref.experts_fetched)
    # 32 slots per MoE layer (58 layers), 3 x 7168 x 2048 bf16 each, held in HBM
    extra = 58 * 32 * 3 * 7168 * 2048 * 2.0
    assert float(d.hbm_bytes.max() - ref.hbm_bytes) == pytest.approx(extra, rel=1e-12)


@pytest.mark.parametrize("kw, key", [
    (dict(warm_tier="ddr", warm_fraction=1.5), "warm_fraction"),
    (dict(warm_tier="ddr", warm_fraction=-0.1), "warm_fraction"),
    (dict(warm_tier="ddr", warm_fraction=0.5, hbm_cache_fraction=0.75), "warm_fraction"),
    (dict(warm_tier="ssd", warm_fraction=0.5), "warm_tier"),
    (dict(warm_tier="optane", warm_fraction=0.5), "warm_tier"),
    (dict(warm_fraction=0.5), "warm_tier"),
    (dict(dynamic_cache_experts=-1), "dynamic_cache_experts"),
    (dict(dynamic_cache_experts=2.5), "dynamic_cache_experts"),
    (dict(expert_reuse=1.2), "expert_reuse"),
    (dict(prefetch_accuracy=-0.5), "prefetch_accuracy"),
    (dict(warm_tier="ddr", warm_fraction=0.2, warm_link="fibre"), "link"),
])
def test_bad_hierarchy_input_is_one_line(kw, key):
    with pytest.raises(DseError) as err:
        dse.evaluate(model="deepseek-r1", system="8xh200-c2c", placement="ssd", **kw)
    msg = str(err.value)
    assert key in msg and "\n" not in msg


def test_hierarchy_search_space_runs(tmp_path):
    """dse-search over the hierarchy (cold tier, HBM and DDR fractions, dynamic cache, batch) validates every value
    up front and records the hierarchy's variables with each trial; warm_fill counts in feasibility."""
    import xarray as xr

    from dse.search import compose, run

    cfg = compose("deepseek-r1-hierarchy", ["search.method=optuna", "search.n_trials=40", "search.batch_size=20",
                                            "search.progress=false",
                                            f"search.storage=journal:{tmp_path}/journal.log"])
    summary = run(cfg, tmp_path)
    assert summary["trials_in_study"] == 40
    trials = xr.open_dataset(tmp_path / "trials.nc")
    for name in ("warm_fraction", "dynamic_cache_experts", "hbm_cache_fraction", "placement"):
        assert name in trials
    assert len(set(trials["warm_fraction"].values.tolist())) > 1
