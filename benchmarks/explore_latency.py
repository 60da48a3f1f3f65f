"""dse explore: interaction latency of live mode, server side, from a widget change to the updated view.

The page is built as a served session builds it (its Panel layout rendered into a Bokeh document), then a widget's
value is changed the way a browser's change event sets it; the time until the change's callbacks return covers
the evaluation (dse.evaluate on the live grid), the tables, the interactive views and the Bokeh model updates that
go to the browser. Measured for a live grid of placements x batches of up to 100 points, for a Flash read energy
change and a placement change; the break-even and serving tabs are timed too (informational). Target: under 300 ms
for the 100-point grid on a 2-core machine.

    python benchmarks/explore_latency.py                 # 4 placements x 25 batches = 100 points, 15 changes
    python benchmarks/explore_latency.py --repeats 3
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_MS = 300.0


def session(batches: int):
    """A live page for ``batches`` batch values x 4 placements, rendered into a document as the server does."""
    from bokeh.document import Document

    from dse.explorer import app

    page = app(batch=tuple(range(1, batches + 1)), at_batch=1, placement=("hbm", "ddr", "ssd", "hbf"))
    doc = Document()
    doc.add_root(page.view.get_root(doc))
    return page, doc


def timed(page, change, values, repeats: int) -> list[float]:
    out = []
    for i in range(repeats):
        t = time.perf_counter()
        change(values[i % len(values)])
        out.append((time.perf_counter() - t) * 1e3)
        if page.error.visible:
            raise SystemExit(f"the page shows an error: {page.error.object}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=15, help="changes timed per case (default 15)")
    ap.add_argument("--batches", type=int, default=25, help="batch values of the live grid (x 4 placements)")
    args = ap.parse_args(argv)
    page, _ = session(args.batches)
    points = page.last.ds.sizes["placement"] * page.last.ds.sizes["batch"]
    flash = page.numeric["flash_read_pj_per_bit"]

    def set_flash(v):
        flash.value = v

    def set_placement(v):
        page.placement.value = v
    timed(page, set_flash, [11.0], 2)    # warm-up (first draws)
    cases = {"Flash read energy": timed(page, set_flash, [10.0, 20.0, 40.0, 80.0, 160.0], args.repeats),
             "placement": timed(page, set_placement, [["hbm", "ssd", "hbf"], ["hbm", "ddr", "ssd", "hbf"]],
                                args.repeats)}
    for tab, name in ((1, "break-even tab"), (2, "serving tab")):
        page.tabs.active = tab
        cases[f"Flash read energy ({name})"] = timed(page, set_flash, [10.0, 20.0, 40.0], max(3, args.repeats // 3))
    page.tabs.active = 0
    print(f"dse explore, live grid of {points} points (4 placements x {args.batches} batches), server side, "
          f"{args.repeats} changes per case:")
    for name, ms in cases.items():
        print(f"  {name:<34} median {statistics.median(ms):7.1f} ms   max {max(ms):7.1f} ms")
    med = statistics.median(cases["Flash read energy"] + cases["placement"])
    verdict = "meets" if med < TARGET_MS else "MISSES"
    print(f"widget change -> updated view: {med:.1f} ms median for {points} points ({verdict} the "
          f"{TARGET_MS:.0f} ms target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
