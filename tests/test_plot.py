"""dse.plot: the views read back from their artists equal dse's numbers; every figure passes the reviewer's checks
(text >= 8 pt at the saved size, no legend over data, nothing clipped, one or two paper columns wide); one colour per
placement in every figure; the view follows the grid's dimensions; every run leaves a figure next to its dataset."""
from __future__ import annotations

import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

import dse  # noqa: E402
from dse.analyze import plot  # noqa: E402
from dse.analyze.breakeven import breakeven  # noqa: E402
from figure_checks import assert_png_drawn, svg_gids  # noqa: E402

MIX = "paper-fig45-mixtral"


@pytest.fixture(scope="module")
def mixtral():
    return dse.evaluate(MIX, batch=[1, 16, 256])


@pytest.fixture(scope="module")
def trials():
    """A small search result (what dse-search writes in trials.nc), built by hand: 6 trials, 4 feasible, 3 on
    the front."""
    n = 6
    return xr.Dataset(
        {"energy_per_token": ("trial", [2.0, 1.0, 0.5, 0.4, 3.0, 0.3]),
         "capacity_cost_usd": ("trial", [2e5, 3e5, 4e5, 6e5, 5e5, 1e5]),
         "feasible": ("trial", [True, True, True, True, True, False]),
         "pareto": ("trial", [True, True, True, False, False, False]),
         "placement": ("trial", ["ssd", "ddr", "hbm", "hbm", "ddr", "ssd"]),
         "gpu": ("trial", ["h100-sxm", "b200", "h200-sxm", "h200-sxm", "b200", "h100-sxm"]),
         "n_gpus": ("trial", [8, 8, 16, 16, 8, 8]),
         "batch": ("trial", [4, 64, 1024, 512, 16, 1]),
         "hbm_cache_fraction": ("trial", [0.0, 0.125, 0.0, 0.0, 0.5, 0.0]),
         "offload_path": ("trial", ["staged", "direct", "staged", "staged", "staged", "staged"]),
         "hypervolume": ("trial", np.linspace(0.2, 1.18, n))},   # the Normalizer's scale may exceed 1
        coords={"trial": np.arange(n)})


def _gids(artists, prefix):
    return {a.get_gid(): a for a in artists if (a.get_gid() or "").startswith(prefix)}


def _rgb(c):
    return mcolors.to_hex(c)


# ------------------------------------------------------------------ views: data read back from the artists


def test_breakdown_bars_and_style(mixtral):
    fig = plot.breakdown(mixtral)
    assert plot.problems(fig) == []
    ax = fig.axes[0]
    bars = _gids(ax.patches, "")
    hbm = mixtral.energy_per_token.sel(placement="hbm")
    for key, bar in bars.items():
        p, c, b = key.split("|")
        want = float(mixtral.energy.sel(placement=p, component=c, batch=int(b)) / int(b) / hbm.sel(batch=int(b)))
        assert bar.get_height() == pytest.approx(want, rel=1e-12, abs=1e-15)
        assert _rgb(bar.get_facecolor()) == _rgb(plot.COMPONENT_COLORS[c])
    labels = [t.get_text() for t in ax.figure.legends[0].get_texts()] if ax.get_legend() is None else \
        [t.get_text() for t in ax.get_legend().get_texts()]
    assert "offload link" not in labels                          # zero everywhere: no legend entry
    e = mixtral.energy / mixtral.energy.sum("component")
    for c, name in plot.COMPONENT_LABELS.items():                 # a sliver too thin to see says how thin it is
        share = float(e.sel(component=c).max())
        if 0 < share < 0.02:
            assert f"{name} (max {100 * share:.1g}%)" in labels
        elif share >= 0.02:
            assert name in labels
    assert ax.get_ylabel() == "energy per token / HBM"
    assert "mixtral-8x7b" not in ax.get_title() and "Mixtral-8x7B on 4 x H100" in ax.get_title()


def test_ratio_lines_against_dse(mixtral):
    fig = plot.ratio(mixtral, reference="hbm")
    assert plot.problems(fig) == []
    lines = _gids(fig.axes[0].lines, "energy_per_token|")
    for p in ("hbm", "ddr", "ssd"):
        want = mixtral.energy_per_token.sel(placement=p) / mixtral.energy_per_token.sel(placement="hbm")
        np.testing.assert_allclose(lines[f"energy_per_token|{p}"].get_ydata(), want, rtol=1e-12)
        assert _rgb(lines[f"energy_per_token|{p}"].get_color()) == _rgb(plot.PLACEMENT_COLORS[p])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "16", "256"]     # batch as plain numbers


