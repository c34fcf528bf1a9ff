"""The `flame` command: one subcommand per stage, so every stage runs with or without Snakemake.

    flame caption SHARD OUT    captions Parquet for an image shard
    flame embed CAPTIONS OUT   facet embeddings Parquet for a captions Parquet
    flame train ...            vision tower + projector against the facet embeddings
    flame train-clip ...       the open_clip CLIP baseline on the same shards' captions
    flame evaluate ...         one benchmark -> CLIP_benchmark-style JSON
    flame evaluate-batch ...   several evaluations of one model in one process, its LLM loaded once
    flame vocab-map ...        the LLM's next-token word of each pooled image region, drawn over the images
    flame report ...           Markdown + CSV table of evaluation JSONs
    flame import-official ...  the released checkpoint as a model directory
    flame launch-node ...      one node's `accelerate launch` in a multi-node SLURM training

  the demo and test models:
    flame demo-data OUT        synthetic images + captions in the training and benchmark formats
    flame demo-llm OUT         the demo's tiny LLM, pre-trained on the demo's language
    flame tiny-llm OUT         a tiny Mistral/Llama/Qwen2 LLM (random weights) with a locally trained tokenizer
    flame tiny-vlm OUT         a tiny MiniCPM-V captioner (transformers-native) with a locally trained tokenizer

This module only parses: each command calls its stage's ``run`` (``pipeline.<stage>.stage``); every list of
allowed values and every default comes from the schema (``pipeline/schema.yaml``). Each subcommand names its input
and output arguments (``inputs``, ``outputs``): an output that is the same file as an input (a symlink or a hard
link too) is refused before any work (``pipeline.io.paths``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from pipeline.io.paths import check_outputs
from pipeline.settings import allowed, check_layer, default, properties, read_document, schema_node, validate_document

SETTINGS_HELP = ("the {stage} settings: inline JSON/YAML or a .yaml/.json file, keys as in a config's `{section}:` "
                 "section (see pipeline/schema.yaml: $defs/{definition}); missing keys take the schema's defaults.")
CLIP_SETTINGS_HELP = ("the CLIP baseline settings: inline JSON/YAML or a .yaml/.json file, the keys a config's "
                      "`train:` section shares with it (vision, epochs, batch_size, lr ...) plus those of its "
                      "`clip_baseline:` section (see pipeline/schema.yaml: $defs/clip_settings); missing keys take the "
                      "schema's defaults.")


def _document(expected: type):
    """An argparse type: a settings document (inline or a file) that must be a mapping or a list."""
    def parse(text: str) -> dict | list:
        try:
            return read_document(text, expected)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from err
    return parse


def _execution(args, definition: str, flags: tuple[str, ...]) -> dict:
    """The speed-only flags that were given, validated against ``$defs/<definition>`` (defaults from the schema)."""
    given = {name: getattr(args, name) for name in flags if getattr(args, name) is not None}
    return validate_document(definition, given, "flags " + ", ".join("--" + n.replace("_", "-") for n in flags))


def _probe_settings(args) -> dict:
    """The linear probe's flags (``--probe-<key>``, defaults from the schema) validated against
    ``$defs/linear_probe``."""
    given = {key: getattr(args, "probe_" + key) for key in properties(schema_node("linear_probe"))}
    return validate_document("linear_probe", given, "flags --probe-*")


def _print(document) -> None:
    print(json.dumps(document, indent=2, default=str))


def _after_dashes(words: list[str]) -> list[str]:
    """An ``argparse.REMAINDER`` argument's words without the ``--`` that separates them from the flags."""
    return words[1:] if words[:1] == ["--"] else words


def cmd_demo_data(args) -> None:
    from pipeline.demo.writers import write_demo_data

    _print(write_demo_data(args.out, seed=args.seed, train_shards=args.train_shards,
                           samples_per_shard=args.samples_per_shard, eval_size=args.eval_size,
                           image_size=args.image_size, overwrite=args.overwrite))


def cmd_tiny_llm(args) -> None:
    from pipeline.demo.tiny_llm import save_tiny_llm

    out = save_tiny_llm(args.out, args.corpus, arch=args.arch, vocab_size=args.vocab_size, seed=args.seed,
                        hidden_size=args.hidden_size, num_layers=args.layers, num_heads=args.heads,
                        num_kv_heads=args.kv_heads)
    print(f"tiny {args.arch} LLM written to {out}")


