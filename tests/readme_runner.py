"""Run the documentation's examples as written: every ```python block (in order, one namespace per file) and every
line of every ```sh block of README.md and docs/*.md, in a scratch copy of the repository, as a user types them in a
fresh shell after the two set-up commands: the project's .venv is not on PATH until a command activates it
(``. .venv/bin/activate``, which the README says first), and from then on it is, as in the user's shell.

    python tests/readme_runner.py          # everything (``make readme``); minutes: the paper demo, the searches
    python tests/readme_runner.py --fast   # what `make test` runs (tests/test_readme.py): all but LONG

A command in NOT_RUN is reported, never silently skipped: it cannot run to completion here by its nature. So is a
block preceded by the line ``<!-- docs-runner: skip (why) -->`` (it needs something outside the repository, such as
a running dask scheduler). A command already run earlier in the pass (the README repeats some of docs/) is run once.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def documents() -> list[Path]:
    """The files whose examples are run, in order: the README, then every page of docs/ by name."""
    return [README, *sorted((ROOT / "docs").glob("*.md"))]

#: Commands (by prefix) that take minutes: run by ``make readme``, left out of ``make test``'s fast pass.
LONG = {
    "make demo": "reproduces the paper and writes every figure (~1 min)",
    "make test": "the whole test suite (which runs this file's fast pass)",
    "dse-search search=deepseek-r1-capacity": "2,000-trial searches (~1 min each)",
    "dse --config-dir sweeps": "a multirun recipe",
    "PYTHONPATH=. python benchmarks/search_hypervolume.py": "10 seeds x 3 samplers x 2,000 trials (~30 min)",
    "PYTHONPATH=. python analysis/deepseek_r1_capacity.py": "three validated 2,000-trial searches (minutes)",
    "python sweeps/calibration_sweep.py": "eight studies under six sets of constants",
    "python analysis/calibration_compare.py": "needs sweeps/calibration_sweep.py's results first",
    "python -m analysis.paper_figures": "every paper figure",
    "python benchmarks/sweep_throughput.py": "a 10^9-point sweep",
    "PYTHONPATH=. python benchmarks/sweep_throughput.py": "a 28-million-point grid, three ways, repeated",
    "PYTHONPATH=. python benchmarks/continuous_search.py --front-only": "the exact front of 1.17e9 points (~30 s)",
    "PYTHONPATH=. python benchmarks/continuous_search.py": "the exact front of 1.17e9 points and 4,000 trials",
    "dse-search search=deepseek-r1-continuous": "4,000 Optuna trials (minutes)",
    "PYTHONPATH=. python benchmarks/max_batch.py": "10^5-point max_batch and a per-point loop (~30 s)",
    "python -m analysis.serving_slo": "max_batch for 5 model x profile cases x 9 TPOT targets (~30 s)",
    "PYTHONPATH=. python benchmarks/explore_latency.py": "dse explore's live page, 60 timed widget changes (~30 s)",
}
#: Commands that cannot run to completion here, with the reason; reported by both passes.
NOT_RUN = {
    "dse-calibrate --base": "measures an NVIDIA GPU (without one it exits with a one-line error, checked below)",
    "optuna-dashboard": "a web server that runs until stopped (pip install optuna-dashboard)",
    "pip install": "installs packages into the environment",
    "dse explore": "a web server that runs until stopped (tests/test_explore.py drives it in Chromium)",
}
#: Commands expected to fail here, with the one-line error they must print.
EXPECTED_ERROR = {"dse-calibrate --base": "dse-calibrate: error: "}


#: Activating the project's environment (README: after the set-up, before the first command).
ACTIVATE = re.compile(r"(?:\.|source) \.venv/bin/activate(?:\s+#.*)?")

SKIP = re.compile(r"<!-- docs-runner: skip \(([^)]+)\) -->\n")


def blocks(text: str) -> list[tuple[str, str, str | None]]:
    """(language, code, reason to skip or None) of every fenced sh / python block, in order."""
    return [(m.group(2), m.group(3), m.group(1)) for m in
            re.finditer(r"(?:<!-- docs-runner: skip \(([^)]+)\) -->\n)?```(sh|python)\n(.*?)```", text, re.S)]


def commands(code: str) -> list[str]:
    """The commands of a sh block: continuation lines joined, comments and blank lines dropped."""
    out, current = [], ""
    for line in code.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        out.append((current + line).strip())
        current = ""
    return [c for c in out if c and not c.startswith("#")]


def _matches(cmd: str, table: dict) -> str | None:
    return next((reason for prefix, reason in table.items() if cmd.startswith(prefix)), None)


def scratch_copy(dest: Path, link_venv: bool = True) -> Path:
    """The working tree as git sees it (tracked and untracked-but-not-ignored files), without build outputs; with
    ``link_venv`` the project's .venv linked in (so `make` finds it installed). tests/test_wheel.py builds from it."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                            timeout=60)
    if listed.returncode != 0:  # not a git checkout (this runner's own scratch copy, an sdist): all but outputs
        shutil.copytree(ROOT, dest, symlinks=True, ignore=shutil.ignore_patterns(
            ".venv", "outputs", "multirun", "results", "*.egg-info", "build", "__pycache__", ".hypothesis",
            ".pytest_cache", "*.nc", "*.zarr", "*.log"))
    else:
        for name in filter(None, listed.stdout.decode().split("\0")):
            src = ROOT / name
            if src.is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / name)
    if link_venv and (ROOT / ".venv").is_dir():
        (dest / ".venv").symlink_to((ROOT / ".venv").resolve())
    return dest


