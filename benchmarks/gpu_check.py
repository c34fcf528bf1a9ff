"""One prepared GPU check of the three heavy stages, with nothing downloaded: random weights with the real shapes,
initialised on the device. Writes one JSON and prints one table.

- embed: a Mistral-Nemo-shaped decoder (40 layers, hidden 5120, 32/8 heads, 12 B parameters; bf16, sdpa), the
  pipeline's FacetEmbedder in fda and naive mode at Lp ~ 200 and K = 7: captions/s, prompt tokens/s, MFU against
  --peak-tflops (2 FLOPs per decoder parameter per token), peak memory at the cc3m config's token budget, and the
  largest token budget of those tried that fits;
- train: ViT-B/16 + the per-token projector (and the pooled one) against K x 5120 targets, bf16, batch 384, through
  the training step (`benchmarks/train_speed.py: step_rates`): images/s and MFU; then the data loader alone
  (`TrainStream` in a DataLoader of 16 workers: JPEG decode + crop of shards the demo writer wrote at 224 px):
  images/s;
- caption: a MiniCPM-V-4.6-shaped random model (`benchmarks/caption_speed.py: caption_rates`), batch 1 vs 32:
  images/s.

    python benchmarks/gpu_check.py --peak-tflops 989 --out gpu_check.json      # H100 / H200 (bf16 dense peak)
    python benchmarks/gpu_check.py --tiny --out gpu_check.json                 # CPU, tiny shapes, for CI

`--tiny` runs every section with tiny shapes on CPU, in seconds, so the script cannot rot (tests/test_benchmarks.py);
its figures mean nothing. The GPU figures go to BENCHMARKS.md with the machine and date.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]
from caption_speed import caption_rates  # noqa: E402
from embed_speed import WORDS, make_caption, time_encode  # noqa: E402
from train_speed import step_rates  # noqa: E402

from pipeline.demo.tiny_llm import train_tokenizer  # noqa: E402
from pipeline.embed.fda import FacetEmbedder  # noqa: E402
from pipeline.embed.prompts import FACETS, paper_template  # noqa: E402
from pipeline.settings import load_yaml  # noqa: E402

#: the shapes of each section, full (the real models) and tiny (CI on CPU)
SHAPES = {
    "full": {
        "llm": {"hidden_size": 5120, "intermediate_size": 14336, "num_hidden_layers": 40, "num_attention_heads": 32,
                "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 131072},
        "embed": {"captions": 64, "prefix_tokens": 200, "budgets": [65536, 131072, 262144, 524288]},
        "train": {"vision": {"model": "vit_base_patch16_224", "image_size": 224, "patch_size": 16, "kwargs": {}},
                  "batch": 384, "dim": 5120, "facets": 7, "steps": 10},
        "loader": {"shards": 4, "per_shard": 512, "image_size": 224, "workers": 16, "batches": 30},
        "caption": {"sizes": {"hidden_size": 2048, "layers": 24, "vision_hidden_size": 1152, "vision_layers": 27},
                    "images": 64, "image_size": 448, "new_tokens": 32, "batches": [1, 32]},
    },
    "tiny": {
        "llm": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 512},
        "embed": {"captions": 4, "prefix_tokens": 40, "budgets": [512, 1024]},
        "train": {"vision": {"model": "vit_tiny_patch16_224", "image_size": 32, "patch_size": 8,
                             "kwargs": {"embed_dim": 32, "depth": 1, "num_heads": 2}},
                  "batch": 4, "dim": 16, "facets": 7, "steps": 1},
        "loader": {"shards": 1, "per_shard": 16, "image_size": 64, "workers": 2, "batches": 3},
        "caption": {"sizes": {"hidden_size": 64, "layers": 2, "vision_hidden_size": 32, "vision_layers": 1},
                    "images": 2, "image_size": 112, "new_tokens": 2, "batches": [1, 2]},
    },
}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def random_llm(shape: dict, tokenizer, device: torch.device, dtype: torch.dtype):
    """A Mistral decoder of ``shape`` with random weights, built in ``dtype`` directly on ``device`` (no host copy)."""
    from transformers import MistralConfig, MistralForCausalLM

    config = MistralConfig(**shape, max_position_embeddings=4096, sliding_window=None, tie_word_embeddings=False,
                           bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                           pad_token_id=tokenizer.pad_token_id, attn_implementation="sdpa")
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = MistralForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    return model.eval()


def embed_check(shape: dict, sizes: dict, token_budget: int, device: torch.device, dtype: torch.dtype,
                peak_tflops: float | None) -> dict:
    rng = random.Random(0)
    tokenizer = train_tokenizer([" ".join(rng.choices(WORDS, k=30)) for _ in range(200)] + list(FACETS.values()),
                                vocab_size=512)
    started = time.perf_counter()
    model = random_llm(shape, tokenizer, device, dtype)
    _synchronize(device)
    built = time.perf_counter() - started
    params = sum(p.numel() for p in model.model.layers.parameters())
    template = paper_template("long")
    captions = [make_caption(rng, tokenizer, sizes["prefix_tokens"]) for _ in range(sizes["captions"])]
    result = {"decoder_params": params, "build_s": built, "token_budget": token_budget, "modes": {}}
    for mode in ("naive", "fda"):
        embedder = FacetEmbedder(model, tokenizer, template, mode=mode, token_budget=token_budget)
        tokenized = [embedder._tokenize(c) for c in captions]
        lp = statistics.mean(len(t.prefix) for t in tokenized)
        ls = statistics.mean(len(s) for t in tokenized for s in t.suffixes)
        k = embedder.num_facets
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        seconds = time_encode(embedder, captions, repeats=1)
        prompt_tokens = len(captions) * (lp + k * ls)  # the tokens of the prompts, whatever the mode computes
        computed = len(captions) * (k * (lp + ls) if mode == "naive" else lp + k * ls)
        result["modes"][mode] = {
            "lp": lp, "ls": ls, "k": k, "captions_per_s": len(captions) / seconds,
            "prompt_tokens_per_s": prompt_tokens / seconds, "computed_tokens_per_s": computed / seconds,
            "mfu": 2 * params * computed / seconds / (peak_tflops * 1e12) if peak_tflops else None,
            "peak_mb": _peak_mb(device)}
    fda = result["modes"]["fda"]
    result["speedup"] = fda["captions_per_s"] / result["modes"]["naive"]["captions_per_s"]
    result["flop_bound"] = fda["k"] * (fda["lp"] + fda["ls"]) / (fda["lp"] + fda["k"] * fda["ls"])
    result["budgets"] = []
    per_caption = fda["lp"] + fda["k"] * fda["ls"]
    for budget in sizes["budgets"]:  # one full batch at each budget: its peak memory, until one does not fit
        embedder = FacetEmbedder(model, tokenizer, template, mode="fda", token_budget=budget)
        batch = [make_caption(rng, tokenizer, sizes["prefix_tokens"]) for _ in range(int(budget // per_caption))]
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        try:
            embedder.encode(batch)
            _synchronize(device)
        except torch.OutOfMemoryError:
            result["budgets"].append({"token_budget": budget, "fits": False})
            break
        result["budgets"].append({"token_budget": budget, "fits": True, "captions": len(batch),
                                  "peak_mb": _peak_mb(device)})
    fitting = [b["token_budget"] for b in result["budgets"] if b["fits"]]
    result["largest_fitting_budget"] = max(fitting) if fitting else None
    del model
    return result


def loader_check(sizes: dict, batch: int, dim: int, facets: int) -> dict:
    """images/s of the training's data loader alone: `TrainStream` (the training's own sample stream: tar reading,
    target draw, JPEG decode, random crop + resize) in a DataLoader of ``workers`` processes."""
    import numpy as np
    from torch.utils.data import DataLoader

    from pipeline.demo.writers import write_demo_data
    from pipeline.io.embeddings import write_embeddings
    from pipeline.io.shards import iter_shard, shard_identity
    from pipeline.train.data import FacetTargets, ShardPair, TrainStream

    names = [f"f{k}" for k in range(facets)]
    template = {"prefix": "{caption}", "names": names, "suffixes": names, "cleaning": "quotes"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_demo_data(root / "data", seed=0, train_shards=sizes["shards"], samples_per_shard=sizes["per_shard"],
                        eval_size=1, image_size=sizes["image_size"], overwrite=False)
        pairs, rng = [], np.random.default_rng(0)
        for tar in sorted((root / "data" / "train").glob("*.tar")):
            keys = [sample.key for sample in iter_shard(tar)]
            rows = [(key, "long", name) for key in keys for name in names]
            parquet = root / "emb" / f"{tar.stem}.parquet"
            write_embeddings(rows, rng.standard_normal((len(rows), dim)).astype(np.float16), parquet,
                             {"dim": dim, "templates": {"long": template}, "sources": ["long"],
                              "shard": shard_identity(tar)})
            pairs.append(ShardPair(tar, parquet))
        targets = FacetTargets(["long"], "info_nce", tuple(f"long:{name}" for name in names))
        stream = TrainStream(pairs, targets, sizes["image_size"], batch, shuffle_buffer=1000, seed=0, rank=0,
                             batches_per_epoch=sizes["batches"] + 1)
        batches = iter(DataLoader(stream, batch_size=None, num_workers=sizes["workers"]))
        next(batches)  # the workers start and fill their shuffle buffers
        started = time.perf_counter()
        for _ in range(sizes["batches"]):
            next(batches)
        seconds = time.perf_counter() - started
    return {"workers": sizes["workers"], "image_size": sizes["image_size"], "batch": batch,
            "images_per_s": sizes["batches"] * batch / seconds}


def train_check(sizes: dict, loader_sizes: dict, precision: str, peak_tflops: float | None) -> dict:
    rows = step_rates(sizes["vision"], sizes["batch"], sizes["dim"], sizes["facets"], sizes["steps"], precision,
                      models=("FLAME, per-token projector", "FLAME, pooled projector"))
    for row in rows.values():
        row["mfu"] = row["images_per_s"] * row["flops_per_image"] / (peak_tflops * 1e12) if peak_tflops else None
    return {"batch": sizes["batch"], "precision": precision, "steps": rows,
            "loader": loader_check(loader_sizes, sizes["batch"], sizes["dim"], sizes["facets"])}


def table(result: dict) -> str:
    """The check's figures as one Markdown table."""
    def pct(x):
        return "" if x is None else f"{100 * x:.1f} %"

    embed, train, caption = result["embed"], result["train"], result["caption"]
    lines = ["| stage | what | figure | MFU | peak memory |", "|---|---|---:|---:|---:|"]
    for mode, row in embed["modes"].items():
        peak = "" if row["peak_mb"] is None else f"{row['peak_mb']:.0f} MB"
        lines.append(f"| embed | {mode}, Lp {row['lp']:.0f}, Ls {row['ls']:.1f}, K {row['k']}, budget "
                     f"{embed['token_budget']} | {row['captions_per_s']:.2f} captions/s, "
                     f"{row['prompt_tokens_per_s']:.0f} prompt tokens/s | {pct(row['mfu'])} | {peak} |")
    lines.append(f"| embed | fda / naive (FLOP bound {embed['flop_bound']:.2f}x) | {embed['speedup']:.2f}x | | |")
    lines.append(f"| embed | largest token budget that fits (of {[b['token_budget'] for b in embed['budgets']]}) "
                 f"| {embed['largest_fitting_budget']} | | |")
    for name, row in train["steps"].items():
        lines.append(f"| train | {name}, batch {train['batch']}, {train['precision']} | "
                     f"{row['images_per_s']:.1f} images/s | {pct(row['mfu'])} | |")
    loader = train["loader"]
    lines.append(f"| train | data loader alone, {loader['workers']} workers, {loader['image_size']} px | "
                 f"{loader['images_per_s']:.1f} images/s | | |")
    for row in caption["rows"]:
        lines.append(f"| caption | batch {row['batch']} ({caption['params'] / 1e6:.0f} M parameters) | "
                     f"{row['images_per_s']:.2f} images/s | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny shapes on CPU (CI): the script runs, in seconds")
    parser.add_argument("--device", default=None, help="default: cuda, or cpu with --tiny")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's dense bf16 peak TFLOP/s (H100 SXM / H200: 989): adds the MFU column")
    parser.add_argument("--token-budget", type=int, default=None,
                        help="embed tokens per batch (default: config/cc3m.yaml's embed.execution.token_budget)")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"), help="the JSON to write")
    args = parser.parse_args()
    shapes = SHAPES["tiny" if args.tiny else "full"]
    device = torch.device(args.device or ("cpu" if args.tiny else "cuda"))
    dtype, precision = (torch.float32, "no") if args.tiny else (torch.bfloat16, "bf16")
    cc3m = load_yaml((REPO / "config" / "cc3m.yaml").read_text(encoding="utf-8"), "config/cc3m.yaml")
    budget = args.token_budget or (shapes["embed"]["budgets"][0] if args.tiny
                                   else cc3m["embed"]["execution"]["token_budget"])
    started = time.perf_counter()
    result = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "tiny": args.tiny,
              "device": (torch.cuda.get_device_name(device) if device.type == "cuda"
                         else platform.processor() or platform.machine()),
              "torch": torch.__version__, "peak_tflops": args.peak_tflops}
    result["embed"] = embed_check(shapes["llm"], shapes["embed"], budget, device, dtype, args.peak_tflops)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    result["train"] = train_check(shapes["train"], shapes["loader"], precision, args.peak_tflops)
    caption = shapes["caption"]
    params, rows = caption_rates(caption["sizes"], str(device), "float32" if args.tiny else "bfloat16",
                                 caption["images"], caption["image_size"], caption["new_tokens"], caption["batches"])
    result["caption"] = {"params": params, "new_tokens": caption["new_tokens"], "rows": rows}
    result["seconds"] = time.perf_counter() - started
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"{result['device']}, torch {result['torch']}, {result['date']}, {result['seconds']:.0f} s\n")
    print(table(result))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
