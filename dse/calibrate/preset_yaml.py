"""Probe -> presets: a GPU preset and a host-to-device link preset with provenance, written as YAML."""
from __future__ import annotations

from pathlib import Path

from dse.calibrate import COPY, GEMM, H2D, METHOD, READ

from dse.errors import DseError

def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def derived(probe: dict) -> dict:
    """The model's constants from a probe: board-level dynamic pJ/bit, pJ/FLOP, idle W, achieved rates.

    HBM write is what a copy costs beyond its read: a copy of N bits counts 2N bits moved at c pJ/bit, so
    read + write = 2c and write = 2c - read. The host -> device copy's GPU side pays the link and the HBM
    write; the link's share is that minus the HBM write (the host's DRAM and PCIe end are not measured).
    """
    try:
        r = probe["results"]
        read = r[READ]["dyn_pJ_per_bit"]
        copy = r[COPY]["dyn_pJ_per_bit"]
        out = {"idle_w": probe["idle_W"], "hbm_read_pj_per_bit": read, "hbm_write_pj_per_bit": 2 * copy - read,
               "flop_pj": r[GEMM]["dyn_pJ_per_flop"], "peak_tflops": r[GEMM]["TFLOPs"],
               "hbm_bw_gbps": r[READ]["GBps"], "copy_pj_per_bit": copy}
        if H2D in r:
            out["h2d_gbps"] = r[H2D]["GBps"]
            out["h2d_pj_per_bit"] = r[H2D]["dyn_pJ_per_bit_gpu_side"]
            out["link_pj_per_bit"] = out["h2d_pj_per_bit"] - out["hbm_write_pj_per_bit"]
    except (KeyError, TypeError) as e:
        raise DseError(f"probe JSON lacks {e}: expected idle_W and results.{{{READ},{COPY},{GEMM}}}") from None
    for key in ("idle_w", "hbm_read_pj_per_bit", "hbm_write_pj_per_bit", "flop_pj", "link_pj_per_bit"):
        if key in out and out[key] < 0:
            raise DseError(f"derived {key}={out[key]:.4g} is negative: the measurement is too noisy; measure "
                           "again with a longer --window-s")
    return out


def _where(probe: dict, label: str) -> str:
    bits = [label, probe.get("gpu", "GPU not recorded")]
    if probe.get("driver"):
        bits.append(f"driver {probe['driver']}")
    if probe.get("date"):
        bits.append(probe["date"][:10])
    return ", ".join(bits)


def gpu_preset(probe: dict, name: str, base: dict | None = None, price_usd: float | None = None,
               label: str = "dse-calibrate") -> dict:
    """A GPU preset (dse/conf/gpu schema) from a probe. Capacity and price come from ``base`` (a preset)
    or NVML's memory total / ``price_usd``: a power measurement gives neither."""
    d = derived(probe)
    where = _where(probe, label)
    src = lambda what: {"source": f"{where}: {what}", "evidence": "measured"}  # noqa: E731
    board = "board-level figures include the SMs, L2 and on-chip network"
    prov = {
        "peak_tflops": src(f"achieved rate of {GEMM} ({probe.get('activities', {}).get(GEMM, 'bf16 GEMM 8192^3')})"),
        "hbm_bw_gbps": src(f"achieved rate of {READ} (HBM read stream)"),
        "hbm_capacity_gb": None,
        "idle_w": src("idle board power with a CUDA context up (clocks raised), NVML energy / window time"),
        "hbm_read_pj_per_bit": src(f"{READ} dynamic pJ/bit ({board})"),
        "hbm_write_pj_per_bit": {"source": f"{where}: 2 x {COPY} dynamic pJ/bit (read + write counted) "
                                           f"- HBM read = 2 x {d['copy_pj_per_bit']:.4g} - {d['hbm_read_pj_per_bit']:.4g}",
                                 "evidence": "derived"},
        "flop_pj": src(f"{GEMM} dynamic pJ/FLOP"),
        "l2_pj_per_bit": {"source": "included in the board-level HBM pJ/bit", "evidence": "derived"},
        "l1_pj_per_bit": {"source": "included in the board-level HBM pJ/bit", "evidence": "derived"},
        "price_usd": None,
    }
    base = base or {}
    capacity, price, hbm_usd_per_gb, geometry = _from_base(probe, base, price_usd, prov, src)
    return {
        "name": name,
        "peak_tflops": round(d["peak_tflops"], 1),
        "hbm_bw_gbps": round(d["hbm_bw_gbps"], 1),
        "hbm_capacity_gb": capacity,
        "idle_w": round(d["idle_w"], 1),
        "hbm_read_pj_per_bit": _sig(d["hbm_read_pj_per_bit"]),
        "hbm_write_pj_per_bit": _sig(d["hbm_write_pj_per_bit"]),
        "flop_pj": _sig(d["flop_pj"]),
        "l2_pj_per_bit": 0.0,
        "l1_pj_per_bit": 0.0,
        **geometry,
        "price_usd": price,
        "hbm_usd_per_gb": hbm_usd_per_gb,
        "provenance": prov,
    }


