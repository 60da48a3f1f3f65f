"""Break-even values of parameters that enter the energy non-linearly (link bandwidth, HBM cache fraction, batch):
a vectorized bisection (:func:`bisect`) that evaluates the whole grid once per iteration, each grid point carrying
its own bracket, passed to :func:`dse.evaluate` as a DataArray-valued parameter (docs/model.md section 5)."""
from __future__ import annotations

import numpy as np
import xarray as xr

from dse.analyze.breakeven import base_config, check_spec, evaluate_side, is_list, on_grid
from dse.config.params import lookup
from dse.errors import DseError
from dse import cf

SECTION = "_section"


def bisect(f, lo, hi, *, integer: bool = False, rtol: float = 1e-9, atol: float = 0.0, points: int = 1,
           max_iter: int = 200):
    """Vectorized root finding: where does ``f`` change sign between ``lo`` and ``hi``, on every grid point at once.

    ``f(x) -> DataArray`` is evaluated on whole arrays: first at ``lo`` and ``hi`` (numbers or DataArrays), then
    at a DataArray ``x`` on the grid of ``f(lo)``, each point inside its own bracket.
    Returns ``(root, bracketed)``; ``root`` is NaN where ``f(lo)`` and ``f(hi)`` have the same non-zero sign.
    Continuous: SciPy's elementwise bracketing root finder (``scipy.optimize.elementwise.find_root``, Chandrupatla's
    method) on every bracketed point, to ``atol + rtol |x|``; each of its calls evaluates the whole grid once.
    ``integer``: ``lo`` and ``hi`` are integers and the root is the end of the final unit bracket where ``f <= 0``,
    by multi-section: with ``points`` > 1 every call evaluates that many equally spaced interior points per grid
    point at once (an extra dimension ``_section``), shrinking each bracket by ``points + 1`` per call.
    """
    f_lo, f_hi = xr.broadcast(xr.DataArray(f(lo)).compute(), xr.DataArray(f(hi)).compute())
    grid = f_lo
    dims = grid.dims
    a = (xr.zeros_like(grid, dtype=float) + lo).transpose(*dims).values.copy()
    b = (xr.zeros_like(grid, dtype=float) + hi).transpose(*dims).values.copy()
    fa = f_lo.values.astype(float).copy()
    fb = f_hi.transpose(*dims).values
    bracketed = (np.sign(fa) * np.sign(fb) <= 0) & np.isfinite(fa) & np.isfinite(fb)
    exact_hi = bracketed & (fb == 0) & (fa != 0)
    a, fa = np.where(exact_hi, b, a), np.where(exact_hi, 0.0, fa)
    exact = bracketed & (fa == 0)
    b = np.where(exact, a, b)
    if not integer:
        root = _find_root(f, grid, a, b, bracketed & ~exact, rtol, atol, max_iter)
        root = np.where(exact, a, root)
        root = xr.DataArray(np.where(bracketed, root, np.nan), dims=dims, coords=grid.coords)
        return root, xr.DataArray(bracketed, dims=dims, coords=grid.coords)
    frac = np.arange(1, points + 1) / (points + 1)
    for _ in range(max_iter):
        width = b - a
        limit = 1 if integer else atol + rtol * np.maximum(np.abs(a), np.abs(b))
        todo = bracketed & ~exact & (width > limit)
        if not todo.any():
            break
        xs = a[..., None] + width[..., None] * frac
        xs = np.floor(xs) if integer else xs
        xs = np.where(todo[..., None], xs, a[..., None])
        x = xr.DataArray(xs, dims=(*dims, SECTION), coords=grid.coords)
        fx = xr.DataArray(f(x.isel({SECTION: 0}) if points == 1 else x))
        fx = (fx.expand_dims(SECTION, -1) if points == 1 else fx).broadcast_like(x).transpose(*dims, SECTION)
        fm = fx.values.astype(float)
        change = (np.sign(fm) != np.sign(fa)[..., None]) | (fm == 0)
        has = change.any(-1)
        k = change.argmax(-1)[..., None]
        xk, fk = np.take_along_axis(xs, k, -1)[..., 0], np.take_along_axis(fm, k, -1)[..., 0]
        km = np.maximum(k - 1, 0)
        x_prev = np.where(k[..., 0] > 0, np.take_along_axis(xs, km, -1)[..., 0], a)
        f_prev = np.where(k[..., 0] > 0, np.take_along_axis(fm, km, -1)[..., 0], fa)
        hit = todo & has & (fk == 0)
        new_a = np.where(has, x_prev, xs[..., -1])
        new_fa = np.where(has, f_prev, fm[..., -1])
        new_b = np.where(has, xk, b)
        a, fa, b = np.where(todo, new_a, a), np.where(todo, new_fa, fa), np.where(todo, new_b, b)
        a, b, exact = np.where(hit, xk, a), np.where(hit, xk, b), exact | hit
    root = np.where(exact | (fa <= 0), a, b) if integer else np.where(exact, a, (a + b) / 2)
    root = xr.DataArray(np.where(bracketed, root, np.nan), dims=dims, coords=grid.coords)
    return root, xr.DataArray(bracketed, dims=dims, coords=grid.coords)


