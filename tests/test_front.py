"""dse.pareto_front: the exact front of a whole grid, checked against fronts found independently (a sort-and-sweep
for two objectives, all-pairs comparison for three), and the same front and dataset on a 2-worker LocalCluster."""
import numpy as np
import pytest

import dse
from dse.errors import DseError

GRID = dict(model="mixtral-8x7b", system="paper-4xh100", placement=["hbm", "ddr", "ssd"], batch=list(range(1, 513)),
            hbm_cache_fraction=list(np.linspace(0, 1, 11)), context_len=[512, 1024, 2048, 4096, 6144, 8192])
LIMITS = {"step_latency": {"max": 0.05}, "hbm_fill": {"max": 0.9}}


def _feasible_points(ds, objectives, limits):
    like = ds.energy_per_token
    feasible = np.ones(like.shape, dtype=bool)
    for name, spec in limits.items():
        v = ds[name].broadcast_like(like).transpose(*like.dims).values
        feasible &= (v >= spec.get("min", -np.inf)) & (v <= spec.get("max", np.inf))
    feasible &= ds.fits.broadcast_like(like).transpose(*like.dims).values
    F = np.stack([ds[o].broadcast_like(like).transpose(*like.dims).values.ravel() for o in objectives], 1)
    return F[feasible.ravel()]


def _sweep_front_2d(F):
    return F[_sweep_mask_2d(F)]


def _sweep_mask_2d(F):
    """Mask of the non-dominated rows of an n x 2 array (duplicates of a front point all kept), by sorting: a point
    is dominated when a point of smaller first objective has a second objective <= its own, or a point of equal
    first objective a smaller second."""
    order = np.lexsort((F[:, 1], F[:, 0]))
    F = F[order]
    keep = np.zeros(len(F), dtype=bool)
    best_before = np.inf                       # least f2 over points with a strictly smaller f1
    i = 0
    while i < len(F):
        j = i
        while j < len(F) and F[j, 0] == F[i, 0]:
            j += 1
        group_min = F[i:j, 1].min()
        keep[i:j] = (F[i:j, 1] < best_before) & (F[i:j, 1] <= group_min)
        best_before = min(best_before, group_min)
        i = j
    mask = np.zeros(len(F), dtype=bool)
    mask[order] = keep
    return mask


def _rows(F):
    return np.unique(np.round(F, 12), axis=0)


def _front_rows(pf, objectives):
    return _rows(np.stack([pf[o].values for o in objectives], 1))


def test_front_of_a_1e5_point_grid_equals_a_sweep_of_every_feasible_point():
    objectives = ["energy_per_token", "capacity_cost_usd"]
    pf = dse.pareto_front(objectives, LIMITS, block_points=4096, progress=False, **GRID)   # 25 blocks, 2 levels
    assert pf.attrs["n_points"] == 3 * 512 * 11 * 6 > 100_000
    F = _feasible_points(dse.evaluate(**GRID), objectives, LIMITS)
    assert pf.attrs["n_feasible"] == len(F) > 1000
    want = _rows(_sweep_front_2d(F))
    got = _front_rows(pf, objectives)
    assert got.shape == want.shape and len(want) > 3
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # every front point is where the grid says it is
    ds = dse.evaluate(**GRID)
    at = ds.energy_per_token.sel({d: pf[d] for d in ("placement", "batch", "hbm_cache_fraction", "context_len")})
    np.testing.assert_allclose(at.values, pf.energy_per_token.values, rtol=1e-12)
    assert (pf.step_latency <= 0.05).all() and (pf.hbm_fill <= 0.9).all()


def test_three_objectives_equal_all_pairs_comparison():
    grid = dict(GRID, batch=list(range(1, 129, 3)), context_len=[1024, 8192])
    objectives = ["energy_per_token", "capacity_cost_usd", "step_latency"]
    pf = dse.pareto_front(objectives, {"hbm_fill": {"max": 0.95}}, block_points=500, progress=False, **grid)
    F = _feasible_points(dse.evaluate(**grid), objectives, {"hbm_fill": {"max": 0.95}})
    le = np.all(F[:, None, :] <= F[None, :, :], axis=2)     # le[q, p]: q <= p everywhere
    lt = np.any(F[:, None, :] < F[None, :, :], axis=2)
    dominated = np.any(le & lt, axis=0)
    np.testing.assert_allclose(_front_rows(pf, objectives), _rows(F[~dominated]), rtol=1e-12)


