"""``dse explore [PATH] [--port N] [--address A] [--no-browser]``: serve the explorer (one page per browser session).

It listens on 127.0.0.1 by default, reads no file but ``PATH``, writes none, and stops cleanly on Ctrl-C or SIGTERM
(exit status 0).
"""
from __future__ import annotations

import argparse
import logging
import signal

from dse.errors import DseError

log = logging.getLogger("dse.explore")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dse explore",
        description="The design space in the browser. Without PATH, live mode: pick presets, placements and "
                    "parameters and see energy per token, its breakdown, the break-even Flash read energy, request "
                    "metrics and the largest batch under latency targets, capacity. With PATH (a dse result .nc or "
                    ".zarr, or a dse-search output directory), results mode: a widget per dimension, the view "
                    "dse.plot.auto chooses, a search's Pareto front.",
        epilog="Needs the explore extra: pip install 'dse[explore]'. Docs: docs/explore.md.")
    p.add_argument("path", nargs="?", metavar="PATH", help="a result (.nc, .zarr) or a dse-search output directory")
    p.add_argument("--port", type=int, default=5006, help="port to listen on (default 5006)")
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        raise DseError(f"--port {args.port}: allowed 0 to 65535")
    from dse.explorer import require_panel

    pn = require_panel()
    import matplotlib

    matplotlib.use("Agg")     # figures are drawn to bytes for the page: never a window on the server's display
    logging.getLogger("dse").setLevel(logging.INFO)
    if not logging.getLogger("dse").handlers and not logging.getLogger().handlers:
        logging.basicConfig(format="%(message)s")
    if args.path is not None:
        from dse.explorer.results_app import open_path

        ds, kind, file = open_path(args.path)   # a bad path: one line before serving
        ds.close()
        log.info("dse explore: %s (%s)", file, kind)

    def page():
        from dse.explorer import app

        return app(args.path).view

    origins = sorted({f"{h}:{args.port}" for h in ("127.0.0.1", "localhost", args.address)})
    try:
        server = pn.serve({"/": page}, port=args.port, address=args.address, show=False, start=False,
                          websocket_origin=origins, title="dse explore", threaded=False)
        server.start()
    except OSError as err:   # the port is taken, or the address is not this machine's
        raise DseError(f"--address {args.address} --port {args.port}: cannot listen ({err.strerror or err})") from None
    url = f"http://{args.address}:{server.port}/"
    log.info("dse explore: serving %s (Ctrl-C to stop)", url)
    if args.address not in ("127.0.0.1", "localhost", "::1"):
        log.warning("dse explore: listening on %s: anyone who reaches it can run evaluations on this machine",
                    args.address)
    loop = server.io_loop

    def stop(signum, frame):
        log.info("dse explore: stopping (%s)", signal.Signals(signum).name)
        loop.add_callback_from_signal(loop.stop)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not args.no_browser:
        import webbrowser

        loop.add_callback(lambda: webbrowser.open(url.replace("0.0.0.0", "127.0.0.1")))
    try:
        loop.start()
    except KeyboardInterrupt:
        pass
    server.stop()
    log.info("dse explore: stopped")
    return 0
