"""The script that produced data-dependence.json (run from a checkout root: PYTHONPATH=. python3 <this>)."""
import json, os, torch
from dse import calibrate as cal
src = cal.NvmlSource(0); be = cal.TorchBackend(0); src.match_pci(be.pci_bus_id)
W = 12.0
def run(name, step, bits):
    k = cal.iters_per_step(src, step, be.sync); w = cal.measure(src, step, be.sync, W, k)
    r = cal.summarize(w, idle, bits, "bit"); r["name"] = name; out.append(r)
    print(f"{name}: {r['GBps']:.1f} GB/s {r['avg_W']:.1f} W dyn {r['dyn_pJ_per_bit']:.3f} pJ/bit", flush=True)
out = []
idle = cal.measure(src, lambda: src.sleep(0.1), be.sync, W).avg_w; print("idle", idle, flush=True)
n = 8 * 2**30
x = torch.ones(n // 2, dtype=torch.bfloat16, device="cuda")
run("bf16 sum 8GiB (repeat)", lambda: x.sum(), n * 8)
run("fp32-accum sum 8GiB", lambda: torch.sum(x, dtype=torch.float32), n * 8)
xf = x.view(torch.float32)
run("fp32 view sum 8GiB", lambda: xf.sum(), n * 8)
xr = torch.randn(n // 2, dtype=torch.bfloat16, device="cuda"); del x, xf
run("bf16 sum 8GiB random data", lambda: xr.sum(), n * 8)
a = torch.randn(n // 4, dtype=torch.bfloat16, device="cuda"); b = torch.empty_like(a)
run("bf16 copy 4GiB random data (r+w counted)", lambda: b.copy_(a), n * 8)
a1 = torch.ones(n // 4, dtype=torch.bfloat16, device="cuda")
run("bf16 copy 4GiB ones (r+w counted)", lambda: b.copy_(a1), n * 8)
del a, a1, b
h = torch.randint(0, 256, (2 * 2**30,), dtype=torch.uint8).pin_memory(); d = torch.empty(2 * 2**30, dtype=torch.uint8, device="cuda")
run("h2d pinned 2GiB random bytes", lambda: d.copy_(h, non_blocking=True), 2 * 2**30 * 8)
idle2 = cal.measure(src, lambda: src.sleep(0.1), be.sync, W).avg_w; print("idle after", idle2, flush=True)
json.dump({"idle_W": idle, "idle_after_W": idle2, "runs": out}, open(os.environ["OUT"] + "/diag.json", "w"), indent=1)
