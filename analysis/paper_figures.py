"""All figures of the demo: the paper's Figs. 4/5 (energy breakdown, latency), Fig. 6 (parity), the break-even
maps and surfaces, and what it would take for Mixtral / DeepSeek-R1 to match their HBM baselines.

    python -m analysis.paper_figures [out_dir]      # make demo calls write_all(out_dir) at its end
"""
from __future__ import annotations

from pathlib import Path

from analysis import breakeven_maps, breakeven_surface, common, energy_breakdown, latency, parity, what_it_takes


def figures(args=None):
    """Evaluate the paper's setups and yield every figure with its file stem."""
    import dse

    for study in ("paper-fig45-mixtral", "paper-fig45-deepseek"):
        ds = dse.evaluate(study)
        yield f"fig45_energy_breakdown_{study}", energy_breakdown.plot_energy_breakdown(ds)
        yield f"fig45_latency_{study}", latency.plot_latency(ds)
    for stem, fig in parity.figures(args):
        yield f"fig6_{stem}", fig
    yield from breakeven_maps.figures(args)
    yield from breakeven_surface.figures(args)
    yield from what_it_takes.figures(args)


def write_all(out_dir) -> list[Path]:
    """Write every figure (checked, atomically) as PNG and SVG into ``out_dir``; return the paths."""
    return common.write_all(figures(), out_dir)


def main(argv=None) -> list[Path]:
    return common.main(figures, __doc__, argv)


if __name__ == "__main__":
    main()
