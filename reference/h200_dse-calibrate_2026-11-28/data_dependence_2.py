"""The script that produced data-dependence-2-fresh-machine.json (PYTHONPATH=. python3 <this>)."""
import json, os, torch
from dse import calibrate as cal
src = cal.NvmlSource(0); be = cal.TorchBackend(0); src.match_pci(be.pci_bus_id)
W = 12.0
out = []
def run(name, step, bits):
    k = cal.iters_per_step(src, step, be.sync); w = cal.measure(src, step, be.sync, W, k)
    r = cal.summarize(w, idle, bits, "bit"); r["name"] = name; out.append(r)
    print(f"{name}: {r['GBps']:.1f} GB/s {r['avg_W']:.1f} W dyn {r['dyn_pJ_per_bit']:.3f} pJ/bit", flush=True)
idle = cal.measure(src, lambda: src.sleep(0.1), be.sync, W).avg_w; print("idle", idle, flush=True)
n = 8 * 2**30
x = torch.randint(-2**15, 2**15, (n // 2,), dtype=torch.int16, device="cuda").view(torch.bfloat16)
run("bf16 sum 8GiB uniform random 16-bit patterns", lambda: x.sum(), n * 8)
del x
a = torch.randint(-2**15, 2**15, (n // 4,), dtype=torch.int16, device="cuda"); b = torch.empty_like(a)
run("int16 copy 4GiB uniform random bits (r+w counted)", lambda: b.copy_(a), n * 8)
del a, b
y = torch.randn(n // 2, dtype=torch.bfloat16, device="cuda")
run("bf16 sum 8GiB randn (repeat)", lambda: y.sum(), n * 8)
json.dump({"idle_W": idle, "runs": out}, open(os.environ["OUT"] + "/diag2.json", "w"), indent=1)