def _find_root(f, grid: xr.DataArray, a: np.ndarray, b: np.ndarray, todo: np.ndarray, rtol: float, atol: float,
               max_iter: int) -> np.ndarray:
    """Roots of ``f`` in the brackets [a, b] where ``todo``, by ``scipy.optimize.elementwise.find_root``.

    SciPy calls the function with the still active points only (and, at the start, with both bracket ends at
    once); each call is turned into whole-grid evaluations of ``f`` in which every grid point appears once (the
    inactive ones at their lower bracket end), and the active values are read back."""
    from scipy.optimize import elementwise

    root = np.full(a.shape, np.nan)
    if not todo.any():
        return root
    where = np.flatnonzero(todo)
    base = a.copy()

    def on_grid(x, idx):
        x, idx = np.asarray(x, dtype=float), np.asarray(idx)
        flat_x, flat_i = x.ravel(), np.broadcast_to(idx, x.shape).ravel()
        out = np.empty(flat_x.shape)
        pending = np.arange(flat_x.size)
        while pending.size:  # each grid point at most once per evaluation
            _, first = np.unique(flat_i[pending], return_index=True)
            take = pending[first]
            xf = base.copy()
            xf.flat[flat_i[take]] = flat_x[take]
            fx = xr.DataArray(f(xr.DataArray(xf, dims=grid.dims, coords=grid.coords)))
            fx = fx.broadcast_like(grid).transpose(*grid.dims).values.astype(float)
            out[take] = fx.flat[flat_i[take]]
            pending = np.setdiff1d(pending, take, assume_unique=True)
        return out.reshape(x.shape)

    res = elementwise.find_root(on_grid, (a.flat[where], b.flat[where]), args=(where,),
                                tolerances=dict(xatol=atol, xrtol=max(rtol, 4 * np.finfo(float).eps)),
                                maxiter=max_iter)
    root.flat[where] = np.where(res.success, res.x, np.nan)
    return root


