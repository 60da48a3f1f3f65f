"""dse-calibrate: measurement arithmetic through a scripted energy/clock source, probe -> presets, errors."""
from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

import dse.calibrate as keys
from dse.calibrate import backends, measure, nvml
from dse.calibrate import preset_yaml as presets
from dse.calibrate.probe import calibrate
from dse.cli import dse_calibrate as cli_cal
from dse.errors import DseError

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reference" / "h200_energy_probe_2026-11-28.json"
GIB = 2**30


class FakeBoard:
    """A scripted board: time moves only when work is done or while sleeping; energy integrates power."""

    def __init__(self, idle_w: float):
        self.t, self.e_mj, self.idle_w = 1000.0, 5e6, idle_w

    def advance(self, dt: float, watts: float) -> None:
        self.t += dt
        self.e_mj += watts * dt * 1e3

    def read_energy_mj(self) -> float:
        return self.e_mj

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.advance(s, self.idle_w)

    def info(self) -> dict:
        return {"gpu": "Fake GPU", "driver": "1.0", "power_limit_W": 700.0, "memory_total_bytes": 80e9}


class FakeBackend:
    """Each activity: (unit, units per iteration, seconds per iteration, board watts while running)."""
    version = "fake 1"
    pci_bus_id = None

    def __init__(self, board: FakeBoard, activities: dict):
        self.board, self.activities, self.seen = board, activities, []

    def sync(self) -> None:
        pass

    def workload(self, key, nbytes, gemm_n):
        unit, units, dt, watts = self.activities[key]
        self.seen.append(key)
        return backends.Workload(key, f"fake {key}", unit, units, lambda: self.board.advance(dt, watts))


# Scripted board, numbers chosen so every expectation is derivable by hand:
#   idle 100 W
#   HBM read : 6.4e10 bit per 2 ms = 3.2e13 bit/s = 4000 GB/s at 644 W -> (644-100)/3.2e13 = 17 pJ/bit dynamic,
#              644/3.2e13 = 20.125 pJ/bit total
#   D2D copy : same rate (read + write counted) at 580 W -> 480/3.2e13 = 15 pJ/bit -> write = 2*15 - 17 = 13
#   H2D      : 4.4e10 bit per 0.1 s = 4.4e11 bit/s = 55 GB/s at 113.2 W -> 13.2/4.4e11 = 30 pJ/bit (GPU side)
#              -> link share = 30 - 13 = 17 pJ/bit
#   GEMM     : 1.3e12 FLOP per 2 ms = 650 TFLOP/s at 750 W -> 650/6.5e14 = 1.0 pJ/FLOP dynamic
ACTIVITIES = {
    keys.READ: ("bit", 6.4e10, 0.002, 644.0),
    keys.COPY: ("bit", 6.4e10, 0.002, 580.0),
    keys.H2D: ("bit", 4.4e10, 0.1, 113.2),
    keys.GEMM: ("flop", 1.3e12, 0.002, 750.0),
}


def exit_status(run) -> int:
    """The exit status of a command-line entry point that exits (SystemExit) or returns."""
    try:
        return run()
    except SystemExit as e:
        return e.code


@pytest.fixture(scope="module")
def probe():
    board = FakeBoard(idle_w=100.0)
    backend = FakeBackend(board, ACTIVITIES)
    p = calibrate(board, backend, window_s=12.0)
    assert backend.seen == [keys.READ, keys.COPY, keys.H2D, keys.GEMM]
    return p


def test_measurement_arithmetic_through_a_scripted_source(probe):
    r = probe["results"]
    assert probe["idle_W"] == pytest.approx(100.0, rel=1e-9)
    assert probe["idle_after_W"] == pytest.approx(100.0, rel=1e-9)
    assert r[keys.READ]["GBps"] == pytest.approx(4000.0, rel=1e-9)
    assert r[keys.READ]["avg_W"] == pytest.approx(644.0, rel=1e-9)
    assert r[keys.READ]["dyn_pJ_per_bit"] == pytest.approx(17.0, rel=1e-9)
    assert r[keys.READ]["total_pJ_per_bit"] == pytest.approx(20.125, rel=1e-9)
    assert r[keys.COPY]["dyn_pJ_per_bit"] == pytest.approx(15.0, rel=1e-9)
    assert r[keys.H2D]["GBps"] == pytest.approx(55.0, rel=1e-9)
    assert r[keys.H2D]["dyn_pJ_per_bit_gpu_side"] == pytest.approx(30.0, rel=1e-9)
    assert r[keys.GEMM]["TFLOPs"] == pytest.approx(650.0, rel=1e-9)
    assert r[keys.GEMM]["dyn_pJ_per_flop"] == pytest.approx(1.0, rel=1e-9)
    assert r[keys.GEMM]["total_pJ_per_flop"] == pytest.approx(750 / 650, rel=1e-9)
    for key in r:  # every window lasts at least the requested 12 s, and not much longer (one launch batch)
        assert 12.0 <= r[key]["seconds"] <= 12.0 + 0.1 + 0.1 + 1e-9
    # launch batches of ~0.1 s: 0.1 / 2 ms = 50 (or 51, floating point) iterations between synchronisations
    assert r[keys.READ]["iters"] % 50 == 0 or r[keys.READ]["iters"] % 51 == 0


