# Config validation (before any job starts) and the names every rule shares.
import json
import os
import re
import shlex
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod
from snakemake.utils import validate

from pipeline.embed.prompts import facet_slots, prompt_words, text_layout
from pipeline.evaluate.benchmarks import FORMATS, RETRIEVAL, default_prompt
from pipeline.gguf import gguf_config, gguf_file
from pipeline.io import captions, embeddings, model_dir, results
from pipeline.io.content import user_cache
from pipeline.io.shards import expand_shards, shard_names
from pipeline.train.facets import choose_facets
from pipeline.train.launch import launch_command
from pipeline.settings import (
    SCHEMA_PATH,
    as_json,
    check_layer,
    clip_settings,
    default,
    load_yaml,
    stage_settings,
    validate_config,
    validate_document,
)
from pipeline.replicates import build_replicas, measured_benchmarks
from pipeline.variants import flame_variants, merge

if not config:
    raise WorkflowError(
        "no config given: run the demo with `--configfile config/demo.yaml` (or `make demo`), "
        "a real run with `--configfile config/cc3m.yaml` or your own copy of it"
    )
try:  # YAML takes the last of two equal keys silently: each config file Snakemake loaded is read again, checking
    for _configfile in workflow.configfiles:
        load_yaml(Path(_configfile).read_text(encoding="utf-8"), str(_configfile))
except ValueError as err:
    raise WorkflowError(str(err)) from None


def _check_layer_zero():
    """`layer: 0` in embed: or an ablation's embed: is refused naming the key, with what 0 would be and what to use
    (before the schema, whose message would only quote it)."""
    sections = {"embed": config.get("embed")}
    ablations = config.get("ablations")
    if isinstance(ablations, dict):
        sections.update({f"ablations.{name}.embed": (a or {}).get("embed") for name, a in ablations.items()})
    for key, section in sections.items():
        if isinstance(section, dict):
            try:
                check_layer(section.get("layer"), f"config key {key}.layer")
            except ValueError as err:
                raise WorkflowError(str(err)) from None


_check_layer_zero()
validate(config, str(SCHEMA_PATH))
try:  # JSON Schema's integer admits 8.0: the whole config checked again with the pipeline's types
    validate_config(config)
except ValueError as err:
    raise WorkflowError(str(err)) from None

RESULTS = config["results"]
STATE = config["state"]
DEMO = config.get("demo")
# The trained models: FLAME and its variants (config section ablations), each with its embedding and training
# settings (pipeline/variants.py), and the open_clip CLIP baseline when the config has a clip_baseline section.
try:
    VARIANTS = flame_variants(config)
except ValueError as err:
    raise WorkflowError(str(err)) from None
# Every trained model by name: FLAME, its variants and CLIP as configured, then their replicas (other seeds for the
# claims, fractions of the images for data_efficiency: pipeline/replicates.py), each a base model's training settings
# with seed and data_fraction changed.
try:
    REPLICAS = build_replicas(
        config,
        {name: variant.train["seed"] for name, variant in VARIANTS.items()}
        | ({"clip": config["train"].get("seed", default("train_common", "seed"))} if "clip_baseline" in config else {}),
    )
except ValueError as err:
    raise WorkflowError(str(err)) from None
MODELS = list(REPLICAS)
# The `model` wildcard of the rules: exactly one of the models (names may hold dots: flame-data12.5). A base model
# (FLAME, a variant, CLIP) has one evaluate job per benchmark and language (evaluate.jobs: per_benchmark) or one job
# of all its evaluations (per_model); a replica one job of all its evaluations.
MODEL_PATTERN = "|".join(map(re.escape, MODELS))
BASE_MODELS = [name for name, replica in REPLICAS.items() if replica.base == name]
BASE_MODEL_PATTERN = "|".join(map(re.escape, BASE_MODELS))
EVALUATE_PER_BENCHMARK = config["evaluate"]["jobs"] == "per_benchmark"
REPLICAS_OF = {}
for _name, _replica in REPLICAS.items():
    if _replica.base != _name:
        REPLICAS_OF.setdefault(_replica.base, []).append(_name)
# The rules that evaluate a model in one job (`flame evaluate-batch`), each with the models it serves, which share
# their benchmarks: per base model one for its replicas, and with per_model one for the base model itself.
BATCH_RULES = {"evaluate_replicas_of_{}".format(re.sub(r"\W", "_", base)): names for base, names in REPLICAS_OF.items()}
if not EVALUATE_PER_BENCHMARK:
    BATCH_RULES |= {"evaluate_{}".format(re.sub(r"\W", "_", name)): [name] for name in BASE_MODELS}
