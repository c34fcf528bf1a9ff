# Config validation (before any job starts) and the names every rule shares.
import json
from pathlib import Path

from snakemake.utils import validate

from pipeline.data import expand_shards, shard_name


validate(config, "../config/schema.yaml")

RESULTS = config["results"]
STATE = config["state"]
DEMO = config.get("demo")


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


SHARDS = _train_shards()
if not DEMO:
    _check_llm_path(config["embed"]["llm"])


def demo_llm():
    """The tiny LLM as a DAG input in the demo (built by rule tiny_llm); nothing for a real LLM."""
    return [config["embed"]["llm"]] if DEMO else []


def demo_manifest():
    """The demo data set as a DAG input of the evaluation (written by rule demo_data)."""
    return [f"{DEMO['out']}/MANIFEST.json"] if DEMO else []


def benchmark(name):
    """The config of evaluation benchmark ``name``."""
    return config["evaluate"]["benchmarks"][name]


def stage_threads(stage):
    """CPU threads of a stage's jobs (torch's intra-op threads via OMP_NUM_THREADS), from config[stage]['threads']."""
    return config[stage]["threads"]


def stage_resources(stage):
    """Snakemake resources of a stage, from config[stage]['resources']."""
    return dict(config[stage]["resources"])


def as_json(value):
    """A config value as a shell-quoted JSON argument."""
    return f"'{json.dumps(value, sort_keys=True)}'"


def facets_arg(value):
    """A facets config value as the CLI takes it: a set name or a comma-separated list."""
    return value if isinstance(value, str) else ",".join(value)


def embed_flags(embed):
    """The `flame embed` options for the config's embed section (also the rule's rerun trigger)."""
    flags = [
        f"--llm {embed['llm']}",
        f"--facets '{facets_arg(embed['facets'])}'",
        f"--layer {embed['layer']}",
        f"--mode {embed['mode']}",
        f"--sources {' '.join(embed['sources'])}",
        f"--token-budget {embed['token_budget']}",
        f"--max-caption-tokens {embed['max_caption_tokens']}",
        f"--dtype {embed['dtype']}",
        f"--device {embed['device']}",
    ]
    if embed.get("revision"):
        flags.append(f"--revision {embed['revision']}")
    if embed.get("trust_remote_code"):
        flags.append("--trust-remote-code")
    if not embed["normalize"]:
        flags.append("--no-normalize")
    return " ".join(flags)


def train_flags(train):
    """The `flame train` hyper-parameter options for the config's train section."""
    return " ".join([
        f"--vision {as_json(train['vision'])}",
        f"--sources {' '.join(train['sources'])}",
        f"--epochs {train['epochs']}",
        f"--batch-size {train['batch_size']}",
        f"--lr {train['lr']}",
        f"--weight-decay {train['weight_decay']}",
        f"--betas {train['betas'][0]} {train['betas'][1]}",
        f"--warmup-steps {train['warmup_steps']}",
        f"--precision {train['precision']}",
        f"--grad-accum {train['grad_accum']}",
        f"--num-workers {train['num_workers']}",
        f"--shuffle-buffer {train['shuffle_buffer']}",
        f"--seed {train['seed']}",
    ])


def train_launcher(resources):
    """`python -m` for one process; `accelerate launch` across the GPUs (and nodes) of the train job."""
    gpus, nodes = resources["gpu"], resources.get("nodes", 1)
    if gpus * nodes <= 1:
        return "python -m pipeline.cli"
    if nodes == 1:
        return f"accelerate launch --multi_gpu --num_processes {gpus} -m pipeline.cli"
    return (f"srun --ntasks-per-node=1 accelerate launch --multi_gpu --num_machines {nodes}"
            f" --num_processes {gpus * nodes} --machine_rank $SLURM_NODEID"
            " --main_process_ip $(scontrol show hostnames $SLURM_JOB_NODELIST | head -n1)"
            " --main_process_port 29500 -m pipeline.cli")
