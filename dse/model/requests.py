"""Requests: prefill and decode over the whole output, from the decode step's own operation table (docs/model.md,
"Requests").

``B`` requests, each a prompt of ``P`` tokens and an output of ``O`` tokens, served one of two ways
(``workload.batching``): **continuous** batching (the default, :func:`_continuous`: a steady state of ``B``
sequences in flight, new prompts prefilled in chunks fused into the decode steps' passes) or the **lockstep** batch
(:func:`_lockstep`, below: the batch prefills every prompt, then decodes all outputs together). Both are built from
the runs of steps below. Lockstep:

* **Prefill** runs the prompts in lockstep chunks of ``c`` tokens of each prompt (``prefill_chunk``; the whole
  prompt when unset): a chunk step is the decode step's table with ``q = c`` query tokens per sequence (linear
  products ``q B`` rows, experts touched at ``q B`` tokens and fetched from the offload tier once per chunk, KV of the
  chunk written where KV lives) and attention over the prompt so far: chunk ``k`` (tokens ``kc .. kc + c - 1``)
  attends with the causal mask over ``kc + (c + 1) / 2`` keys on average, which gives the quadratic term's FLOPs
  ``G d sum_i (kc + i)`` exactly. No LM head: the first output token comes from the first decode step.
* **Decode** produces the ``O`` output tokens, step ``j`` (0 .. O-1) attending over ``P + j`` tokens.

Both are *runs* of steps whose only varying input is the attention context ``L_j = L_0 + j dL``. Per step, every
attention operation's FLOPs and bytes are affine in ``L`` (no ceilings: the roofline uses each operand once), so the
attention time ``T(j) = sum_op max(F0 + F1 j, B0 + B1 j)`` sums in closed form per operation (split where its
roofline changes regime), and the step latency is ``a T + b + c max(0, d T + e)`` with ``T`` non-decreasing (the
step composition of :func:`dse.model.kernel.decode_step`): the ``max`` changes side once, found by a vectorized binary
search over ``j``. Traffic (with its tile ceilings) is summed exactly over an explicit step axis, once per distinct
shape: the attention operations whose traffic depends on ``L`` (the KV-streaming products and the softmax) are
proportional to the sequences one GPU attends to, so their increments are summed at one sequence per GPU and scaled.
Energies are linear in traffic, so the run's energy is ``N`` steps at the mean table plus static power x the summed
latency. ``tests/test_serving.py`` checks every sum against the explicit loop over steps.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from dse.errors import DseError
from dse.model import kernel, namespace

SECONDS_PER_YEAR = 365.25 * 24 * 3600.0
#: Attention-table fields summed over a run (the traffic and FLOPs of :func:`dse.model.kernel.step_tables`).
_FIELDS = kernel._SUMMED + ("weights", "hbm_weights", "hbm_kv")
#: Steps of a run evaluated at once on the explicit step axis (bounds memory on long outputs).
STEP_BLOCK = 128
#: Steps summed one by one at the start of a run; beyond, the traffic is summed by periods (:func:`_summed_increments`).
EXACT_STEPS = 4096
#: Periods (in steps) tried for a run's traffic once its tiles settle: 512, a multiple of the power-of-two tile edges
#: (register tile, L1 candidates 8 .. 512), then with 192 / 384, 320, 448 and all of them.
PERIOD_STEPS = (512, 1536, 2560, 3584, 512 * 3 * 5 * 7)
#: Relative tolerance of the periodicity check (float sums of traffic in bytes).
PERIODIC_RTOL = 1e-9
#: At most this many steps are evaluated for one run, whatever its length (bounded work).
MAX_EVALUATED_STEPS = 1_000_000

# A data table (its rows share a shape with the other variable tables by design: one row per output variable).
VARIABLES = {  # name: (units, long_name)
    "prefill_energy": ("J", "energy of one request's prefill (continuous: what its chunks add to the steps they ride "
                            "in; lockstep: its share of the batch's prefill)"),
    "decode_energy": ("J", "energy of one request's share of the decode steps that produce its output"),
    "energy_per_request": ("J", "energy per request: prefill + decode"),
    "energy_per_output_token": ("J", "energy per output token, prefill included (energy_per_request / output_len)"),
    "ttft": ("s", "time to first token (continuous: the request's prefill chunks at that concurrency + one step; "
                 "lockstep: the batch's prefill + the first decode step)"),
    "tpot": ("s", "time per output token: the mean step latency (continuous: with the fused prefill chunks)"),
    "tpot_max": ("s", "the longest step (lockstep: the last decode step; continuous: one with the most chunks)"),
    "prefill_latency": ("s", "time until the prompt is prefilled (lockstep: the batch's chunk steps)"),
    "request_latency": ("s", "one request from prompt to last token (lockstep: prefill + every decode "
                                "step; continuous: ttft + (output_len - 1) tpot)"),
    "tokens_per_s_per_gpu": ("tokens/s/GPU", "output tokens per second per GPU (continuous: batch / tpot / "
                                             "GPUs; lockstep: batch x output_len / request_latency / GPUs)"),
    "kv_written_bytes": ("B", "KV-cache bytes written per batch of requests (prompt + output)"),
    "prefill_flops": ("FLOP", "floating-point operations of the batch's prefill"),
    "prefill_offload_read_bytes": ("B", "bytes read from the offload tier for the batch's prefill (continuous: what "
                                        "the fused chunks add to the steps' fetches; lockstep: once per chunk step)"),
    "flash_endurance_years": ("years", "years until the KV tier's rated program/erase cycles are used up at this "
                                       "write rate (inf where KV is not on Flash)"),
    "endurance_ok": ("1", "1 where the KV tier lasts at least service_life_years (always where KV is not on Flash)"),
}


def _with(ns, **changes) -> SimpleNamespace:
    return SimpleNamespace(**{**vars(ns), **changes})


def _aff(x0, x1, p, q):
    """sum_{j=p}^{q-1} (x0 + x1 j)."""
    return (q - p) * x0 + x1 * (q * (q - 1.0) - p * (p - 1.0)) / 2.0


def prefix_max(f0, f1, b0, b1, n):
    """sum_{j=0}^{n-1} max(f0 + f1 j, b0 + b1 j), exactly, elementwise (n >= 0 integer-valued)."""
    d, e = f0 - b0, f1 - b1
    safe = np.where(e != 0, e, 1.0)
    x = np.where(e != 0, -d / safe, 0.0)           # the two lines cross at j = x
    up = np.clip(np.ceil(x), 0, n)                 # e > 0: f wins from ceil(x) on
    down = np.clip(np.floor(x) + 1, 0, n)          # e < 0: f wins up to floor(x)
    flat = np.where(d >= 0, n, 0.0)                # e = 0: one side everywhere
    k = np.where(e > 0, up, np.where(e < 0, down, flat))
    f_first = _aff(f0, f1, 0.0, k) + _aff(b0, b1, k, n)
    b_first = _aff(b0, b1, 0.0, k) + _aff(f0, f1, k, n)
    return np.where(e > 0, b_first, f_first)


class Run(SimpleNamespace):
    """``n`` steps of one kind (sums over them): ``latency`` (s), ``first`` / ``last`` step latency, ``energy``
    (J, by component), ``kv_written`` (B), ``out0`` the first step's :func:`dse.model.kernel.decode_step`."""


