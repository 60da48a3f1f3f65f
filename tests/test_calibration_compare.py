"""The paper-vs-measured-constants study: numbers for one configuration derived by hand from docs/model.md."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import dse
from dse import calibration_compare as cc

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def results():
    return cc.compare()


def mixtral_b1_by_hand(read, write, flop, onchip, idle_w, hbm_bw):
    """Mixtral-8x7B, batch 1, L = 1024, bf16, on the paper's 4 GPUs (TP4 / EP4, C2C gen 5 at 900 GB/s,
    57 W DDR5 per GPU always on), paper accounting (no LM head; prefetched copies stream behind the step).

    Parameters per layer (docs/model.md s.2): attention A = 4096 x 128 x (2 x 32 + 2 x 8) = 41,943,040;
    router R = 4096 x 8 = 32,768; one expert X = 3 x 4096 x 14336 = 176,160,768.
    Batch 1 touches U = 8 (1 - (1 - 2/8)^1) = 2 experts per layer (s.3).
      weights read  Wb = 32 (A + R + 2X) x 2 B                 = 25,235,030,016 B
      KV read       K  = 1024 x (2 x 8 x 128) x 2 B x 32        =    134,217,728 B
      FLOPs         F  = 2 x 32 (A + R + 2X) + 1024 x 4 x 32 x 128 x 32 = 25,771,900,928
      SSD copies    O  = 32 x 2 X x 2 B                         = 22,548,578,304 B
    Busiest EP GPU (s.6): 2 experts per GPU, each touched with q = 2/8; the max of 4 Binomial(2, 1/4) has
    expectation (1 - 0.5625^4) + (1 - 0.9375^4) = 1.1274109.
    HBM step (all memory-bound), per layer: attention (A x 2 / 4 + 1024 x 2048 x 2 / 4) / bw, two ring
    all-reduces 2 x 2 x 3 x (0.8 us + 8192 B / 4 / 450 GB/s), router R x 2 / 4 / bw, experts
    1.1274109 X x 2 / bw, dispatch + combine 2 x (0.8 us + 3072 B / 450 GB/s):
      t_hbm = 4.3629 ms (3352 GB/s) or 3.5773 ms (4170.7 GB/s).
    SSD step: the copy stream bounds it: t_ssd = 32 x 1.1274109 X x 2 B / 900 GB/s = 14.1231 ms.
    Energy (s.5): reads (Wb + K) x 8 x read, F x flop, on-chip (Wb + K) x 8 x (L2 + L1), background
    4 x (idle + 57 W) x t; the SSD adds O x 8 x (102.4 + 0 link + write).
    """
    A, R, X = 4096 * 128 * 80, 4096 * 8, 3 * 4096 * 14336
    wb, kv = 32 * (A + R + 2 * X) * 2, 1024 * 2048 * 2 * 32
    flops = 2 * 32 * (A + R + 2 * X) + 1024 * 4 * 32 * 128 * 32
    offload_bits = 32 * 2 * X * 2 * 8
    busiest = (1 - 0.5625**4) + (1 - 0.9375**4)
    hop = 0.8e-6
    t_hbm = 32 * ((A * 2 / 4 + 1024 * 2048 * 2 / 4) / hbm_bw + 2 * 2 * 3 * (hop + 8192 / 4 / 450e9)
                  + R * 2 / 4 / hbm_bw + busiest * X * 2 / hbm_bw + 2 * (hop + 3072 / 450e9))
    t_ssd = 32 * busiest * X * 2 / 900e9
    static = 4 * (idle_w + 57.0)
    common = ((wb + kv) * 8 * (read + onchip) + flops * flop) * 1e-12
    copy = offload_bits * (102.4 + write) * 1e-12
    e_hbm = common + static * t_hbm
    e_ssd = common + copy + static * t_ssd
    return dict(e_hbm=e_hbm, e_ssd=e_ssd, ratio=e_ssd / e_hbm, share=copy / e_ssd,
                breakeven_vs_hbm=(e_hbm - (e_ssd - offload_bits * 102.4e-12)) / offload_bits / 1e-12)


@pytest.mark.parametrize("label, constants, expected", [
    # paper: E_hbm = 3.1663 J, E_ssd = 27.354 J -> 8.64x, copy share 70.3%, e* = -31.7 pJ/bit (never)
    ("paper", dict(read=4.2, write=4.2, flop=0.16, onchip=0.3 + 0.16, idle_w=70.0, hbm_bw=3352e9),
     dict(e_hbm=3.1663, e_ssd=27.354, ratio=8.639, share=0.7030, breakeven_vs_hbm=-31.69)),
    # measured: E_hbm = 6.0736 J, E_ssd = 34.439 J -> 5.67x, copy share 60.4%, e* = -54.8 pJ/bit (never)
    ("measured", dict(read=17.16, write=12.87, flop=0.869, onchip=0.0, idle_w=122.5, hbm_bw=4170.7e9),
     dict(e_hbm=6.0736, e_ssd=34.439, ratio=5.670, share=0.6038, breakeven_vs_hbm=-54.85)),
])
def test_mixtral_batch1_against_hand_derivation(results, label, constants, expected):
    hand = mixtral_b1_by_hand(**constants)
    for key, value in expected.items():  # the hand formula reproduces the hand-rounded numbers above
        assert hand[key] == pytest.approx(value, rel=2e-3), key
    m = results["mixtral"].sel(constants=label, batch=1)
    assert float(m.energy_per_token.sel(placement="hbm")) == pytest.approx(hand["e_hbm"], rel=1e-6)
    assert float(m.energy_per_token.sel(placement="ssd")) == pytest.approx(hand["e_ssd"], rel=1e-6)
    assert float(m.ssd_hbm_ratio) == pytest.approx(hand["ratio"], rel=1e-6)
    assert float(m.offload_share.sel(placement="ssd")) == pytest.approx(hand["share"], rel=1e-6)
    assert float(m.breakeven_vs_hbm) == pytest.approx(hand["breakeven_vs_hbm"], rel=1e-6)


def test_hbm_weight_read_energy_scales_with_the_board_figure(results):
    # 25,235,030,016 B x 8 bit: 0.84790 J at 4.2 pJ/bit, 3.46426 J at 17.16 pJ/bit (x 4.0857)
    e = results["mixtral"].energy.sel(batch=1, placement="hbm", component="hbm_weights")
    assert float(e.sel(constants="paper")) == pytest.approx(0.847897, rel=1e-5)
    assert float(e.sel(constants="measured")) == pytest.approx(3.464265, rel=1e-5)


def test_cumulative_steps_end_at_the_measured_preset():
    sets = dict(cc.constant_sets())
    assert list(sets) == ["paper", "+HBM pJ/bit", "+FLOP pJ", "+idle W", "measured", "calibrated"]
    assert sets["+FLOP pJ"] == {"gpu": "h100-sxm", "system.gpu.hbm_read_pj_per_bit": 17.16,
                                "system.gpu.hbm_write_pj_per_bit": 12.87, "system.gpu.l2_pj_per_bit": 0.0,
                                "system.gpu.l1_pj_per_bit": 0.0, "system.gpu.flop_pj": 0.869}
    assert sets["measured"] == {"gpu": "h200-measured"} and sets["calibrated"] == {"gpu": "h200-calibrated"}
    # the paper GPU with every measured field = the measured preset
    everything = {**sets["+idle W"], "system.gpu.peak_tflops": 655.1, "system.gpu.hbm_bw_gbps": 4170.7}
    a = dse.evaluate("paper-fig6-maverick", batch=3, flash_read_pj_per_bit=50.0, **everything)
    b = dse.evaluate("paper-fig6-maverick", batch=3, flash_read_pj_per_bit=50.0, gpu="h200-measured")
    assert float(a.step_energy) == pytest.approx(float(b.step_energy), rel=1e-12)


@pytest.mark.parametrize("label, batch", [("paper", 3), ("measured", 2)])
def test_fig6_breakeven_closes_the_gap(results, label, batch):
    """Second formula: Maverick with Flash at e* spends exactly what Llama-3-70B in HBM spends."""
    e_star = float(results["fig6"].breakeven_flash_pj_per_bit.sel(constants=label, batch=batch))
    assert e_star > 0
    params = dict(cc.constant_sets())[label]
    tgt = dse.evaluate("paper-fig6-maverick", batch=batch, flash_read_pj_per_bit=e_star, **params)
    ref = dse.evaluate("paper-fig6-llama3", batch=batch, **params)
    assert float(tgt.step_energy) == pytest.approx(float(ref.step_energy), rel=1e-9)
    today = float(results["fig6"].improvement_needed.sel(constants=label, batch=batch))
    assert today == pytest.approx(102.4 / e_star, rel=1e-12)


def test_readme_table_is_the_study_output(results):
    table = cc.markdown_table(cc.summary(results))
    assert table in (ROOT / "README.md").read_text(), "README table is stale: rerun sweeps/calibration_compare.py"


def test_figure_draws(results, tmp_path):
    spec = importlib.util.spec_from_file_location("calibration_figure", ROOT / "analysis" / "calibration_compare.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fig = mod.figure(results)
    assert len(fig.axes) == 4
    fig.savefig(tmp_path / "f.png", dpi=40)
    assert (tmp_path / "f.png").stat().st_size > 1000
    assert np.isfinite(results["fig6"].breakeven_flash_pj_per_bit).all()
