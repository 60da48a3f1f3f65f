"""Figures: the plotted data (read back from the artists) equal the dataset's values, or an independent engine
evaluation of them; every figure has a title, labelled axes with units, a legend, is written as PNG + SVG, and
passes the reviewer's checks of dse.plot.problems (text >= 8 pt, nothing clipped or overlapping, paper widths)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import dse  # noqa: E402
from analysis import breakeven_maps, breakeven_surface, energy_breakdown, latency, parity, what_it_takes  # noqa: E402
from analysis.style import save  # noqa: E402
from dse.analyze.plot import problems  # noqa: E402
from dse.analyze.breakeven import breakeven  # noqa: E402
from figure_checks import assert_png_drawn, svg_gids  # noqa: E402

MIX = "paper-fig45-mixtral"
MAV, L3 = {"study": "paper-fig6-maverick"}, {"study": "paper-fig6-llama3"}


@pytest.fixture(scope="module")
def mixtral():
    return dse.evaluate(MIX, batch=[1, 16, 256])


@pytest.fixture(scope="module")
def maverick():
    return breakeven(MAV, L3)


def _labelled(fig):
    axes = [a for a in fig.axes if a.get_label() != "<colorbar>" and a.get_visible() and a.has_data()]
    for ax in axes:
        assert ax.get_xlabel() and "(" in ax.get_xlabel()               # units
    ylabels = [ax.get_ylabel() for ax in axes if ax.get_ylabel()]
    assert ylabels and all("(" in y or " / " in y for y in ylabels)    # units, or a ratio of like quantities
    assert any(ax.get_title() for ax in fig.axes) or fig.get_suptitle()
    assert any(ax.get_legend() for ax in fig.axes) or fig.legends
    assert problems(fig) == []


def _gids(artists, prefix):
    return {a.get_gid(): a for a in artists if (a.get_gid() or "").startswith(prefix)}


def test_energy_breakdown_heights(mixtral, tmp_path):
    fig = energy_breakdown.plot_energy_breakdown(mixtral)
    _labelled(fig)
    ax = fig.axes[0]
    bars = {k: b for k, b in _gids(ax.patches, "").items() if k.count("|") == 2}
    drawn = {k.split("|")[1] for k in bars}        # components zero everywhere (the offload link) are left out
    zero = {str(c) for c in mixtral.component.values if float(abs(mixtral.energy.sel(component=c)).max()) == 0}
    assert drawn == {str(c) for c in mixtral.component.values} - zero and "offload_link" in zero
    assert len(bars) == 3 * len(drawn) * 3         # placements x components x batches
    letters = sorted(t.get_text() for t in ax.texts)
    assert letters == sorted(["H", "D", "S"] * 3) and all(t.get_fontsize() >= 8 for t in ax.texts)
    hbm_total = mixtral.energy_per_token.sel(placement="hbm")
    for key, bar in bars.items():
        p, c, b = key.split("|")
        want = mixtral.energy.sel(placement=p, component=c, batch=int(b)) / int(b) / hbm_total.sel(batch=int(b))
        assert bar.get_height() == pytest.approx(float(want), rel=1e-12, abs=1e-15)
    for b in (1, 16, 256):  # stacks: HBM reaches 1, SSD the SSD/HBM energy ratio
        for p in ("hbm", "ssd"):
            top = max(bar.get_y() + bar.get_height() for k, bar in bars.items() if k.startswith(f"{p}|") and k.endswith(f"|{b}"))
            want = float(mixtral.energy_per_token.sel(placement=p, batch=b) / hbm_total.sel(batch=b))
            assert top == pytest.approx(want, rel=1e-12)
    fig = energy_breakdown.plot_energy_breakdown(mixtral, normalize=None)   # absolute J per token
    bar = _gids(fig.axes[0].patches, "ssd|background|16")["ssd|background|16"]
    assert bar.get_height() == pytest.approx(float(mixtral.energy.sel(placement="ssd", component="background", batch=16)) / 16)
    paths = save(fig, tmp_path, "breakdown")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 1000 for p in paths)
    assert paths[1].read_text().lstrip().startswith(("<?xml", "<svg"))
    assert_png_drawn(paths[0])                              # the bars are in the files, not only in the figure
    assert {k for k in bars if k.startswith("ssd|")} <= svg_gids(paths[1])


def test_latency_lines(mixtral):
    fig = latency.plot_latency(mixtral)
    _labelled(fig)
    lines = _gids(fig.axes[0].lines, "step_latency|")
    assert set(lines) == {"step_latency|hbm", "step_latency|ddr", "step_latency|ssd"}
    for p in ("hbm", "ddr", "ssd"):
        np.testing.assert_array_equal(lines[f"step_latency|{p}"].get_xdata(), [1, 16, 256])
        np.testing.assert_allclose(lines[f"step_latency|{p}"].get_ydata(), mixtral.step_latency.sel(placement=p) * 1e3,
                                   rtol=1e-12)
    # DDR and SSD copies are both limited by the same link here: the second line says so and is drawn dashed
    if np.allclose(mixtral.step_latency.sel(placement="ssd"), mixtral.step_latency.sel(placement="ddr")):
        assert "(= DDR)" in lines["step_latency|ssd"].get_label()
        assert lines["step_latency|ssd"].get_linestyle() != lines["step_latency|ddr"].get_linestyle()


def test_parity_lines_against_the_engine(maverick):
    flash = [10.24, 20.48, 51.2, 102.4]
    fig = parity.plot_parity(maverick, flash)
    _labelled(fig)
    ax = fig.axes[0]
    engine = (dse.evaluate("paper-fig6-maverick", flash_read_pj_per_bit=flash).energy_per_token
              / dse.evaluate("paper-fig6-llama3").energy_per_token)
    lines = _gids(ax.lines, "ratio|")
    assert len(lines) == 4
    for b in (1, 2, 3, 4):
        line = lines[f"ratio|batch={b}"]
        np.testing.assert_allclose(line.get_xdata(), flash)
        np.testing.assert_allclose(line.get_ydata(), engine.sel(batch=b), rtol=1e-9)
    dots = _gids(ax.collections, "breakeven")["breakeven"].get_offsets()
    e = maverick.breakeven_flash_read_pj_per_bit
    inside = e.where((e >= 10.24) & (e <= 102.4)).dropna("batch")     # batches 1-3 cross inside (77, 33, 13)
    assert list(inside.batch.values) == [1, 2, 3]
    np.testing.assert_allclose(np.sort(dots[:, 0]), np.sort(inside.values), rtol=1e-12)
    np.testing.assert_allclose(dots[:, 1], 1.0)
    assert any(ln.get_ydata()[0] == 1.0 and ln.get_linestyle() == "--" for ln in ax.lines)  # the parity line


def test_breakeven_maps_arrays():
    flat = breakeven({"study": MIX, "placement": "ssd"}, {"study": MIX, "placement": "ddr"}, batch=[1, 16], top_k=[1, 2])
    cases = {
        "Mixtral Flash direct vs HBM": breakeven({"study": MIX, "placement": "ssd", "offload_path": "direct"},
                                                 {"study": MIX, "placement": "hbm"}, batch=[1, 16, 1024], top_k=[1, 2]),
        "Maverick SSD vs Llama-3-70B": breakeven({**MAV, "top_k": [1, 2]}, L3, batch=[1, 2, 4]),
        "Mixtral SSD vs DDR": flat,
    }
    fig = breakeven_maps.plot_breakeven_maps(cases, "batch", "top_k")
    _labelled(fig)
    meshes = _gids([c for ax in fig.axes for c in ax.collections], "map|")
    # e* against DDR is DDR's read energy in every cell (9.2 pJ/bit): said in one line, not drawn as a flat map
    assert set(meshes) == {"map|Mixtral Flash direct vs HBM", "map|Maverick SSD vs Llama-3-70B"}
    assert "Mixtral SSD vs DDR: e* = 9.2 pJ/bit in every cell" in fig.legends[0].get_title().get_text()
    for label, be in cases.items():
        if label == "Mixtral SSD vs DDR":
            continue
        arr = meshes[f"map|{label}"].get_array()
        e = be.breakeven_flash_read_pj_per_bit.squeeze(drop=True).transpose("top_k", "batch")
        never = ~be.breaks_even.squeeze(drop=True).transpose("top_k", "batch").values
        np.testing.assert_array_equal(np.ma.getmaskarray(arr).reshape(never.shape), never)
        np.testing.assert_allclose(np.ma.filled(arr, np.nan).reshape(never.shape)[~never], e.values[~never], rtol=1e-12)
        ax = next(a for a in fig.axes if meshes[f"map|{label}"] in a.collections)
        texts = np.array([t.get_text() for t in ax.texts]).reshape(never.shape)   # every cell says its e*
        assert all(t in ("never", "\u2013") for t in texts[never])
        np.testing.assert_allclose(texts[~never].astype(float), e.values[~never], rtol=5e-3)
    assert cases["Maverick SSD vs Llama-3-70B"].breaks_even.sel(top_k=2, batch=4).item() is False  # a grey cell


def test_breakeven_surface_against_the_engine():
    links, flash = [300.0, 900.0], [5.0, 20.0, 80.0]
    be = breakeven(MAV, L3, batch=[3], link_bw_gbps=links)
    fig = breakeven_surface.plot_breakeven_surface(be, flash)
    _labelled(fig)
    ax = fig.axes[0]
    mesh = _gids(ax.collections, "surface|")["surface|batch=3"]
    engine = (dse.evaluate("paper-fig6-maverick", batch=3, link_bw_gbps=links, flash_read_pj_per_bit=flash).energy_per_token
              / dse.evaluate("paper-fig6-llama3", batch=3).energy_per_token)
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(2, 3),
                               engine.transpose("link_bw_gbps", "flash_read_pj_per_bit"), rtol=1e-9)
    line = _gids(ax.lines, "breakeven|")["breakeven|batch=3"]
    np.testing.assert_allclose(line.get_ydata(), links)
    want = be.breakeven_flash_read_pj_per_bit.where(be.breaks_even).sel(batch=3).values
    np.testing.assert_allclose(np.asarray(line.get_xdata(), float), want, rtol=1e-12)


def test_what_it_takes_lines_and_bars():
    hbm, ssd = {"study": MIX, "placement": "hbm"}, {"study": MIX, "placement": "ssd"}
    cases = {"staged vs HBM": breakeven(ssd, hbm, batch=[1, 16]),
             "direct vs HBM": breakeven({**ssd, "offload_path": "direct"}, hbm, batch=[1, 16])}
    fig = what_it_takes.plot_what_it_takes(cases, "staged vs HBM")
    _labelled(fig)
    ax, bx = fig.axes[:2]
    for label, be in cases.items():
        line = _gids(ax.lines, "estar|")[f"estar|{label}"]
        np.testing.assert_allclose(line.get_ydata(), be.breakeven_flash_read_pj_per_bit, rtol=1e-12)
    bars = _gids(bx.patches, "excess|")
    # by hand (docs/model.md s.5/s.8): per Flash bit, the staged copy's HBM write costs 4.2 pJ and the longer step
    # 4 x (70 + 57) W x dt / bits; nothing else differs from the HBM baseline
    d = dse.evaluate(MIX, batch=[1, 16])
    dt = d.step_latency.sel(placement="ssd") - d.step_latency.sel(placement="hbm")
    for b in (1, 16):
        assert bars[f"excess|offload_hbm_write|{b}"].get_height() == pytest.approx(4.2, rel=1e-9)
        bg = float(4 * 127.0 * dt.sel(batch=b) / d.offload_read_bits.sel(placement="ssd", batch=b) * 1e12)
        assert bars[f"excess|background|{b}"].get_height() == pytest.approx(bg, rel=1e-9)
    assert {k.split("|")[1] for k in bars} == {"offload_hbm_write", "background"}
    total = _gids(bx.collections, "excess_total")["excess_total"].get_offsets()[:, 1]
    np.testing.assert_allclose(total, -cases["staged vs HBM"].breakeven_flash_read_pj_per_bit, rtol=1e-9)