# The distinct embedding settings by id: one embedding of every shard each, at embed/<id>/<shard>.parquet.
EMBEDDINGS = {variant.embedding_id: variant.embed for variant in VARIANTS.values()}
# Per model kind: the `flame` subcommand that trains it and the flag of its per-shard texts.
TRAIN_COMMANDS = {"flame": ("train", "--embeddings"), "clip": ("train-clip", "--captions")}
# The vocabulary-mapping figure, made when evaluate.vocabulary_images names images, and its cells' size in patches.
VOCABULARY_MAP = f"{RESULTS}/report/vocabulary.png"
# The retrieval figure (report.retrieval_figure, or None): drawn by the report from the rankings its benchmark's
# evaluate jobs record.
RETRIEVAL_FIGURE = config.get("report", {}).get("retrieval_figure")
VOCABULARY_POOL = config["evaluate"].get("vocabulary_pool", default("vocabulary_pool"))
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
    try:
        named = shard_names(expand_shards(config["data"]["train_shards"]))
    except ValueError as err:
        raise WorkflowError(f"config key data.train_shards: {err}") from None
    return {name: str(path) for name, path in named.items()}


def _variant_key(variant, stage, key):
    """The config key a variant's setting comes from: FLAME's section, or its ablation's change when it has one."""
    changed = variant.name != "flame" and key in config["ablations"][variant.name].get(stage, {})
    return f"ablations.{variant.name}.{stage}.{key}" if changed else f"{stage}.{key}"


def is_demo_llm(llm):
    """Whether ``llm`` (an embed.llm) names the demo LLM: exactly the path demo.llm_out that rule demo_llm builds.
    Any other LLM is a user's model, never an output of the DAG."""
    return bool(DEMO) and os.path.normpath(llm) == os.path.normpath(DEMO["llm_out"])


def _check_llm_path(variant):
    """A GGUF file (a name ending in .gguf) or a path-like LLM location (absolute, ./, ../, ~) must exist; anything
    else is taken as a hub id."""
    path = variant.embed["llm"]
    local = Path(path).expanduser()
    what = "GGUF file" if gguf_file(path) else "LLM directory"
    if (gguf_file(path) or local.is_absolute() or path.startswith((".", "~"))) and not local.exists():
        raise WorkflowError(f"config key {_variant_key(variant, 'embed', 'llm')}: {what} {path!r} does not exist")


def _check_text_side(variant):
    """The facet names of the variant's embed facets exist (a typo would become a literal prompt), and its training
    facets are among them."""
    try:
        templates = text_layout(variant.embed["layout"], variant.embed["facets"])
    except ValueError as err:
        raise WorkflowError(f"config key {_variant_key(variant, 'embed', 'facets')}: {err}") from None
    try:
        choose_facets(variant.train["facets"], facet_slots(templates, variant.train["sources"]))
    except ValueError as err:
        raise WorkflowError(f"config key {_variant_key(variant, 'train', 'facets')}: {err}") from None


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


# The benchmark format whose scorer is the frozen LLM of a FLAME model.
FEWSHOT_FORMAT = "fewshot_miniimagenet"


def _check_fewshot_models():
    """A few-shot benchmark names its models, FLAME ones only: the CLIP baseline has no LLM to read and answer."""
    for name, spec in config["evaluate"]["benchmarks"].items():
        if spec["format"] == FEWSHOT_FORMAT and "clip" in spec.get("models", [*VARIANTS, "clip"]):
            raise WorkflowError(
                f"config key evaluate.benchmarks.{name}.models: {FEWSHOT_FORMAT} is answered by the frozen LLM of a "
                f"FLAME model and the CLIP baseline has none; list the FLAME models only (of {', '.join(VARIANTS)})"
            )


def _local_llm_setting(variant, key):
    """``key`` of the config of the variant's LLM (or of its ``text_config``), when the LLM is a local directory with
    a config.json or a GGUF file (the config transformers derives from it: pipeline.gguf.gguf_config, cached); None
    otherwise (hub ids are checked by the embed job, a missing path by _check_llm_path)."""
    gguf = gguf_file(variant.embed["llm"])
    file = gguf or Path(variant.embed["llm"]).expanduser() / "config.json"
    if not file.is_file():
        return None
    llm = gguf_config(gguf) if gguf else json.loads(file.read_text())
    return llm.get(key) or llm.get("text_config", {}).get(key)