def cmd_demo_llm(args) -> None:
    from pipeline.demo.llm import build_demo_llm
    from pipeline.demo.llm_settings import PretrainSettings

    report = build_demo_llm(args.out, PretrainSettings.from_document(args.settings, "--settings"))
    accuracy = {name: by_lang["all"] for name, by_lang in report["validation_accuracy"].items()}
    _print({"out": str(args.out), "validation_accuracy": accuracy, "chance": report["chance"],
            "seconds": report["seconds"]})


def cmd_tiny_vlm(args) -> None:
    from pipeline.demo.tiny_vlm import save_tiny_vlm

    out = save_tiny_vlm(args.out, args.corpus, arch=args.arch, seed=args.seed)
    print(f"tiny {args.arch} captioner written to {out}")


def cmd_caption(args) -> None:
    from pipeline.caption import stage

    settings = validate_document("caption_settings", args.settings, "--settings")
    execution = _execution(args, "caption_execution", ("batch_size",))
    counts = stage.run(args.shard, args.out, settings, execution["batch_size"], args.state_dir, args.device)
    print(f"{args.shard}: {dict(counts)}")


def cmd_embed(args) -> None:
    from pipeline.embed import stage

    check_layer(args.settings.get("layer"), "--settings: key layer")
    settings = validate_document("embed_settings", args.settings, "--settings")
    execution = _execution(args, "embed_execution", ("token_budget",))
    pairs = list(zip(args.captions, args.out))
    for (captions, _), counts in zip(pairs, stage.run(pairs, settings, execution["token_budget"], args.device)):
        print(f"{captions}: {dict(counts)}")


def cmd_train(args) -> None:
    from pipeline.train import stage

    kind = "clip" if args.command == "train-clip" else "flame"
    execution = _execution(args, "train_execution", ("num_workers", "checkpoint_every"))
    stage.run(kind, args.shards, args.captions if kind == "clip" else args.embeddings, args.out, args.state_dir,
              args.settings, execution, args.empty_shards)


def cmd_evaluate(args) -> None:
    from pipeline.evaluate import stage
    from pipeline.evaluate.benchmarks import Request
    from pipeline.evaluate.linear_probe import ProbeSettings
    from pipeline.evaluate.retrieval import Ranking

    execution = _execution(args, "evaluate_execution", ("token_budget", "num_workers"))
    probe = ProbeSettings(**_probe_settings(args))
    fewshot = validate_document("fewshot_settings", args.fewshot, "--fewshot")
    benchmark = stage.Benchmark(args.name, args.format,
                                Request(args.data, args.language, tuple(args.subsets), probe, fewshot),
                                args.prompt, args.long_mean)
    ranking = Ranking(args.rank_queries, args.rank_top) if args.rank_queries else None
    _print(stage.run(args.model_dir, benchmark, args.out, llm=args.llm, device=args.device, dtype=args.dtype,
                     token_budget=execution["token_budget"], num_workers=execution["num_workers"],
                     cache_dir=args.cache_dir, ranking=ranking))


def cmd_evaluate_batch(args) -> None:
    from pipeline.evaluate.models import reusing_llms

    shared = _after_dashes(args.shared)
    for i, job in enumerate(args.jobs):
        if not isinstance(job, list) or not all(isinstance(word, str) for word in job):
            raise ValueError(f"--jobs item {i}: expected a list of `flame evaluate` arguments (strings)")
    with reusing_llms():
        for i, job in enumerate(args.jobs):
            if main(["evaluate", *shared, *job]) != 0:
                raise ValueError(f"--jobs item {i} failed (its error is above): "
                                 f"flame evaluate {shlex.join(shared + job)}")


def cmd_vocab_map(args) -> None:
    from pipeline.evaluate import stage

    stage.vocabulary_map(args.model_dir, args.images, args.out, args.pool, llm=args.llm, device=args.device,
                         dtype=args.dtype)
    print(f"vocabulary map of {len(args.images)} images written to {args.out}")


def cmd_report(args) -> None:
    from pipeline.replicates import Replica
    from pipeline.report import stage
    from pipeline.report.claims import Claim

    claims = [Claim(**validate_document("claim", item, f"--claims item {i}")) for i, item in enumerate(args.claims)]
    replicas = [Replica(**validate_document("replica", item, f"--replicas item {i}"))
                for i, item in enumerate(args.replicas)]
    path = stage.run(args.results, args.out_dir, args.title, claims, args.retrieval_figure, args.figure_language,
                     replicas)
    print(path.read_text(encoding="utf-8"))
    print(f"report written to {path}")


