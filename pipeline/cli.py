"""The `flame` command: one subcommand per stage, so every stage runs with or without Snakemake.

    flame demo-data OUT        synthetic images + captions in the training and benchmark formats
    flame tiny-llm OUT         a tiny Mistral-style LLM with a locally trained tokenizer
    flame caption SHARD OUT    captions Parquet for an image shard
    flame embed CAPTIONS OUT   facet embeddings Parquet for a captions Parquet
    flame train ...            vision tower + projector against the facet embeddings
    flame evaluate ...         one benchmark -> CLIP_benchmark-style JSON
    flame report ...           Markdown + CSV table of evaluation JSONs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EVAL_READERS = ("urban1k", "coco", "wds_classification")


def _json_arg(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text!r}") from err


def _facets_arg(text: str):
    """A facet set name, or a comma-separated list of facet names / custom suffixes."""
    return text if "," not in text else [part.strip() for part in text.split(",") if part.strip()]


def cmd_demo_data(args) -> None:
    from pipeline.demo.writers import write_demo_data

    summary = write_demo_data(args.out, seed=args.seed, train_shards=args.train_shards,
                              samples_per_shard=args.samples_per_shard, eval_size=args.eval_size,
                              image_size=args.image_size, overwrite=args.overwrite)
    print(json.dumps(summary, indent=2, default=str))


def cmd_tiny_llm(args) -> None:
    from pipeline.tiny_llm import save_tiny_llm

    out = save_tiny_llm(args.out, args.corpus, arch=args.arch, vocab_size=args.vocab_size, seed=args.seed,
                        hidden_size=args.hidden_size, num_layers=args.layers, num_heads=args.heads,
                        num_kv_heads=args.kv_heads)
    print(f"tiny {args.arch} LLM written to {out}")


def cmd_caption(args) -> None:
    from pipeline.caption import caption_shard

    counts = caption_shard(args.shard, args.out, backend=args.backend)
    print(f"{args.shard}: {dict(counts)}")


def cmd_embed(args) -> None:
    from pipeline.embed import FacetEmbedder
    from pipeline.embed_shard import embed_captions_file
    from pipeline.llm import load_llm

    if not args.captions.exists():
        raise FileNotFoundError(f"{args.captions}: captions file not found")
    model, tokenizer = load_llm(args.llm, revision=args.revision, dtype=args.dtype, device=args.device,
                                trust_remote_code=args.trust_remote_code)
    embedder = FacetEmbedder(model, tokenizer, args.facets, layer=args.layer, mode=args.mode,
                             token_budget=args.token_budget, max_caption_tokens=args.max_caption_tokens)
    llm_meta = {"llm": args.llm, "revision": args.revision, "llm_dtype": str(next(model.parameters()).dtype)}
    counts = embed_captions_file(args.captions, args.out, embedder, args.sources, normalize=not args.no_normalize,
                                 llm_meta=llm_meta)
    print(f"{args.captions}: {dict(counts)}")


def cmd_train(args) -> None:
    from pipeline.data import shard_name
    from pipeline.train import TrainConfig, train

    embeddings = {shard_name(p): p for p in args.embeddings}
    pairs = []
    for shard in args.shards:
        if shard_name(shard) not in embeddings:
            raise FileNotFoundError(f"no embeddings file for shard {shard} among --embeddings")
        pairs.append((shard, embeddings[shard_name(shard)]))
    cfg = TrainConfig(vision=args.vision, sources=args.sources, epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, weight_decay=args.weight_decay, betas=tuple(args.betas),
                      warmup_steps=args.warmup_steps, precision=args.precision, grad_accum=args.grad_accum,
                      num_workers=args.num_workers, shuffle_buffer=args.shuffle_buffer, seed=args.seed)
    summary = train(pairs, args.out, args.state_dir, cfg)
    print(f"trained {summary['steps']} steps in {summary['seconds']} s, final loss {summary['final_loss']:.4f}")


def cmd_evaluate(args) -> None:
    from pipeline.data import write_json
    from pipeline.evaluate import readers
    from pipeline.evaluate.flame_model import FlameModel
    from pipeline.evaluate.retrieval import evaluate_retrieval
    from pipeline.evaluate.zeroshot import evaluate_zeroshot

    model = FlameModel.load(args.model_dir, llm=args.llm, device=args.device, dtype=args.dtype,
                            token_budget=args.token_budget)
    if args.format == "wds_classification":
        task, metrics = "zeroshot_classification", evaluate_zeroshot(
            model, readers.read_wds_classification(args.data), facets=args.facets)
    else:
        read = readers.read_urban1k if args.format == "urban1k" else readers.read_coco_karpathy
        task, metrics = "zeroshot_retrieval", evaluate_retrieval(model, read(args.data), facets=args.facets)
    result = {"dataset": args.name, "model": str(args.model_dir), "pretrained": None, "task": task,
              "metrics": metrics, "language": "en", "facets": args.facets}
    write_json(result, args.out)
    print(json.dumps(result, indent=2))


def cmd_report(args) -> None:
    from pipeline.report import write_report

    path = write_report(args.results, args.out_dir, args.title)
    print(path.read_text(encoding="utf-8"))
    print(f"report written to {path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flame", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = argparse.ArgumentDefaultsHelpFormatter

    p = sub.add_parser("demo-data", formatter_class=fmt, help="write the synthetic demo data set",
                       description="Procedurally drawn scenes with long/short/raw captions and translations, as "
                                   "img2dataset training shards and benchmark-format evaluation sets.")
    p.add_argument("out", type=Path, help="output directory (must be empty or absent unless --overwrite)")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed writes identical files")
    p.add_argument("--train-shards", type=int, default=4, help="number of training shards")
    p.add_argument("--samples-per-shard", type=int, default=64, help="images per training shard")
    p.add_argument("--eval-size", type=int, default=64, help="images per evaluation set")
    p.add_argument("--image-size", type=int, default=64, help="image side in pixels")
    p.add_argument("--overwrite", action="store_true", help="replace the contents of a non-empty OUT")
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("tiny-llm", formatter_class=fmt, help="build a tiny LLM + tokenizer (random weights)",
                       description="Train a byte-level BPE tokenizer on CORPUS and save a randomly initialised "
                                   "causal LM as a Hugging Face directory loadable with from_pretrained.")
    p.add_argument("out", type=Path, help="output directory")
    p.add_argument("--corpus", type=Path, required=True, help="text file, one training text per line")
    p.add_argument("--arch", default="mistral", choices=["mistral", "llama", "qwen2"], help="architecture")
    p.add_argument("--vocab-size", type=int, default=2048, help="tokenizer vocabulary size")
    p.add_argument("--hidden-size", type=int, default=128, help="hidden size D (the embedding width)")
    p.add_argument("--layers", type=int, default=4, help="decoder layers")
    p.add_argument("--heads", type=int, default=4, help="attention heads")
    p.add_argument("--kv-heads", type=int, default=2, help="key/value heads (GQA)")
    p.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    p.set_defaults(func=cmd_tiny_llm)

    p = sub.add_parser("caption", formatter_class=fmt, help="caption one image shard",
                       description="Write a Parquet file with key, raw alt-text, long and short captions for every "
                                   "readable image of SHARD (unreadable images are skipped and counted).")
    p.add_argument("shard", type=Path, help="webdataset .tar shard (img2dataset layout)")
    p.add_argument("out", type=Path, help="output .parquet")
    p.add_argument("--backend", default="dataset", choices=["dataset"],
                   help="dataset: keep the captions in the shard's {key}.json")
    p.set_defaults(func=cmd_caption)

    p = sub.add_parser("embed", formatter_class=fmt, help="facet embeddings of one captions file",
                       description="Run the frozen LLM over every caption with K facet prompts "
                                   "(facet-decoupled attention) and write the embeddings as Parquet.")
    p.add_argument("captions", type=Path, help="captions .parquet from `flame caption`")
    p.add_argument("out", type=Path, help="output .parquet")
    p.add_argument("--llm", required=True, help="LLM directory or hub id (from_pretrained)")
    p.add_argument("--revision", default=None, help="hub revision of the LLM")
    p.add_argument("--trust-remote-code", action="store_true", help="allow the LLM's own code from the hub")
    p.add_argument("--facets", type=_facets_arg, default="long",
                   help="facet set (long, short, all) or comma-separated facet names / custom suffixes")
    p.add_argument("--layer", type=int, default=-1, help="-1: final hidden state; L>=1: hidden_states[L]")
    p.add_argument("--mode", default="fda", choices=["fda", "naive"],
                   help="fda: shared prefix, decoupled suffixes; naive: K separate sequences")
    p.add_argument("--sources", nargs="+", default=["raw", "short", "long"], help="which captions to embed")
    p.add_argument("--token-budget", type=int, default=8192, help="padded tokens per forward batch")
    p.add_argument("--max-caption-tokens", type=int, default=512, help="longer captions are truncated (counted)")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--no-normalize", action="store_true", help="store embeddings without L2 normalisation")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("train", formatter_class=fmt, help="train the vision tower + projector",
                       description="Contrastive training of a timm ViT + MLP projector against precomputed facet "
                                   "embeddings. Use `accelerate launch -m pipeline.cli train ...` for several GPUs.")
    p.add_argument("--shards", type=Path, nargs="+", required=True, help="image shards (.tar)")
    p.add_argument("--embeddings", type=Path, nargs="+", required=True,
                   help="embeddings .parquet, one per shard, matched by shard name")
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    p.add_argument("--state-dir", type=Path, required=True, help="checkpoints and logs (resume state)")
    p.add_argument("--vision", type=_json_arg, required=True,
                   help='JSON: {"model": timm name, "image_size": N, "patch_size": N, "kwargs": {...}}')
    p.add_argument("--sources", nargs="+", default=["raw", "short", "long"], help="caption sources to train on")
    p.add_argument("--epochs", type=int, default=1, help="passes over the data")
    p.add_argument("--batch-size", type=int, default=32, help="images per process and step")
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (AdamW)")
    p.add_argument("--weight-decay", type=float, default=0.5, help="AdamW weight decay (matrices only)")
    p.add_argument("--betas", type=float, nargs=2, default=[0.9, 0.95], help="AdamW betas")
    p.add_argument("--warmup-steps", type=int, default=0, help="linear warm-up steps, then cosine decay")
    p.add_argument("--precision", default="no", choices=["no", "bf16", "fp16"], help="mixed precision")
    p.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps")
    p.add_argument("--num-workers", type=int, default=0, help="data loader worker processes")
    p.add_argument("--shuffle-buffer", type=int, default=1000, help="samples in the shuffle buffer")
    p.add_argument("--seed", type=int, default=0, help="initialisation and data-order seed")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", formatter_class=fmt, help="score a model on one benchmark",
                       description="Zero-shot retrieval (urban1k, coco formats) or zero-shot classification "
                                   "(CLIP_benchmark webdataset format); writes CLIP_benchmark-style JSON.")
    p.add_argument("--model-dir", type=Path, required=True, help="model directory from `flame train`")
    p.add_argument("--name", required=True, help="benchmark name written into the result")
    p.add_argument("--format", required=True, choices=EVAL_READERS, help="on-disk format of --data")
    p.add_argument("--data", type=Path, required=True, help="benchmark root directory")
    p.add_argument("--out", type=Path, required=True, help="result .json")
    p.add_argument("--facets", type=_facets_arg, default="long", help="facet prompts for the text side")
    p.add_argument("--llm", default=None, help="override the LLM path/id recorded in the model")
    p.add_argument("--token-budget", type=int, default=8192, help="padded tokens per LLM batch")
    p.add_argument("--dtype", default="auto", help="LLM dtype")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda ...")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("report", formatter_class=fmt, help="tabulate evaluation results",
                       description="Write report.md and results.csv from evaluation JSON files.")
    p.add_argument("results", type=Path, nargs="+", help="evaluation .json files")
    p.add_argument("--out-dir", type=Path, required=True, help="report directory")
    p.add_argument("--title", default="FLAME evaluation", help="report title")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (FileNotFoundError, FileExistsError, ValueError, KeyError) as err:
        print(f"flame {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