def _check_data_efficiency():
    """data_efficiency's models include the model and the baseline of some claim: else no curve would be drawn."""
    efficiency = config.get("data_efficiency")
    if not efficiency:
        return
    claims = config.get("report", {}).get("claims", [])
    if not any(c["model"] in efficiency["models"] and c["baseline"] in efficiency["models"] for c in claims):
        raise WorkflowError(
            f"config key data_efficiency.models: no claim of report.claims compares two of {efficiency['models']}: "
            "the curves are drawn for claims whose model and baseline are both listed"
        )


def _check_retrieval_figure():
    """report.retrieval_figure names a retrieval benchmark of evaluate.benchmarks and one of its languages."""
    if RETRIEVAL_FIGURE is None:
        return
    key, name = "config key report.retrieval_figure", RETRIEVAL_FIGURE["benchmark"]
    benchmarks = config["evaluate"]["benchmarks"]
    if name not in benchmarks:
        raise WorkflowError(f"{key}.benchmark: no benchmark {name!r} in evaluate.benchmarks ({', '.join(benchmarks)})")
    if FORMATS[benchmarks[name]["format"]].task != RETRIEVAL:
        retrieval = ", ".join(n for n, spec in benchmarks.items() if FORMATS[spec["format"]].task == RETRIEVAL)
        raise WorkflowError(
            f"{key}.benchmark: {name!r} (format {benchmarks[name]['format']}) is no retrieval benchmark; "
            f"those of this run: {retrieval or 'none'}"
        )
    if RETRIEVAL_FIGURE["language"] not in benchmarks[name]["languages"]:
        raise WorkflowError(
            f"{key}.language: {RETRIEVAL_FIGURE['language']!r} is not one of {name}'s languages "
            f"({', '.join(benchmarks[name]['languages'])})"
        )


def _check_layer(variant):
    """The variant's embed layer is within the depth of a local LLM (its config.json)."""
    path, layer = Path(variant.embed["llm"]).expanduser(), variant.embed["layer"]
    depth = _local_llm_setting(variant, "num_hidden_layers") if layer >= 1 else None
    if depth and layer > depth:
        raise WorkflowError(
            f"config key {_variant_key(variant, 'embed', 'layer')}: {layer}, but the LLM at {path} has {depth} "
            f"decoder layers (hidden_states[1] .. hidden_states[{depth}]; -1: the final normed state)"
        )


def _check_context(variant):
    """A local LLM's positions (config.json's max_position_embeddings) hold embed.max_caption_tokens plus the
    longest prompt. The allowance for the prompt is a lower bound of its tokens (pipeline.embed.prompts.prompt_words:
    its words less 3), so this refuses only what the embed job, which counts the tokens, refuses too."""
    path = Path(variant.embed["llm"]).expanduser()
    limit = _local_llm_setting(variant, "max_position_embeddings")
    if not limit:
        return
    templates = text_layout(variant.embed["layout"], variant.embed["facets"]).values()
    allowance = max(prompt_words(t, packed=variant.embed["mode"] == "official") for t in templates)
    cut = variant.embed["max_caption_tokens"]
    if cut + allowance > limit:
        raise WorkflowError(
            f"config key {_variant_key(variant, 'embed', 'max_caption_tokens')}: {cut} caption tokens + at least "
            f"{allowance} tokens of the longest prompt = {cut + allowance}, more than max_position_embeddings "
            f"{limit} of the LLM at {path}; lower it to at most {limit - allowance}"
        )


def _check_vision_model(variant):
    """The variant's vision model is a timm model. Asking timm costs a torch import (seconds), so the names found
    are cached per timm version in the user's cache directory."""
    name, timm_version = variant.train["vision"]["model"], version("timm")
    cache = user_cache("timm-models.json")
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
            f"config key {_variant_key(variant, 'train', 'vision')}.model: timm {timm_version} has no model "
            f"{name!r} (see timm.list_models())"
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
_check_model_names()
_check_retrieval_figure()
_check_data_efficiency()
_check_fewshot_models()
for _variant in VARIANTS.values():
    _check_text_side(_variant)
    _check_layer(_variant)
    _check_context(_variant)
    _check_vision_model(_variant)
    if not is_demo_llm(_variant.embed["llm"]):
        _check_llm_path(_variant)
_warn_missing_benchmarks()


def demo_llm(embedding):
    """The demo LLM as a DAG input of an embedding made with it (built by rule demo_llm at demo.llm_out); nothing
    for another LLM."""
    llm = EMBEDDINGS[embedding]["llm"]
    return [DEMO["llm_out"]] if is_demo_llm(llm) else []


def demo_manifest():
    """The demo data set as a DAG input of the evaluation (written by rule demo_data)."""
    return [f"{DEMO['out']}/MANIFEST.json"] if DEMO else []


def benchmark(name):
    """The config of evaluation benchmark ``name``."""
    return config["evaluate"]["benchmarks"][name]


