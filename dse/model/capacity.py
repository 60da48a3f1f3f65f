"""Capacity: what the placement holds in each tier, whether it fits, and what it costs (docs/model.md section 7).

Cost convention (one formula, no double count of HBM):

    capacity cost = GPUs x (price_usd - hbm_capacity_gb x hbm_usd_per_gb)    the GPUs less their HBM
                  + HBM bytes held x hbm_usd_per_gb                          weights + KV cache, all GPUs
                  + offload-tier bytes held x the tier's usd_per_gb          cold experts
                  + warm-tier bytes held x the warm tier's usd_per_gb        warm experts (docs/model.md s.12.6)

A fully used GPU therefore costs its street price; unused HBM is not charged; setting the GPU preset's
``price_usd`` to 0 (``system.gpu.price_usd``) leaves the memory alone (the GPU part never goes below 0).
Limits: HBM = GPUs x hbm_capacity_gb; offload tier = GPUs x devices_per_gpu x capacity_gb (DDR per socket,
SSD per drive x drives per GPU, ...). ``*_fill`` = bytes held / capacity: above 1 it does not fit. The HBM
check is aggregate over all GPUs (exact when experts are spread evenly over every GPU, ep = tp x dp).

Functions are elementwise like the kernel: ``g`` and ``tier`` are namespaces of numbers or DataArrays.
"""
from __future__ import annotations

import numpy as np


GB = 1e9
#: Parts of the capacity cost, in the order reported along dimension ``cost_part``.
COST_PARTS = ("gpus", "hbm", "offload", "warm")

# A data table (its rows share a shape with the other variable tables by design: one row per output variable).
VARIABLES = {  # name: (units, long_name)
    "capacity_cost_usd": ("USD", "capacity cost: GPUs less their HBM + bytes held in each tier x $/GB"),
    "capacity_cost": ("USD", "capacity cost by part (GPUs less their HBM, HBM bytes, offload-tier bytes, warm-tier "
                      "bytes)"),
    "hbm_capacity_bytes": ("B", "HBM capacity of all GPUs"),
    "offload_capacity_bytes": ("B", "capacity of the offload tier's devices, all GPUs (0 for placement hbm)"),
    "hbm_fill": ("1", "HBM bytes held / HBM capacity (above 1: does not fit)"),
    "offload_fill": ("1", "offload-tier bytes held / its capacity (above 1: does not fit)"),
    "warm_fill": ("1", "warm-tier bytes held / its capacity (above 1: does not fit; 0 without a warm tier)"),
    "fits": ("1", "weights, KV cache and offloaded experts fit: hbm_fill, offload_fill and warm_fill <= 1"),
}


def fits(hbm_fill, offload_fill, warm_fill=0.0):
    """Whether a configuration fits (docs/model.md s.7): HBM (weights + KV cache), the offload tier and the warm
    tier within capacity."""
    return (np.asarray(hbm_fill) <= 1.0) & (np.asarray(offload_fill) <= 1.0) & (np.asarray(warm_fill) <= 1.0)


def capacity(g, tier, n_gpus, hbm_bytes, tier_bytes, warm=None) -> dict:
    """Capacity limits, fill ratios and cost parts for bytes held in HBM, in the offload tier and (``warm``: bytes
    held, capacity GB per GPU, USD per GB) in the warm tier."""
    warm_bytes, warm_gb, warm_usd = (0.0, 0.0, 0.0) if warm is None else warm
    hbm_capacity_gb = g.hbm_capacity_gb
    hbm_usd_per_gb = g.hbm_usd_per_gb
    gpu_less_hbm = np.maximum(g.price_usd - hbm_capacity_gb * hbm_usd_per_gb, 0.0)
    hbm_capacity = n_gpus * hbm_capacity_gb * GB
    offload_capacity = n_gpus * tier.devices_per_gpu * tier.capacity_gb * GB
    cost = {
        "gpus": n_gpus * gpu_less_hbm,
        "hbm": hbm_bytes / GB * hbm_usd_per_gb,
        "offload": tier_bytes / GB * tier.usd_per_gb,
        "warm": warm_bytes / GB * warm_usd,
    }
    warm_fill = warm_bytes / np.maximum(n_gpus * warm_gb * GB, 1e-30)
    hbm_fill = hbm_bytes / hbm_capacity
    offload_fill = tier_bytes / np.maximum(offload_capacity, 1e-30)  # 0 when nothing is offloaded
    return dict(
        cost=cost,
        hbm_capacity_bytes=hbm_capacity,
        offload_capacity_bytes=offload_capacity,
        hbm_fill=hbm_fill,
        offload_fill=offload_fill,
        warm_fill=warm_fill,
        fits=fits(hbm_fill, offload_fill, warm_fill),
    )


def kv_capacity(tier, w, out, held, cost):
    """A KV cache on a tier: it must fit there (with the experts when they share the tier); its bytes are charged at
    the tier's price (the ``offload`` cost part)."""
    same = (tier.tier_id == w.kv_tier_id) * w.kv_offloaded
    kv_capacity = out.n_gpus * w.kv_capacity_gb * GB
    kv_fill = (out.kv_tier_bytes + same * out.tier_bytes) / np.maximum(kv_capacity, 1e-30)
    held["offload_fill"] = held["offload_fill"] + same * out.kv_tier_bytes / np.maximum(
        held["offload_capacity_bytes"], 1e-30)
    held["fits"] = fits(held["hbm_fill"], held["offload_fill"], held["warm_fill"]) & (kv_fill <= 1.0)
    cost = cost[:2] + (cost[2] + out.kv_tier_bytes / GB * w.kv_usd_per_gb,) + cost[3:]
    return cost, {"kv_tier_bytes": out.kv_tier_bytes, "kv_tier_fill": kv_fill}
