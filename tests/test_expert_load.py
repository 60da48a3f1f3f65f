"""The busiest expert-parallel GPU: exact enumeration, Monte Carlo and hand-derived cases."""
import itertools

import numpy as np
import pytest

from dse.model import expert_load


def _enumerate(n_experts, top_k, ep, batch):
    """E[max per-GPU touched experts] by listing every routing of ``batch`` tokens (each picks top_k distinct)."""
    owner = np.repeat(np.arange(ep), expert_load.group_sizes(n_experts, ep))
    subsets = list(itertools.combinations(range(n_experts), top_k))
    total = 0
    for choice in itertools.product(subsets, repeat=batch):
        touched = sorted(set().union(*choice))
        total += np.bincount(owner[touched], minlength=ep).max()
    return total / len(subsets) ** batch


@pytest.mark.parametrize("n_experts,top_k,ep,batch", [(8, 2, 4, 1), (8, 2, 4, 2), (8, 2, 4, 3), (6, 1, 3, 3),
                                                      (7, 2, 3, 2), (5, 2, 2, 3), (9, 3, 4, 2)])
def test_equals_exact_enumeration(n_experts, top_k, ep, batch):
    assert expert_load.busiest_uniform(batch, top_k, n_experts, ep) == pytest.approx(
        _enumerate(n_experts, top_k, ep, batch), rel=1e-9)


def test_mixtral_batch1_by_hand():
    # 2 distinct experts of 8 on 4 GPUs of 2: they share a GPU with probability 4 / C(8, 2) = 1/7 -> 1 + 1/7
    assert expert_load.busiest_uniform(1, 2, 8, 4) == pytest.approx(8 / 7, rel=1e-12)


@pytest.mark.parametrize("n_experts,ep", [(128, 8), (256, 32), (8, 4), (384, 64)])
def test_one_touched_expert_means_exactly_one_on_the_busiest_gpu(n_experts, ep):
    # top-1 routing, one token: one expert touched, so the busiest GPU holds exactly one (independent binomial
    # counts would say 1 - (1 - 1/E)^(E/ep * ep) ~ 0.63-0.69)
    assert expert_load.busiest_uniform(1, 1, n_experts, ep) == pytest.approx(1.0, rel=1e-9)


def test_single_gpu_holds_everything_touched():
    # ep = 1: the busiest GPU holds all U = E (1 - (1 - k/E)^B) touched experts
    for b in (1, 3, 40):
        u = 256 * (1 - (1 - 8 / 256) ** b)
        assert expert_load.busiest_uniform(b, 8, 256, 1) == pytest.approx(u, rel=1e-9)


@pytest.mark.parametrize("n_experts,top_k,ep,batch", [pytest.param(256, 8, 32, 16, marks=pytest.mark.slow),  # ~10 s
                                                     (128, 1, 8, 4), (64, 6, 8, 8)])
def test_agrees_with_monte_carlo_for_large_cases(n_experts, top_k, ep, batch):
    rng = np.random.default_rng(7)
    owner = np.repeat(np.arange(ep), expert_load.group_sizes(n_experts, ep))
    draws = 20000
    picks = np.argsort(rng.random((draws, batch, n_experts)), axis=2)[:, :, :top_k].reshape(draws, -1)
    touched = np.zeros((draws, n_experts), bool)
    np.put_along_axis(touched, picks, True, axis=1)
    counts = np.stack([touched[:, owner == g].sum(1) for g in range(ep)], axis=1)
    m = counts.max(1)
    exact = expert_load.busiest_uniform(batch, top_k, n_experts, ep)
    assert abs(exact - m.mean()) < 5 * m.std() / np.sqrt(draws) + 1e-9


def test_saturates_at_the_group_size():
    # at large batch every expert is touched and the busiest GPU holds ceil(E / ep)
    assert expert_load.busiest_uniform(4096, 8, 256, 32) == pytest.approx(8.0, rel=1e-9)
    assert expert_load.busiest_uniform(4096, 2, 10, 4) == pytest.approx(3.0, rel=1e-9)


def test_vectorized_matches_scalar_and_skewed_routing_of_one_token():
    b = np.array([1, 2, 4])[:, None]
    ep = np.array([1, 4])[None, :]
    got = expert_load.busiest(b, 2, 8, ep)
    for i, bb in enumerate((1, 2, 4)):
        for j, p in enumerate((1, 4)):
            assert got[i, j] == pytest.approx(expert_load.busiest_uniform(bb, 2, 8, p), rel=1e-12)
    # skewed, top-1, one token: one expert touched whatever the skew -> exactly 1 on the busiest GPU
    probs = np.array([0.5, 0.2, 0.1, 0.1, 0.05, 0.05, 0.0, 0.0])
    one = expert_load.busiest(1, 1, 8, 4, touch_probs=lambda b, k, e: 1 - (1 - probs) ** b)
    assert float(one) == pytest.approx(1.0, rel=1e-12)
