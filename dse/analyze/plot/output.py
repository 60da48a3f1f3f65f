"""Saving figures (atomically, at print size) and the reviewer's checks: what a figure must not do (dse.plot)."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from dse.analyze.figure_switch import MAX_AUTO_POINTS, too_large  # noqa: F401 - MAX_AUTO_POINTS is public
from dse.analyze.plot.auto import auto
from dse.analyze.plot.style import DPI, MIN_FONT_PT, ONE_COLUMN, TWO_COLUMN, style


# ---------------------------------------------------------------- writing and checking

#: The smallest panel (axes) a reader can read at print size: width, height in inches.
MIN_PANEL_IN = (0.9, 0.6)


def _atomic(path: Path, write, overwrite: bool = False) -> Path:
    """``write(tmp)`` to a temporary name beside ``path``, then rename into place (:mod:`dse.files`)."""
    from dse.files import atomic_write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, write, key="plot", overwrite=overwrite, flag="overwrite=True")


def save(fig, out_dir, stem: str, formats=("png", "svg"), dpi: int = DPI, close: bool = True,
         overwrite: bool = False) -> list[Path]:
    """Write ``stem``.png and ``stem``.svg into ``out_dir`` at the figure's own (paper) size, atomically. A file
    there that dse did not write is refused (one line) before anything is written, unless ``overwrite``."""
    from dse.files import check_free

    out = Path(out_dir)
    check_free([out / f"{stem}.{fmt}" for fmt in formats], "plot", overwrite, "overwrite=True")
    paths = []
    with style():
        for fmt in formats:
            paths.append(_atomic(out / f"{stem}.{fmt}", lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi),
                                 overwrite))
    if close:
        plt.close(fig)
    return paths


def write_next_to(ds, dataset_path, *, log=None, overwrite: bool = False) -> list[Path]:
    """The figure of a result (:func:`auto`) as ``<dataset stem>``.png and .svg next to the dataset file; what
    every ``dse``, ``dse-breakeven`` and ``dse-search`` run calls (switch: ``plot=false``). A figure that cannot be
    drawn is logged and skipped: it never fails the run whose dataset is already written."""
    import logging

    log = log or logging.getLogger("dse")
    path = Path(dataset_path)
    if too_large(ds, log):
        return []
    try:
        fig = auto(ds)
        for problem in problems(fig):   # checked before it is saved; the run's result is the dataset, so said, not fatal
            log.warning("figure: %s", problem)
        paths = save(fig, path.parent, path.name.split(".")[0], overwrite=overwrite)
    except Exception as err:  # noqa: BLE001 - the dataset is the run's result; a figure is a convenience
        log.warning("figure: not drawn (%s: %s)", type(err).__name__, err)
        return []
    log.info("figure: %s", ", ".join(map(str, paths)))
    return paths


def _data_boxes(ax, renderer):
    """Display-space boxes of the plotted data of ``ax`` (points of lines and scatters, bar rectangles)."""
    from matplotlib.transforms import Bbox

    boxes = []
    for line in ax.lines:
        if not line.get_visible() or (line.get_label() or "").startswith("_child"):
            continue
        xy = line.get_transform().transform(np.column_stack([line.get_xdata(), line.get_ydata()]).astype(float))
        boxes += [Bbox([p - 1, p + 1]) for p in xy if np.all(np.isfinite(p))]
    for coll in ax.collections:
        if not coll.get_visible() or not hasattr(coll, "get_offsets") or type(coll).__name__ != "PathCollection":
            continue
        sizes = coll.get_sizes()
        if sizes.size and not np.any(sizes > 0):
            continue
        off = coll.get_offset_transform().transform(np.asarray(coll.get_offsets(), float))
        boxes += [Bbox([p - 2, p + 2]) for p in off if np.all(np.isfinite(p))]
    for patch in ax.patches:
        if patch.get_visible() and getattr(patch, "get_height", None) and patch.get_height():
            boxes.append(patch.get_window_extent(renderer))
    return boxes


def _in_legend(t, fig) -> bool:
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return any(t in leg.get_texts() or t is leg.get_title() for leg in legends)


def problems(fig, widths=(ONE_COLUMN, TWO_COLUMN)) -> list[str]:
    """What a reviewer would reject in ``fig`` as saved at its own size: text under 8 pt, a label outside the
    figure (clipped), a legend over plotted data, a width other than one or two paper columns."""
    from matplotlib.text import Text

    out = []
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    w = fig.get_figwidth()
    if not any(abs(w - c) < 0.02 for c in widths):
        out.append(f"width {w:.2f} in is neither {' nor '.join(f'{c} in' for c in widths)}")
    fb = fig.bbox
    for ax in fig.axes:   # a panel too small to read (colour bars excepted)
        if not ax.get_visible() or hasattr(ax, "_colorbar") or ax.get_label() == "<colorbar>":
            continue
        box = ax.get_position()
        aw, ah = box.width * fig.get_figwidth(), box.height * fig.get_figheight()
        if aw < MIN_PANEL_IN[0] or ah < MIN_PANEL_IN[1]:
            out.append(f"the panel {ax.get_title()!r} is {aw:.2f} x {ah:.2f} in (at least {MIN_PANEL_IN[0]} x "
                       f"{MIN_PANEL_IN[1]} in to be read)")
    hidden = set()      # tick labels of ticks outside the view (kept by matplotlib, never drawn)
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            drawn = set(map(id, axis._update_ticks()))
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if id(tick) not in drawn:
                    hidden |= {id(tick.label1), id(tick.label2)}
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip() or t.figure is None or id(t) in hidden:
            continue
        if t.get_fontsize() < MIN_FONT_PT - 1e-9:
            out.append(f"text {t.get_text()!r} is {t.get_fontsize():g} pt")
        if "\\mathdefault" in t.get_text() and not t.get_parse_math():
            out.append(f"text {t.get_text()!r} shows raw mathtext (text.parse_math is off)")
        bb = t.get_window_extent(renderer)
        if bb.x0 < fb.x0 - 1 or bb.y0 < fb.y0 - 1 or bb.x1 > fb.x1 + 1 or bb.y1 > fb.y1 + 1:
            out.append(f"text {t.get_text()!r} is clipped by the figure's edge")
    # no text may run into another (titles, labels, ticks, annotations; legends lay out their own)
    frame = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in hidden
             and t.figure is not None and not _in_legend(t, fig)
             and t.get_rotation() % 90 == 0]    # a slanted text's box is not its outline
    boxes = [(t, t.get_window_extent(renderer)) for t in frame]
    for leg in list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]:
        lb = leg.get_window_extent(renderer)
        out += [f"a legend covers text {t.get_text()!r}" for t, b in boxes if lb.overlaps(b)]
    for i, (t, b) in enumerate(boxes):
        for u, c in boxes[i + 1:]:
            if b.overlaps(c):
                out.append(f"text {t.get_text()!r} runs into {u.get_text()!r}")
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is None or not leg.get_visible():
            continue
        lb = leg.get_window_extent(renderer)
        for b in _data_boxes(ax, renderer):
            if lb.overlaps(b):
                out.append(f"the legend of {ax.get_title()!r} covers plotted data")
                break
    return out