def run(m, g, s, link, tier, w, plan, *, q, l0, dl, n, ndim):
    """Sum ``n`` steps with ``q`` query tokens per sequence whose attention context is ``l0 + j dl``, j < n.

    ``plan`` is the routing plan (:func:`dse.model.routing.plan`) the step's tables are counted with; ``ndim`` is the grid's
    number of axes (the step axis goes in front of them)."""
    n = np.asarray(n, float)
    w0 = _with(w, query_len=q, context_len=l0)
    t0 = namespace(kernel.routed_tables(m, g, s, w0, plan))
    out0 = kernel.decode_step(m, g, s, link, tier, w0, t0)
    if np.ndim(n) == 0 and n == 1.0:     # one step (continuous batching's): the kernel's own, throttled and bounded
        return Run(latency=out0.latency, first=out0.latency, last=out0.latency, energy=dict(out0.energy),
                   kv_written=out0.kv_write_bytes, flops=out0.flops, offload_bytes=out0.offload_bytes, out0=out0)
    att_tokens = kernel.layout(m, s, w0).att_tokens
    sums, lines = _attention_over_run(m, g, s, w, w0, t0, out0.parts.rates, att_tokens, l0, dl, n, ndim)
    latency, latency_at, t_att = _summed_latency(m, w, out0.parts, lines, n)
    # energy: n steps at the mean table (traffic is additive) + static power x the summed latency
    scale = att_tokens / np.maximum(n, 1.0)
    mean_att = _with(t0.attention, **{f: getattr(t0.attention, f) + sums[f] * scale for f in _FIELDS})
    mean = kernel.decode_step(m, g, s, link, tier, w0, _with(t0, attention=mean_att))
    energy = {c: n * mean.energy[c] for c in kernel.COMPONENTS}
    # the board power limit over the run: its steps stretch together where their mean power would exceed it
    power = kernel.throttle(g, s, energy, w0.kv_offloaded, out0.n_gpus, latency)
    latency = power.latency
    energy["background"] = out0.static_w * latency
    kernel.boundary_energy(s, w0, out0.n_gpus, energy, latency)    # over the summed latency, like the static power
    return Run(latency=latency, first=out0.latency, last=latency_at(t_att(np.maximum(n - 1, 0))) * power.stretch,
               energy=energy, kv_written=n * out0.kv_write_bytes, flops=n * mean.flops,
               offload_bytes=n * out0.offload_bytes, out0=out0)