def run(fast: bool, workdir: Path | None = None, log=print) -> dict:
    """Run the documents' examples; returns {"ran": [...], "long": [...], "not_run": [(what, why)], "skipped":
    [(block, why)], "failed": [(what, why)]}. A python block is named "<file> python block <n>"."""
    result = {"ran": [], "long": [], "not_run": [], "skipped": [], "failed": []}
    done: set[str] = set()
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dse-readme-")))
        work = scratch_copy(Path(workdir) / "dse")
        bin_dir = Path(sys.executable).parent
        fresh = [p for p in os.environ.get("PATH", "").split(os.pathsep)
                 if p and Path(p).resolve() not in (bin_dir.resolve(), (ROOT / ".venv" / "bin").resolve())]
        env = {**os.environ, "PATH": os.pathsep.join(fresh), "PYTHONPATH": str(work), "MPLBACKEND": "Agg"}
        env.pop("DSE_CONF_DIR", None)
        env.pop("VIRTUAL_ENV", None)
        old_cwd = os.getcwd()
        os.chdir(work)
        sys.path.insert(0, str(work))
        scopes: dict[str, dict] = {}   # one namespace per file
        examples = [(doc.relative_to(ROOT).as_posix(), n, block) for doc in documents()
                    for n, block in enumerate(blocks(doc.read_text()))]
        try:
            for name, n, (lang, code, skip_block) in examples:
                scope = scopes.setdefault(name, {})
                if skip_block:
                    result["skipped"].append((f"{name} {lang} block {n}", skip_block))
                    log(f"--   not run: {name} {lang} block {n}  ({skip_block})")
                    continue
                if lang == "python":
                    t0 = time.perf_counter()
                    try:
                        with contextlib.redirect_stdout(io.StringIO()):
                            exec(compile(code, f"{name} python block {n}", "exec"), scope)
                        result["ran"].append(f"{name} python block {n}")
                        log(f"ok   {name} python block {n} ({time.perf_counter() - t0:.1f} s)")
                    except Exception as e:  # noqa: BLE001 - reported, the run goes on
                        result["failed"].append((f"{name} python block {n}", f"{type(e).__name__}: {e}"))
                        log(f"FAIL {name} python block {n}: {type(e).__name__}: {e}")
                    continue
                for cmd in commands(code):
                    if cmd in done:
                        log(f"--   ran above: {cmd}")
                        continue
                    done.add(cmd)
                    if ACTIVATE.fullmatch(cmd):   # the user's shell from here on: the project's commands on PATH
                        venv = work / ".venv" if (work / ".venv" / "bin").is_dir() else bin_dir.parent
                        env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", VIRTUAL_ENV=str(venv))
                        result["ran"].append(cmd)
                        log(f"ok   {cmd} (PATH and VIRTUAL_ENV set for the commands after it)")
                        continue
                    skip = _matches(cmd, NOT_RUN)
                    expected = _matches(cmd, EXPECTED_ERROR)
                    if skip and not expected:
                        result["not_run"].append((cmd, skip))
                        log(f"--   not run: {cmd}  ({skip})")
                        continue
                    if fast and _matches(cmd, LONG):
                        result["long"].append(cmd)
                        log(f"--   long (make readme runs it): {cmd}")
                        continue
                    t0 = time.perf_counter()
                    p = subprocess.run(["bash", "-c", cmd], cwd=work, env=env, capture_output=True, text=True,
                                       timeout=3600)
                    lines = [ln for ln in p.stderr.splitlines() if ln.strip() and "%|" not in ln]
                    if expected:  # must fail here, in one line of its own
                        ok = p.returncode != 0 and any(ln.startswith(expected) for ln in lines)
                        if not ok:
                            result["failed"].append((cmd, f"expected a one-line {expected!r} error, got rc "
                                                          f"{p.returncode}: {p.stderr[-300:]}"))
                        result["not_run"].append((cmd, skip))
                        log(f"{'ok' if ok else 'FAIL'}   {cmd} (the expected one-line error without a GPU)")
                        continue
                    if p.returncode != 0:
                        tail = (p.stdout[-1500:] + "\n" + p.stderr[-600:]).strip()
                        result["failed"].append((cmd, tail))
                        log(f"FAIL {cmd} (rc {p.returncode})\n{tail}")
                    else:
                        result["ran"].append(cmd)
                        log(f"ok   {cmd} ({time.perf_counter() - t0:.1f} s)")
        finally:
            os.chdir(old_cwd)
            sys.path.remove(str(work))
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fast", action="store_true", help="leave out the long commands (what make test runs)")
    ap.add_argument("--workdir", help="keep the scratch copy here (default: a temporary directory)")
    a = ap.parse_args(argv)
    r = run(a.fast, Path(a.workdir) if a.workdir else None)
    print(f"\nREADME and docs: {len(r['ran'])} ran, {len(r['failed'])} failed, {len(r['long'])} long ones left out, "
          f"{len(r['not_run']) + len(r['skipped'])} not runnable here")
    return 1 if r["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
