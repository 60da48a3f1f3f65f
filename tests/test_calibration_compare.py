"""The paper-vs-measured-constants study: numbers for one configuration derived by hand from docs/model.md."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import dse
from dse.analyze import calibration as cc

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def results():
    return cc.compare()


def mixtral_b1_by_hand(read, write, flop, l2, l1, idle_w, hbm_bw, peak=989.4e12):
    """Mixtral-8x7B, batch 1, L = 1024, bf16, on the paper's 4 GPUs (TP4 / EP4, C2C gen 5 at 900 GB/s,
    57 W DDR5 per GPU always on), paper accounting (docs/model.md; no LM head; the router copied with the experts;
    a step takes max(copy time, compute time)).

    Products per GPU and layer, (m, k, n, how many): qkv (1, 4096, 128 x (8 + 2 x 2)); per KV head (2 per GPU)
    scores (4, 128, 1024) and context (4, 1024, 128) against the KV cache; o_proj (1, 1024, 4096); the whole
    router (1, 4096, 8). Per layer over all GPUs, 2 touched experts (U = 8 (1 - 6/8) = 2), each gate + up
    (1, 4096, 14336) x 2 and down (1, 14336, 4096). Softmax: 8 heads x 1024 scores per GPU.
    Tiling at m <= 16 rows (docs/model.md): HBM moves B, A and C once (the L2 tile spans n); L2 moves
    kn + ceil(n / 512) mk + mn (L1 tile: all rows, 512 columns, the largest candidate that fits 256 KiB);
    L1 moves kn + ceil(n / 16) mk + mn (16 x 16 register tiles). Every product is memory-bound:
    (mk + kn + mn) 2 B / bw. The busiest EP GPU holds 1 + 1/7 touched experts (the two share a GPU w.p. 1/7).
    """
    ops = [(1, 4096, 1536, 1, "w"), (4, 128, 1024, 2, "kv"), (4, 1024, 128, 2, "kv"), (1, 1024, 4096, 1, "w"),
           (1, 4096, 8, 1, "w")]
    expert = [(1, 4096, 14336, 2, "w"), (1, 14336, 4096, 1, "w")]
    X, R = 3 * 4096 * 14336, 4096 * 8

    def totals(table, times):
        t = dict(w=0.0, kv=0.0, a_read=0.0, a_write=0.0, l2=0.0, l1=0.0, flops=0.0, time=0.0)
        for m, k, n, c, operand in table:
            t[operand] += k * n * c * 2 * times
            t["a_read"] += m * k * c * 2 * times
            t["a_write"] += m * n * c * 2 * times
            t["l2"] += (k * n + -(-n // 512) * m * k + m * n) * c * 2 * times
            t["l1"] += (k * n + -(-n // 16) * m * k + m * n) * c * 2 * times
            t["flops"] += 2 * m * k * n * c * times
            t["time"] += (m * k + k * n + m * n) * c * 2 / hbm_bw
        return t

    gpus = totals(ops, 4 * 32)              # every GPU, every layer
    experts = totals(expert, 2 * 32)        # two touched experts per layer
    part = {k: gpus[k] + experts[k] for k in gpus}
    part["flops"] += 7 * 8 * 1024 * 4 * 32
    softmax = 2 * 8 * 1024 * 2 / hbm_bw
    busiest = 1 + 1 / 7
    hop = 0.8e-6
    ring = 2 * 3 * (hop + 8192 / 4 / 450e9)
    combine = hop + 3072 / 450e9             # dispatch: all 4 EP GPUs hold the token already
    per_layer = (totals(ops, 1)["time"] + softmax + 2 * ring + combine
                 + busiest * totals(expert, 1)["time"])
    t_hbm = 32 * per_layer
    t_ssd = 32 * (busiest * X + R) * 2 / 900e9
    offload_bits = 32 * (2 * X + 4 * R) * 2 * 8
    static = 4 * (idle_w + 57.0)
    common = ((part["w"] + part["kv"] + part["a_read"]) * 8 * read + part["a_write"] * 8 * write
              + (part["l2"] * l2 + part["l1"] * l1) * 8 + part["flops"] * flop) * 1e-12
    copy = offload_bits * (102.4 + write) * 1e-12
    e_hbm = common + static * t_hbm
    e_ssd = common + copy + static * t_ssd
    return dict(e_hbm=e_hbm, e_ssd=e_ssd, ratio=e_ssd / e_hbm, share=copy / e_ssd,
                breakeven_vs_hbm=(e_hbm - (e_ssd - offload_bits * 102.4e-12)) / offload_bits / 1e-12,
                weight_bytes=part["w"])


@pytest.mark.parametrize("label, constants, expected", [
    # paper: E_hbm = 3.1839 J, E_ssd = 27.463 J -> 8.63x, copy share 70.0%, e* = -32.1 pJ/bit (never)
    ("paper", dict(read=4.2, write=4.2, flop=0.16, l2=0.3, l1=0.16, idle_w=70.0, hbm_bw=3352e9),
     dict(e_hbm=3.1839, e_ssd=27.463, ratio=8.626, share=0.7004, breakeven_vs_hbm=-32.15)),
    # measured: E_hbm = 6.0893 J, E_ssd = 34.590 J -> 5.68x, copy share 60.1%, e* = -55.5 pJ/bit (never)
    ("measured", dict(read=17.16, write=12.87, flop=0.869, l2=0.0, l1=0.0, idle_w=122.5, hbm_bw=4170.7e9),
     dict(e_hbm=6.0893, e_ssd=34.590, ratio=5.680, share=0.6014, breakeven_vs_hbm=-55.54)),
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
    # 25,241,321,472 B x 8 bit (attention + 4 routers + 2 experts, 32 layers): 0.848108 J at 4.2 pJ/bit,
    # 3.465129 J at 17.16 pJ/bit (x 4.0857)
    e = results["mixtral"].energy.sel(batch=1, placement="hbm", component="hbm_weights")
    assert float(e.sel(constants="paper")) == pytest.approx(0.848108, rel=1e-5)
    assert float(e.sel(constants="measured")) == pytest.approx(3.465129, rel=1e-5)


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


def test_findings_table_is_the_study_output(results):
    table = cc.markdown_table(cc.summary(results))
    assert table in (ROOT / "docs" / "findings.md").read_text(), \
        "docs/findings.md's calibration table is stale: rerun sweeps/calibration_sweep.py"


def test_figure_draws(results, tmp_path):
    spec = importlib.util.spec_from_file_location("calibration_figure", ROOT / "analysis" / "calibration_compare.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fig = mod.figure(results)
    a, b, c, d = fig.axes[:4]
    # the panels show the study's numbers: (a) SSD / HBM ratio and (b) copy share per model and constants, in
    # the order drawn; (c) e* per constants; (d) each model's peak ratio as a bar
    want_a, want_b = [], []
    for model in mod.MODELS:
        for const in mod.SHOWN:
            sel = results[model].sel(constants=const)
            want_a.append(sel.ssd_hbm_ratio.values)
            want_b.append(100 * sel.offload_share.sel(placement="ssd").values)
    for ax, want in ((a, want_a), (b, want_b)):
        got = [line.get_ydata() for line in ax.get_lines()]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(np.asarray(g, float), w, rtol=1e-12)
    e = [np.asarray(line.get_ydata(), float) for line in c.get_lines()[:len(mod.SHOWN)]]
    for g, const in zip(e, mod.SHOWN):
        np.testing.assert_allclose(g, results["fig6"].breakeven_flash_pj_per_bit.sel(constants=const).values,
                                   rtol=1e-12)
    heights = sorted(p.get_height() for p in d.patches)
    peaks = sorted(float(v) for m in mod.MODELS for v in results[m].ssd_hbm_ratio.max("batch").values)
    np.testing.assert_allclose(heights, peaks, rtol=1e-12)
    from dse.analyze.plot import problems
    from figure_checks import assert_png_drawn

    assert problems(fig) == []
    fig.savefig(tmp_path / "f.png", dpi=40)
    assert (tmp_path / "f.png").stat().st_size > 1000
    assert_png_drawn(tmp_path / "f.png", min_side=100)     # the panels drawn in the file, not a blank page
    assert np.isfinite(results["fig6"].breakeven_flash_pj_per_bit).all()