def _attention_over_run(m, g, s, w, w0, t0, rates, att_tokens, l0, dl, n, ndim):
    """The attention table's traffic increments summed over the run (at one sequence per attention GPU; the
    caller scales them), and each attention operation's roofline as two lines in j: (FLOP time at j = 0, its
    slope, byte time at j = 0, its slope) -- FLOPs and bytes are exactly affine in the context."""
    unit = _with(w0, batch=s.dp * (1 + w.dp_attention * (s.tp - 1)))

    def unit_att(context):
        return kernel.step_tables(m, g, s, _with(unit, context_len=context), 0.0, 0.0, 0.0)["attention"]

    base = unit_att(l0)
    n_max = int(np.max(n)) if np.size(n) else 0
    sums = _summed_increments(unit_att, base, l0, dl, n, n_max, ndim)
    ops_b, ops_2 = base["ops"], unit_att(l0 + dl)["ops"]   # per-operation slopes from the second step
    lines = []
    for key, op in vars(t0.attention.ops).items():
        df, db, dkv = ((ops_2[key][x] - ops_b[key][x]) * att_tokens for x in ("flops", "bytes", "kv"))
        lines.append((op.flops / rates.peak_flops, df / rates.peak_flops,
                      op.bytes / rates.bw + op.kv * rates.kv_extra, db / rates.bw + dkv * rates.kv_extra))
    return sums, lines


def _increments(unit_att, base, l0, dl, j):
    """The attention table's traffic increments over the run's first step at steps ``j`` (an array on the step
    axis in front of the grid's)."""
    att = unit_att(l0 + dl * j)
    out = {}
    for f in _FIELDS:
        d = np.asarray(att[f] - base[f], float)
        out[f] = np.broadcast_to(d, np.broadcast_shapes(j.shape, d.shape))     # the step axis always in front
    return out


def _block_sums(unit_att, base, l0, dl, n, start, stop, ndim, sums):
    """Add the increments of steps ``start .. stop-1`` (each grid point only below its own ``n``) to ``sums``."""
    for first in range(start, stop, STEP_BLOCK):
        j = np.arange(first, min(first + STEP_BLOCK, stop)).reshape((-1,) + (1,) * ndim).astype(float)
        inc = _increments(unit_att, base, l0, dl, j)
        inside = j < n
        for f in _FIELDS:
            sums[f] = sums[f] + np.sum(np.where(inside, inc[f], 0.0), axis=0)


