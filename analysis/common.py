"""The analysis scripts' shared tail: the command line (output directory and verbosity), the reviewer's check of
every figure (:func:`dse.analyze.plot.problems`: a figure with problems is refused, never written), the atomic
PNG + SVG write (:func:`dse.analyze.plot.save`) and a log line (logger ``analysis``) per file written.

A script is its physics and plot code plus::

    def figures(args):                      # yields (file stem, figure); may print its numbers on the way
        yield "parity", plot_parity(...)

    def main(argv=None) -> list[Path]:
        return common.main(figures, __doc__, argv)
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from dse.analyze.plot import problems, save

#: where the figures go unless told (untracked; never the tracked docs/)
DEFAULT_OUT = "results/figures"

log = logging.getLogger("analysis")


class FigureProblems(ValueError):
    """A figure that a reviewer would reject (text under 8 pt, clipped, overlapping, off the paper's widths);
    ``problems``: what :func:`dse.analyze.plot.problems` found."""

    def __init__(self, message: str, problems=()):
        super().__init__(message)
        self.problems = list(problems)


def arguments(doc: str | None, argv=None, *, out: str | None = DEFAULT_OUT,
              options: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """Parse a script's command line: ``[out_dir] | --out DIR`` and ``--allow-problems`` (when ``out`` is not None;
    ``args.out`` is then a :class:`~pathlib.Path`), ``-q/--quiet`` and ``-v/--verbose``, plus what
    ``options(parser)`` adds. The description is the first paragraph of ``doc``. Sets up logging (messages only,
    to stderr) at INFO for logger ``analysis``."""
    p = argparse.ArgumentParser(description=(doc or "").strip().split("\n\n")[0] or None)
    if out is not None:
        p.add_argument("out_dir", nargs="?", default=None, help=f"output directory (default: {out})")
        p.add_argument("--out", default=None, help="output directory (same as out_dir)")
        p.add_argument("--allow-problems", action="store_true",
                       help="write a figure that fails dse.plot.problems anyway (its problems logged as warnings)")
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages too")
    if options is not None:
        options(p)
    args = p.parse_args(sys.argv[1:] if argv is None else list(argv))
    if out is not None:
        if args.out_dir is not None and args.out is not None and args.out_dir != args.out:
            p.error(f"two output directories: {args.out_dir} and --out {args.out}")
        args.out = Path(args.out or args.out_dir or out)
        del args.out_dir
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(message)s", stream=sys.stderr)
    log.setLevel(level)
    return args


def write(fig, out_dir, stem, *, allow_problems: bool = False) -> list[Path]:
    """Check ``fig`` with :func:`dse.analyze.plot.problems` and write it as ``out_dir/stem``.png and .svg
    (atomically). Each problem is logged; if there are any, raise :class:`FigureProblems` (the figure closed,
    nothing written) unless ``allow_problems``. ``stem`` may be a path (absolute, or relative to ``out_dir``).
    Returns the paths written, each logged."""
    import matplotlib.pyplot as plt

    target = Path(out_dir) / stem
    found = problems(fig)
    for problem in found:
        log.log(logging.WARNING if allow_problems else logging.ERROR, "%s: %s", target.name, problem)
    if found and not allow_problems:
        plt.close(fig)
        raise FigureProblems(f"{target}: not written: {len(found)} problem(s), listed above "
                             "(--allow-problems writes it anyway)", found)
    paths = save(fig, target.parent, target.name, overwrite=True)   # the figures of the repository itself
    for path in paths:
        log.info("wrote %s", path)
    return paths


def write_all(figures: Iterable, out_dir, *, allow_problems: bool = False) -> list[Path]:
    """:func:`write` every (stem, figure) of ``figures``; one with problems is logged and skipped, and after the
    others are written :class:`FigureProblems` names every one refused."""
    paths, refused = [], []
    for stem, fig in figures:
        try:
            paths += write(fig, out_dir, stem, allow_problems=allow_problems)
        except FigureProblems as err:
            log.error("%s", err)
            refused.append(str(stem))
    if refused:
        raise FigureProblems(f"{len(refused)} figure(s) refused (problems above): {', '.join(refused)}")
    return paths


def main(figures: Callable[[argparse.Namespace], Iterable], doc: str | None, argv=None, *,
         out: str = DEFAULT_OUT, options: Callable[[argparse.ArgumentParser], None] | None = None) -> list[Path]:
    """A figure script's ``main``: :func:`arguments`, then :func:`write_all` of ``figures(args)`` into
    ``args.out``. Exits with status 1 if a figure was refused; returns the paths written."""
    args = arguments(doc, argv, out=out, options=options)
    try:
        return write_all(figures(args), args.out, allow_problems=args.allow_problems)
    except FigureProblems as err:
        log.error("%s", err)
        raise SystemExit(1) from None


def write_csv(path: Path, columns, rows) -> Path:
    """A reference table the scripts regenerate (reference/validation/*.csv), written atomically
    (:func:`dse.files.atomic_write`; the tracked file it replaces is the script's own output)."""
    import csv

    from dse.files import atomic_write

    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(columns))
            w.writeheader()
            w.writerows(rows)

    return atomic_write(Path(path), write, key="--out", overwrite=True)