def test_parity_is_linear_with_labelled_estar():
    be = breakeven({"study": "paper-fig6-maverick"}, {"study": "paper-fig6-llama3"})
    fig = plot.parity(be)
    assert plot.problems(fig) == []
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear" and ax.get_xlim()[0] == 0.0
    dots = _gids(ax.collections, "breakeven")["breakeven"].get_offsets()
    e = be.breakeven_flash_read_pj_per_bit.where(be.breaks_even).values
    np.testing.assert_allclose(np.sort(dots[:, 0]), np.sort(e[np.isfinite(e)]), rtol=1e-12)
    values = sorted(float(t.get_text()) for t in ax.texts if t.get_text().replace(".", "").isdigit())
    np.testing.assert_allclose(values, np.sort(e[np.isfinite(e)]), rtol=5e-3)       # e* written at each dot
    for b in be.batch.values:
        line = _gids(ax.lines, f"ratio|batch={b}")[f"ratio|batch={b}"]
        assert f"e* = {float(be.breakeven_flash_read_pj_per_bit.sel(batch=b)):.3g}" in line.get_label()


def test_breakeven_map_cells():
    be = breakeven({"study": "paper-fig6-maverick", "top_k": [1, 2, 4]}, {"study": "paper-fig6-llama3"},
                   batch=[1, 2, 4])
    fig = plot.breakeven_map(be, "batch", "top_k")
    assert plot.problems(fig) == []
    mesh = _gids(fig.axes[0].collections, "map|")
    arr = next(iter(mesh.values())).get_array()
    e = be.breakeven_flash_read_pj_per_bit.where(be.breaks_even).transpose("top_k", "batch").values
    np.testing.assert_allclose(np.ma.filled(arr, np.nan).reshape(e.shape), e, rtol=1e-12)
    cls = plot.map_classes(e, 102.4, plot.hbf_read_pj_per_bit())
    assert cls[0, 0] == 2 and cls[-1, -1] == 0        # batch 1 top-1: HBF suffices; batch 4 top-4: never


def test_pareto_front_labels_and_hypervolume(trials):
    exact = {"F": np.array([[2.0, 2e5], [1.0, 3e5], [0.5, 4e5]]), "hypervolume": 1.18}
    fig = plot.pareto(trials, exact=exact, title="test front")
    assert plot.problems(fig) == []
    ax, hx = fig.axes[:2]
    front = _gids(ax.collections, "front")["front"].get_offsets()
    np.testing.assert_allclose(front[:, 0], [200, 300, 400])          # $k
    np.testing.assert_allclose(front[:, 1], [2.0, 1.0, 0.5])
    assert ax.get_xlabel() == "capacity cost ($k)" and ax.get_ylabel() == "energy per token (J)"
    labels = {t.get_text() for t in ax.texts if t.get_gid() == "front_label"}
    assert labels == {"8xH100 ssd B=4", "8xB200 ddr 12.5% direct B=64", "16xH200 hbm B=1024"}
    hv = _gids(hx.lines, "hypervolume")["hypervolume"].get_ydata()
    assert np.nanmax(hv) <= 1.0 + 1e-12                               # normalised to the exact front
    np.testing.assert_allclose(hv, trials.hypervolume / 1.18)
    fig = plot.pareto(trials)                                         # no exact front: a fraction of the final one
    hv = _gids(fig.axes[1].lines, "hypervolume")["hypervolume"].get_ydata()
    assert np.nanmax(hv) == pytest.approx(1.0) and plot.problems(fig) == []
    colours = {c.get_label(): _rgb(c.get_facecolor()[0]) for c in ax.collections if c.get_label().startswith("front:")}
    assert colours == {f"front: {plot.placement_label(p)}": _rgb(plot.PLACEMENT_COLORS[p]) for p in ("ssd", "ddr", "hbm")}


def test_one_colour_per_placement_across_figures(mixtral, trials):
    seen = {}
    for fig in (plot.ratio(mixtral), plot.lines(mixtral, "step_latency"), plot.pareto(trials)):
        for ax in fig.axes:
            for art in ax.lines:
                gid = art.get_gid() or ""
                if "|" in gid and gid.split("|")[1] in plot.PLACEMENT_COLORS:
                    seen.setdefault(gid.split("|")[1], set()).add(_rgb(art.get_color()))
            for coll in ax.collections:
                for p, name in plot.PLACEMENT_LABELS.items():
                    if coll.get_label() == f"front: {name}":
                        seen.setdefault(p, set()).add(_rgb(coll.get_facecolor()[0]))
        plt.close(fig)
    assert set(seen) >= {"hbm", "ddr", "ssd"}
    assert all(c == {_rgb(plot.PLACEMENT_COLORS[p])} for p, c in seen.items())
    assert len(set(plot.PLACEMENT_COLORS.values())) == len(plot.PLACEMENT_COLORS)


