"""Every ML.ENERGY Leaderboard v3 configuration of the MoE models dse has presets for, as validation rows.

The repository's validation table (reference/validation/measurements.csv) holds a few rows per model; this script
writes the rest of the published sweep of those models (reference/validation/mlenergy_v3_sweep.csv: every GPU, GPU
count and concurrency the leaderboard lists, less the configurations measurements.csv holds, so that the two tables
never share a row). The vllm engine's constants are fitted on every other row of this table and reported on the
rest and on measurements.csv (dse.analyze.validation).

    python -m analysis.mlenergy_v3_table LEADERBOARD_GIT_DIR [--out CSV]
    dse validate --table reference/validation/mlenergy_v3_sweep.csv

LEADERBOARD_GIT_DIR is a clone (or bare mirror) of github.com/ml-energy/leaderboard; the rows are read from
``public/data/models/*.json`` at :data:`COMMIT`. Prompt lengths are not published there: GPQA rows carry the mean
prompt length computed from the public GPQA-Diamond questions (see measurements.csv's notes), LMArena rows none.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

from analysis import common

COMMIT = "0cd52dab897c5d91a45f4d413038f3b8b4251b0f"
TABLE = Path(__file__).resolve().parents[1] / "reference" / "validation" / "measurements.csv"
OUT = TABLE.with_name("mlenergy_v3_sweep.csv")
#: Leaderboard model files -> (the name dse's validation maps to a model preset, the weights' precision).
FILES = {
    "deepseek-ai__DeepSeek-R1-0528__gpqa": ("deepseek-r1-0528", "fp8"),
    "deepseek-ai__DeepSeek-V3.1__gpqa": ("deepseek-v3.1", "fp8"),
    "deepseek-ai__DeepSeek-V3.1__lm-arena-chat": ("deepseek-v3.1", "fp8"),
    "Qwen__Qwen3-235B-A22B-Instruct-2507__lm-arena-chat": ("qwen3-235b-a22b-instruct-2507", "bf16"),
    "Qwen__Qwen3-235B-A22B-Instruct-2507-FP8__lm-arena-chat": ("qwen3-235b-a22b-instruct-2507", "fp8"),
    "Qwen__Qwen3-235B-A22B-Thinking-2507__gpqa": ("qwen3-235b-a22b-thinking-2507", "bf16"),
    "Qwen__Qwen3-235B-A22B-Thinking-2507-FP8__gpqa": ("qwen3-235b-a22b-thinking-2507", "fp8"),
    "Qwen__Qwen3-30B-A3B-Instruct-2507__lm-arena-chat": ("qwen3-30b-a3b-instruct-2507", "bf16"),
    "Qwen__Qwen3-30B-A3B-Thinking-2507__gpqa": ("qwen3-30b-a3b-thinking-2507", "bf16"),
    "openai__gpt-oss-120b__gpqa": ("gpt-oss-120b", "mxfp4"),
    "meta-llama__Llama-4-Maverick-17B-128E-Instruct-FP8__lm-arena-chat": ("llama-4-maverick-17b-128e-instruct", "fp8"),
}
#: Mean GPQA-Diamond prompt tokens per tokenizer (reference/validation/measurements.csv's notes: computed, +-2%).
GPQA_PROMPT = {"deepseek-ai": 210.4, "Qwen": 224.6, "openai": 218.6}
HARDWARE = {"H100": "h100-sxm", "B200": "b200", "H200": "h200-sxm"}
COLUMNS = ["id", "source", "url_or_path", "hardware", "n_gpus", "model", "precision", "prompt_len", "output_len",
           "concurrency", "throughput_tok_s", "measured_value", "measured_unit", "boundary", "notes"]


def rows(git_dir: str) -> list[dict]:
    out, seen = [], {}
    for name, (model, precision) in FILES.items():
        path = f"public/data/models/{name}.json"
        data = json.loads(subprocess.check_output(["git", "--git-dir", git_dir, "show", f"{COMMIT}:{path}"]))
        task = name.rsplit("__", 1)[1]
        for c in data["configurations"]:
            if c["gpu_model"] not in HARDWARE:
                continue
            key = (f"v3-{name.split('__')[1].lower()}-{task}-{c['gpu_model'].lower()}x{c['num_gpus']}"
                   f"-seqs{c['max_num_seqs']}")
            seen[key] = seen.get(key, 0) + 1                 # a configuration published twice (two runs)
            out.append(dict(
                id=key if seen[key] == 1 else f"{key}-run{seen[key]}",
                source="ML.ENERGY Leaderboard v3.0 / Chung et al. 2026 (arXiv:2601.22076)",
                url_or_path=f"github.com/ml-energy/leaderboard@{COMMIT}:{path}",
                hardware=HARDWARE[c["gpu_model"]], n_gpus=c["num_gpus"], model=model, precision=precision,
                prompt_len=GPQA_PROMPT[name.split("__")[0]] if task == "gpqa" else "",
                output_len=round(c["avg_output_len"], 1), concurrency=round(c["avg_batch_size"], 1),
                throughput_tok_s=round(c["output_throughput_tokens_per_sec"], 1),
                measured_value=c["energy_per_token_joules"], measured_unit="J/output_token", boundary="gpu",
                notes=f"task={task}; max_num_seqs={c['max_num_seqs']}; median_itl_ms={c['median_itl_ms']:.2f}; "
                      f"avg_power_watts={c['avg_power_watts']:.1f} (sum over {c['num_gpus']} GPUs); "
                      f"steady-state GPU energy / output tokens"))
    return out


def in_table(row: dict, table: list[dict]) -> bool:
    """Whether ``row`` is a configuration the repository's validation table already holds (same GPUs, model and
    precision, the same published energy per output token to the table's four decimals)."""
    return any(t["hardware"] == row["hardware"] and int(t["n_gpus"]) == row["n_gpus"] and t["model"] == row["model"]
               and t["precision"] == row["precision"] and t["measured_unit"] == "J/output_token"
               and abs(float(t["measured_value"]) / row["measured_value"] - 1) < 1e-3 for t in table)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("git_dir", help="a clone or bare mirror of github.com/ml-energy/leaderboard")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    with open(TABLE, newline="") as f:
        picked = list(csv.DictReader(f))
    table = [r for r in rows(args.git_dir) if not in_table(r, picked)]
    common.write_csv(args.out, COLUMNS, table)
    print(f"{len(table)} rows -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
