"""Loading the LLM once per chunk of shards (embed.execution.shards_per_job): G captions files embedded by one
`flame embed` call against one call each, wall seconds of the whole command as a job runs it.

Each round runs both ways over the same files, alternating which goes first; a call's fixed cost (start-up, imports,
the LLM's load) is what the G separate calls pay G - 1 times more. The per-shard embedding time is the stage's own
figure (the `seconds` its output records), the load is `load_llm` alone in this process.

    python benchmarks/embed_chunks.py --llm models/tiny-llm results/demo/caption/shard-0000{0,1,2,3}.parquet

Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from pipeline.io.parquet import read_parquet_metadata  # noqa: E402
from pipeline.llm import load_llm  # noqa: E402


def embed(pairs: list[tuple[Path, Path]], settings: str, threads: int) -> float:
    """Wall seconds of one `flame embed` subprocess over ``pairs`` (CAPTIONS, OUT)."""
    command = [sys.executable, "-m", "pipeline.cli", "embed", *(str(p) for pair in pairs for p in pair),
               "--settings", settings, "--device", "cpu"]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("captions", type=Path, nargs="+", help="captions files (G = their count, at least 2)")
    parser.add_argument("--llm", required=True, help="embed.llm (a directory, hub id or .gguf file)")
    parser.add_argument("--layer", type=int, default=-1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if len(args.captions) < 2:
        parser.error("give at least 2 captions files")
    settings = json.dumps({"llm": args.llm, "layer": args.layer, "layout": "paper"})
    start = time.perf_counter()
    load_llm(args.llm, device="cpu")
    load_s = time.perf_counter() - start
    separate, chunked, embedding = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        outs = [Path(tmp) / f"{i}.parquet" for i in range(len(args.captions))]
        pairs = list(zip(args.captions, outs))
        for round_ in range(args.rounds):
            ways = [("separate", lambda: sum(embed([pair], settings, args.threads) for pair in pairs)),
                    ("chunked", lambda: embed(pairs, settings, args.threads))]
            for name, run in ways[::1 if round_ % 2 == 0 else -1]:
                (separate if name == "separate" else chunked).append(run())
            embedding.append(sum(read_parquet_metadata(out)["seconds"] for out in outs))
    g = len(args.captions)
    fixed = [(s - c) / (g - 1) for s, c in zip(separate, chunked)]
    print(f"{g} captions files, LLM {args.llm} (layer {args.layer}), {args.threads} threads, {args.rounds} rounds; "
          f"load_llm alone {load_s:.2f} s\n")
    print("| | mean s | sd s |\n|---|---:|---:|")
    for name, values in ((f"{g} calls, one per file", separate), ("one call over all files", chunked),
                         ("fixed cost of a call ((separate - chunked) / (G - 1))", fixed),
                         (f"embedding alone, {g} files (their recorded seconds)", embedding)):
        print(f"| {name} | {statistics.mean(values):.2f} | {statistics.stdev(values):.2f} |")
    print(f"\nper file: embedding {statistics.mean(embedding) / g:.2f} s, fixed cost of its call "
          f"{statistics.mean(fixed):.2f} s ({statistics.mean(fixed) / (statistics.mean(embedding) / g):.0%} of it)")


if __name__ == "__main__":
    main()