@pytest.mark.parametrize("objectives, constraints, match", [
    ([], None, "objectives"),
    (["energy"], None, "one value per grid point"),
    (["energy_per_token"], {"latency": {"max": 1}}, "latency"),
    (["energy_per_token"], {"step_latency": {"below": 1}}, "constraints.step_latency"),
    (["energy_per_token"], {"step_latency": {"max": "1"}}, "not a number"),
])
def test_bad_questions_are_one_line_errors(objectives, constraints, match):
    with pytest.raises(DseError, match=match):
        dse.pareto_front(objectives, constraints, model="deepseek-r1", system="8xh200-c2c", batch=[1, 2])


@pytest.mark.slow
def test_local_cluster_gives_the_threaded_front_and_dataset():
    distributed = pytest.importorskip("distributed")
    grid = dict(GRID, batch=list(range(1, 65)), context_len=[1024, 4096])
    objectives = ["energy_per_token", "capacity_cost_usd"]
    threaded = dse.pareto_front(objectives, LIMITS, block_points=2000, scheduler="threads", progress=False, **grid)
    lazy = dse.evaluate(**grid, chunks={"batch": 16, "hbm_cache_fraction": 4})
    local = lazy[["energy_per_token", "step_energy", "capacity_cost_usd", "fits"]].compute(scheduler="threads")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        remote = dse.pareto_front(objectives, LIMITS, block_points=2000, scheduler=client, progress=False, **grid)
        on_cluster = client.compute(lazy[["energy_per_token", "step_energy", "capacity_cost_usd", "fits"]]).result()
    np.testing.assert_allclose(_front_rows(remote, objectives), _front_rows(threaded, objectives), rtol=1e-12)
    np.testing.assert_array_equal(np.sort(remote.grid_index.values), np.sort(threaded.grid_index.values))
    for name in local.data_vars:
        np.testing.assert_allclose(on_cluster[name].values, local[name].values, rtol=1e-12)


@pytest.mark.parametrize("n, k", [(40_000, 2), (40_000, 3), (20_000, 4)])
def test_pruned_filter_keeps_exactly_the_non_dominated_points(n, k):
    from dse.search.front import nondominated_pruned

    rng = np.random.default_rng(k)
    F = rng.random((n, k))
    F[::5] = np.round(F[::5], 2)                      # ties and duplicates
    F[1::97] = F[0]
    got = nondominated_pruned(F)
    cand = np.flatnonzero(got | (rng.random(n) < 0.01))
    dominated = np.array([np.any(np.all(F <= F[i], 1) & np.any(F < F[i], 1)) for i in cand])
    assert got.sum() > 1
    np.testing.assert_array_equal(got[cand], ~dominated)           # kept points: none dominated; a sample of the rest
    from dse.search.pareto import nondominated

    np.testing.assert_array_equal(got, nondominated(F))            # and moocore's filter of all the points


@pytest.mark.parametrize("seed_points", [2, 64, 10**7])
def test_any_seed_gives_every_front_point_with_its_ties(seed_points):
    """Blocks are pruned by the front of a sub-grid of about ``seed_points`` points (two: the grid's corners; 10^7:
    the whole grid); the front, every tied point included, is the sweep's whatever the seed."""
    from dse.run.engine import resolve
    from dse.search.front import front_of_grid, question

    grid = dict(GRID, batch=list(range(1, 257, 3)), context_len=[1024, 8192])
    objectives = ["energy_per_token", "capacity_cost_usd"]
    g = resolve(**grid)
    pf = front_of_grid(g, question(g, objectives, LIMITS), block_points=3000, seed_points=seed_points, progress=False)
    ds = dse.evaluate(**grid)
    like = ds.energy_per_token
    assert like.dims == g.dims
    F = _feasible_points(ds, objectives, LIMITS)
    feasible = np.flatnonzero(_feasible_mask(ds, LIMITS).ravel())
    want = np.sort(feasible[_sweep_mask_2d(F)])
    assert len(want) > 3 and pf.attrs["n_feasible"] == len(F)
    np.testing.assert_array_equal(np.sort(pf.grid_index.values), want)