def _from_base(probe: dict, base: dict, price_usd, prov: dict, src):
    """What a power probe cannot measure -- HBM capacity (unless NVML reports it), price, HBM $/GB and cache
    geometry -- from the base preset (or --price-usd), each with its provenance written into ``prov``."""
    base_prov = base.get("provenance", {}) or {}
    if "hbm_capacity_gb" in base:
        capacity = float(base["hbm_capacity_gb"])
        prov["hbm_capacity_gb"] = base_prov.get("hbm_capacity_gb") or {"source": f"from {base.get('name')}",
                                                                         "evidence": "assumption"}
    elif probe.get("memory_total_bytes"):
        capacity = round(probe["memory_total_bytes"] / 1e9, 1)
        prov["hbm_capacity_gb"] = src("NVML memory total")
    else:
        raise DseError("hbm_capacity_gb: the probe has no memory_total_bytes; pass --base (a GPU preset)")
    if price_usd is not None:
        price = float(price_usd)
        prov["price_usd"] = {"source": "given with --price-usd", "evidence": "assumption"}
    elif "price_usd" in base:
        price = float(base["price_usd"])
        prov["price_usd"] = base_prov.get("price_usd") or {"source": f"from {base.get('name')}", "evidence": "assumption"}
    else:
        raise DseError("price_usd: a measurement gives no price; pass --price-usd or --base (a GPU preset)")
    prov["hbm_usd_per_gb"] = base_prov.get("hbm_usd_per_gb") or {
        "source": f"from {base.get('name') or 'no base preset'} (a measurement gives no price)", "evidence": "assumption"}
    # cache geometry: a power probe does not measure it; take the base preset's (or the H100 values of the
    # authors' tool, flagged as an assumption)
    geometry = {"register_tile": 16, "l1_kib": 256.0, "l2_mib": 50.0}
    for key, default in geometry.items():
        geometry[key] = base.get(key, default)
        prov[key] = base_prov.get(key) or {"source": f"{'from ' + base['name'] if key in base else 'H100 value'}"
                                                     " (a power probe does not measure cache geometry)",
                                           "evidence": "assumption"}
    return capacity, price, float(base.get("hbm_usd_per_gb", 0.0)), geometry


def link_preset(probe: dict, name: str, label: str = "dse-calibrate") -> dict:
    """An offload-link preset (dse/conf/link schema) from the pinned host -> device copy.

    The GPU side of that copy pays the link and the HBM write; dse charges the HBM write separately
    (``hbm_write_pj_per_bit``), so the link gets the rest. Link + HBM write = the measured GPU-side figure.
    """
    d = derived(probe)
    if "h2d_gbps" not in d:
        raise DseError(f"probe JSON lacks results.{H2D}: no link preset can be derived")
    where = _where(probe, label)
    return {
        "name": name,
        "bw_gbps": round(d["h2d_gbps"], 1),
        "pj_per_bit": _sig(d["link_pj_per_bit"]),
        "provenance": {
            "bw_gbps": {"source": f"{where}: achieved rate of {H2D} (pinned host -> device copy)",
                        "evidence": "measured"},
            "pj_per_bit": {"source": f"{where}: {H2D} dynamic pJ/bit, GPU side only ({d['h2d_pj_per_bit']:.4g}), "
                                     f"minus the HBM write ({d['hbm_write_pj_per_bit']:.4g}) charged separately; "
                                     "the host's DRAM read and PCIe end are not included",
                           "evidence": "derived"},
        },
    }


def load_gpu_preset(name_or_path: str) -> dict:
    """A GPU preset by name (dse/conf/gpu/<name>.yaml) or by path, read as plain YAML (no Hydra needed)."""
    import yaml

    path = Path(name_or_path)
    from dse.config.presets import preset_file, presets

    if not path.suffix and name_or_path in presets("gpu"):
        path = preset_file("gpu", name_or_path)
    if not path.is_file():
        known = presets("gpu")
        raise DseError(f"--base={name_or_path!r} not found: give a YAML path or one of {', '.join(known)}")
    return yaml.safe_load(path.read_text())


def to_yaml(preset: dict, header: str) -> str:
    import yaml

    body = yaml.safe_dump(preset, sort_keys=False, default_flow_style=None, width=10_000)
    return "".join(f"# {line}\n" for line in header.splitlines()) + body


def header(probe: dict, label: str, kind: str) -> str:
    lines = [f"{kind} preset with board-level constants of {_where(probe, label)}.",
             probe.get("method", METHOD.format(w=probe.get("window_s", 12))) + "."]
    if kind == "GPU":
        lines.append("Board-level figures include SMs, L2 and the on-chip network, so l2/l1 are zero (no double count).")
    return "\n".join(lines)
