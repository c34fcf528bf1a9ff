# Config validation (before any job starts) and the names every rule shares.
import json
import os
import shlex
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod
from snakemake.utils import validate

from pipeline.embed.prompts import text_layout
from pipeline.io import captions, embeddings, model_dir, results
from pipeline.io.shards import expand_shards, shard_name
from pipeline.train.launch import launch_command
from pipeline.settings import SCHEMA_PATH, as_json, clip_settings, stage_settings, validate_document

if not config:
    raise WorkflowError(
        "no config given: run the demo with `--configfile config/demo.yaml` (or `make demo`), "
        "a real run with `--configfile config/cc3m.yaml` or your own copy of it"
    )
validate(config, str(SCHEMA_PATH))

RESULTS = config["results"]
STATE = config["state"]
DEMO = config.get("demo")
# The trained models: FLAME, its ablations (FLAME variants trained from the same embeddings, config section
# ablations), and the open_clip CLIP baseline when the config has a clip_baseline section.
ABLATIONS = config.get("ablations", {})
MODELS = ["flame", *ABLATIONS] + (["clip"] if "clip_baseline" in config else [])
# Per model kind: the `flame` subcommand that trains it and the flag of its per-shard texts.
TRAIN_COMMANDS = {"flame": ("train", "--embeddings"), "clip": ("train-clip", "--captions")}
# The vocabulary-mapping figure, made when evaluate.vocabulary_images names images.
VOCABULARY_MAP = f"{RESULTS}/report/vocabulary.png"
# Each stage's output format version (its pipeline.io module's VERSION): a rule param, so a release that changes a
# format reruns the stage that writes it and what follows.
OUTPUT_FORMATS = {
    "caption": captions.VERSION,
    "embed": embeddings.VERSION,
    "train": model_dir.VERSION,
    "evaluate": results.VERSION,
}
# Jobs run the workflow's own `flame`, `python` and `accelerate` (the environment Snakemake runs in), whatever is
# (not) activated: its bin directory goes first on every job's PATH. With --software-deployment-method conda, each
# stage's env provides them instead.
if DeploymentMethod.CONDA not in workflow.deployment_settings.deployment_method:
    shell.prefix(f'export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"; ')


def _train_shards():
    """Shard name -> tar path: derived from demo: in the demo, else the data.train_shards pattern."""
    if DEMO:
        return {f"shard-{i:05d}": f"{DEMO['out']}/train/shard-{i:05d}.tar" for i in range(DEMO["train_shards"])}
    return {shard_name(p): str(p) for p in expand_shards(config["data"]["train_shards"])}


def _check_llm_path(path):
    """A path-like LLM location (absolute, ./, ../, ~) must exist; anything else is taken as a hub id."""
    local = Path(path).expanduser()
    if (local.is_absolute() or path.startswith((".", "~"))) and not local.exists():
        raise FileNotFoundError(f"config key embed.llm: LLM directory {path!r} does not exist")


def _check_text_side():
    """The facet names of embed.facets exist (a typo would become a literal prompt)."""
    try:
        text_layout(config["embed"]["layout"], config["embed"]["facets"])
    except ValueError as err:
        raise WorkflowError(f"config key embed.facets: {err}") from None


def _check_ablations():
    """Each ablation's training settings (`train:` with its overrides) are valid."""
    for name, overrides in ABLATIONS.items():
        try:
            validate_document("train_settings", {**stage_settings(config["train"]), **overrides}, "config")
        except ValueError as err:
            raise WorkflowError(f"config key ablations.{name}: {err}") from None


def _check_model_names():
    """Model names in evaluate.benchmarks.*.models and report.claims are models of the run."""
    named = [
        (f"evaluate.benchmarks.{name}.models", model)
        for name, spec in config["evaluate"]["benchmarks"].items()
        for model in spec.get("models", [])
    ]
    named += [
        (f"report.claims[{i}].{role}", claim[role])
        for i, claim in enumerate(config.get("report", {}).get("claims", []))
        for role in ("model", "baseline")
    ]
    for key, model in named:
        if model not in MODELS:
            raise WorkflowError(f"config key {key}: no model {model!r} in this run (models: {', '.join(MODELS)})")


def _check_layer():
    """embed.layer is within the depth of a local LLM (its config.json); hub ids are checked by the embed job."""
    path, layer = Path(config["embed"]["llm"]).expanduser(), config["embed"]["layer"]
    if layer < 1 or not (path / "config.json").is_file():
        return
    llm = json.loads((path / "config.json").read_text())
    depth = llm.get("num_hidden_layers") or llm.get("text_config", {}).get("num_hidden_layers")
    if depth and layer > depth:
        raise WorkflowError(
            f"config key embed.layer: {layer}, but the LLM at {path} has {depth} decoder layers "
            f"(hidden_states[1] .. hidden_states[{depth}]; -1: the final normed state)"
        )


