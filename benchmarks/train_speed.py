"""Training throughput (images/s).

`scaling`: `flame train` with 1 and N processes, on the demo's shards and embeddings. Run `make demo` first (it
writes data/demo/train/*.tar and FLAME's embeddings, results/demo/embed/<id>/*.parquet), then:

    python benchmarks/train_speed.py scaling                      # 1 and 2 processes, the demo's train settings
    python benchmarks/train_speed.py scaling --processes 1 2 4 --epochs 4

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
from pipeline.settings import stage_settings  # noqa: E402
from pipeline.train.launch import launch_command  # noqa: E402
from pipeline.variants import flame_variants  # noqa: E402


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


def _step_flops(task, model, batch) -> int:
    """Forward + backward FLOPs of one step of ``task`` on ``batch`` (torch's FLOP counter: matmuls, attention)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    images, targets, mask = batch
    with FlopCounterMode(display=False) as counter:
        loss = task.loss(model, *task.features(model, images, targets), mask, logits_live=True)
        loss.backward()
    model.zero_grad(set_to_none=True)
    torch.cuda.synchronize() if torch.cuda.is_available() else None
    return counter.get_total_flops()


#: the models `step_rates` can time, by name
STEP_MODELS = ("FLAME, per-token projector", "FLAME, pooled projector", "open_clip CLIP")


def step_rates(vision: dict, batch: int, dim: int, facets: int, steps: int, precision: str,
               models: tuple[str, ...] = STEP_MODELS) -> dict[str, dict]:
    """One optimizer step (forward, backward, AdamW) of each of ``models`` (FLAME with the per-token or the pooled
    projector, info_nce against ``facets`` x ``dim`` precomputed targets; open_clip's CLIP with a 12-layer text
    transformer at 77 tokens, ClipLoss) with the vision tower ``vision`` and ``batch`` images, on synthetic inputs,
    through the training code (`contrastive_step`); the models take turns, one step each per round, ``steps`` timed
    rounds after one warm-up. Returns per model images/s and forward+backward FLOPs per image (torch's counter)."""
    import time

    import torch
    import torch.nn.functional as F
    from accelerate import Accelerator

    from pipeline.train.data import Batch, StreamState
    from pipeline.train.loop import ClipTask, FlameTask, _optimizer, contrastive_step
    from pipeline.train.settings import ClipSettings, FlameSettings

    accelerator = Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available())
    device = accelerator.device
    names = [f"f{k}" for k in range(facets)]
    template = {"prefix": "{caption}", "names": names, "suffixes": names, "cleaning": "quotes"}
    meta = {"dim": dim, "templates": {s: template for s in ("raw", "short", "long")}}
    generator = torch.Generator().manual_seed(0)
    size = vision["image_size"]
    images = torch.randn(batch, 3, size, size, generator=generator)
    targets = F.normalize(torch.randn(batch, facets, dim, generator=generator), dim=-1)
    tokens = torch.randint(1, 49000, (batch, 77), generator=generator)
    mask = torch.ones(batch, facets, dtype=torch.bool)
    common = {"vision": vision, "batch_size": batch, "precision": precision}

    def flame(projector):
        settings = FlameSettings.from_document({**common, "sources": ["long"], "projector": projector})
        return FlameTask(settings, meta), targets, mask

    setups = {"FLAME, per-token projector": lambda: flame("per_token"),
              "FLAME, pooled projector": lambda: flame("pooled"),
              "open_clip CLIP": lambda: (ClipTask(ClipSettings.from_document(common)), tokens, None)}
    prepared = {}
    for name in models:
        task, texts, texts_mask = setups[name]()
        torch.manual_seed(0)
        raw = task.build_model().to(device)
        flops = _step_flops(task, raw, (images.to(device), texts.to(device), texts_mask))
        model, optimizer = accelerator.prepare(raw, _optimizer(raw, task.settings))
        prepared[name] = (task, model, optimizer, [Batch(images, texts, texts_mask, 0, StreamState())], flops)
    times: dict[str, list[float]] = {name: [] for name in prepared}
    for step in range(steps + 1):  # round-robin, so a drift of the machine's speed hits every model alike
        for name, (task, model, optimizer, micro, _) in prepared.items():
            start = time.perf_counter()
            contrastive_step(accelerator, model, task, micro)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            if step:  # the first round warms up
                times[name].append(time.perf_counter() - start)
    return {name: {"images_per_s": batch * len(times[name]) / sum(times[name]),
                   "flops_per_image": prepared[name][4] / batch} for name in prepared}


def flame_vs_clip(args) -> None:
    """FLAME (per-token and pooled projector) and open_clip's CLIP, one training step each (`step_rates`): prints
    images/s, forward+backward FLOPs per image, and FLAME/CLIP ratios: measured vs predicted by FLOPs."""
    import torch

    vision = {"model": args.vision, "image_size": args.image_size, "patch_size": args.patch_size, "kwargs": {}}
    rows = step_rates(vision, args.batch, args.dim, args.facets, args.steps, args.precision)
    clip = rows["open_clip CLIP"]
    print(f"{args.vision} at {args.image_size} px, batch {args.batch}, D = {args.dim}, K = {args.facets}, "
          f"precision {args.precision}, {'cuda' if torch.cuda.is_available() else 'cpu'}, "
          f"{torch.get_num_threads()} threads\n")
    print("| model | images/s | GFLOP per image (fwd+bwd) | measured / CLIP | FLOP-predicted / CLIP | "
          "measured / predicted |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        measured = row["images_per_s"] / clip["images_per_s"]
        predicted = clip["flops_per_image"] / row["flops_per_image"]
        print(f"| {name} | {row['images_per_s']:.2f} | {row['flops_per_image'] / 1e9:.1f} | {measured:.3f} | "
              f"{predicted:.3f} | {measured / predicted:.3f} |")


def scaling(args) -> None:
    config = yaml.safe_load(args.config.read_text())
    shards = sorted(glob.glob(str(REPO / config["demo"]["out"] / "train" / "*.tar")))
    embedding = flame_variants(config)["flame"].embedding_id
    embeddings = sorted(glob.glob(str(REPO / config["results"] / "embed" / embedding / "*.parquet")))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="benchmark", required=True)
    p = sub.add_parser("scaling", help="flame train with 1..N processes on the demo's data")
    p.add_argument("--config", type=Path, default=REPO / "config" / "demo.yaml")
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads shared by the processes")
    p.set_defaults(func=scaling)
    p = sub.add_parser("flame-vs-clip", help="one training step of FLAME and of the open_clip CLIP baseline",
                       description=flame_vs_clip.__doc__)
    p.add_argument("--vision", default="vit_base_patch16_224", help="timm model of both vision towers")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--patch-size", type=int, default=16)
    p.add_argument("--batch", type=int, default=8, help="images per step")
    p.add_argument("--dim", type=int, default=5120, help="LLM hidden size D (Mistral-Nemo: 5120)")
    p.add_argument("--facets", type=int, default=7, help="facet rows per image (info_nce)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per model, after one warm-up step")
    p.add_argument("--precision", default="no", choices=["no", "bf16", "fp16"])
    p.set_defaults(func=flame_vs_clip)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