def prompt_flag(name):
    """`flame evaluate`'s --prompt for benchmark ``name``: its prompt, or its format's default when it names none;
    no flag for a format without texts (the linear probe, few-shot), which has no prompt."""
    spec = benchmark(name)
    prompt = spec.get("prompt") or default_prompt(spec["format"])
    return ["--prompt", prompt] if prompt else []


def linear_probe_flags(name):
    """`flame evaluate`'s --probe-* flags for benchmark ``name``: its `linear_probe` settings for the format
    wds_linear_probe, none for the others (so a probe setting reruns the probes only)."""
    spec = benchmark(name)
    if spec["format"] != "wds_linear_probe":
        return []
    return [
        word for key, value in spec["linear_probe"].items() for word in (f"--probe-{key.replace('_', '-')}", str(value))
    ]


def fewshot_settings(name):
    """The few-shot settings of benchmark ``name`` as canonical JSON, completed with the schema's defaults; ``{}``
    for the other formats, which ignore them."""
    spec = benchmark(name)
    if spec["format"] != FEWSHOT_FORMAT:
        return "{}"
    return as_json(
        validate_document("fewshot_settings", spec.get("fewshot", {}), f"config key evaluate.benchmarks.{name}.fewshot")
    )


def evaluated(model):
    """What ``model`` is evaluated on, benchmark -> its languages: a base model (FLAME, a variant, CLIP) every
    benchmark that lists it (or lists no models) in all its languages, a replica only what the claims comparing its
    base model measure."""
    base = REPLICAS[model].base
    benchmarks = config["evaluate"]["benchmarks"]
    listing = {name: spec["languages"] for name, spec in benchmarks.items() if base in spec.get("models", [base])}
    if model == base:
        return listing
    measured = measured_benchmarks(config.get("report", {}).get("claims", []), base)
    return {
        name: [language for language in languages if measured[name] is None or language in measured[name]]
        for name, languages in listing.items()
        if name in measured
    }


def evaluation_results():
    """Every evaluation JSON of the run: per model, benchmark and language (:func:`evaluated`)."""
    return [
        f"{RESULTS}/eval/{model}/{name}/{language}.json"
        for model in MODELS
        for name, languages in evaluated(model).items()
        for language in languages
    ]


def replicas_json():
    """The run's replicas (pipeline/replicates.py) as the JSON list `flame report --replicas` reads."""
    return json.dumps([vars(replica) for replica in REPLICAS.values()])


def ranking_flags(name, language):
    """The `flame evaluate` flags that record the rankings of the retrieval figure, for its benchmark and language
    only (none for every other job)."""
    figure = RETRIEVAL_FIGURE
    if figure is None or (figure["benchmark"], figure["language"]) != (name, language):
        return []
    return ["--rank-queries", str(figure["queries"]), "--rank-top", str(figure["top"])]


def evaluate_arguments(model, name, language):
    """The results-changing `flame evaluate` arguments of ``model`` on benchmark ``name`` in ``language`` (all but
    --model-dir, --out and the execution settings); as params they trigger reruns. Only a base model's results
    record the retrieval figure's rankings (the figure shows each model once)."""
    spec = benchmark(name)
    return [
        *("--name", name, "--format", spec["format"], "--data", spec["path"], "--language", language),
        *prompt_flag(name),
        *("--long-mean", spec["long_mean"], "--subsets", ",".join(spec["subsets"])),
        *linear_probe_flags(name),
        *(ranking_flags(name, language) if REPLICAS[model].base == model else []),
        *("--fewshot", fewshot_settings(name), "--dtype", config["evaluate"]["dtype"]),
    ]


def batch_evaluations(model, out_pattern):
    """A model's evaluations as `flame evaluate-batch --jobs`: per (benchmark, language) of :func:`evaluated`,
    its :func:`evaluate_arguments` and --out (``out_pattern`` with {benchmark} and {language} filled in)."""
    return json.dumps(
        [
            [*evaluate_arguments(model, name, language), "--out", out_pattern.format(benchmark=name, language=language)]
            for name, languages in evaluated(model).items()
            for language in languages
        ]
    )


def report_figure_flags():
    """The `flame report` flags of the retrieval figure ("" without one)."""
    if RETRIEVAL_FIGURE is None:
        return ""
    name, language = (shlex.quote(RETRIEVAL_FIGURE[key]) for key in ("benchmark", "language"))
    return f"--retrieval-figure {name} --figure-language {language}"


