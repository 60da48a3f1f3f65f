"""dse.traces: the seeded Monte-Carlo simulator of routing with reuse through LRU / LFU expert caches, against the
analytic model of dse.hierarchy (docs/model.md s.12.2), and the trace file format."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from dse import traces
from dse.model import hierarchy
from dse.errors import DseError

STEPS, WARMUP = 4000, 300


def _analytic(p, batch, reuse, slots, hot, warm):
    classes = hierarchy.classes_by_rank(np.sort(p)[::-1], hot, warm)
    return np.array([float(x) for x in hierarchy.fetches(classes, batch, reuse, slots)])


def _demand(p, batch, hot, warm):
    """Non-static experts touched per step (no cache): sum over them of 1 - (1 - p_i)^B, by hand."""
    return float(np.sum(1 - (1 - np.sort(p)[::-1][hot:]) ** batch))


def _grid():
    """(E, k) x batch x skew x reuse; static HBM set E/8, warm tier E/4, cold the rest; 4 and 16 LRU slots."""
    return itertools.product([(8, 2), (64, 4), (256, 8)], [8, 32], [0.0, 0.8], [0.0, 0.3, 0.6])


def _thrash(slots, demand, reuse):
    """The regime the mean-field (Che) approximation leaves out: under reuse, a cache about the size of the batch's
    per-step demand thrashes on the demand's fluctuations (s.12.2, "Accuracy")."""
    return reuse > 0 and 0.6 <= slots / demand <= 1.5


@pytest.mark.slow
def test_analytic_model_within_2_percent_of_monte_carlo():
    worst, checked = 0.0, 0
    for (E, k), batch, skew, reuse in _grid():
        p = traces.zipf_probabilities(E, k, skew)
        hot, warm = E // 8, E // 4
        sets = traces.generate(p, batch, STEPS + WARMUP, reuse, seed=7)
        touch = traces.touched(sets, E)
        tiers = traces.tier_map(E, hot, warm, np.argsort(-p, kind="stable"))
        for slots in (4, 16):
            if slots >= E - hot or _thrash(slots, _demand(p, batch, hot, warm), reuse):
                continue
            mc = traces.replay(touch, tiers, slots, "lru", WARMUP, seed=11)
            model = _analytic(p, batch, reuse, slots, hot, warm)
            err = abs(model.sum() / mc.sum() - 1)
            worst, checked = max(worst, err), checked + 1
            assert err < 0.02, ((E, k, batch, skew, reuse, slots), model, mc)
            assert model[0] == pytest.approx(mc[0], rel=0.05, abs=0.05)       # the warm / cold split too
    assert checked >= 50 and worst > 0          # the grid was exercised (and the simulator is not the model)


def test_thrash_regime_is_underestimated_as_documented():
    """Mixtral-like 64 experts, top-4, batch 8, skew 0.8, reuse 0.9, 16 slots ~ the 14.8 experts demanded per step:
    LRU thrashes whenever the working set exceeds the cache; the mean-field model does not see it."""
    p = traces.zipf_probabilities(64, 4, 0.8)
    mc = traces.simulate(p, 8, 0.9, 16, 8, 16, steps=STEPS, warmup=WARMUP, seed=3).sum()  # model: -26 %
    assert _analytic(p, 8, 0.9, 16, 8, 16).sum() < 0.9 * mc


def test_no_cache_and_no_reuse_match_todays_touch_probability():
    """Without a cache the simulator's fetches per step are the expected touched non-static experts (s.3.1)."""
    p = traces.zipf_probabilities(64, 4, 1.0)
    mc = traces.simulate(p, 16, 0.5, 0, 8, 0, steps=4000, warmup=0, seed=5).sum()
    assert mc == pytest.approx(_demand(p, 16, 8, 0), rel=0.01)


def test_sampler_reproduces_pick_probabilities_and_reuse():
    """Systematic sampling gives each expert its pick probability; the reuse estimator recovers the reuse."""
    p = traces.zipf_probabilities(32, 4, 1.0)
    sets = traces.generate(p, 16, 3000, 0.6, seed=1)
    trace = traces.Trace(32, 4, {0: sets})
    np.testing.assert_allclose(trace.frequencies(), p, atol=0.01)
    assert trace.reuse() == pytest.approx(0.6, abs=0.02)
    assert all(len(set(row)) == 4 for row in sets.reshape(-1, 4)[:500])      # distinct experts per token


def test_lfu_keeps_the_hottest_non_static_experts():
    """Perfect LFU converges to a static cache of the next-hottest experts: fetches = demand of the experts after
    them (no reuse needed)."""
    p = traces.zipf_probabilities(64, 4, 1.0)
    mc = traces.simulate(p, 8, 0.0, 8, 8, 0, steps=4000, warmup=500, policy="lfu", seed=2).sum()
    assert mc == pytest.approx(_demand(p, 8, 16, 0), rel=0.02)


def test_seeded_simulation_is_deterministic():
    p = traces.zipf_probabilities(16, 2, 0.5)
    a = traces.simulate(p, 4, 0.5, 3, 2, 4, steps=300, warmup=10, seed=9)
    b = traces.simulate(p, 4, 0.5, 3, 2, 4, steps=300, warmup=10, seed=9)
    assert np.array_equal(a, b)


def test_trace_file_round_trip_and_errors(tmp_path):
    p = traces.zipf_probabilities(16, 2, 0.5)
    layers = {0: traces.generate(p, 3, 20, 0.5, seed=1), 5: traces.generate(p, 3, 20, 0.2, seed=2)}
    path = traces.write(tmp_path / "t.txt", layers, 16)
    back = traces.read(path)
    assert (back.n_experts, back.top_k) == (16, 2) and sorted(back.layers) == [0, 5]
    assert np.array_equal(back.layers[5], layers[5])
    bad = tmp_path / "bad.txt"
    for text, word in (("0 0 0 1 2\n", "header"), ("# n_experts=4 top_k=2\n0 0 0 1\n", "expected"),
                       ("# n_experts=4 top_k=2\n0 0 0 1 9\n", "out of range"),
                       ("# n_experts=4 top_k=2\n0 0 0 1 2\n2 0 0 1 2\n", "every sequence")):
        bad.write_text(text)
        with pytest.raises(DseError, match=word) as err:
            traces.read(bad)
        assert "\n" not in str(err.value)


def test_measured_trace_through_the_engine(tmp_path):
    """A trace file read back gives routing_frequencies and expert_reuse; dse.evaluate's fetches per layer then
    match the same trace replayed through the same caches (Mixtral: 2 static experts, 2 LRU slots, batch 8)."""
    import dse

    p = traces.pick_probabilities([8, 6, 4, 3, 2, 1, 1, 1], 2)
    sets = traces.generate(p, 8, 3000, 0.5, seed=4)
    trace = traces.read(traces.write(tmp_path / "mixtral.trace", {0: sets}, 8))
    freqs, reuse = trace.frequencies(), trace.reuse()
    ranking = np.argsort(-freqs, kind="stable")
    mc = traces.replay(traces.touched(trace.layers[0], 8), traces.tier_map(8, 2, 0, ranking), 2, "lru", 200, seed=1)
    d = dse.evaluate(model="mixtral-8x7b", system="8xh200-c2c", placement="ssd", batch=8, hbm_cache_fraction=0.25,
                     routing_frequencies=freqs.tolist(), expert_reuse=reuse, dynamic_cache_experts=2)
    assert float(d.experts_fetched) == pytest.approx(mc.sum(), rel=0.03)