def test_three_objectives_with_a_sparse_seed_equal_all_pairs_comparison():
    from dse.run.engine import resolve
    from dse.search.front import front_of_grid, question

    grid = dict(GRID, batch=list(range(1, 129, 5)), context_len=[1024, 8192])
    objectives = ["energy_per_token", "capacity_cost_usd", "step_latency"]
    limits = {"hbm_fill": {"max": 0.95}}
    g = resolve(**grid)
    pf = front_of_grid(g, question(g, objectives, limits), block_points=400, seed_points=40, progress=False)
    F = _feasible_points(dse.evaluate(**grid), objectives, limits)
    le = np.all(F[:, None, :] <= F[None, :, :], axis=2)
    lt = np.any(F[:, None, :] < F[None, :, :], axis=2)
    dominated = np.any(le & lt, axis=0)
    assert pf.sizes["point"] == np.count_nonzero(~dominated) > 3              # every tied point too
    np.testing.assert_allclose(_front_rows(pf, objectives), _rows(F[~dominated]), rtol=1e-12)


def _feasible_mask(ds, limits):
    like = ds.energy_per_token
    feasible = ds.fits.broadcast_like(like).transpose(*like.dims).values.copy()
    for name, spec in limits.items():
        v = ds[name].broadcast_like(like).transpose(*like.dims).values
        feasible &= (v >= spec.get("min", -np.inf)) & (v <= spec.get("max", np.inf))
    return feasible


@pytest.mark.parametrize("k, staircase_values", [(1, None), (2, None), (3, None), (2, 100), (3, 100)])
def test_seed_pruning_drops_only_points_a_seed_point_dominates(k, staircase_values, monkeypatch):
    """Open objectives over different dims (the first over all three); the mask keeps every feasible point that no
    seed point dominates (checked point by point) and drops points a seed point dominates by a clear margin (all
    of them unless the staircase's budget leaves out seed points)."""
    from dse.search import prune
    from dse.search.prune import candidates

    if staircase_values:
        monkeypatch.setattr(prune, "STAIRCASE_VALUES", staircase_values)

    rng = np.random.default_rng(k)
    shapes = [(6, 7, 8), (6, 1, 1), (1, 7, 1)][:k]
    objectives = [np.round(rng.random(s) * 20) / 20 for s in shapes]      # ties
    feasible = rng.random((6, 7, 1)) < 0.8
    points = np.stack([np.broadcast_to(o, shapes[0]).ravel() for o in objectives], 1)
    seed = points[rng.choice(len(points), 25, replace=False)]
    mask = np.broadcast_to(candidates(objectives, seed, feasible), shapes[0]).ravel()
    ok = np.broadcast_to(feasible, shapes[0]).ravel()
    le = np.all(seed[:, None, :] <= points[None, :, :], axis=2)
    dominated = np.any(le & np.any(seed[:, None, :] < points[None, :, :], axis=2), axis=0)
    clearly = np.any(np.all(seed[:, None, :] < points[None, :, :] - 1e-6, axis=2), axis=0)
    assert not mask[~ok].any()
    np.testing.assert_array_equal(mask[ok & ~dominated], True)
    assert clearly.sum() > 10 and not mask[clearly].all()
    assert staircase_values or not mask[clearly].any()


def test_seed_boxes_are_evenly_spaced_shifted_sub_grids():
    from dse.search.prune import seed_boxes

    sizes = [3, 5, 2, 73, 65, 32, 32]
    boxes = seed_boxes(sizes, 40_000, shifts=4)
    assert len(boxes) == 4 and sum(np.prod([len(b) for b in box]) for box in boxes) <= 40_000
    for box in boxes:
        for b, n in zip(box, sizes):
            assert 0 <= b[0] and b[-1] <= n - 1 and np.all(np.diff(b) > 0)
            assert np.ptp(np.diff(b)[:-1]) <= 1 if len(b) > 3 else True     # evenly spaced, but for the last value
    assert all(b[0] == 0 and b[-1] == n - 1 for b, n in zip(boxes[0], sizes))   # the first holds the ends,
    assert all(b[-1] == n - 1 for box in boxes for b, n in zip(box, sizes))        # every one the last values
    for d in (3, 4):                                # the shifted copies hold other values of the long dims
        union = np.unique(np.concatenate([box[d] for box in boxes]))
        assert len(union) >= 3 * len(boxes[0][d])
    assert [[len(b) for b in box] for box in seed_boxes(sizes, 10**9)] == [sizes]   # small: the whole grid, once
