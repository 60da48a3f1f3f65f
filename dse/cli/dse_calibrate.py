"""dse-calibrate: measure a GPU's board-level energy per bit and per FLOP, and write a GPU preset from it (dse.calibrate)."""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from dse.calibrate.backends import default_backend
from dse.calibrate.nvml import NvmlSource
from dse.calibrate.preset_yaml import gpu_preset, header, link_preset, load_gpu_preset, to_yaml
from dse.calibrate.probe import calibrate, check_window
from dse.cli.common import errors
from dse.files import write_text
from dse.errors import DseError

def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dse-calibrate", description="Measure a GPU's board-level energy per bit and per FLOP, and write a GPU preset from it.")
    p.add_argument("--window-s", type=float, default=12.0, help="seconds per measurement window (10..600)")
    p.add_argument("--device", type=int, default=0, help="CUDA device index")
    p.add_argument("--name", help="preset name (default: <gpu>-calibrated)")
    p.add_argument("--base", help="GPU preset (name or YAML path) for what a measurement cannot give: "
                                  "capacity and price")
    p.add_argument("--price-usd", type=float, help="GPU price (else from --base)")
    p.add_argument("--out", help="write the GPU preset YAML here (default: stdout)")
    p.add_argument("--link-out", help="also write an offload-link preset from the host -> device copy")
    p.add_argument("--json", help="write the raw probe (reference JSON layout) here")
    p.add_argument("--from-json", help="convert an existing probe JSON instead of measuring (no GPU needed)")
    return p


def _check_args(args) -> dict | None:
    """Every input check before any work starts."""
    check_window(args.window_s)
    if args.price_usd is not None and not (args.price_usd >= 0):
        raise DseError(f"--price-usd={args.price_usd:g} out of range: allowed [0, inf)")
    for opt in ("out", "link_out", "json"):
        v = getattr(args, opt)
        if v is not None and not Path(v).resolve().parent.is_dir():
            raise DseError(f"--{opt.replace('_', '-')}={v}: directory {Path(v).resolve().parent} does not exist")
    if args.from_json is not None and not Path(args.from_json).is_file():
        raise DseError(f"--from-json={args.from_json}: no such file")
    if args.name is not None and _slug(args.name) != args.name:
        raise DseError(f"--name={args.name!r}: use lowercase letters, digits and dashes")
    base = load_gpu_preset(args.base) if args.base else None
    if base is None and args.price_usd is None:
        raise DseError("a measurement gives no price: pass --base (a GPU preset, e.g. h200-sxm) or --price-usd")
    return base


def _probe(args, log) -> tuple[dict, str]:
    """The probe dict and its label: read from --from-json, or measured on the GPU."""
    if args.from_json:
        try:
            return json.loads(Path(args.from_json).read_text()), args.from_json
        except (OSError, ValueError) as e:
            raise DseError(f"--from-json={args.from_json}: not a probe JSON ({e})") from None
    source = NvmlSource(args.device)
    try:
        backend = default_backend(args.device)
        source.match_pci(backend.pci_bus_id)
        log(f"measuring {source.info()['gpu']} with {backend.version}, {args.window_s:g} s windows "
            "(clocks and power limits are left as they are)")
        probe = calibrate(source, backend, args.window_s, log=log)
    finally:
        source.close()
    if args.json:  # raw data first: it survives a failed conversion
        write_text(args.json, json.dumps(probe, indent=1) + "\n", "--json", flag="another --json path")
    return probe, "dse-calibrate"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    log = lambda s: print(f"dse-calibrate: {s}", file=sys.stderr, flush=True)  # noqa: E731
    with errors("dse-calibrate"):
        base = _check_args(args)
        from dse.files import check_free

        for key, path in (("--json", args.json), ("--out", args.out), ("--link-out", args.link_out)):
            if path:        # before measuring: nothing dse did not write is replaced
                check_free([path], key, flag=f"another {key} path")
        probe, label = _probe(args, log)
        name = args.name or f"{_slug(probe.get('gpu', 'gpu')).removeprefix('nvidia-')}-calibrated"
        text = to_yaml(gpu_preset(probe, name, base, args.price_usd, label), header(probe, label, "GPU"))
        link_text = (to_yaml(link_preset(probe, f"{name}-h2d", label), header(probe, label, "Host -> device link"))
                     if args.link_out else None)
        if args.out:
            write_text(args.out, text, "--out", flag="another --out path")
        else:
            sys.stdout.write(text)
        if link_text is not None:
            write_text(args.link_out, link_text, "--link-out", flag="another --link-out path")
    return 0


if __name__ == "__main__":
    sys.exit(main())
