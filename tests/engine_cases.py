"""Engine regression cases: dse.evaluate calls whose outputs were saved (tests/data/engine_reference.nc).
Last regenerated on purpose with the operation-table kernel (issue 9: TP attention, tiling traffic, activations,
exact busiest GPU); test_grid.py checks the engine reproduces them. Regenerate only on purpose (a deliberate
change of the physics), with the engine whose numbers are the reference: python tests/engine_cases.py."""
from __future__ import annotations

CASES = {
    "fig45_mixtral": dict(study="paper-fig45-mixtral"),
    "fig45_deepseek": dict(study="paper-fig45-deepseek"),
    "fig6_maverick": dict(study="paper-fig6-maverick"),
    "fig6_llama3": dict(study="paper-fig6-llama3"),
    "flash_grid": dict(model="deepseek-r1", system="8xh200-c2c", placement=["hbm", "ddr", "ssd", "hbf"],
                       batch=[1, 3, 64, 512], flash_read_pj_per_bit=[2.0, 30.0, 200.0],
                       top_k=[1, 2, 8], n_experts=[32, 256], context_len=[0, 4096],
                       attention_parallel="tp"),      # the reference's: heads over TP ranks (auto: dp for MLA)
    "models_systems": dict(model=["mixtral-8x7b", "deepseek-r1", "qwen3-235b-a22b"],
                           system=["8xh200-c2c", "paper-8xh100-c2c5"], placement=["ssd", "ddr"], batch=[1, 16],
                           attention_parallel="tp"),  # the reference's: heads over TP ranks (auto: dp for MLA)
    "zipf_cache": dict(model="qwen3-235b-a22b", system="8xh200-c2c", placement="ssd", routing_skew=[0.0, 0.8, 1.5],
                       hbm_cache_fraction=[0.0, 0.25, 1.0], batch=[1, 32], prefetch=[False, True],
                       offload_path="direct"),
    "offload_path_refined": dict(study="paper-fig45-mixtral", accounting="refined", offload_path=["staged", "direct"],
                                 context_len=[1024, 32768]),
    "measured_routing": dict(model="mixtral-8x7b", system="8xh200-c2c", placement=["ssd", "ddr"], batch=[1, 4, 64],
                             hbm_cache_fraction=[0.0, 0.5],
                             routing_frequencies=[0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1, 0.1]),
    "gpu_link_ep": dict(model="mixtral-8x7b", system="8xh200-c2c", gpu=["h100-sxm", "b200"],
                        link=["pcie-gen5-x16", "nvlink-c2c-gen5"], ep=[1, 2, 8], placement="ssd", batch=[2, 64]),
    "scalars_paths": {"model": "gpt-oss-120b", "system": "8xb200-c2c", "placement": "ssd", "batch": 7,
                      "system.gpu.idle_w": [50.0, 120.0], "link_bw_gbps": {"start": 50, "stop": 900, "num": 4},
                      "ssd_per_gpu": [1, 8]},
}

# the reference predates attention_parallel=auto (dp for MLA models on several GPUs): its cases run tp attention
for _case in CASES.values():
    if "study" not in _case:
        _case.setdefault("attention_parallel", "tp")


def evaluate(name: str):
    import dse

    return dse.evaluate(**CASES[name])


if __name__ == "__main__":
    import os
    from pathlib import Path

    path = Path(__file__).parent / "data" / "engine_reference.nc"
    if path.exists():
        os.remove(path)
    for i, name in enumerate(CASES):
        ds = evaluate(name)
        ds.to_netcdf(path, mode="w" if i == 0 else "a", group=name, engine="h5netcdf")
        print(name, dict(ds.sizes))
