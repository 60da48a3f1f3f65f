import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import os

import matplotlib

matplotlib.use("Agg")
# no run figure from the many dse / dse-breakeven / dse-search runs of the suite (each costs ~2 s): the tests of
# the figures themselves set DSE_PLOT=1 (tests/test_plot.py, tests/test_search.py)
os.environ["DSE_PLOT"] = "0"
