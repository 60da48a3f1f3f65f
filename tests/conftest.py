import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import os

import matplotlib

matplotlib.use("Agg")
# no run figure from the many dse / dse-breakeven / dse-search runs of the suite (each costs ~2 s): the tests of
# the figures themselves set DSE_PLOT=1 (tests/test_plot.py, tests/test_search.py)
os.environ["DSE_PLOT"] = "0"

# Hypothesis: derandomized by default, so CI runs the same examples every time (a failure reproduces); a longer,
# random exploration locally with HYPOTHESIS_PROFILE=explore (e.g. `HYPOTHESIS_PROFILE=explore pytest
# tests/test_properties.py tests/test_fuzz.py`).
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", max_examples=1000, derandomize=False, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
