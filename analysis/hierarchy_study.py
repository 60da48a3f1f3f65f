"""Memory hierarchy study (docs/model.md s.12): does a hot-HBM / warm-DDR / cold-Flash hierarchy with a remembering
expert cache make Flash offload break even with all-HBM on energy per token, and at what HBM and DRAM capacity?

For DeepSeek-R1, Qwen3-235B-A22B and Mixtral-8x7B in bf16: all-HBM on the fewest H200s that hold every expert
(16, 4, 1) against a hierarchy on half as many GPUs (8, 2; Mixtral on one H100): the cold experts on Flash at the
paper's 102.4 pJ/bit (PCIe SSDs) or on projected HBF, on the HGX H200 node as built (PCIe Gen5 x16 to the host), the hottest ``hbm_cache_fraction`` of each layer's experts in HBM, the next ``warm_fraction`` in the node's DDR5, and
an LRU cache of ``2 top_k`` recently used experts per layer in HBM (the size Liang et al. 2025 find effective).
Routing skew (Zipf exponent) and reuse between steps are swept assumptions: no published value for these models'
decode traces is used (docs/findings.md, "A memory hierarchy"). Prints markdown tables; writes nothing.

    python -m analysis.hierarchy_study          # ~5 s
"""
from __future__ import annotations

import xarray as xr

import dse
from analysis import common

#: model: (all-HBM layout: tp, dp), (hierarchy layout on half the GPUs: tp, dp), the hierarchy's GPU. bf16 weights:
#: the smallest H200 count where all experts fit in HBM, against half of it with the cold experts on Flash; Mixtral
#: fits one H200, so its hierarchy runs on one H100 (80 GB, where its 94 GB do not fit).
MODELS = {"deepseek-r1": ((8, 2), (8, 1), "h200-hgx"), "qwen3-235b-a22b": ((4, 1), (2, 1), "h200-hgx"),
          "mixtral-8x7b": ((1, 1), (1, 1), "h100-hgx")}
COLD = {"SSD 102.4 pJ/bit": "ssd", "HBF 6.1 pJ/bit": "hbf"}
BATCHES = [1, 16, 64]
HBM_FRACTIONS = [0.25, 0.5, 0.75]
WARM_FRACTIONS = [0.0, 0.125, 0.2]            # HBM + DDR share <= 0.95: Flash always holds experts
SKEWS = [0.0, 0.6, 1.2]
REUSES = [0.0, 0.3, 0.6]
SCENARIOS = ((0.0, 0.0), (0.6, 0.3), (1.2, 0.6))      # (skew, reuse): none, moderate, strong
COMMON = dict(system="hgx-h200", accounting="refined", batch=BATCHES, routing_skew=SKEWS,
              **{"system.tiers.ssd.read_pj_per_bit": 102.4})


def _top_k(model: str) -> int:
    from dse.config import presets

    return int(presets.preset("model", model)["top_k"])


def evaluate(model: str) -> tuple[xr.Dataset, xr.Dataset]:
    """All-HBM on its GPUs, and the hierarchy grid on half as many (DDR5 warm tier, LRU cache of 2 top_k)."""
    (tp, dp), (tp_h, dp_h), gpu = MODELS[model]
    ref = dse.evaluate(model=model, placement="hbm", tp=tp, dp=dp, ep=tp * dp, **COMMON)
    grid = dse.evaluate(model=model, placement=list(COLD.values()), tp=tp_h, dp=dp_h, ep=tp_h * dp_h, gpu=gpu,
                        hbm_cache_fraction=HBM_FRACTIONS, warm_tier="ddr", warm_fraction=WARM_FRACTIONS,
                        expert_reuse=REUSES, dynamic_cache_experts=[0, 2 * _top_k(model)], **COMMON)
    return ref, grid


