"""Training throughput (images/s) of `flame train` with 1 and N processes, on the demo's shards and embeddings.

Run `make demo` first (it writes data/demo/train/*.tar and results/demo/embed/*.parquet), then:

    python benchmarks/train_speed.py                      # 1 and 2 processes, the demo's train settings
    python benchmarks/train_speed.py --processes 1 2 4 --epochs 4

Each configuration trains from scratch (fresh state directory) through the same command the train rule runs
(`accelerate launch --multi_gpu` for several processes: gloo on CPU, NCCL on GPUs); the machine's CPU threads are
split between the processes. Two global batches are measured for N > 1: the demo's per-process batch (global batch
N x larger) and the demo's global batch split over N processes. Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from pipeline.cli import launch_command  # noqa: E402
from pipeline.settings import stage_settings  # noqa: E402


def run(processes: int, settings: dict, shards: list[str], embeddings: list[str], threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [*launch_command(processes, Path(sys.executable).parent), "train", "--shards", *shards,
               "--embeddings", *embeddings, "--out", f"{tmp}/model", "--state-dir", f"{tmp}/state",
               "--settings", json.dumps(settings), "--checkpoint-every", "1000000"]
        env = dict(os.environ, OMP_NUM_THREADS=str(max(1, threads // processes)))
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        return json.loads(Path(tmp, "model", "train_summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "config" / "demo.yaml")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads shared by the processes")
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text())
    shards = sorted(glob.glob(str(REPO / config["demo"]["out"] / "train" / "*.tar")))
    embeddings = sorted(glob.glob(str(REPO / config["results"] / "embed" / "*.parquet")))
    if not shards or len(shards) != len(embeddings):
        raise SystemExit("run `make demo` first: no demo shards/embeddings found")
    base = {**stage_settings(config["train"]), "epochs": args.epochs}
    print("| processes | batch per process | global batch | steps | images/s | seconds |")
    print("|---:|---:|---:|---:|---:|---:|")
    for processes in args.processes:
        batches = [base["batch_size"]] + ([base["batch_size"] // processes] if processes > 1 else [])
        for batch in batches:
            summary = run(processes, {**base, "batch_size": batch}, shards, embeddings, args.threads)
            print(f"| {processes} | {batch} | {summary['global_batch']} | {summary['steps']} | "
                  f"{summary['images_per_s']:.0f} | {summary['seconds']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
