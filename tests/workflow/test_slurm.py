"""The workflow on a real SLURM scheduler: a two-node cluster on this host (Debian's slurm-wlm and munge, installed
when missing), the demo DAG submitted through profiles/slurm by snakemake-executor-plugin-slurm, outputs equal to a
local run's, and its training on both nodes equal to a 2-process run. Plus the sbatch arguments the profile gives the
GPU rules of the real config."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
import yaml

from fixtures import HUNG_AFTER_S
from fixtures.workflow import shrink_demo
from pipeline.train.launch import launch_command

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PACKAGES = ("slurm-wlm", "munge")


def _install() -> str | None:
    """Install slurm-wlm and munge when missing; the reason they cannot be, or None."""
    if all(shutil.which(tool) for tool in ("slurmctld", "slurmd", "sbatch", "munged")):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "slurm-wlm is not installed and cannot be (needs root and apt-get)"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for attempt in ([], ["update"]):
        if attempt:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=HUNG_AFTER_S)
        proc = subprocess.run(["apt-get", "install", "-y", "-q", *PACKAGES], env=env, capture_output=True, text=True,
                              timeout=HUNG_AFTER_S)
        if proc.returncode == 0:
            return None
    return f"apt-get install {' '.join(PACKAGES)} failed: {proc.stderr.strip()[-300:]}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _wait(predicate, what: str, seconds: float = 600, explain=lambda: ""):
    """Poll ``predicate`` until it holds; else a TimeoutError saying ``what`` and ``explain()`` (why, if known)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise TimeoutError(f"{what} within {seconds} s\n{explain()}".rstrip())


def _munge_answers() -> bool:
    """Whether a munged answers on its socket (`munge -n` encodes an empty credential through it)."""
    return subprocess.run(["munge", "-n"], capture_output=True).returncode == 0