def _param_bounds(param: str, lo, hi, target, reference, params: dict):
    """The parameter's schema entry and its bracket (default: its allowed range where finite), checked; the sides
    may not sweep it."""
    _, p = lookup(param)
    if p is not None and p.categorical:
        raise DseError(f"{param}: break-even by bisection needs a numeric parameter")
    lo = p.lo if lo is None and p is not None and np.isfinite(p.lo) else lo
    hi = p.hi if hi is None and p is not None and np.isfinite(p.hi) else hi
    for name, v in (("lo", lo), ("hi", hi)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise DseError(f"breakeven_param({param!r}): {name}={v!r}: give a finite number")
    if not lo < hi:
        raise DseError(f"breakeven_param({param!r}): lo={lo} must be below hi={hi}")
    if p is not None and not (p.lo <= lo and hi <= p.hi):
        raise DseError(f"{param}: [{lo}, {hi}] out of range: allowed [{p.lo}, {p.hi}]")
    check_spec(target, "target")
    check_spec(reference, "reference")
    for side, spec in (("target", target), ("reference", reference)):
        if isinstance(spec, dict) and (param in spec or (param in params)) and is_list({**params, **spec}.get(param)):
            raise DseError(f"{side}.{param} is a grid dimension: break-even solves for it; remove it from the grid")
    if isinstance(target, xr.Dataset) and isinstance(reference, xr.Dataset):
        raise DseError("target and reference are both evaluated Datasets: nothing to vary; pass a dict")
    return p, lo, hi


def _relative_gap(target, reference, param: str, lo, hi, params: dict):
    """g(x) = E_target / E_reference - 1 at ``param`` = x (0 within rounding), with f(hi) remembered; a side given
    as a Dataset, or a reference the parameter does not touch (bit for bit at lo and hi), is evaluated once."""
    if isinstance(target, dict):  # also drop the parameter from a study's grid
        target = {**target, "cfg": _drop_grid(base_config(target), param)}
    if isinstance(reference, dict):
        reference = {**reference, "cfg": _drop_grid(base_config(reference), param)}
    ref_fixed = reference if isinstance(reference, xr.Dataset) else None
    tgt_fixed = target if isinstance(target, xr.Dataset) else None
    if ref_fixed is None:
        r_lo = evaluate_side(reference, params, "reference", target=False, extra={param: lo})
        r_hi = evaluate_side(reference, params, "reference", target=False, extra={param: hi})
        if r_lo.energy_per_token.identical(r_hi.energy_per_token):
            ref_fixed = r_lo

    def side(spec, fixed, x, name, is_target):
        if fixed is not None:
            return fixed
        if isinstance(x, xr.DataArray) and not is_target:
            x = cf.relabel_dims(x, {d: d[len("reference_"):] for d in x.dims if d.startswith("reference_")})
        return evaluate_side(spec, params, name, target=False, extra={param: x})

    def g(x):
        t = side(target, tgt_fixed, x, "target", True)
        r = on_grid(side(reference, ref_fixed, x, "reference", False), t)
        rel = t.energy_per_token / r.energy_per_token - 1
        return xr.where(np.abs(rel) <= 1e-12, 0.0, rel)  # equal to rounding: a crossing, not a sign

    at_hi = {}

    def g_cached(x):  # f(hi) is needed again for cheaper_above
        if not isinstance(x, xr.DataArray) and x == hi:
            at_hi.setdefault("v", g(x))
            return at_hi["v"]
        return g(x)
    return g_cached


def breakeven_param(target, reference, param: str, lo=None, hi=None, *, rtol: float = 1e-6, **params) -> xr.Dataset:
    """Break-even value of a numeric parameter (link bandwidth, HBM cache fraction, batch, ...) by bisection.

    Finds, on every grid point, the value ``x`` of ``param`` in ``[lo, hi]`` where the target's energy per token
    equals the reference's; ``param`` is applied to each side given as a dict (a Dataset side stays fixed).
    ``lo`` / ``hi`` default to the parameter's allowed range where finite. Integer parameters (batch) give the
    integer at the crossing where the target is no costlier. Variables: ``breakeven_<param>``, ``bracketed``
    (false: no crossing in [lo, hi]) and ``cheaper_above`` (the target is no costlier above the crossing).
    """
    p, lo, hi = _param_bounds(param, lo, hi, target, reference, params)
    integer = bool(p is not None and p.integer)
    g = _relative_gap(target, reference, param, lo, hi, params)
    root, bracketed = bisect(g, lo, hi, integer=integer, rtol=0.0 if integer else rtol, points=7)
    above = g(hi) <= 0
    units = p.units if p is not None else ""
    name = f"breakeven_{param.replace('.', '_')}"
    ds = xr.Dataset({
        name: root.assign_attrs(cf.attrs(units, f"{param} at which target energy per token = reference")),
        "bracketed": bracketed.assign_attrs(units="1", long_name=f"a crossing lies in [{lo}, {hi}]"),
        "cheaper_above": (above.broadcast_like(root) & bracketed).assign_attrs(
            units="1", long_name=f"the target is no costlier for {param} above the break-even value"),
    })
    ds = ds.drop_vars([c for c in ds.coords if c not in ds.dims])
    ds.attrs.update(title=f"dse break-even {param}", parameter=param, lo=lo, hi=hi, rtol=rtol,
                    definition=f"{param} at which E_target(per token) = E_reference(per token), by bisection")
    return ds.compute()


def _drop_grid(cfg: dict, param: str) -> dict:
    (cfg.get("grid") or {}).pop(param, None)
    return cfg


__all__ = ["bisect", "breakeven_param"]