def best(ref: xr.Dataset, grid: xr.Dataset, tier: str, batch: int, skew: float, reuse: float):
    """The split (HBM share, DDR share, cache) with the least energy per token among those that fit, and the
    ratios of its energy, capacity cost and step latency to all-HBM's."""
    g = grid.sel(placement=tier, batch=batch, routing_skew=skew, expert_reuse=reuse)
    h = ref.sel(batch=batch, routing_skew=skew)
    ratio = (g.energy_per_token / h.energy_per_token).where(g.fits.astype(bool))
    if bool(ratio.isnull().all()):
        return None
    at = ratio.where(ratio == ratio.min(), drop=True)
    at = {d: at[d].values[0] for d in at.dims}
    pick = g.sel(**at)
    return dict(energy=float(ratio.min()), split=at, cost=float(pick.capacity_cost_usd / h.capacity_cost_usd),
                latency=float(pick.step_latency / h.step_latency))


def table_break_even(results: dict) -> str:
    """Per model, cold tier, batch and (skew, reuse): the best fitting split against all-HBM."""
    lines = ["| model (GPUs: all-HBM / hierarchy) | cold tier | batch | skew, reuse | best E / E_HBM | "
             "HBM + DDR share, LRU slots | capacity cost / all-HBM | step latency / all-HBM |",
             "|---|---|---|---|---|---|---|---|"]
    for model, (ref, grid) in results.items():
        (tp, dp), (tp_h, dp_h), gpu = MODELS[model]
        for label, tier in COLD.items():
            for b in BATCHES:
                for skew, reuse in SCENARIOS:
                    r = best(ref, grid, tier, b, skew, reuse)
                    if r is None:
                        continue
                    s = r["split"]
                    lines.append(f"| {model} ({tp * dp} / {tp_h * dp_h} {gpu[:4].upper()}) | {label} | {b} | {skew:g}, {reuse:g} | "
                                 f"{r['energy']:.3f} | {s['hbm_cache_fraction']:g} + {s['warm_fraction']:g}, "
                                 f"{int(s['dynamic_cache_experts'])} | {r['cost']:.3f} | {r['latency']:.2f} |")
    return "\n".join(lines)


def table_capacity(results: dict, model: str, tier: str, batch: int, skew: float, reuse: float) -> str:
    """Energy per token over all-HBM's by HBM share (rows) and DDR share (columns), with the LRU cache."""
    ref, grid = results[model]
    g = grid.sel(placement=tier, batch=batch, routing_skew=skew, expert_reuse=reuse,
                 dynamic_cache_experts=2 * _top_k(model))
    r = g.energy_per_token / ref.sel(batch=batch, routing_skew=skew).energy_per_token
    lines = ["| HBM share \\ DDR share | " + " | ".join(f"{w:g}" for w in WARM_FRACTIONS) + " |",
             "|---" * (len(WARM_FRACTIONS) + 1) + "|"]
    for h in HBM_FRACTIONS:
        cells = [f"{float(r.sel(hbm_cache_fraction=h, warm_fraction=w)):.3f}"
                 + ("" if bool(g.fits.sel(hbm_cache_fraction=h, warm_fraction=w)) else " (no fit)")
                 for w in WARM_FRACTIONS]
        lines.append(f"| {h:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    common.arguments(__doc__, argv, out=None)
    results = {m: evaluate(m) for m in MODELS}
    for m, (ref, _) in results.items():
        print(f"{m}: all-HBM fits: {bool(ref.fits.all())}, hbm_fill {float(ref.hbm_fill.max()):.2f}")
    print("\nBest fitting split per scenario (energy per token over all-HBM's; < 1: the hierarchy breaks even)\n")
    print(table_break_even(results))
    for tier in COLD.values():
        print(f"\nDeepSeek-R1 on 8 H200, cold experts on {tier}, batch 16, skew 0.6, reuse 0.3, 16 LRU slots: "
              "energy per token / all-HBM on 16 H200\n")
        print(table_capacity(results, "deepseek-r1", tier, 16, 0.6, 0.3))


if __name__ == "__main__":
    main()