def _check_vision_model():
    """train.vision.model is a timm model. Asking timm costs a torch import (seconds), so the names found are cached
    per timm version in the user's cache directory."""
    name, timm_version = config["train"]["vision"]["model"], version("timm")
    cache = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "flame-pipeline" / "timm-models.json"
    known = json.loads(cache.read_text()) if cache.is_file() else {}
    if name in known.get(timm_version, []):
        return
    proc = subprocess.run(
        [sys.executable, "-c", "import sys, timm; print(timm.is_model(sys.argv[1]))", name],
        capture_output=True,
        text=True,
    )
    if proc.stdout.strip() != "True":
        raise WorkflowError(
            f"config key train.vision.model: timm {timm_version} has no model {name!r} (see " "timm.list_models())"
        )
    known.setdefault(timm_version, []).append(name)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known))
    except OSError:  # no writable cache directory: check again next time
        pass


def _warn_missing_benchmarks():
    """Benchmarks whose path is missing now (not written by the demo): their jobs will fail alone (keep-going)."""
    made_here = Path(DEMO["out"]).resolve() if DEMO else None
    paths = {name: Path(spec["path"]).expanduser() for name, spec in config["evaluate"]["benchmarks"].items()}
    missing = [
        f"  evaluate.benchmarks.{name}.path: {config['evaluate']['benchmarks'][name]['path']}"
        for name, path in paths.items()
        if not path.exists() and (made_here is None or made_here not in path.resolve().parents)
    ]
    if missing:
        print(
            "warning: these benchmark paths do not exist; their evaluate jobs will fail, the others still run:\n"
            + "\n".join(missing),
            file=sys.stderr,
        )


SHARDS = _train_shards()
_check_text_side()
_check_ablations()
_check_model_names()
_check_layer()
_check_vision_model()
if not DEMO:
    _check_llm_path(config["embed"]["llm"])
_warn_missing_benchmarks()


def demo_llm():
    """The demo LLM as a DAG input in the demo (built by rule demo_llm); nothing for a real LLM."""
    return [config["embed"]["llm"]] if DEMO else []


def demo_manifest():
    """The demo data set as a DAG input of the evaluation (written by rule demo_data)."""
    return [f"{DEMO['out']}/MANIFEST.json"] if DEMO else []


def benchmark(name):
    """The config of evaluation benchmark ``name``."""
    return config["evaluate"]["benchmarks"][name]


def evaluation_results():
    """Every evaluation JSON of the run: per model, benchmark and language."""
    return [
        f"{RESULTS}/eval/{model}/{name}/{language}.json"
        for model in MODELS
        for name, spec in config["evaluate"]["benchmarks"].items()
        if model in spec.get("models", MODELS)
        for language in spec["languages"]
    ]


def stage_threads(stage):
    """CPU threads of a stage's jobs (torch's intra-op threads via OMP_NUM_THREADS), from config[stage]['threads']."""
    return config[stage]["threads"]


def stage_resources(stage):
    """Snakemake resources of a stage, from config[stage]['resources']."""
    return dict(config[stage]["resources"])


def caption_resources():
    """The caption stage's resources; the dataset backend loads no model, so its jobs ask for no GPU."""
    resources = stage_resources("caption")
    if config["caption"]["backend"] == "dataset":
        resources["gpu"] = 0
    return resources


def settings_json(stage):
    """The stage's results-changing settings as one canonical JSON document; as params they trigger reruns."""
    return as_json(stage_settings(config[stage]))


def train_command(model):
    """The `flame` subcommand that trains ``model`` and the flag of its per-shard texts."""
    return TRAIN_COMMANDS["clip" if model == "clip" else "flame"]


def train_texts(wildcards):
    """The per-shard texts a model trains on: FLAME the embeddings, CLIP the captions."""
    stage = "caption" if wildcards.model == "clip" else "embed"
    return expand(f"{RESULTS}/{stage}/{{shard}}.parquet", shard=SHARDS)


def model_settings_json(model):
    """The settings document of a trained model: FLAME's from `train:`, an ablation's from `train:` with its
    overrides, the baseline's from the keys `train:` shares with it plus `clip_baseline:`; as params they trigger
    reruns."""
    if model == "flame":
        return settings_json("train")
    if model in ABLATIONS:
        return as_json({**stage_settings(config["train"]), **ABLATIONS[model]})
    return as_json(clip_settings(config["train"], config["clip_baseline"]))


def execution_resources(stage):
    """The stage's speed-only settings (config[stage]['execution']) as resources: used, never rerun triggers."""
    return dict(config[stage]["execution"])


def train_launcher(resources):
    """`python -m pipeline.cli`, or `accelerate launch` with one process per GPU of the (single-node) train job."""
    return shlex.join(launch_command(resources["gpu"]))
