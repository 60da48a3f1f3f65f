"""The local search on continuous variables: poll moves and runner-up distances by hand, and a search on a space
with a continuous cache fraction and any integer batch against the brute-force front of a fine grid of it."""
import math

import numpy as np
import pytest
import xarray as xr
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from dse.search import centres, compose, run
from dse.search.local import START_LEVEL, _poll_moves
from dse.search.pareto import Normalizer, nondominated
from dse.search.run import _base
from dse.search.space import parse
from dse.search.verify import exact_front


def test_poll_moves_by_hand():
    lin = FloatDistribution(0.0, 1.0)
    # coarse poll: +/- 1/8 of the range and both bounds; one level finer: +/- 1/16, no bounds
    assert _poll_moves(0.5, lin, START_LEVEL) == pytest.approx([0.0, 0.375, 0.625, 1.0])
    assert _poll_moves(0.5, lin, START_LEVEL + 1) == pytest.approx([0.4375, 0.5625])
    assert _poll_moves(1.0, lin, START_LEVEL + 2) == pytest.approx([0.96875])     # clipped at the bound
    # log float 1..256: 1/8 of the log range is a factor 2
    assert _poll_moves(16.0, FloatDistribution(1.0, 256.0, log=True), START_LEVEL) == pytest.approx(
        [1.0, 8.0, 32.0, 256.0])
    # int 0..10 in steps of 2: 4 +/- 1.25 snaps to the grid (2 and 6)
    assert _poll_moves(4, IntDistribution(0, 10, step=2), START_LEVEL) == [0, 2, 6, 10]
    # log int 1..1024 at the finest level: a factor 2**(10/1024) rounds back to 1, so one step up (2)
    assert _poll_moves(1, IntDistribution(1, 1024, log=True), 10) == [2]
    assert _poll_moves("b", CategoricalDistribution(["a", "b", "c"]), 7) == ["a", "c"]


def test_epsilon_and_runners_up_by_hand():
    front = np.array([[0.0, 1.0], [1.0, 0.0]])
    # (0.5, 0.6): behind neither front point; (1.2, 0.3) must improve by min(1.2 - 1, 0.3 - 0) = 0.2
    assert centres.epsilon(np.array([[0.5, 0.6], [1.2, 0.3]]), front) == pytest.approx([-0.4, 0.2])
    params = [{"g": g} for g in "aabbb"]
    F = np.array([[0, 10], [10, 0], [2, 11], [3, 12], [11, 1]], dtype=float)
    f, r, eps = centres.split(params, F, ["g"])
    # front: the two a points; b's own front: (2, 11) and (11, 1) ((3, 12) is dominated within b)
    assert f.tolist() == [0, 1] and r.tolist() == [2, 4]
    # normalized to the front (span 10 in both): (0.2, 1.1) -> min(0.2, 0.1) = 0.1 behind (0, 1) ... max 0.1
    assert eps == pytest.approx([0.1, 0.1])


@pytest.fixture(scope="module")
def continuous(tmp_path_factory):
    """mixtral-small with a continuous cache fraction and any batch 1..256: the search's feasible front, and the
    brute-force front of a fine grid of the same space (fractions in steps of 1/128, every batch)."""
    d = tmp_path_factory.mktemp("continuous")
    common = ["search.method=optuna", "search.progress=false", f"search.storage=journal:{d}/journal.log",
              "search.n_trials=1500", "search.batch_size=50", "~search.space.batch"]
    cfg = compose("mixtral-small", [*common, "+search.space.batch={type:int,low:1,high:256,log:true}",
                                    "~search.space.hbm_cache_fraction.step"])
    run(cfg, d)
    with xr.open_dataset(d / "trials.nc", engine="h5netcdf") as ds:
        F = np.stack([ds[o].values for o in ("energy_per_token", "capacity_cost_usd")], 1)[ds.feasible.values]
    fine = compose("mixtral-small", [*common, "+search.space.batch={type:int,low:1,high:256}",
                                     "search.space.hbm_cache_fraction.step=0.0078125"])
    space = parse(fine["search"], _base(fine))
    assert space.size() == 2 * 3 * 3 * 2 * 256 * 129
    return F[nondominated(F)], exact_front(_base(fine), space, 10**7)["F"]


@pytest.mark.slow
def test_continuous_search_reaches_the_fine_grid_front(continuous):
    F, exact = continuous
    norm = Normalizer(exact)
    ratio = norm.hypervolume(F) / norm.hypervolume(exact)
    # the search tries any fraction, the grid only multiples of 1/128: it may pass the grid's front a little
    assert 0.99 <= ratio <= 1.01, ratio
    assert math.isfinite(ratio)