def report_figures():
    """The report's optional figures, as named outputs of the report rule."""
    figures = {}
    if RETRIEVAL_FIGURE is not None:
        caption = f"top images of {RETRIEVAL_FIGURE['benchmark']} queries"
        figures["retrieval"] = report(f"{RESULTS}/report/retrieval.png", category="Results", labels={"what": caption})
    if "data_efficiency" in config:
        caption = "claims' metrics against training images"
        figures["efficiency"] = report(
            f"{RESULTS}/report/data_efficiency.png", category="Results", labels={"what": caption}
        )
    return figures


def stage_threads(stage):
    """CPU threads of a stage's jobs (torch's intra-op threads via OMP_NUM_THREADS), from config[stage]['threads']."""
    return config[stage]["threads"]


def stage_resources(stage):
    """Snakemake resources of a stage, from config[stage]['resources']; several nodes only for training."""
    resources = dict(config[stage]["resources"])
    if stage != "train" and resources.get("nodes", 1) > 1:
        raise WorkflowError(
            f"config key {stage}.resources.nodes: {resources['nodes']}, but {stage} jobs run on one node each "
            "(several nodes: train only; more jobs at once spread a stage over the cluster)"
        )
    return resources


def train_resources():
    """The train jobs' resources. On several nodes (SLURM) the job's own `srun` starts one launcher per node: the
    `mpi` resource makes the executor plugin run the command as it is, with one task per node (`tasks`, `nodes`),
    and the GPUs are asked for per node (`gres`; `gpu` would be the job's total)."""
    resources = stage_resources("train")
    nodes = resources.get("nodes", 1)
    if nodes > 1:
        gpus, model = resources.pop("gpu"), resources.pop("gpu_model", None)
        gres = ":".join(["gpu", *([model] if model else []), str(gpus)])
        resources.update(mpi="srun", tasks=nodes, **({"gres": gres} if gpus else {}))
    return resources


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
    return TRAIN_COMMANDS["clip" if REPLICAS[model].base == "clip" else "flame"]


def train_texts(wildcards):
    """The per-shard texts a model trains on: a FLAME model (or replica) its embeddings, CLIP the captions."""
    base = REPLICAS[wildcards.model].base
    if base == "clip":
        return expand(f"{RESULTS}/caption/{{shard}}.parquet", shard=SHARDS)
    embedding = VARIANTS[base].embedding_id
    return expand(f"{RESULTS}/embed/{embedding}/{{shard}}.parquet", shard=SHARDS)


def model_settings_json(model):
    """The training settings document of a trained model: a FLAME model's (`train:` with its ablation's changes),
    the baseline's from the keys `train:` shares with it plus `clip_baseline:`, a replica's its base model's with
    seed and data_fraction changed; as params they trigger reruns."""
    replica = REPLICAS[model]
    if replica.base in VARIANTS:
        document = VARIANTS[replica.base].train
    else:
        document = clip_settings(config["train"], config["clip_baseline"])
    return as_json(merge(document, replica.changes))


def embed_jobs():
    """The embed rules as (name, shard names, log name) triples. With embed.execution.shards_per_job 1, one over
    the {shard} wildcard named `embed`; else one per chunk of that many shards (the last one shorter), named
    embed_chunk<i>, whose single job embeds them all with the LLM loaded once."""
    size = config["embed"]["execution"]["shards_per_job"]
    if size == 1:
        return [("embed", ["{shard}"], "{shard}")]
    names = list(SHARDS)
    return [
        (f"embed_chunk{i // size}", names[i : i + size], f"chunk-{i // size:05d}") for i in range(0, len(names), size)
    ]


def embed_resources(shards):
    """An embed job's resources: the stage's, its runtime (minutes per shard) times the job's shards."""
    resources = stage_resources("embed")
    resources["runtime"] *= shards
    return resources


def embed_pairs(shards):
    """`flame embed`'s CAPTIONS OUT pairs for a job of ``shards`` shards, as shell placeholders: in the command itself,
    not a param, so that the one-shard rule's command is the same whatever embed.execution.shards_per_job is."""
    if shards == 1:
        return "{input.captions:q} {output:q}"
    return " ".join(f"{{input.captions[{i}]:q}} {{output[{i}]:q}}" for i in range(shards))


def execution_resources(stage):
    """The stage's speed-only settings (config[stage]['execution']) as resources: used, never rerun triggers."""
    return dict(config[stage]["execution"])


def train_launcher(resources):
    """`python -m pipeline.cli`, `accelerate launch` with one process per GPU of a one-node train job, or `srun` of
    one `flame launch-node` per node of a multi-node one (pipeline/train/launch.py)."""
    return shlex.join(launch_command(resources["gpu"], nodes=resources.get("nodes", 1)))