# ------------------------------------------------------------------ the view follows the grid


def test_auto_view_from_the_grid(mixtral):
    fig = plot.auto(mixtral)                                             # batch x placement: breakdown
    assert any((p.get_gid() or "").count("|") == 2 for p in fig.axes[0].patches)
    one = dse.evaluate(MIX, batch=16, top_k=[1, 2, 4])                   # one other dimension: lines
    fig = plot.auto(one)
    line = _gids(fig.axes[0].lines, "energy_per_token|")["energy_per_token|ssd"]
    np.testing.assert_allclose(line.get_ydata(), one.energy_per_token.sel(placement="ssd"), rtol=1e-12)
    two = dse.evaluate(MIX, placement="ssd", batch=[1, 16], top_k=[1, 2])  # two dimensions: a map
    fig = plot.auto(two)
    arr = _gids(fig.axes[0].collections, "map|")["map|energy_per_token"].get_array()
    np.testing.assert_allclose(np.asarray(arr).reshape(2, 2), two.energy_per_token.transpose("top_k", "batch"))
    be = breakeven({"study": MIX, "placement": "ssd"}, {"study": MIX, "placement": "hbm"}, batch=[1, 16])
    assert _gids(plot.auto(be).axes[0].lines, "ratio|")                  # break-even over batch: Fig. 6 lines
    for f in plt.get_fignums():
        assert plot.problems(plt.figure(f)) == []
    plt.close("all")


# ------------------------------------------------------------------ the checks themselves


def test_problems_catch_what_a_reviewer_rejects():
    fig, ax = plt.subplots(figsize=(9.0, 3.0))
    ax.plot([0, 1, 2], [0, 1, 2], label="data")
    ax.legend(loc="center")                              # over the line
    ax.set_xlabel("tiny", fontsize=6)
    ax.text(2.6, 1.0, "runs off the figure's right edge")
    found = "\n".join(plot.problems(fig))
    assert "9.00 in" in found and "'tiny' is 6 pt" in found
    assert "covers plotted data" in found and "clipped" in found
    plt.close(fig)
    fig, axes = plot.figure("one")
    axes[0, 0].plot([1, 2], [1, 2])
    assert plot.problems(fig) == []
    plt.close(fig)


def test_plain_ticks_and_labels():
    assert [plot.plain(v) for v in (20.0, 0.5, 2000.0, 250000.0)] == ["20", "0.5", "2,000", "250,000"]
    assert plot.label("step_latency") == "latency per output token (ms)"
    assert plot.label("capacity_cost_usd") == "capacity cost ($k)"
    assert plot.limit_text("step_latency", -np.inf, 0.05) == "latency per output token <= 50 ms"
    assert plot.limit_text("hbm_fill", -np.inf, 0.9) == "HBM fill <= 90%"


def test_xarray_own_plot_is_labelled_and_not_clipped(mixtral):
    fig = plt.figure()
    mixtral.energy_per_token.sel(placement="ssd").plot()
    ax = fig.axes[0]
    assert ax.get_xlabel() == "sequences decoded per step [1]"
    assert "[]" not in ax.get_xlabel() + ax.get_ylabel() and ax.get_ylabel().endswith("[J]")
    fig.canvas.draw()
    tight = fig.get_tightbbox(fig.canvas.get_renderer())
    assert tight.y0 >= 0 and tight.x0 >= 0
    plt.close(fig)


# ------------------------------------------------------------------ a figure from every run


def _breakdown_bars(ds):
    """The gids of the breakdown bars a run's figure draws for ``ds`` (placement x batch): placement|component|batch,
    every component that is not zero everywhere."""
    drawn = [str(c) for c in ds.component.values if float(abs(ds.energy.sel(component=c)).max()) > 0]
    return {f"{p}|{c}|{b}" for p in ds.placement.values for c in drawn for b in ds.batch.values}


