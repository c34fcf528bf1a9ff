"""Embed-stage speed: batched naive K passes vs facet-decoupled attention (fda), and the layer cut.

Same random-init model, same captions, same token budget, one process. For each target prefix length Lp the
captions are built so that the shared prefix has about Lp tokens; the K = 7 suffixes (the `long` facet set) have
their natural length Ls. Prints captions/s of both modes, the measured speed-up and the FLOP bound
K(Lp+Ls)/(Lp+K*Ls), then the cost of reading layer L of N relative to the last layer.

    python benchmarks/embed_speed.py                       # CPU: hidden 1024, 8 layers, fp32
    python benchmarks/embed_speed.py --llm models/SmolLM2-135M-Instruct.Q4_1.gguf   # a real LLM and its tokenizer
    python benchmarks/embed_speed.py --device cuda --dtype bfloat16 --hidden 2048 --layers 16 --captions 256

Results go to BENCHMARKS.md by hand, with the machine and date.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time

import torch

from pipeline.demo.tiny_llm import build_tiny_llm, train_tokenizer
from pipeline.embed.fda import FacetEmbedder
from pipeline.embed.prompts import FACETS, PREFIX, paper_template
from pipeline.llm import load_llm

WORDS = ("red blue green striped dotted star circle square falling resting colliding sunset night fog small large "
         "behind beside above below bright dark calm tense heavy light shiny rough smooth object scene image").split()


def make_caption(rng: random.Random, tokenizer, target_prefix_tokens: int) -> str:
    """A caption whose full prompt's shared prefix has about ``target_prefix_tokens`` tokens."""
    words: list[str] = []
    while True:
        words.append(rng.choice(WORDS))
        caption = " ".join(words).capitalize() + "."
        if len(tokenizer(PREFIX.format(caption=caption))["input_ids"]) >= target_prefix_tokens:
            return caption


def time_encode(embedder: FacetEmbedder, captions: list[str], repeats: int) -> float:
    """Best-of-``repeats`` wall time of ``embedder.encode(captions)`` in seconds (after one warm-up batch)."""
    embedder.encode(captions[:2])
    times = []
    for _ in range(repeats):
        if embedder.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        embedder.encode(captions)
        if embedder.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm", default=None,
                        help="a real LLM (directory, hub id or .gguf file) with its own tokenizer instead of the "
                             "random-init model (--hidden, --layers, --heads, --kv-heads are then ignored)")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument("--prefix-lengths", type=int, nargs="+", default=[50, 100, 200, 300])
    parser.add_argument("--captions", type=int, default=16, help="captions per prefix length")
    parser.add_argument("--token-budget", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--layer-cut", type=int, nargs="*", default=None,
                        help="layers L to read at the middle prefix length (default: N/4, N/2, 3N/4, N)")
    parser.add_argument("--no-layer-cut", action="store_true", help="skip the layer-cut table")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's peak dense TFLOP/s in --dtype: adds an MFU column (2 FLOPs/param/token)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()

    rng = random.Random(0)
    if args.llm:
        model, tokenizer = load_llm(args.llm, dtype=args.dtype, device=args.device)
    else:
        # whole words become single tokens, as in a real LLM's vocabulary: the suffixes take ~16 tokens (7-20)
        tokenizer = train_tokenizer([" ".join(rng.choices(WORDS, k=30)) for _ in range(200)] + list(FACETS.values()),
                                    vocab_size=512)
        model = build_tiny_llm(tokenizer, "mistral", hidden_size=args.hidden, num_layers=args.layers,
                               num_heads=args.heads, num_kv_heads=args.kv_heads,
                               max_positions=4096).to(args.device, getattr(torch, args.dtype))
    config = model.config
    args.layers = config.num_hidden_layers
    params = sum(p.numel() for p in model.model.layers.parameters())
    print(f"model: {args.llm or 'random-init mistral'} ({config.model_type}, hidden {config.hidden_size}, "
          f"{args.layers} layers), {params / 1e6:.1f} M decoder params, {args.dtype} on {args.device}; "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, {platform.processor() or platform.machine()}")

    template = paper_template("long")
    rows = []
    print("| Lp | Ls | captions | naive cap/s | fda cap/s | speed-up | FLOP bound | fda tok/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for target in args.prefix_lengths:
        captions = [make_caption(rng, tokenizer, target) for _ in range(args.captions)]
        naive = FacetEmbedder(model, tokenizer, template, mode="naive", token_budget=args.token_budget)
        fda = FacetEmbedder(model, tokenizer, template, mode="fda", token_budget=args.token_budget)
        tokenized = [fda._tokenize(c) for c in captions]
        lp = statistics.mean(len(t.prefix) for t in tokenized)
        ls = statistics.mean(len(s) for t in tokenized for s in t.suffixes)
        k = fda.num_facets
        t_naive = time_encode(naive, captions, args.repeats)
        t_fda = time_encode(fda, captions, args.repeats)
        bound = k * (lp + ls) / (lp + k * ls)
        row = {"lp": lp, "ls": ls, "captions": len(captions), "naive_cps": len(captions) / t_naive,
               "fda_cps": len(captions) / t_fda, "speedup": t_naive / t_fda, "bound": bound,
               "fda_tokens_per_s": len(captions) * (lp + k * ls) / t_fda}
        mfu = ""
        if args.peak_tflops:
            row["fda_mfu"] = 2 * params * row["fda_tokens_per_s"] / (args.peak_tflops * 1e12)
            mfu = f" MFU {100 * row['fda_mfu']:.1f}% |"
        rows.append(row)
        print(f"| {lp:.0f} | {ls:.1f} | {len(captions)} | {row['naive_cps']:.2f} | {row['fda_cps']:.2f} | "
              f"{row['speedup']:.2f}x | {bound:.2f}x | {row['fda_tokens_per_s']:.0f} |{mfu}", flush=True)

    if args.no_layer_cut:
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump({"args": vars(args), "speed": rows}, f, indent=2)
        return
    target = args.prefix_lengths[len(args.prefix_lengths) // 2]
    captions = [make_caption(rng, tokenizer, target) for _ in range(args.captions)]
    n = args.layers
    cuts = args.layer_cut or sorted({max(1, n // 4), max(1, n // 2), max(1, 3 * n // 4), n})
    full = time_encode(FacetEmbedder(model, tokenizer, template, layer=n, token_budget=args.token_budget),
                       captions, args.repeats)
    print(f"\nlayer cut at Lp ~ {target} (fda): time(L) / time(N={n}) vs L/N")
    print("| L | time (s) | relative | L/N |")
    print("|---:|---:|---:|---:|")
    cut_rows = []
    for layer in cuts:
        t = full if layer == n else time_encode(
            FacetEmbedder(model, tokenizer, template, layer=layer, token_budget=args.token_budget), captions,
            args.repeats)
        cut_rows.append({"layer": layer, "seconds": t, "relative": t / full, "fraction": layer / n})
        print(f"| {layer} | {t:.2f} | {t / full:.2f} | {layer / n:.2f} |", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"args": vars(args), "speed": rows, "layer_cut": cut_rows}, f, indent=2)


if __name__ == "__main__":
    main()