def cmd_launch_node(args) -> None:
    import os

    from pipeline.train.launch import node_command

    command = _after_dashes(args.command_args)
    if not command:
        raise ValueError("no command after --: give the `flame` command to launch, e.g. -- train --shards ...")
    launcher = node_command(os.environ, args.nodes, args.processes_per_node, Path(sys.executable).parent, args.port)
    print(f"flame launch-node: {shlex.join(launcher + command)}", file=sys.stderr, flush=True)
    os.execv(launcher[0], launcher + command)


def cmd_import_official(args) -> None:
    from pipeline.train.official import import_official

    out = import_official(args.checkpoint, args.out, args.llm, heads=args.heads, layer=args.layer)
    print(f"{args.checkpoint} written as a FLAME model directory to {out}")


def _device_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1 ...")


def _llm_flags(p: argparse.ArgumentParser) -> None:
    """The flags of a stage that loads the LLM a FLAME model records."""
    p.add_argument("--llm", default=None, help="override the LLM path/id recorded in the model")
    p.add_argument("--dtype", default="auto", choices=allowed("dtype"), help="LLM dtype")
    _device_flag(p)


def _add_demo_parsers(sub, fmt) -> None:
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
    p.set_defaults(func=cmd_demo_data, inputs=(), outputs=("out",))

    p = sub.add_parser("demo-llm", formatter_class=fmt, help="pre-train the demo's tiny LLM on the demo language",
                       description="Train a byte-level BPE tokenizer and a tiny causal LM on captions of the demo's "
                                   "scene grammar (all demo languages, drawn on a stream no demo image or "
                                   "evaluation set uses) and their nine facet prompts with one-word answers, then "
                                   "save it as a Hugging Face directory with pretraining.json (validation accuracy "
                                   "of the facet answers per language, chance levels, losses).")
    p.add_argument("out", type=Path, help="output directory")
    p.add_argument("--settings", type=_document(dict), default={}, metavar="JSON|FILE",
                   help=SETTINGS_HELP.format(stage="demo LLM", section="demo: llm", definition="demo_llm")
                   + ' Example: \'{"steps": 100, "hidden_size": 64}\'. Default: {} (the demo\'s LLM).')
    p.set_defaults(func=cmd_demo_llm, inputs=(), outputs=("out",))

    p = sub.add_parser("tiny-llm", formatter_class=fmt, help="build a tiny LLM + tokenizer (random weights)",
                       description="Train a byte-level BPE tokenizer on CORPUS and save a randomly initialised "
                                   "causal LM as a Hugging Face directory loadable with from_pretrained.")
    p.add_argument("out", type=Path, help="output directory")
    p.add_argument("--corpus", type=Path, required=True, help="text file, one training text per line")
    for name, node in schema_node("llm_shape")["properties"].items():  # the shape flags, as the schema has them
        kind = {"choices": node["enum"]} if "enum" in node else {"type": int}
        p.add_argument("--" + name.replace("_", "-"), default=node["default"], help=node["description"], **kind)
    p.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    p.set_defaults(func=cmd_tiny_llm, inputs=("corpus",), outputs=("out",))

    p = sub.add_parser("tiny-vlm", formatter_class=fmt, help="build a tiny MiniCPM-V captioner (random weights)",
                       description="Write a Hugging Face directory (processor with a locally trained tokenizer, "
                                   "random-weight model) of transformers' native MiniCPM-V 4.x classes: the "
                                   "captioner of tests and smoke runs of the hf caption backend.")
    p.add_argument("out", type=Path, help="output directory")
    p.add_argument("--corpus", type=Path, required=True, help="text file, one line per text, for the tokenizer")
    p.add_argument("--arch", default=default("tiny_vlm", "arch"), choices=allowed("tiny_vlm", "arch"),
                   help="the model type")
    p.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    p.set_defaults(func=cmd_tiny_vlm, inputs=("corpus",), outputs=("out",))