def test_write_next_to_is_atomic_and_skips_huge(mixtral, tmp_path, monkeypatch):
    from dse.analyze.plot import output

    drawn = []
    real_save = output.save
    # the figure as saved, and the reviewer's checks of it before save closes it
    monkeypatch.setattr(output, "save",
                        lambda fig, *a, **k: drawn.append((fig, plot.problems(fig))) or real_save(fig, *a, **k))
    paths = plot.write_next_to(mixtral, tmp_path / "result.nc")
    assert [p.name for p in paths] == ["result.png", "result.svg"]
    assert paths[0].stat().st_size > 10_000 and paths[1].read_text().lstrip().startswith(("<?xml", "<svg"))
    # what was written: the breakdown of the dataset's own numbers, passing the reviewer's checks, drawn in the PNG
    # and carried by the SVG
    ((fig, found),) = drawn
    assert found == []
    bars = _gids(fig.axes[0].patches, "")
    assert set(bars) == _breakdown_bars(mixtral)
    hbm = mixtral.energy_per_token.sel(placement="hbm")
    for key, bar in bars.items():
        p, c, b = key.split("|")
        want = mixtral.energy.sel(placement=p, component=c, batch=int(b)) / int(b) / hbm.sel(batch=int(b))
        assert bar.get_height() == pytest.approx(float(want), rel=1e-12, abs=1e-15), key
    assert_png_drawn(paths[0])
    assert _breakdown_bars(mixtral) <= svg_gids(paths[1])
    from dse.files import MANIFEST       # the record of the files dse wrote here (dse.files: ownership)

    assert sorted(p.name for p in tmp_path.iterdir() if p.name != MANIFEST) == ["result.png", "result.svg"]   # no tmp
    from dse.analyze import figure_switch as figure_size

    monkeypatch.setattr(figure_size, "MAX_AUTO_POINTS", 3)
    assert plot.write_next_to(mixtral, tmp_path / "big.nc") == []
    assert not (tmp_path / "big.png").exists()


@pytest.mark.slow
def test_dse_run_writes_its_figure_unless_told_not_to(tmp_path, monkeypatch):
    env = {**os.environ, "DSE_PLOT": "1"}
    exe = [sys.executable, "-m", "dse"]
    base = ["study=paper-fig45-mixtral", "grid.batch=[1,16]", "progress=false"]
    subprocess.run(exe + base + [f"hydra.run.dir={tmp_path / 'a'}"], check=True, capture_output=True, env=env, timeout=600)
    assert (tmp_path / "a" / "result.png").stat().st_size > 10_000 and (tmp_path / "a" / "result.svg").is_file()
    assert_png_drawn(tmp_path / "a" / "result.png")
    written = xr.load_dataset(tmp_path / "a" / "result.nc", engine="h5netcdf")   # the figure is of this run's data
    assert list(written.batch.values) == [1, 16] and _breakdown_bars(written) <= svg_gids(tmp_path / "a" / "result.svg")
    from dse.cli import main as cli
    from dse.config import presets

    monkeypatch.setenv("DSE_PLOT", "1")
    (tmp_path / "b").mkdir()                                  # plot=false, in process (what the CLI calls)
    cli.run({**presets.compose(study="paper-fig45-mixtral"), "grid": {"batch": [1, 16]}, "progress": False,
             "plot": False}, tmp_path / "b")
    assert (tmp_path / "b" / "result.nc").is_file() and not list((tmp_path / "b").glob("*.png"))



def test_the_environment_switches_every_run_figure_off(monkeypatch):
    from dse.analyze.figure_switch import figures_wanted

    monkeypatch.setenv("DSE_PLOT", "1")
    assert figures_wanted(True) and not figures_wanted(False)
    monkeypatch.setenv("DSE_PLOT", "0")
    assert not figures_wanted(True)


@pytest.mark.slow
def test_dse_breakeven_run_writes_fig6(tmp_path):
    env = {**os.environ, "DSE_PLOT": "1"}
    subprocess.run([sys.executable, "-m", "dse.cli.dse_breakeven", "study=paper-fig6-maverick",
                    "reference.study=paper-fig6-llama3", f"hydra.run.dir={tmp_path}"], check=True, capture_output=True,
                   env=env, timeout=600)
    assert (tmp_path / "breakeven.png").stat().st_size > 10_000 and (tmp_path / "breakeven.svg").is_file()
    assert_png_drawn(tmp_path / "breakeven.png")
    written = xr.load_dataset(tmp_path / "breakeven.nc", engine="h5netcdf")   # Fig. 6: a ratio line per batch, e* dots
    want = {f"ratio|batch={b}" for b in written.batch.values} | {"breakeven"}
    assert written.sizes["batch"] >= 2 and want <= svg_gids(tmp_path / "breakeven.svg")
