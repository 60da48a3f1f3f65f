"""All figures of the demo: the paper's Figs. 4/5 (energy breakdown, latency), Fig. 6 (parity), the break-even
maps and surfaces, and what it would take for Mixtral / DeepSeek-R1 to match their HBM baselines.

    python -m analysis.paper_figures [out_dir]      # make demo calls write_all(out_dir) at its end
"""
from __future__ import annotations

import sys
from pathlib import Path

from analysis import breakeven_maps, breakeven_surface, energy_breakdown, latency, parity, what_it_takes
from analysis.style import out_dir_from_argv, save


def write_all(out_dir) -> list[Path]:
    """Evaluate the paper's setups and write every figure as PNG and SVG into ``out_dir``; return the paths."""
    import dse
    from dse.analyze.breakeven import breakeven

    out = Path(out_dir)
    paths: list[Path] = []
    for study in ("paper-fig45-mixtral", "paper-fig45-deepseek"):
        ds = dse.evaluate(study)
        paths += save(energy_breakdown.plot_energy_breakdown(ds), out, f"fig45_energy_breakdown_{study}")
        paths += save(latency.plot_latency(ds), out, f"fig45_latency_{study}")
    be = breakeven({"study": "paper-fig6-maverick"}, {"study": "paper-fig6-llama3"})
    paths += save(parity.plot_parity(be), out, "fig6_parity_maverick_ssd_vs_llama3_hbm")
    for which in ("top_k", "n_experts"):
        fig = breakeven_maps.plot_breakeven_maps(breakeven_maps.map_results(which), "batch", which)
        paths += save(fig, out, f"breakeven_map_batch_x_{which}")
    for name, result in breakeven_surface.surface_results().items():
        fig = breakeven_surface.plot_breakeven_surface(result, link_marks=breakeven_surface.LINK_MARKS,
                                                       title=breakeven_surface.TITLES.get(name))
        paths += save(fig, out, f"breakeven_surface_{name}")
    for study, name in what_it_takes.STUDIES.items():
        fig = what_it_takes.plot_what_it_takes(
            what_it_takes.what_it_takes_results(study), what_it_takes.PAPER_CASE,
            title=f"{name}: what it would take for experts on Flash to match HBM")
        paths += save(fig, out, f"what_it_takes_{study}")
    return paths


def main(argv=sys.argv) -> list[Path]:
    paths = write_all(out_dir_from_argv(argv))
    print("\n".join(map(str, paths)))
    return paths


if __name__ == "__main__":
    main()