def _window(unit_att, base, l0, dl, start, count, ndim) -> dict:
    """The increments of steps ``start .. start+count-1``, stacked on the step axis (all grid points)."""
    parts = []
    for first in range(start, start + count, STEP_BLOCK):
        j = np.arange(first, min(first + STEP_BLOCK, start + count)).reshape((-1,) + (1,) * ndim).astype(float)
        parts.append(_increments(unit_att, base, l0, dl, j))
    return {f: np.concatenate([p[f] for p in parts], axis=0) for f in _FIELDS}


def _periodic(a: dict, b: dict, shift: float) -> tuple[bool, dict]:
    """Whether window ``b`` is window ``a`` plus ``shift`` periods' constant increment D (per field, per point):
    (holds, D) with D taken from the windows' first entries (b[0] - a[0]) / shift."""
    D = {f: (b[f][0] - a[f][0]) / shift for f in _FIELDS}
    for f in _FIELDS:
        want = a[f] + shift * D[f]
        scale = np.maximum(np.abs(want), np.abs(b[f])) + np.abs(shift * D[f]) + 1.0
        if not np.all(np.abs(b[f] - want) <= PERIODIC_RTOL * scale):
            return False, D
    return True, D


def _summed_increments(unit_att, base, l0, dl, n, n_max, ndim) -> dict:
    """The traffic increments summed over steps 1 .. n-1 (per grid point), in time independent of ``n``.

    Traffic has tile ceilings (docs/model.md s.3.2), so a step's traffic is affine in its context plus terms
    ``ceil(L / t)`` of the tiles t along the context; once the tiles settle, the increments g(j) repeat every
    :data:`PERIOD_STEPS` steps up to a constant D: g(j + T) = g(j) + D (every tile edge divides T, and a prefill's
    context advances by a whole chunk per step). The first :data:`EXACT_STEPS` steps are summed one by one; the
    rest is cut into segments, each checked to be periodic (its first two periods and its last one evaluated)
    and then summed in closed form, ``sum_{q<Q} sum_{r<T} (g(a + r) + q D)`` plus the part period; where the
    prediction fails on the way (the tiles change), the last period that holds is found by bisection and the
    summing goes on from there (step by step until a period holds again). At most
    :data:`MAX_EVALUATED_STEPS` steps are evaluated, whatever the run's length (else a one-line error)."""
    sums = {f: 0.0 for f in _FIELDS}
    exact = min(n_max, EXACT_STEPS)
    _block_sums(unit_att, base, l0, dl, n, 1, exact, ndim, sums)     # j = 0 adds nothing
    if n_max <= EXACT_STEPS:
        return sums
    a, evaluations = exact, 0
    while a < n_max:
        summed = False
        for T in PERIOD_STEPS:
            if n_max - a < 4 * T:
                break
            first = _window(unit_att, base, l0, dl, a, 2 * T, ndim)
            head = {f: first[f][:T] for f in _FIELDS}
            ok, D = _periodic(head, {f: first[f][T:] for f in _FIELDS}, 1.0)
            evaluations += 2 * T
            if not ok:
                continue                           # not periodic at this period: try the next (longer) one

            def holds(k):                          # the window k periods on is the head plus k D
                nonlocal evaluations
                evaluations += T
                return _periodic(head, _window(unit_att, base, l0, dl, a + k * T, T, ndim), float(k))[0]

            lo, hi = 1, (n_max - a) // T - 1       # period 1 holds (checked above); does the last one?
            if not holds(hi):                      # the tiles change on the way: the last period that holds
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    lo, hi = (mid, hi) if holds(mid) else (lo, mid)
                hi = lo
            _add_periods(sums, head, D, np.clip(n - a, 0.0, (hi + 1) * T), T)
            a += (hi + 1) * T
            summed = True
            break
        if not summed:                             # too short, or the tiles are changing here: step by step
            stop = min(n_max, a + 2 * PERIOD_STEPS[0])
            _block_sums(unit_att, base, l0, dl, n, a, stop, ndim, sums)
            evaluations += stop - a
            a = stop
        if evaluations > MAX_EVALUATED_STEPS:
            raise DseError(f"requests: the traffic of a run of {n_max:,} steps changes its tiling too often to sum "
                           f"in bounded time; use a shorter output_len / prompt_len")
    return sums


