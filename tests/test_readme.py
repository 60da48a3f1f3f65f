"""Every example in the README runs as written (tests/readme_runner.py): each ```python block in order and each
command of each ```sh block, in a scratch copy of the repository. The long commands (the paper demo, 2,000-trial
searches, benchmarks) run with ``make readme``; commands that cannot finish here by nature are listed, not hidden."""
import pytest

import readme_runner

pytestmark = pytest.mark.slow


def test_readme_examples_run_as_written(tmp_path):
    messages = []
    r = readme_runner.run(fast=True, workdir=tmp_path, log=messages.append)
    assert not r["failed"], "\n".join(f"{what}: {why}" for what, why in r["failed"])
    assert sum(w.startswith("python block") for w in r["ran"]) == 7
    assert any(c.startswith("dse model=deepseek-r1 system=paper-4xh100") for c in r["ran"])
    # only commands that cannot complete on a machine without a GPU or as a server are not run
    assert {c.split()[0] for c, _ in r["not_run"]} <= {"dse-calibrate", "optuna-dashboard", "pip"}
    assert (tmp_path / "dse" / "result.nc").is_file()          # the sweeps section's sweep.run(cfg, ".")
