"""Figures from dse result datasets: each module has a function Dataset(s) -> matplotlib Figure and a __main__ that
writes PNG and SVG. :func:`analysis.paper_figures.write_all` writes the paper's figures and the break-even maps."""