def _cluster_state(env: dict, root: Path) -> str:
    """What sinfo says of each node and the last lines of each daemon's log: the reason a cluster did not start."""
    nodes = subprocess.run(["sinfo", "-N", "-h", "-o", "%N %T %E"], env=env, capture_output=True, text=True)
    logs = [f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            for log in sorted(root.glob("*.log"))]
    return "\n".join([f"sinfo: {nodes.stdout.strip()} {nodes.stderr.strip()}", *logs])


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A two-node SLURM cluster (no accounting database, as many small clusters) on this host: nodes `localhost`
    and the host's name, one slurmd each (Debian's slurmd runs several on one host with -N); yields the env with
    SLURM_CONF. The daemons it starts are stopped by PID."""
    reason = _install()
    if reason:
        pytest.skip(reason)
    # the batch jobs' own srun reads the default path (the executor plugin drops SLURM_* variables, SLURM_CONF too)
    conf = Path("/etc/slurm/slurm.conf")
    if conf.exists():
        pytest.skip(f"{conf} exists: this host has a SLURM configuration of its own, which the test will not replace")
    root = tmp_path_factory.mktemp("slurm")
    host = socket.gethostname()
    # two nodes on this host (one slurmd each, -N), both names resolve here; slurmctld takes a second NodeName on a
    # host name only after the node named by it (else "Duplicated NodeHostName")
    nodes = (host, "localhost")
    for name in ("state", *(f"spool-{node}" for node in nodes)):
        (root / name).mkdir()
    ports = [_free_port() for _ in nodes]
    memory_mb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                         if line.startswith("MemTotal"))) // 1024 - 2048
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(f"""ClusterName=flametest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool-%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd-%n.log
SlurmctldPort={_free_port()}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=3600
NodeName={host} Port={ports[0]} CPUs={os.cpu_count()} RealMemory={memory_mb} State=UNKNOWN
NodeName=localhost NodeHostname={host} Port={ports[1]} CPUs={os.cpu_count()} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
    env = dict(os.environ, SLURM_CONF=str(conf))
    started = []
    if not _munge_answers():  # a socket file alone may be left from a munged that is gone (--force replaces it)
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        munged = subprocess.Popen(["munged", "--foreground", "--force"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        started.append(munged)
        _wait(_munge_answers, "munged did not answer")
    for daemon in (["slurmctld"], *(["slurmd", "-N", node] for node in nodes)):
        started.append(subprocess.Popen([*daemon, "-D", "-f", str(conf)], env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL))

    def idle() -> bool:
        proc = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True)
        return proc.stdout.strip() == "idle"

    try:
        _wait(idle, "the SLURM nodes did not become idle", explain=lambda: _cluster_state(env, root))
        yield env
    finally:
        for proc in reversed(started):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        conf.unlink()


def _small_demo(path: Path) -> Path:
    """The demo, shrunk to ten jobs: two shards, one benchmark, FLAME only."""
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    shrink_demo(config, train_shards=2, samples_per_shard=8, eval_size=12)
    config["train"].update(epochs=1, batch_size=8)
    config["evaluate"]["benchmarks"] = {"urban1k": config["evaluate"]["benchmarks"]["urban1k"]}
    config["evaluate"]["vocabulary_images"] = []
    for section in ("clip_baseline", "ablations", "report", "replicates", "data_efficiency"):
        del config[section]
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.e2e
def test_the_demo_dag_on_a_real_slurm_cluster_equals_a_local_run(slurm_cluster, tmp_path):
    cfg = _small_demo(tmp_path / "small.yaml")
    outputs = {}
    # squeue for job status (no accounting database); poll every 2 s instead of the cluster-friendly defaults
    slurm_flags = ("--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
                   "--seconds-between-status-checks", "2")
    for where, profile, extra in (("local", "local", ()), ("slurm", "slurm", slurm_flags)):
        workdir = tmp_path / where
        workdir.mkdir()
        # nothing activated: the jobs find the workflow's own `flame` by themselves
        env = {**slurm_cluster, "PATH": "/usr/bin:/bin"}
        proc = subprocess.run([str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--profile",
                               str(REPO / "profiles" / profile), "--directory", str(workdir), "--configfile",
                               str(cfg), "--jobs", "4", *extra], env=env, capture_output=True, text=True,
                              timeout=HUNG_AFTER_S)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        outputs[where] = workdir / "results" / "demo"
        if where == "slurm":
            log = proc.stdout + proc.stderr
            # every job but the local target `all` went through sbatch: one per shard for caption and embed
            assert log.count("has been submitted with SLURM jobid") == 9
            commands = [line for line in log.splitlines() if line.startswith("Shell command:")]
            assert sum(" flame caption " in c for c in commands) == 2
            assert sum(" flame embed " in c for c in commands) == 2
            rerun = subprocess.run([str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--profile",
                                    str(REPO / "profiles" / profile), "--directory", str(workdir), "--configfile",
                                    str(cfg), *extra, "-n"], env=env, capture_output=True, text=True,
                                   timeout=HUNG_AFTER_S)
            assert "Nothing to be done" in rerun.stdout + rerun.stderr
    written = sorted(p.relative_to(outputs["local"]) for p in outputs["local"].glob("*/**/shard-0000*.parquet"))
    assert [p.parts[0] for p in written] == ["caption"] * 2 + ["embed"] * 2  # embed/<id>/: one embedding
    assert written == sorted(p.relative_to(outputs["slurm"]) for p in outputs["slurm"].glob("*/**/shard-0000*.parquet"))
    for path in written:
        assert pq.read_table(outputs["local"] / path).equals(pq.read_table(outputs["slurm"] / path)), path
    local, remote = (yaml.safe_load((outputs[w] / "eval" / "flame" / "urban1k" / "en.json").read_text())
                     for w in ("local", "slurm"))
    assert local["metrics"] == remote["metrics"]

    # the training again on both nodes (train.resources.nodes: 2, one gloo process each): one sbatch job of two
    # nodes whose own srun starts `flame launch-node` on each; the weights equal a 2-process run of the same command
    config = yaml.safe_load(cfg.read_text())
    config["train"]["resources"]["nodes"] = 2
    (tmp_path / "two-nodes.yaml").write_text(yaml.safe_dump(config))
    workdir = tmp_path / "slurm"
    proc = subprocess.run([str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--profile",
                           str(REPO / "profiles" / "slurm"), "--directory", str(workdir), "results/demo/train/flame",
                           "--forcerun", "train", "--configfile", str(tmp_path / "two-nodes.yaml"), *slurm_flags],
                          env=env, capture_output=True, text=True, timeout=HUNG_AFTER_S)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0 and log.count("has been submitted with SLURM jobid") == 1, log[-4000:]
    [command] = [line for line in log.splitlines() if line.startswith("Shell command:") and " launch-node " in line]
    assert " srun --nodes 2 --ntasks-per-node 1 " in command
    train_log = (workdir / "results" / "demo" / "logs" / "train" / "flame.log").read_text()
    # both ranks meet at the job's first host, whichever of the two node names SLURM lists first
    nodes = subprocess.run(["sinfo", "-N", "-h", "-o", "%N"], env=env, capture_output=True, text=True).stdout.split()
    hosts = {rank: [host for host in nodes if f"--num_processes 2 --num_machines 2 --machine_rank {rank} "
                    f"--main_process_ip {host} " in train_log] for rank in (0, 1)}
    assert len(hosts[0]) == 1 and hosts[0] == hosts[1], (nodes, train_log[-3000:])
    summary = json.loads((workdir / "results" / "demo" / "train" / "flame" / "train_summary.json").read_text())
    assert len(summary["steps_per_process_this_run"]) == 2
    words = shlex.split(command.split(" -- ", 1)[1].split(" > ", 1)[0])  # `train --shards ...`, the job's own
    for flag, path in (("--out", tmp_path / "two-processes"), ("--state-dir", tmp_path / "two-processes-state")):
        words[words.index(flag) + 1] = str(path)
    threads = command.split("OMP_NUM_THREADS=", 1)[1].split()[0]  # the job's own: matmul rounding depends on it
    proc = subprocess.run([*launch_command(2, BIN), *words], cwd=workdir, capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS=threads), timeout=HUNG_AFTER_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ((tmp_path / "two-processes" / "model.safetensors").read_bytes()
            == (workdir / "results" / "demo" / "train" / "flame" / "model.safetensors").read_bytes())


def _sbatch_call(rule_resources: dict, threads: int) -> str:
    """The sbatch call snakemake-executor-plugin-slurm makes for a job with these resources."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    class Resources(dict):
        __getattr__ = dict.get

    job = SimpleNamespace(resources=Resources(rule_resources), threads=threads)
    params = {"run_uuid": "run", "slurm_logfile": "log", "comment_str": "rule", "account": "", "workdir": "",
              "partition": f"-p {rule_resources['slurm_partition']}" if rule_resources.get("slurm_partition") else ""}
    return get_submit_command(job, params) + set_gres_string(job)


def test_the_slurm_profile_gives_the_gpu_rules_of_the_real_config_their_gpus_cpus_memory_and_time():
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.v8+.yaml").read_text())
    config = yaml.safe_load((REPO / "config" / "cc3m.yaml").read_text())

    def resources(stage: str) -> dict:
        return {**profile["default-resources"], **config[stage]["resources"],
                **profile.get("set-resources", {}).get(stage, {})}

    train = _sbatch_call(resources("train"), config["train"]["threads"])
    assert "--gpus=8" in train and "--mem 480000" in train and "-t 2880" in train and "-p gpu" in train
    assert "--ntasks" not in train  # one task: accelerate launch starts a process per GPU
    assert f"--cpus-per-gpu={config['train']['threads']}" not in train
    assert f"--cpus-per-task={config['train']['threads']}" in train
    embed = _sbatch_call(resources("embed"), config["embed"]["threads"])
    assert "--gpus=1" in embed and f"--cpus-per-task={config['embed']['threads']}" in embed and "-p gpu" in embed
    caption = _sbatch_call(resources("caption"), config["caption"]["threads"])
    assert "--gpus=1" in caption and "-t 720" in caption
    # several nodes: the resources the train rule gives a job of train.resources {nodes: 4, gpu: 8} (test_plan.py)
    multi = {**resources("train"), "nodes": 4, "mpi": "srun", "tasks": 4, "gres": "gpu:8"}
    del multi["gpu"]
    train = _sbatch_call(multi, config["train"]["threads"])
    assert "--nodes=4" in train and "--ntasks=4" in train and " --gres=gpu:8" in train and "--gpus" not in train
    assert f"--cpus-per-task={config['train']['threads']}" in train and "--ntasks-per-gpu" not in train