def _add_periods(sums: dict, head: dict, D: dict, M, T: int) -> None:
    """Add ``sum_{j<M} g(a + j)`` where g(a + qT + r) = head[r] + q D: Q whole periods and R steps more."""
    Q = np.floor(M / T)
    R = M - Q * T
    for f in _FIELDS:
        g = head[f]
        prefix = np.concatenate([np.zeros((1,) + g.shape[1:]), np.cumsum(g, axis=0)], axis=0)
        shape = np.broadcast_shapes(np.shape(R), g.shape[1:])
        r_idx = np.broadcast_to(R, shape).astype(int)
        S_R = np.take_along_axis(np.broadcast_to(prefix, (T + 1,) + shape), r_idx[None], axis=0)[0]
        sums[f] = sums[f] + Q * prefix[T] + D[f] * T * Q * (Q - 1.0) / 2.0 + S_R + R * Q * D[f]


def _summed_latency(m, w, parts, lines, n):
    """The run's summed step latency in closed form over j (module docstring), the latency of a step as a function
    of its attention time, and the attention time of step j."""
    def t_att(j):
        return sum(np.maximum(f0 + f1 * j, b0 + b1 * j) for f0, f1, b0, b1 in lines)

    def t_sum(k):
        return sum(prefix_max(f0, f1, b0, b1, k) for f0, f1, b0, b1 in lines)

    T0, n_layers, pf = parts.t_att, m.n_layers, parts.prefetch
    os_, ost = w.overlap_step, w.overlap_stage

    def latency_at(T):
        d = T - T0
        compute = parts.compute + n_layers * d
        dense_side = parts.copy_total + parts.t_dense_layers + parts.n_dense * d
        whole = pf * np.maximum(compute, dense_side) + (1 - pf) * (compute + parts.copy_total) + parts.copy_miss
        stage = np.where(parts.stage_on, parts.stage, compute)
        return os_ * whole + ost * stage + (1 - os_ - ost) * (parts.per_layer + n_layers * d)

    ST = t_sum(n)
    sum_compute = n * (parts.compute - n_layers * T0) + n_layers * ST
    sum_per_layer = n * (parts.per_layer - n_layers * T0) + n_layers * ST
    sum_dense_side = n * (parts.copy_total + parts.t_dense_layers - parts.n_dense * T0) + parts.n_dense * ST
    gap0 = parts.compute - parts.copy_total - parts.t_dense_layers - parts.n_moe * T0   # compute - dense side - n_moe T
    # first j with compute > dense side (the gap grows with j): binary search, every point its own bracket
    n_max = int(np.max(n)) if np.size(n) else 0
    lo, hi = np.zeros_like(ST), np.broadcast_to(n, np.shape(ST)).astype(float)
    for _ in range(int(np.ceil(np.log2(n_max + 1))) + 1):
        mid = np.floor((lo + hi) / 2)
        above = gap0 + parts.n_moe * t_att(mid) > 0
        active = lo < hi
        hi = np.where(active & above, mid, hi)
        lo = np.where(active & ~above, mid + 1, lo)
    sum_gap = (n - lo) * gap0 + parts.n_moe * (ST - t_sum(lo))
    sum_whole = pf * (sum_dense_side + sum_gap) + (1 - pf) * (sum_compute + n * parts.copy_total) + n * parts.copy_miss
    sum_stage = np.where(parts.stage_on, n * parts.stage, sum_compute)
    return os_ * sum_whole + ost * sum_stage + (1 - os_ - ost) * sum_per_layer, latency_at, t_att


