"""Every example in the README and in docs/*.md runs as written (tests/readme_runner.py): each ```python block in
order (one namespace per file) and each command of each ```sh block, in a scratch copy of the repository. The long
commands (the paper demo, 2,000-trial searches, benchmarks) run with ``make readme``; commands that cannot finish
here by nature are listed, not hidden."""
import re

import pytest

import readme_runner


@pytest.mark.slow
def test_readme_examples_run_as_written(tmp_path):
    messages = []
    r = readme_runner.run(fast=True, workdir=tmp_path, log=messages.append)
    assert not r["failed"], "\n".join(f"{what}: {why}" for what, why in r["failed"])
    # every python block of every document ran, but those marked to be skipped (counted here independently)
    texts = {d.relative_to(readme_runner.ROOT).as_posix(): d.read_text() for d in readme_runner.documents()}
    marked = sum(len(re.findall(r"<!-- docs-runner: skip \([^)]+\) -->\n```python\n", t)) for t in texts.values())
    assert sum(w.count("python block") for w in r["ran"]) == sum(t.count("```python\n") for t in texts.values()) - marked
    assert sum(w.startswith("README.md python block") for w in r["ran"]) == 1
    assert sum(w.startswith("docs/") and "python block" in w for w in r["ran"]) >= 9
    assert any(c.startswith("dse model=deepseek-r1 system=paper-4xh100") for c in r["ran"])
    # only commands that cannot complete on a machine without a GPU or as a server are not run
    assert {"dse explore" if c.startswith("dse explore") else c.split()[0] for c, _ in r["not_run"]} <= {
        "dse-calibrate", "optuna-dashboard", "pip", "dse explore"}
    # blocks skipped by a marker say why, and only python blocks that need a cluster are skipped
    assert len(r["skipped"]) == marked and all(why.strip() for _, why in r["skipped"])
    assert (tmp_path / "dse" / "result.nc").is_file()          # docs/sweeps.md's sweep.run(cfg, ".")


def headings(text: str) -> set[str]:
    """GitHub's anchors of a markdown file's headings: lower case, punctuation dropped, spaces as hyphens."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.*)$", re.sub(r"```.*?```", "", text, flags=re.S), re.M)}


def test_documented_paths_exist():
    """Every dse/...py, docs/...md, tests/...py, benchmarks/...py, analysis/...py and sweeps/...py path the README and
    docs/*.md mention exists, and every link to a .md file resolves, to a heading where it names one."""
    root = readme_runner.ROOT
    missing = []
    for doc in readme_runner.documents():
        text = doc.read_text()
        for path in set(re.findall(r"(?<![\w/.])((?:dse|docs|tests|benchmarks|analysis|sweeps)/[\w/.-]*\.(?:py|md))",
                                   text)):
            if not (root / path).exists():
                missing.append(f"{doc.name}: {path}")
        for link, anchor in set(re.findall(r"\]\(([\w./-]+\.md)(?:#([\w-]+))?\)", text)):
            target = (doc.parent / link).resolve()
            if not target.exists():
                missing.append(f"{doc.name}: link {link}")
            elif anchor and anchor not in headings(target.read_text()):
                missing.append(f"{doc.name}: link {link}#{anchor}")
    assert not missing, missing
