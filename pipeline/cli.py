"""The `flame` command: one subcommand per stage, so every stage runs with or without Snakemake.

    flame demo-data OUT        synthetic images + captions in the training and benchmark formats
    flame tiny-llm OUT         a tiny Mistral-style LLM with a locally trained tokenizer
    flame tiny-vlm OUT         a tiny MiniCPM-V captioner (transformers-native) with a locally trained tokenizer
    flame caption SHARD OUT    captions Parquet for an image shard
    flame embed CAPTIONS OUT   facet embeddings Parquet for a captions Parquet
    flame train ...            vision tower + projector against the facet embeddings
    flame train-clip ...       the open_clip CLIP baseline on the same shards' captions
    flame evaluate ...         one benchmark -> CLIP_benchmark-style JSON
    flame report ...           Markdown + CSV table of evaluation JSONs
    flame vocab-map ...        the LLM word nearest to each image patch, drawn over the images (PNG)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

# The readers' formats (pipeline.evaluate.readers), listed here so `flame --help` does not import torch.
EVAL_FORMATS = ("urban1k", "sharegpt4v", "dci", "docci", "mscoco_captions", "flickr30k", "flickr8k", "karpathy",
                "xm3600", "wds_classification", "sugar_crepe", "winoground", "wds_linear_probe",
                "wds_imagenet_multilingual")


def launch_command(processes: int, bin_dir: Path | None = None) -> list[str]:
    """The command prefix that runs ``pipeline.cli`` in ``processes`` processes on one node: plain ``python -m``
    for one, ``accelerate launch --multi_gpu`` for more (one process per GPU; gloo processes on a CPU host).
    ``bin_dir``: where ``python`` and ``accelerate`` are (default: found on PATH)."""
    python, accelerate = (str(bin_dir / name) if bin_dir else name for name in ("python", "accelerate"))
    if processes <= 1:
        return [python, "-m", "pipeline.cli"]
    return [accelerate, "launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
            "--dynamo_backend", "no", "-m", "pipeline.cli"]


SETTINGS_HELP = ("the {stage} settings: inline JSON/YAML or a .yaml/.json file, keys as in a config's `{stage}:` "
                 "section (see pipeline/schema.yaml: $defs/{stage}_settings); missing keys take the schema's defaults.")
CLIP_SETTINGS_HELP = ("the CLIP baseline settings: inline JSON/YAML or a .yaml/.json file, the keys a config's "
                      "`train:` section shares with it (vision, epochs, batch_size, lr ...) plus those of its "
                      "`clip_baseline:` section (see pipeline/schema.yaml: $defs/clip_settings); missing keys take the "
                      "schema's defaults.")


def read_document(text: str, expected: type = dict) -> dict | list:
    from pipeline.settings import read_document as read

    try:
        return read(text, expected)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def read_claims(text: str) -> list:
    return read_document(text, list)


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


def cmd_demo_llm(args) -> None:
    from pipeline.demo.llm import build_demo_llm
    from pipeline.demo.llm_settings import PretrainSettings

    settings = PretrainSettings(seed=args.seed, corpus_size=args.corpus_size, validation_size=args.validation_size,
                                steps=args.steps, batch_size=args.batch_size, lr=args.lr, arch=args.arch,
                                vocab_size=args.vocab_size, hidden_size=args.hidden_size, layers=args.layers,
                                heads=args.heads, kv_heads=args.kv_heads)
    report = build_demo_llm(args.out, settings)
    accuracy = {name: by_lang["all"] for name, by_lang in report["validation_accuracy"].items()}
    print(json.dumps({"out": str(args.out), "validation_accuracy": accuracy, "chance": report["chance"],
                      "seconds": report["seconds"]}, indent=2))


def cmd_tiny_vlm(args) -> None:
    from pipeline.tiny_vlm import save_tiny_vlm

    out = save_tiny_vlm(args.out, args.corpus, arch=args.arch, seed=args.seed)
    print(f"tiny {args.arch} captioner written to {out}")


def cmd_caption(args) -> None:
    from pipeline.caption import caption_shard
    from pipeline.locks import single_writer
    from pipeline.settings import validate_document

    settings = validate_document("caption_settings", args.settings, "--settings")
    execution = _execution(args, "caption_execution", ("batch_size",))
    if not args.shard.exists():
        raise FileNotFoundError(f"{args.shard}: shard not found")
    with single_writer(args.out):
        counts = caption_shard(args.shard, args.out, settings, state_dir=args.state_dir,
                               batch_size=execution["batch_size"], device=args.device)
    print(f"{args.shard}: {dict(counts)}")


def _execution(args, definition: str, flags: tuple[str, ...]) -> dict:
    """The speed-only flags that were given, validated against ``$defs/<definition>`` (defaults from the schema)."""
    from pipeline.settings import validate_document

    given = {name: getattr(args, name) for name in flags if getattr(args, name) is not None}
    return validate_document(definition, given, "flags " + ", ".join("--" + n.replace("_", "-") for n in flags))


def cmd_embed(args) -> None:
    from pipeline.embed import FacetEmbedder
    from pipeline.embed_shard import embed_captions_file
    from pipeline.llm import load_llm
    from pipeline.locks import single_writer
    from pipeline.prompts import text_layout
    from pipeline.provenance import provenance
    from pipeline.settings import as_json, validate_document

    settings = validate_document("embed_settings", args.settings, "--settings")
    execution = _execution(args, "embed_execution", ("token_budget",))
    templates = text_layout(settings["layout"], settings["facets"])
    if not args.captions.exists():
        raise FileNotFoundError(f"{args.captions}: captions file not found")
    model, tokenizer = load_llm(settings["llm"], revision=settings["revision"], dtype=settings["dtype"],
                                device=args.device, trust_remote_code=settings["trust_remote_code"])
    embedders = {source: FacetEmbedder(model, tokenizer, template, layer=settings["layer"], mode=settings["mode"],
                                       token_budget=execution["token_budget"],
                                       max_caption_tokens=settings["max_caption_tokens"])
                 for source, template in templates.items()}
    metadata = {"llm": settings["llm"], "revision": settings["revision"], "layout": settings["layout"],
                "llm_commit": getattr(model.config, "_commit_hash", None),
                "llm_dtype": str(next(model.parameters()).dtype), "provenance": provenance("embed", as_json(settings))}
    with single_writer(args.out):
        counts = embed_captions_file(args.captions, args.out, embedders, settings["sources"],
                                     normalize=settings["normalize"], metadata=metadata)
    print(f"{args.captions}: {dict(counts)}")


def cmd_train(args) -> None:
    from pipeline.locks import single_writer
    from pipeline.train import ClipSettings, FlameSettings, TrainExecution, pair_shards, train

    clip = args.command == "train-clip"
    settings = (ClipSettings if clip else FlameSettings).from_document(args.settings, "--settings")
    execution = TrainExecution(**_execution(args, "train_execution", ("num_workers", "checkpoint_every")))
    pairs = pair_shards(args.shards, args.captions if clip else args.embeddings, "captions" if clip else "embeddings")
    # one training per state directory: the first process of a launch holds the lock for all of them
    with single_writer(args.state_dir) if os.environ.get("RANK", "0") == "0" else contextlib.nullcontext():
        train(pairs, args.out, args.state_dir, settings, execution)


def cmd_evaluate(args) -> None:
    from pipeline.data import write_json
    from pipeline.provenance import provenance
    from pipeline.settings import as_json
    from pipeline.evaluate import readers
    from pipeline.evaluate.compositionality import evaluate_sugar_crepe, evaluate_winoground
    from pipeline.evaluate.linear_probe import evaluate_linear_probe
    from pipeline.evaluate.models import ClipModel, load_model
    from pipeline.evaluate.retrieval import evaluate_retrieval
    from pipeline.evaluate.zeroshot import evaluate_zeroshot

    execution = _execution(args, "evaluate_execution", ("token_budget", "num_workers"))
    model = load_model(args.model_dir, llm=args.llm, device=args.device, dtype=args.dtype,
                       token_budget=execution["token_budget"], cache_dir=args.cache_dir,
                       num_workers=execution["num_workers"])
    if args.format == "wds_linear_probe":
        probe = readers.read_wds_linear_probe(args.data)
        task, metrics = "linear_probe", evaluate_linear_probe(model, probe.train, probe.test, len(probe.classnames))
    elif args.format == "sugar_crepe":
        task, metrics = "image_caption_selection", evaluate_sugar_crepe(
            model, {name: readers.read_sugar_crepe(args.data, name) for name in args.subsets}, prompt=args.prompt)
    elif args.format == "winoground":
        task, metrics = "image_caption_selection", evaluate_winoground(
            model, readers.read_winoground(args.data), prompt=args.prompt)
    elif args.format in readers.MULTILINGUAL_CLASSIFICATION_READERS:
        task, metrics = "zeroshot_classification", evaluate_zeroshot(
            model, readers.MULTILINGUAL_CLASSIFICATION_READERS[args.format](args.data, args.language),
            prompt=args.prompt)
    elif args.format in readers.MULTILINGUAL_READERS:
        task, metrics = "zeroshot_retrieval", evaluate_retrieval(
            model, readers.MULTILINGUAL_READERS[args.format](args.data, args.language), prompt=args.prompt)
    elif args.language != "en":
        multilingual = [*readers.MULTILINGUAL_READERS, *readers.MULTILINGUAL_CLASSIFICATION_READERS]
        raise ValueError(f"--format {args.format}: English texts only (--language {args.language}); multilingual "
                         f"formats: {', '.join(multilingual)}")
    elif args.format in readers.CLASSIFICATION_READERS:
        task, metrics = "zeroshot_classification", evaluate_zeroshot(
            model, readers.CLASSIFICATION_READERS[args.format](args.data), prompt=args.prompt)
    else:
        task, metrics = "zeroshot_retrieval", evaluate_retrieval(
            model, readers.RETRIEVAL_READERS[args.format](args.data), prompt=args.prompt)
    kind = "clip" if isinstance(model, ClipModel) else "flame"
    inputs = {"format": args.format, "data": str(args.data), "language": args.language, "prompt": args.prompt,
              "subsets": args.subsets}
    result = {"dataset": args.name, "model": str(args.model_dir), "model_kind": kind, "pretrained": kind,
              "task": task, "metrics": metrics, "language": args.language,
              "prompt": None if kind == "clip" else args.prompt, "provenance": provenance("evaluate", as_json(inputs))}
    write_json(result, args.out)
    print(json.dumps(result, indent=2))


def cmd_vocab_map(args) -> None:
    from PIL import Image

    from pipeline.data import atomic_path
    from pipeline.evaluate.models import FlameModel, load_model
    from pipeline.evaluate.vocabulary import vocabulary_figure

    model = load_model(args.model_dir, llm=args.llm, device=args.device, dtype=args.dtype)
    if not isinstance(model, FlameModel):
        raise ValueError(f"{args.model_dir}: vocabulary mapping needs a FLAME model (this one has its own text tower)")
    images = []
    for path in args.images:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: image not found")
        with Image.open(path) as image:
            images.append(image.convert("RGB"))
    figure = vocabulary_figure(model.vision, model.llm, model.tokenizer, images)
    with atomic_path(args.out) as tmp:
        figure.save(tmp, format="PNG")
    print(f"vocabulary map of {len(images)} images written to {args.out}")


def cmd_report(args) -> None:
    from pipeline.claims import Claim
    from pipeline.report import write_report
    from pipeline.settings import validate_document

    claims = [Claim(**validate_document("claim", item, f"--claims item {i}")) for i, item in enumerate(args.claims)]
    path = write_report(args.results, args.out_dir, args.title, claims)
    print(path.read_text(encoding="utf-8"))
    print(f"report written to {path}")


def add_llm_shape_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of a tiny LLM's architecture and size (defaults: the demo LLM's)."""
    from pipeline.demo.llm_settings import PretrainSettings

    defaults = PretrainSettings()
    p.add_argument("--arch", default=defaults.arch, choices=["mistral", "llama", "qwen2"], help="architecture")
    p.add_argument("--vocab-size", type=int, default=defaults.vocab_size, help="tokenizer vocabulary size")
    p.add_argument("--hidden-size", type=int, default=defaults.hidden_size, help="hidden size D (the embedding width)")
    p.add_argument("--layers", type=int, default=defaults.layers, help="decoder layers")
    p.add_argument("--heads", type=int, default=defaults.heads, help="attention heads")
    p.add_argument("--kv-heads", type=int, default=defaults.kv_heads, help="key/value heads (GQA)")


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
    add_llm_shape_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    p.set_defaults(func=cmd_tiny_llm)

    from pipeline.demo.llm_settings import PretrainSettings

    p = sub.add_parser("demo-llm", formatter_class=fmt, help="pre-train the demo's tiny LLM on the demo language",
                       description="Train a byte-level BPE tokenizer and a tiny causal LM on captions of the demo's "
                                   "scene grammar (all demo languages, drawn on a stream no demo image or "
                                   "evaluation set uses) and their nine facet prompts with one-word answers, then "
                                   "save it as a Hugging Face directory with pretraining.json (validation accuracy "
                                   "of the facet answers per language, chance levels, losses).")
    p.add_argument("out", type=Path, help="output directory")
    defaults = PretrainSettings()
    p.add_argument("--seed", type=int, default=defaults.seed, help="seed of the corpus, initialisation and batches")
    p.add_argument("--corpus-size", type=int, default=defaults.corpus_size, help="pre-training captions")
    p.add_argument("--validation-size", type=int, default=defaults.validation_size,
                   help="held-out captions for the accuracy check")
    p.add_argument("--steps", type=int, default=defaults.steps, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size, help="captions per step (9 facets each)")
    p.add_argument("--lr", type=float, default=defaults.lr, help="peak AdamW learning rate")
    add_llm_shape_arguments(p)
    p.set_defaults(func=cmd_demo_llm)

    p = sub.add_parser("tiny-vlm", formatter_class=fmt, help="build a tiny MiniCPM-V captioner (random weights)",
                       description="Write a Hugging Face directory (processor with a locally trained tokenizer, "
                                   "random-weight model) of transformers' native MiniCPM-V 4.x classes: the "
                                   "captioner of tests and smoke runs of the hf caption backend.")
    p.add_argument("out", type=Path, help="output directory")
    p.add_argument("--corpus", type=Path, required=True, help="text file, one line per text, for the tokenizer")
    p.add_argument("--arch", default="minicpmv4_6", choices=["minicpmv4_6", "minicpmv4_7"])
    p.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    p.set_defaults(func=cmd_tiny_vlm)

    p = sub.add_parser("caption", formatter_class=fmt, help="caption one image shard",
                       description="Write a Parquet file with key, raw alt-text, long and short captions for every "
                                   "readable image of SHARD (unreadable images are skipped and counted). Backends: "
                                   "dataset (the shard's own {key}.json captions), hf (any transformers "
                                   "image-text-to-text model, e.g. MiniCPM-V 4.x), minicpmv_legacy (remote code), "
                                   "vllm. A killed run resumes from the partial file in --state-dir.")
    p.add_argument("shard", type=Path, help="webdataset .tar shard (img2dataset layout)")
    p.add_argument("out", type=Path, help="output .parquet")
    p.add_argument("--settings", type=read_document, default={}, metavar="JSON|FILE",
                   help=SETTINGS_HELP.format(stage="caption") + ' Example: \'{"backend": "hf", "model": '
                        '"openbmb/MiniCPM-V-4_6", "long": {"prompt": "Describe this image in detail.", "count": 1}}\'.'
                        " Default: {} (backend dataset).")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per generate call (speed only; default from the schema)")
    p.add_argument("--state-dir", type=Path, default=None,
                   help="where the partial file of a resumable run lives (default: beside OUT)")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1 ...")
    p.set_defaults(func=cmd_caption)

    p = sub.add_parser("embed", formatter_class=fmt, help="facet embeddings of one captions file",
                       description="Run the frozen LLM over every caption with K facet prompts "
                                   "(facet-decoupled attention) and write the embeddings as Parquet.")
    p.add_argument("captions", type=Path, help="captions .parquet from `flame caption`")
    p.add_argument("out", type=Path, help="output .parquet")
    p.add_argument("--settings", type=read_document, required=True, metavar="JSON|FILE",
                   help=SETTINGS_HELP.format(stage="embed") + ' Example: \'{"llm": "models/tiny-llm", "layer": -1}\'.')
    p.add_argument("--token-budget", type=int, default=None,
                   help="padded tokens per LLM batch (speed only; default from the schema)")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1 ...")
    p.set_defaults(func=cmd_embed)

    for name, texts, help_text, description in (
        ("train", "embeddings", "train the vision tower + projector (FLAME)",
         "Contrastive training of a timm ViT + MLP projector against precomputed facet embeddings "
         "(objective: settings key loss)."),
        ("train-clip", "captions", "train the open_clip CLIP baseline on the same shards",
         "open_clip's CLIP (its text transformer and tokenizer, 77-token context, ClipLoss) with FLAME's vision "
         "backbone, on the captions of the shards (settings key sources).")):
        p = sub.add_parser(name, formatter_class=fmt, help=help_text, description=description + (
            f" Use `accelerate launch --multi_gpu --num_processes N -m pipeline.cli {name} ...` for N GPUs (or N gloo "
            "processes on CPU). Rerunning with the same settings and inputs resumes from the newest checkpoint in "
            "--state-dir; other settings or changed inputs discard it."))
        p.add_argument("--shards", type=Path, nargs="+", required=True, help="image shards (.tar)")
        p.add_argument(f"--{texts}", type=Path, nargs="+", required=True,
                       help=f"{texts} .parquet, one per shard, matched by shard name")
        p.add_argument("--out", type=Path, required=True, help="model directory to write")
        p.add_argument("--state-dir", type=Path, required=True, help="checkpoints and logs (resume state)")
        settings_help = SETTINGS_HELP.format(stage="train") if name == "train" else CLIP_SETTINGS_HELP
        p.add_argument("--settings", type=read_document, required=True, metavar="JSON|FILE",
                       help=settings_help + ' Example: \'{"vision": {"model": '
                            '"vit_tiny_patch16_224", "image_size": 64, "patch_size": 8}, "epochs": 2}\'.')
        p.add_argument("--num-workers", type=int, default=None,
                       help="data loader workers per process (each draws its own sample stream; a checkpoint resumes "
                            "only with the same value; default from the schema)")
        p.add_argument("--checkpoint-every", type=int, default=None,
                       help="optimizer steps between checkpoints, plus one per epoch end (default from the schema)")
        p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", formatter_class=fmt, help="score a model on one benchmark",
                       description="Zero-shot retrieval (long captions: urban1k, sharegpt4v, dci, docci; short: "
                                   "mscoco_captions, flickr30k, flickr8k, karpathy; multilingual: xm3600 formats), "
                                   "compositionality (sugar_crepe, winoground), a linear probe (wds_linear_probe) or "
                                   "zero-shot classification (CLIP_benchmark webdataset format); writes "
                                   "CLIP_benchmark-style JSON.")
    p.add_argument("--model-dir", type=Path, required=True,
                   help="model directory from `flame train` (FLAME) or `flame train-clip` (CLIP)")
    p.add_argument("--name", required=True, help="benchmark name written into the result")
    p.add_argument("--format", required=True, choices=EVAL_FORMATS, help="on-disk format of --data")
    p.add_argument("--data", type=Path, required=True, help="benchmark root directory")
    p.add_argument("--out", type=Path, required=True, help="result .json")
    p.add_argument("--subsets", type=lambda text: text.split(","),
                   default="add_att,add_obj,replace_att,replace_obj,replace_rel,swap_att,swap_obj",
                   help="sugar_crepe: comma-separated subsets")
    p.add_argument("--language", default="en",
                   help="the texts' language (multilingual formats: xm3600, wds_imagenet_multilingual; the others "
                        "are English only)")
    p.add_argument("--prompt", default="long", choices=["raw", "short", "long"],
                   help="FLAME: embed the texts as training captions of this source were (the model's layout); "
                        "CLIP: ignored")
    p.add_argument("--llm", default=None, help="override the LLM path/id recorded in the model")
    p.add_argument("--token-budget", type=int, default=None,
                   help="padded tokens per LLM batch (speed only; default from the schema)")
    p.add_argument("--num-workers", type=int, default=None,
                   help="DataLoader workers decoding the images (speed only; default from the schema)")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="FLAME: cache of text embeddings (one file per LLM, revision, layer, template and text list); "
                        "none if not given")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"], help="LLM dtype")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda ...")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("vocab-map", formatter_class=fmt, help="draw the LLM word of every image patch",
                       description="Project each patch token of a FLAME model into the LLM's hidden space and write "
                                   "the vocabulary word whose output embedding is nearest (cosine) over the image, "
                                   "on the patch grid (the paper's Fig. C1); the images side by side in one PNG.")
    p.add_argument("--model-dir", type=Path, required=True, help="model directory from `flame train`")
    p.add_argument("--images", type=Path, nargs="+", required=True, help="image files")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--llm", default=None, help="override the LLM path/id recorded in the model")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"], help="LLM dtype")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda ...")
    p.set_defaults(func=cmd_vocab_map)

    p = sub.add_parser("report", formatter_class=fmt, help="tabulate evaluation results",
                       description="Write report.md and results.csv from evaluation JSON files.")
    p.add_argument("results", type=Path, nargs="+", help="evaluation .json files")
    p.add_argument("--out-dir", type=Path, required=True, help="report directory")
    p.add_argument("--title", default="FLAME evaluation", help="report title")
    p.add_argument("--claims", type=read_claims, default=[], metavar="JSON|FILE",
                   help='claims to check (a JSON/YAML list, inline or a file), e.g. \'[{"claim": "FLAME beats CLIP '
                        'on long captions", "metric": "image_retrieval_recall@1", "benchmarks": ["urban1k"], '
                        '"model": "flame", "baseline": "clip"}]\'')
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