def request(m, g, s, link, tier, w, plan, ndim) -> dict:
    """The request outputs (:data:`VARIABLES`) of ``w.batch`` requests: continuous batching where
    ``w.continuous`` is 1 (the default), the lockstep batch where it is 0 (a dimension of both blends them)."""
    code = np.asarray(getattr(w, "continuous", 0.0))
    lock = _lockstep(m, g, s, link, tier, w, plan, ndim) if np.any(code == 0) else None
    cont = _continuous(m, g, s, link, tier, w, plan, ndim) if np.any(code != 0) else None
    if cont is None or lock is None:
        return cont or lock
    on = code != 0
    return {k: np.where(on, cont[k], lock[k]) for k in lock}


def _prefill(m, g, s, link, tier, w, plan, ndim):
    """The prefill of ``w.batch`` prompts of ``P`` tokens in chunks of ``c`` tokens of each prompt (the last
    ``P mod c``): the runs of full chunks and of the remainder, and their sums."""
    P = w.prompt_len
    c = np.minimum(w.prefill_chunk, P)
    full = np.floor(P / c)
    rest = P - full * c
    nolm = _with(w, count_lm_head=0.0)
    pre_full = run(m, g, s, link, tier, nolm, plan, q=c, l0=(c + 1) / 2, dl=c, n=full, ndim=ndim)
    r = np.where(rest > 0, rest, c)
    pre_rest = run(m, g, s, link, tier, nolm, plan, q=r, l0=full * c + (r + 1) / 2, dl=1.0, n=(rest > 0) * 1.0,
                   ndim=ndim)
    return SimpleNamespace(
        latency=pre_full.latency + pre_rest.latency, steps=full + (rest > 0),
        energy=sum(pre_full.energy[k] + pre_rest.energy[k] for k in kernel.COMPONENTS),
        kv_written=pre_full.kv_written + pre_rest.kv_written, flops=pre_full.flops + pre_rest.flops,
        offload_bytes=pre_full.offload_bytes + pre_rest.offload_bytes)


def _endurance(w, written, seconds, n_gpus):
    """Flash wear of a KV tier: bytes written per second x lifetime / capacity = program/erase cycles used."""
    kv_on_flash = getattr(w, "kv_offloaded", 0.0) * getattr(w, "kv_is_flash", 0.0)
    capacity = n_gpus * getattr(w, "kv_capacity_gb", 0.0) * kernel.GB
    rate = written / seconds
    cycles = getattr(w, "kv_pe_cycles", 0.0)
    years = np.where(kv_on_flash > 0, cycles * capacity / np.maximum(rate, 1e-300) / SECONDS_PER_YEAR, np.inf)
    return years, years >= getattr(w, "service_life_years", 0.0)


def _lockstep(m, g, s, link, tier, w, plan, ndim) -> dict:
    """Lockstep: the batch prefills every prompt (in chunks), then decodes all outputs together (module docstring)."""
    B, P, O = w.batch, w.prompt_len, w.output_len
    pre = _prefill(m, g, s, link, tier, w, plan, ndim)
    dec = run(m, g, s, link, tier, w, plan, q=1.0, l0=P, dl=1.0, n=O, ndim=ndim)
    decode_energy = sum(dec.energy[k] for k in kernel.COMPONENTS)
    request_latency = pre.latency + dec.latency
    per_request = (pre.energy + decode_energy) / B
    written = pre.kv_written + dec.kv_written
    years, ok = _endurance(w, written, request_latency, dec.out0.n_gpus)
    return {
        "prefill_energy": pre.energy / B,
        "decode_energy": decode_energy / B,
        "energy_per_request": per_request,
        "energy_per_output_token": per_request / O,
        "ttft": pre.latency + dec.first,
        "tpot": dec.latency / O,
        "tpot_max": dec.last,
        "prefill_latency": pre.latency,
        "request_latency": request_latency,
        "tokens_per_s_per_gpu": B * O / request_latency / dec.out0.n_gpus,
        "kv_written_bytes": written,
        "prefill_flops": pre.flops,
        "prefill_offload_read_bytes": pre.offload_bytes,
        "flash_endurance_years": years,
        "endurance_ok": ok,
    }