def test_probe_to_gpu_and_link_presets(probe):
    g = presets.gpu_preset(probe, "fake-calibrated", price_usd=1000.0)
    assert g["hbm_read_pj_per_bit"] == pytest.approx(17.0)
    assert g["hbm_write_pj_per_bit"] == pytest.approx(13.0)      # 2 x 15 - 17
    assert g["flop_pj"] == pytest.approx(1.0)
    assert g["idle_w"] == pytest.approx(100.0)
    assert g["peak_tflops"] == pytest.approx(650.0)
    assert g["hbm_bw_gbps"] == pytest.approx(4000.0)
    assert g["hbm_capacity_gb"] == pytest.approx(80.0)            # NVML memory total, no --base
    assert (g["l2_pj_per_bit"], g["l1_pj_per_bit"]) == (0.0, 0.0)
    numeric = [k for k, v in g.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    assert set(g["provenance"]) == set(numeric)
    assert g["provenance"]["hbm_read_pj_per_bit"]["evidence"] == "measured"
    assert "Fake GPU" in g["provenance"]["flop_pj"]["source"] and "driver 1.0" in g["provenance"]["flop_pj"]["source"]
    link = presets.link_preset(probe, "fake-h2d")
    assert link["bw_gbps"] == pytest.approx(55.0)
    assert link["pj_per_bit"] == pytest.approx(17.0)               # 30 - 13


def test_schema_matches_the_core_gpu_presets(probe):
    g = presets.gpu_preset(probe, "x", base=presets.load_gpu_preset("h100-sxm"))
    h100 = presets.load_gpu_preset("h100-sxm")
    assert list(g) == list(h100)
    assert g["price_usd"] == h100["price_usd"] and g["hbm_capacity_gb"] == h100["hbm_capacity_gb"]
    assert g["provenance"]["price_usd"] == h100["provenance"]["price_usd"]


def test_reference_probe_arithmetic_reproduces_the_reference():
    """Our arithmetic, applied to the reference's raw iterations / seconds / joules, gives the reference's
    own derived numbers (computed by a different script): 8 GiB per read or copy iteration (read + write
    counted), 2 GiB per host -> device copy, 2 x 8192^3 FLOPs per GEMM (docs/model.md section 9)."""
    ref = json.loads(REFERENCE.read_text())
    idle = ref["idle_W"]
    per_iter = {keys.READ: ("bit", 8 * GIB * 8), keys.COPY: ("bit", 8 * GIB * 8), keys.H2D: ("bit", 2 * GIB * 8),
                keys.GEMM: ("flop", 2 * 8192**3)}
    for key, (unit, units) in per_iter.items():
        raw = ref["results"][key]
        s = measure.summarize(measure.Window(raw["iters"], raw["seconds"], raw["joules"]), idle, units, unit)
        assert s["avg_W"] == pytest.approx(raw["avg_W"], rel=1e-9)
        if unit == "bit":
            assert s["GBps"] == pytest.approx(raw["GBps"], rel=1e-9)
            dyn = raw.get("dyn_pJ_per_bit", raw.get("dyn_pJ_per_bit_gpu_side"))
            assert s["dyn_pJ_per_bit"] == pytest.approx(dyn, rel=1e-9)
        else:
            assert s["TFLOPs"] == pytest.approx(raw["TFLOPs"], rel=1e-9)
            assert s["dyn_pJ_per_flop"] == pytest.approx(raw["dyn_pJ_per_flop"], rel=1e-9)
    # by hand, HBM read: (8347.586 J - 122.549 W x 12.0115 s) / (5832 x 8 GiB x 8 bit) = 6875.6 J / 4.0077e14 bit
    s = measure.summarize(measure.Window(5832, 12.011468643, 8347.586), idle, 8 * GIB * 8, "bit")
    assert s["dyn_pJ_per_bit"] == pytest.approx(17.156, abs=5e-4)


def test_reference_probe_reproduces_the_shipped_presets():
    """Converting the reference JSON yields dse/conf/gpu/h200-measured.yaml and the shipped host -> device link.
    The expectations are derived here from the probe's raw windows (iterations, seconds, joules), not from the
    code: rate = units moved / seconds; dynamic energy = (J - idle W x s) / units; HBM write = 2 x copy - read
    (a copy reads and writes); link = GPU side of the pinned copy - HBM write."""
    ref = json.loads(REFERENCE.read_text())
    shipped = yaml.safe_load((ROOT / "dse/conf/gpu/h200-measured.yaml").read_text())
    g = presets.gpu_preset(ref, "h200-measured", base=presets.load_gpu_preset("h200-sxm"))
    idle, r = ref["idle_W"], ref["results"]

    def dyn(key, units):   # pJ per unit above idle
        return (r[key]["joules"] - idle * r[key]["seconds"]) / (r[key]["iters"] * units) / 1e-12

    stream_bits, flops = 8 * GIB * 8, 2 * 8192**3
    read = dyn(keys.READ, stream_bits)
    write = 2 * dyn(keys.COPY, stream_bits) - read     # a copy iteration moves 8 GiB, read + write counted
    expected = {"peak_tflops": r[keys.GEMM]["iters"] * flops / r[keys.GEMM]["seconds"] / 1e12,
                "hbm_bw_gbps": r[keys.READ]["iters"] * 8 * GIB / r[keys.READ]["seconds"] / 1e9,
                "idle_w": idle, "hbm_read_pj_per_bit": read, "hbm_write_pj_per_bit": write,
                "flop_pj": dyn(keys.GEMM, flops), "l2_pj_per_bit": 0.0, "l1_pj_per_bit": 0.0,
                "hbm_capacity_gb": 141.0}   # capacity is the base preset's (h200-sxm datasheet)
    assert read == pytest.approx(17.156, abs=5e-4) and write == pytest.approx(12.873, abs=5e-3)   # by hand
    for key, value in expected.items():   # presets print 4 significant digits (rates 0.1)
        assert shipped[key] == pytest.approx(value, rel=2e-3, abs=1e-12), key
        assert g[key] == pytest.approx(value, rel=2e-3, abs=1e-12), key
    for key in expected:
        assert shipped["provenance"][key]["evidence"] == g["provenance"][key]["evidence"], key
    link = yaml.safe_load((ROOT / "dse/conf/link/h200-measured-h2d.yaml").read_text())
    assert link["pj_per_bit"] == pytest.approx(15.75) and link["bw_gbps"] == pytest.approx(55.5)
    assert presets.link_preset(ref, "h200-measured-h2d") | {"provenance": None} == link | {"provenance": None}
    # staged offload over the measured link: link + HBM write = the measured GPU-side 28.62 pJ/bit
    assert link["pj_per_bit"] + shipped["hbm_write_pj_per_bit"] == pytest.approx(28.62, abs=0.01)


def test_cli_converts_a_probe_atomically(tmp_path):
    out, link = tmp_path / "g.yaml", tmp_path / "l.yaml"
    rc = cli_cal.main(["--from-json", str(REFERENCE), "--base", "h200-sxm", "--name", "h200-x",
                   "--out", str(out), "--link-out", str(link)])
    assert rc == 0
    g = yaml.safe_load(out.read_text())
    assert g["name"] == "h200-x" and g["hbm_read_pj_per_bit"] == pytest.approx(17.16)
    assert yaml.safe_load(link.read_text())["name"] == "h200-x-h2d"
    from dse.files import MANIFEST       # the record of the files dse wrote here (dse.files: ownership)

    assert sorted(p.name for p in tmp_path.iterdir() if p.name != MANIFEST) == ["g.yaml", "l.yaml"]  # no temporaries


@pytest.mark.parametrize("args, words", [
    (["--window-s", "5", "--base", "h200-sxm"], "--window-s=5 out of range: allowed [10, 600]"),
    (["--base", "no-such-gpu"], "--base='no-such-gpu' not found"),
    ([], "pass --base"),
    (["--price-usd", "-1"], "--price-usd=-1 out of range"),
    (["--base", "h200-sxm", "--out", "/no/such/dir/g.yaml"], "does not exist"),
    (["--base", "h200-sxm", "--name", "Bad Name"], "--name='Bad Name'"),
])
def test_bad_input_one_line_before_any_work(args, words, capsys, monkeypatch):
    monkeypatch.setattr(cli_cal, "NvmlSource", lambda *a, **k: pytest.fail("work started before input checks"))
    assert exit_status(lambda: cli_cal.main(args)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err


class FakeNvml(types.ModuleType):
    """A stand-in pynvml that records every name the tool touches and refuses anything that sets state."""

    class NVMLError(Exception):
        pass

    NVML_CLOCK_SM = 1

    def __init__(self, fail_init: bool = False):
        super().__init__("pynvml")
        self.touched, self.fail_init, self.energy = [], fail_init, [1_000_000, 1_012_345]

    def __getattribute__(self, name):
        if name.startswith("nvml"):
            object.__getattribute__(self, "touched").append(name)
            if any(word in name for word in ("Set", "Reset", "Clear")):
                raise AssertionError(f"dse-calibrate must not call {name}")
        return object.__getattribute__(self, name)

    def nvmlInit(self):
        if self.fail_init:
            raise self.NVMLError("Driver Not Loaded")

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, i):
        return f"h{i}"

    def nvmlDeviceGetPciInfo(self, h):
        return types.SimpleNamespace(busId={"h0": b"00000000:1B:00.0", "h1": b"00000000:2C:00.0"}[h])

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        return self.energy.pop(0) if len(self.energy) > 1 else self.energy[0]

    def nvmlDeviceGetName(self, h):
        return b"NVIDIA Fake"

    def nvmlSystemGetDriverVersion(self):
        return "999.1"

    def nvmlDeviceGetEnforcedPowerLimit(self, h):
        return 700_000

    def nvmlDeviceGetMemoryInfo(self, h):
        return types.SimpleNamespace(total=150_000_000_000)

    def nvmlDeviceGetUUID(self, h):
        return "GPU-fake-uuid"

    def nvmlDeviceGetClockInfo(self, h, clock):
        return 1980

    def nvmlDeviceGetMaxClockInfo(self, h, clock):
        return 1980


def test_nvml_source_reads_only(monkeypatch):
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    src = nvml.NvmlSource(0)
    src.match_pci("00000000:2c:00.0")          # torch's formatting, lower case: follows CUDA's GPU
    assert src.handle == "h1"
    assert src.read_energy_mj() == 1_012_345.0
    info = src.info()
    assert info == {"gpu": "NVIDIA Fake", "driver": "999.1", "power_limit_W": 700.0,
                    "memory_total_bytes": 150_000_000_000, "uuid": "GPU-fake-uuid", "sm_clock_MHz": 1980, "sm_clock_max_MHz": 1980}
    src.close()
    assert all(n.startswith("nvmlDeviceGet") or n in ("nvmlInit", "nvmlShutdown", "nvmlSystemGetDriverVersion")
               for n in fake.touched)


def test_no_gpu_one_line_errors(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(fail_init=True))
    assert exit_status(lambda: cli_cal.main(["--base", "h200-sxm"])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NVML could not start (Driver Not Loaded)" in err
    # NVML fine but neither torch nor cupy importable
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    assert exit_status(lambda: cli_cal.main(["--base", "h200-sxm"])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "neither torch nor cupy" in err


@pytest.mark.slow
def test_without_nvml_the_cli_exits_with_one_line_and_no_hydra(tmp_path):
    code = ("import sys; sys.modules['pynvml'] = None\n"
            "from dse.cli.dse_calibrate import main\n"
            "rc = main(['--base', 'h200-sxm', '--out', sys.argv[1]])\n"
            "heavy = [m for m in ('hydra', 'omegaconf', 'xarray', 'torch') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "sys.exit(rc)\n")
    out = tmp_path / "g.yaml"
    p = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, cwd=ROOT,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("dse-calibrate: error: NVML is not available")
    assert "Traceback" not in p.stderr and not out.exists()


def test_noisy_measurement_is_refused():
    ref = json.loads(REFERENCE.read_text())
    ref["results"][keys.COPY]["dyn_pJ_per_bit"] = 8.0        # copy cheaper than half a read: write < 0
    with pytest.raises(DseError, match="hbm_write_pj_per_bit=-1.156 is negative"):
        presets.derived(ref)


def test_cli_measures_through_the_seam(tmp_path, monkeypatch, capsys):
    """The measuring path of the CLI end to end, with the scripted board in place of NVML and the GPU."""
    board = FakeBoard(idle_w=100.0)
    board.match_pci = lambda bus_id: None
    board.close = lambda: None
    monkeypatch.setattr(cli_cal, "NvmlSource", lambda index: board)
    monkeypatch.setattr(cli_cal, "default_backend", lambda index: FakeBackend(board, ACTIVITIES))
    out, probe_json = tmp_path / "g.yaml", tmp_path / "p.json"
    assert cli_cal.main(["--window-s", "10", "--price-usd", "5", "--out", str(out), "--json", str(probe_json)]) == 0
    g = yaml.safe_load(out.read_text())
    assert g["name"] == "fake-gpu-calibrated"
    assert g["hbm_write_pj_per_bit"] == pytest.approx(13.0) and g["price_usd"] == 5.0
    probe = json.loads(probe_json.read_text())
    assert probe["window_s"] == 10.0 and probe["gpu"] == "Fake GPU" and probe["backend"] == "fake 1"
    assert probe["results"][keys.GEMM]["seconds"] >= 10.0
    err = capsys.readouterr().err
    assert "idle (CUDA context up): 100.0 W" in err and "gemm_bf16: 650.0 TFLOP/s" in err
