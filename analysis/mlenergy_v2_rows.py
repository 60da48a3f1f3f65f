"""The ML.ENERGY Leaderboard v2 (2024, vLLM 0.5.4) Mixtral sweeps on H100, as rows of the validation table.

ML.ENERGY v2 served Mixtral-8x7B (4 GPUs) and Mixtral-8x22B (8 GPUs) on H100 with vLLM 0.5.4 at eight to ten
``max_num_seqs`` each. Those runs are host-bound (the boards draw 200-220 W at every batch; vLLM's own profile of
0.5.3 finds the GPU busy 38 % of the time), so dse serves them with its ``vllm-0.5`` engine, fitted on every other
row of them and reported on the rest (dse validate). This script (re)writes those rows of
reference/validation/measurements.csv in place, where the first of them stands; the other rows are kept as they are.

    python -m analysis.mlenergy_v2_rows LEADERBOARD_V2_GIT_DIR [--table CSV]

LEADERBOARD_V2_GIT_DIR is a clone (or bare mirror) of github.com/ml-energy/leaderboard-v2; the rows are read from
``data/llm_text_generation/chat/H100 80GB HBM3/mistralai/<model>/bs<B>+tp<N>+pp1.json`` at :data:`COMMIT`.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

from analysis import common

COMMIT = "c3af7f31e231a2a7021c5f8e2a54dd712d02e6e2"
TABLE = Path(__file__).resolve().parents[1] / "reference" / "validation" / "measurements.csv"
DIR = "data/llm_text_generation/chat/H100 80GB HBM3/mistralai"
#: Leaderboard model folder -> (row id stem, the name validation maps to a model preset, tensor-parallel GPUs).
MODELS = {"Mixtral-8x7B-Instruct-v0.1": ("mle2-mixtral-h100x4", "mixtral-8x7b-instruct-v0.1", 4),
          "Mixtral-8x22B-Instruct-v0.1": ("mle2-mixtral8x22b-h100x8", "mixtral-8x22b-instruct-v0.1", 8)}
#: Mean prompt tokens vLLM prefills (measurements.csv's notes: the Mixtral tokenizer with benchmark_client.py's
#: SYSTEM_PROMPT and chat template over the 500 ShareGPT prompts, computed, +-2%); Mixtral-8x22B's tokenizer v3 is
#: given the same count (an assumption: the same words, a vocabulary 2.4 % larger).
PROMPT = 120.7
SOURCE = "ML.ENERGY Leaderboard v2 (Chung et al., 2024; NeurIPS D&B 2025 paper arXiv:2505.06371)"
RUN = ("vLLM 0.5.4 (benchmark/llm_text_generation/chat/pegasus/H100/queue_*gpu.yaml: --server-images "
       "mlenergy/vllm:v0.5.4-openai --request-rate inf --power-limits 700)")


def _git(git_dir: str, *args: str) -> str:
    try:
        return subprocess.check_output(["git", "--git-dir", git_dir, *args], text=True, stderr=subprocess.PIPE)
    except (OSError, subprocess.CalledProcessError) as err:
        raise SystemExit(f"git_dir={git_dir}: not a copy of github.com/ml-energy/leaderboard-v2 at {COMMIT[:8]} "
                         f"({' '.join(args)}: {(getattr(err, 'stderr', '') or str(err)).strip()})") from None


def rows(git_dir: str) -> list[dict]:
    out = []
    for folder, (stem, model, tp) in MODELS.items():
        names = _git(git_dir, "ls-tree", "--name-only", f"{COMMIT}:{DIR}/{folder}").split()
        batches = sorted(int(n.split("+")[0][2:]) for n in names if n.endswith(f"+tp{tp}+pp1.json"))
        for b in batches:
            path = f"{DIR}/{folder}/bs{b}+tp{tp}+pp1.json"
            d = json.loads(_git(git_dir, "show", f"{COMMIT}:{path}"))
            e, o = d["Energy/req (J)"], d["Avg Output Tokens"]
            out.append(dict(
                id=f"{stem}-bs{b}", source=SOURCE, url_or_path=f"github.com/ml-energy/leaderboard-v2@{COMMIT}:{path}",
                hardware="h100-sxm", n_gpus=tp, model=model, precision="bf16", prompt_len=PROMPT,
                output_len=round(o, 1), concurrency=round(d["Avg BS (reqs)"], 1),
                throughput_tok_s=round(d["Token tput (tok/s)"], 1), measured_value=round(e, 2),
                measured_unit="J/request", boundary="gpu",
                notes=(f"ML.ENERGY Leaderboard v2, {RUN}, Zeus/NVML steady-state GPU energy; GPU string "
                       f"'{d['GPU']}'; TP={d['TP']} PP={d['PP']}; max_num_seqs={b}; 'Energy/req (J)'={e:.2f}, "
                       f"'Avg Output Tokens'={o:.1f}, 'Token tput (tok/s)'={d['Token tput (tok/s)']:.1f}, "
                       f"'Avg BS (reqs)'={d['Avg BS (reqs)']:.1f}, 'Avg TPOT (s)'={d['Avg TPOT (s)']:.4f}; derived "
                       f"J/output_token = Energy/req / Avg Output Tokens = {e / o:.4f}; dataset = ShareGPT_V3 "
                       "first-turn prompts filtered to prompt<=800 and output<=800 tokens; prompt_len: see "
                       "analysis/mlenergy_v2_rows.py PROMPT; precision not stated in the data file (vLLM's default "
                       "for this checkpoint = bf16 weights, assumption)")))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("git_dir", help="a clone or bare mirror of github.com/ml-energy/leaderboard-v2")
    ap.add_argument("--table", type=Path, default=TABLE)
    args = ap.parse_args(argv)
    new = rows(args.git_dir)
    with open(args.table, newline="") as f:
        reader = csv.DictReader(f)
        columns, old = reader.fieldnames, list(reader)
    stems = tuple(stem + "-" for stem, _, _ in MODELS.values())
    at = next((i for i, r in enumerate(old) if r["id"].startswith(stems)), len(old))
    kept = [r for r in old if not r["id"].startswith(stems)]
    table = kept[:at] + new + kept[at:]
    common.write_csv(args.table, columns, table)
    print(f"{len(new)} ML.ENERGY v2 rows -> {args.table} ({len(table)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