def _continuous(m, g, s, link, tier, w, plan, ndim) -> dict:
    """Continuous batching in steady state (docs/model.md "Requests", s.11.5): ``B`` sequences decode at spread-out
    positions; new prompts' chunks (``n_c = ceil(P / c)`` per prompt, ``cbar = P / n_c`` tokens each, attending over
    ``(P + 1) / 2`` keys on average) ride in the same passes (vLLM's and SGLang's chunked prefill: weights and
    touched experts read once for both). A data-parallel group's step carries ``k = B n_c / (O dp)`` chunks on
    average: a fraction ``k - floor(k)`` of the steps ``ceil(k)``, the rest ``floor(k)``; a step is the decode step
    at the mean context ``Lbar = P + (O - 1) / 2`` with those chunks fused in, and ``tpot`` and the step energy are
    the two kinds' mean. TTFT: the ``n_c`` steps carrying the request's chunks (average steps where ``k >= 1``, else
    one with its chunk) plus an average step. Energy per request: ``O`` steps per ``B`` requests; its prefill share
    is what the chunks add to the decode-only step."""
    B, P, O = w.batch, w.prompt_len, w.output_len
    u = np.asarray(s.dp, float)
    n_c = np.ceil(P / np.minimum(w.prefill_chunk, P))
    cbar = P / n_c
    k = B * n_c / (O * u)
    k_lo, k_hi = np.floor(k), np.ceil(k)
    frac = k - k_lo

    def step(chunks):   # the decode step at Lbar with `chunks` chunks per data-parallel group fused in
        fused = _with(w, fused_tokens=chunks * u * cbar, fused_chunk=cbar, fused_context=(P + 1.0) / 2.0)
        return run(m, g, s, link, tier, fused, plan, q=1.0, l0=P + (O - 1.0) / 2.0, dl=1.0, n=1.0, ndim=ndim)

    lo = step(k_lo)
    hi = lo if np.all(frac == 0) else step(k_hi)
    # the decode-only step splits the energy into decode and prefill (not needed by the batch search's times)
    dec = lo if np.all(k_lo == 0) or w.latency_only else step(0.0)

    def mean(x_lo, x_hi):
        return (1.0 - frac) * x_lo + frac * x_hi

    def total(r):
        return sum(r.energy[c] for c in kernel.COMPONENTS)

    def added(x):   # what the chunks add to the decode-only step, as two differences that are never below 0
        return (x(lo) - x(dec)) + frac * (x(hi) - x(lo))

    tpot = mean(lo.latency, hi.latency)
    per_request = O * mean(total(lo), total(hi)) / B
    prefill_latency = n_c * np.where(k >= 1.0, tpot, hi.latency)
    ttft = prefill_latency + tpot
    # KV written per B requests (their prompts and outputs): B requests finish every O steps
    written = O * mean(lo.kv_written, hi.kv_written)
    years, ok = _endurance(w, written, O * tpot, dec.out0.n_gpus)
    return {
        "prefill_energy": O * added(total) / B,
        "decode_energy": O * total(dec) / B,
        "energy_per_request": per_request,
        "energy_per_output_token": per_request / O,
        "ttft": ttft,
        "tpot": tpot,
        "tpot_max": hi.latency,
        "prefill_latency": prefill_latency,
        "request_latency": ttft + (O - 1.0) * tpot,
        "tokens_per_s_per_gpu": B / tpot / dec.out0.n_gpus,
        "kv_written_bytes": written,
        "prefill_flops": O * added(lambda r: r.flops),
        "prefill_offload_read_bytes": O * added(lambda r: r.offload_bytes),
        "flash_endurance_years": years,
        "endurance_ok": ok,
    }


# ------------------------------------------------------------------------------------------- the largest batch
