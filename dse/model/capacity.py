"""Capacity: what the placement holds in each tier, whether it fits, and what it costs (docs/model.md section 7).

Cost convention (one formula, no double count of HBM):

    capacity cost = GPUs x (price_usd - hbm_capacity_gb x hbm_usd_per_gb)    the GPUs less their HBM
                  + HBM bytes held x hbm_usd_per_gb                          weights + KV cache, all GPUs
                  + offload-tier bytes held x the tier's usd_per_gb          cold experts

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
COST_PARTS = ("gpus", "hbm", "offload")

# A data table (its rows share a shape with the other variable tables by design: one row per output variable).
VARIABLES = {  # name: (units, long_name)
    "capacity_cost_usd": ("USD", "capacity cost: GPUs less their HBM + bytes held in each tier x $/GB"),
    "capacity_cost": ("USD", "capacity cost by part (GPUs less their HBM, HBM bytes, offload-tier bytes)"),
    "hbm_capacity_bytes": ("B", "HBM capacity of all GPUs"),
    "offload_capacity_bytes": ("B", "capacity of the offload tier's devices, all GPUs (0 for placement hbm)"),
    "hbm_fill": ("1", "HBM bytes held / HBM capacity (above 1: does not fit)"),
    "offload_fill": ("1", "offload-tier bytes held / its capacity (above 1: does not fit)"),
    "fits": ("1", "weights, KV cache and offloaded experts fit: hbm_fill <= 1 and offload_fill <= 1"),
}


def fits(hbm_fill, offload_fill):
    """Whether a configuration fits (docs/model.md s.7): HBM (weights + KV cache) and the offload tier within capacity."""
    return (np.asarray(hbm_fill) <= 1.0) & (np.asarray(offload_fill) <= 1.0)


def capacity(g, tier, n_gpus, hbm_bytes, tier_bytes) -> dict:
    """Capacity limits, fill ratios and cost parts for bytes held in HBM and in the offload tier."""
    hbm_capacity_gb = g.hbm_capacity_gb
    hbm_usd_per_gb = g.hbm_usd_per_gb
    gpu_less_hbm = np.maximum(g.price_usd - hbm_capacity_gb * hbm_usd_per_gb, 0.0)
    hbm_capacity = n_gpus * hbm_capacity_gb * GB
    offload_capacity = n_gpus * tier.devices_per_gpu * tier.capacity_gb * GB
    cost = {
        "gpus": n_gpus * gpu_less_hbm,
        "hbm": hbm_bytes / GB * hbm_usd_per_gb,
        "offload": tier_bytes / GB * tier.usd_per_gb,
    }
    hbm_fill = hbm_bytes / hbm_capacity
    offload_fill = tier_bytes / np.maximum(offload_capacity, 1e-30)  # 0 when nothing is offloaded
    return dict(
        cost=cost,
        hbm_capacity_bytes=hbm_capacity,
        offload_capacity_bytes=offload_capacity,
        hbm_fill=hbm_fill,
        offload_fill=offload_fill,
        fits=fits(hbm_fill, offload_fill),
    )