def _add_stage_parsers(sub, fmt) -> None:
    p = sub.add_parser("caption", formatter_class=fmt, help="caption one image shard",
                       description="Write a Parquet file with key, raw alt-text, long and short captions for every "
                                   "readable image of SHARD (unreadable images are skipped and counted). Backends: "
                                   "dataset (the shard's own {key}.json captions), hf (any transformers "
                                   "image-text-to-text model, e.g. MiniCPM-V 4.x), minicpmv_legacy (remote code), "
                                   "vllm. A killed run resumes from the partial file in --state-dir.")
    p.add_argument("shard", type=Path, help="webdataset .tar shard (img2dataset layout)")
    p.add_argument("out", type=Path, help="output .parquet")
    p.add_argument("--settings", type=_document(dict), default={}, metavar="JSON|FILE",
                   help=SETTINGS_HELP.format(stage="caption", section="caption", definition="caption_settings")
                   + ' Example: \'{"backend": "hf", "model": "openbmb/MiniCPM-V-4_6", "long": {"prompt": "Describe '
                     'this image in detail.", "count": 1}}\'. Default: {} (backend dataset).')
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per generate call (speed only; default from the schema)")
    p.add_argument("--state-dir", type=Path, default=None,
                   help="where the partial file of a resumable run lives (default: beside OUT)")
    _device_flag(p)
    p.set_defaults(func=cmd_caption, inputs=("shard",), outputs=("out", "state_dir"))

    p = sub.add_parser("embed", formatter_class=fmt, help="facet embeddings of captions files",
                       description="Run the frozen LLM over every caption with K facet prompts "
                                   "(facet-decoupled attention) and write the embeddings as Parquet. Several "
                                   "CAPTIONS OUT pairs embed several shards, one after the other, with the LLM "
                                   "loaded once.")
    p.add_argument("pairs", nargs="+", type=Path, action=_Pairs, metavar="CAPTIONS OUT",
                   help="a captions .parquet from `flame caption` and its output .parquet; repeat for more shards")
    p.add_argument("--settings", type=_document(dict), required=True, metavar="JSON|FILE",
                   help=SETTINGS_HELP.format(stage="embed", section="embed", definition="embed_settings")
                   + ' Example: \'{"llm": "models/tiny-llm", "layer": -1}\'.')
    p.add_argument("--token-budget", type=int, default=None,
                   help="padded tokens per LLM batch (speed only; default from the schema)")
    _device_flag(p)
    p.set_defaults(func=cmd_embed, inputs=("captions",), outputs=("out",))

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
                       help=f"{texts} .parquet, one per shard, matched by the shard each was made from")
        p.add_argument("--out", type=Path, required=True, help="model directory to write")
        p.add_argument("--state-dir", type=Path, required=True, help="checkpoints and logs (resume state)")
        settings_help = (SETTINGS_HELP.format(stage="train", section="train", definition="train_settings")
                         if name == "train" else CLIP_SETTINGS_HELP)
        p.add_argument("--settings", type=_document(dict), required=True, metavar="JSON|FILE",
                       help=settings_help + ' Example: \'{"vision": {"model": '
                            '"vit_tiny_patch16_224", "image_size": 64, "patch_size": 8}, "epochs": 2}\'.')
        p.add_argument("--num-workers", type=int, default=None,
                       help="data loader workers per process (each draws its own sample stream; a checkpoint resumes "
                            "only with the same value; default from the schema)")
        p.add_argument("--checkpoint-every", type=int, default=None,
                       help="optimizer steps between checkpoints, plus one per epoch end (default from the schema)")
        p.add_argument("--empty-shards", choices=allowed("empty_shards"), default="skip",
                       help=schema_node("empty_shards")["description"].strip() + " (default: %(default)s)")
        p.set_defaults(func=cmd_train, inputs=("shards", texts), outputs=("out", "state_dir"))

    p = sub.add_parser("launch-node", formatter_class=fmt, help="start one node's training processes (multi-node)",
                       description="One task per node of a SLURM allocation (the train rule runs it through `srun` "
                                   "when train.resources.nodes > 1): execs `accelerate launch` with this node's "
                                   "--machine_rank (SLURM_NODEID), the rendezvous at the first host of "
                                   "SLURM_JOB_NODELIST on a port derived from SLURM_JOB_ID, and NODES x "
                                   "PROCESSES_PER_NODE processes in all, running the `flame` command after --.")
    p.add_argument("--nodes", type=int, required=True, help="nodes of the training (SLURM must have allocated them)")
    p.add_argument("--processes-per-node", type=int, required=True, help="processes (GPUs) per node")
    p.add_argument("--port", type=int, default=None, help="rendezvous port (default: derived from SLURM_JOB_ID)")
    p.add_argument("command_args", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                   help="the `flame` command every process runs, e.g. -- train --shards ...")
    p.set_defaults(func=cmd_launch_node, inputs=(), outputs=())

    p = sub.add_parser("import-official", formatter_class=fmt, help="the released checkpoint as a model directory",
                       description="Convert the released FLAME checkpoint (an open_clip-fork state dict: open_clip's "
                                   "ViT under visual.*, the per-token projector mm_projector.*) into a model "
                                   "directory that `flame evaluate` reads, its texts embedded as released (official "
                                   "layout and mode). Loaded with weights_only=True.")
    p.add_argument("checkpoint", type=Path, help="the released .pt file")
    p.add_argument("out", type=Path, help="model directory to write")
    p.add_argument("--llm", default="mistralai/Mistral-Nemo-Instruct-2407", help="the text side's LLM (path or id)")
    p.add_argument("--heads", type=int, default=12, help="attention heads of the ViT (not stored in the weights)")
    p.add_argument("--layer", type=int, default=39, help="the LLM hidden state read, as released")
    p.set_defaults(func=cmd_import_official, inputs=("checkpoint",), outputs=("out",))

    p = sub.add_parser("evaluate", formatter_class=fmt, help="score a model on one benchmark",
                       description="Zero-shot retrieval (long captions: urban1k, sharegpt4v, dci, docci; short: "
                                   "mscoco_captions, flickr30k, flickr8k, karpathy; multilingual: xm3600 formats), "
                                   "compositionality (sugar_crepe, winoground), a linear probe (wds_linear_probe), "
                                   "zero-shot classification (CLIP_benchmark webdataset format) or few-shot image "
                                   "comprehension by the frozen LLM (fewshot_miniimagenet, FLAME only); writes "
                                   "CLIP_benchmark-style JSON.")
    p.add_argument("--model-dir", type=Path, required=True,
                   help="model directory from `flame train` (FLAME) or `flame train-clip` (CLIP)")
    p.add_argument("--name", required=True, help="benchmark name written into the result")
    p.add_argument("--format", required=True, choices=allowed("benchmark", "format"), help="on-disk format of --data")
    p.add_argument("--data", type=Path, required=True, help="benchmark root directory")
    p.add_argument("--out", type=Path, required=True, help="result .json")
    p.add_argument("--subsets", type=lambda text: text.split(","), default=default("benchmark", "subsets"),
                   help="sugar_crepe: comma-separated subsets")
    p.add_argument("--fewshot", type=_document(dict), default={}, metavar="JSON|FILE",
                   help="fewshot_miniimagenet: its settings (inline JSON/YAML or a file; keys of "
                        "$defs/fewshot_settings in pipeline/schema.yaml: ways, settings, episodes, queries, seed, "
                        "words_per_image, pool; missing keys take the schema's defaults)")
    p.add_argument("--language", default="en",
                   help="the texts' language (multilingual formats: xm3600, wds_imagenet_multilingual; the others "
                        "are English only)")
    p.add_argument("--prompt", default=None, choices=allowed("benchmark", "prompt"),
                   help="FLAME: embed the texts as training captions of this source were (the model's layout), or "
                        "with the layout's description prompt alone; default by the format's texts: long captions "
                        "long, short texts description. CLIP: ignored")
    p.add_argument("--long-mean", default=default("benchmark", "long_mean"), choices=allowed("benchmark", "long_mean"),
                   help="FLAME: average the prompt's facets L2-normalised (normalized) or as they come (raw, the "
                        "released evaluation); CLIP: ignored")
    p.add_argument("--rank-queries", type=int, default=0, metavar="Q",
                   help="retrieval: record the top images of the first Q scored texts (the report's retrieval "
                        "figure); 0: none")
    p.add_argument("--rank-top", type=int, default=default("retrieval_figure", "top"), metavar="K",
                   help="with --rank-queries: images recorded per query")
    p.add_argument("--token-budget", type=int, default=None,
                   help="padded tokens per LLM batch (speed only; default from the schema)")
    p.add_argument("--num-workers", type=int, default=None,
                   help="DataLoader workers decoding the images (speed only; default from the schema)")
    for key, node in properties(schema_node("linear_probe")).items():
        p.add_argument("--probe-" + key.replace("_", "-"), type=float if node["type"] == "number" else int,
                       default=node["default"], help="wds_linear_probe: " + node["description"])
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="FLAME: cache of text embeddings (one file per LLM, revision, layer, template and text list); "
                        "none if not given")
    _llm_flags(p)
    p.set_defaults(func=cmd_evaluate, inputs=("model_dir", "data"), outputs=("out",))

    p = sub.add_parser("evaluate-batch", formatter_class=fmt, help="several `flame evaluate` runs in one process",
                       description="Run `flame evaluate` once per item of --jobs, in order, in this one process (the "
                                   "libraries are imported and a FLAME model's LLM is loaded once: many evaluations "
                                   "of one model, e.g. the claims' benchmarks of a model trained with another seed, "
                                   "or all of a model's with evaluate.jobs: per_model). The arguments after -- are "
                                   "given to every run; stops at the first run that fails.")
    p.add_argument("--jobs", type=_document(list), required=True, metavar="JSON|FILE",
                   help='a list of argument lists, e.g. \'[["--name", "urban1k", "--format", "urban1k", "--data", '
                        '"data/urban1k", "--out", "urban1k.json"]]\'')
    p.add_argument("shared", nargs=argparse.REMAINDER, metavar="-- ARGS",
                   help="`flame evaluate` arguments of every run, e.g. -- --model-dir results/demo/train/flame-seed1")
    p.set_defaults(func=cmd_evaluate_batch, inputs=(), outputs=())

    p = sub.add_parser("vocab-map", formatter_class=fmt, help="draw the LLM word of every pooled image region",
                       description="Project each patch token of a FLAME model into the LLM's hidden space, average-"
                                   "pool the patch grid, and write over the image the token of the LLM's highest "
                                   "next-token logit for each cell (final norm, then lm_head; the paper's Fig. C1); "
                                   "the images side by side in one PNG.")
    p.add_argument("--model-dir", type=Path, required=True, help="model directory from `flame train`")
    p.add_argument("--images", type=Path, nargs="+", required=True, help="image files")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--pool", type=int, default=default("vocabulary_pool"),
                   help="cells of POOL x POOL patches (the config's evaluate.vocabulary_pool)")
    _llm_flags(p)
    p.set_defaults(func=cmd_vocab_map, inputs=("model_dir", "images"), outputs=("out",))

    p = sub.add_parser("report", formatter_class=fmt, help="tabulate evaluation results",
                       description="Write report.md, results.csv and the figures from evaluation JSON files.")
    p.add_argument("results", type=Path, nargs="+", help="evaluation .json files")
    p.add_argument("--out-dir", type=Path, required=True, help="report directory")
    p.add_argument("--title", default="FLAME evaluation", help="report title")
    p.add_argument("--claims", type=_document(list), default=[], metavar="JSON|FILE",
                   help='claims to check (a JSON/YAML list, inline or a file), e.g. \'[{"claim": "FLAME beats CLIP '
                        'on long captions", "metric": "image_retrieval_recall@1", "benchmarks": ["urban1k"], '
                        '"model": "flame", "baseline": "clip"}]\'')
    p.add_argument("--replicas", type=_document(list), default=[], metavar="JSON|FILE",
                   help="the models trained with other seeds or on fractions of the images (a JSON/YAML list of "
                        "{name, base, seed, fraction}): the claims are checked over seeds and the data-efficiency "
                        'curves drawn from them, e.g. \'[{"name": "flame-seed1", "base": "flame", "seed": 1, '
                        '"fraction": 1.0}]\'; results of models not listed count as one seed each')
    p.add_argument("--retrieval-figure", metavar="BENCHMARK", default=None,
                   help="draw retrieval.png from the rankings this benchmark's results record (flame evaluate "
                        "--rank-queries); none if not given")
    p.add_argument("--figure-language", default=default("retrieval_figure", "language"),
                   help="with --retrieval-figure: the language of its texts")
    p.set_defaults(func=cmd_report, inputs=("results",), outputs=("out_dir",))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flame", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = argparse.ArgumentDefaultsHelpFormatter
    _add_stage_parsers(sub, fmt)
    _add_demo_parsers(sub, fmt)
    return parser


class _Pairs(argparse.Action):
    """CAPTIONS OUT [CAPTIONS OUT ...]: sets ``captions`` and ``out`` to the lists of the pairs' two sides."""

    def __call__(self, parser, namespace, values, option_string=None):
        if len(values) % 2:
            parser.error(f"{self.metavar}: {len(values)} paths given, not pairs (the last, {values[-1]}, has no OUT)")
        namespace.captions, namespace.out = values[0::2], values[1::2]


def _paths(args, names: tuple[str, ...]) -> list[Path]:
    """The paths given for the arguments ``names`` (a list of them for one taking several; one not given: none)."""
    values = [getattr(args, name) for name in names]
    return [path for value in values if value is not None for path in (value if isinstance(value, list) else [value])]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_outputs(_paths(args, args.outputs), _paths(args, args.inputs))  # each subparser names its paths
        args.func(args)
    except (FileNotFoundError, FileExistsError, ValueError, KeyError) as err:
        print(f"flame {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
