"""How a training job starts its processes: the command prefix that runs ``pipeline.cli`` once per GPU, on one node
or on several SLURM nodes (one launcher per node, ranks meeting at the first node of the allocation)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import product
from pathlib import Path

#: the rendezvous port is RENDEZVOUS_BASE_PORT + (SLURM job id mod RENDEZVOUS_PORTS): the same on every node of a
#: job without any exchange, different for jobs that share a node, below Linux's ephemeral range (32768-60999)
RENDEZVOUS_BASE_PORT = 20000
RENDEZVOUS_PORTS = 10000


def _tools(bin_dir: Path | None) -> tuple[str, str]:
    return tuple(str(bin_dir / name) if bin_dir else name for name in ("python", "accelerate"))


def launch_command(processes_per_node: int, bin_dir: Path | None = None, nodes: int = 1) -> list[str]:
    """The command prefix that runs ``pipeline.cli`` in ``processes_per_node`` processes on each of ``nodes`` nodes.

    One node: plain ``python -m`` for one process, ``accelerate launch --multi_gpu`` for more (one process per GPU;
    gloo processes on a CPU host), meeting on a free port. Several nodes (inside a SLURM allocation of ``nodes``
    nodes): ``srun`` starts one task per node, ``flame launch-node``, which derives that node's ``accelerate launch``
    arguments from SLURM's environment (:func:`node_command`). ``bin_dir``: where ``python`` and ``accelerate`` are
    (default: on PATH)."""
    python, accelerate = _tools(bin_dir)
    if nodes > 1:  # a node without GPUs runs one (gloo) process
        return ["srun", "--nodes", str(nodes), "--ntasks-per-node", "1", "--kill-on-bad-exit=1", python, "-m",
                "pipeline.cli", "launch-node", "--nodes", str(nodes), "--processes-per-node",
                str(max(1, processes_per_node)), "--"]
    if processes_per_node <= 1:
        return [python, "-m", "pipeline.cli"]
    # port 0: accelerate picks a free port. With its default, 29500, it moves to another port only when it finds
    # 29500 taken at start, so two trainings starting together on one host (two local jobs, two jobs sharing a
    # SLURM node, two tests) both find it free and the second fails to bind
    return [accelerate, "launch", "--multi_gpu", "--num_processes", str(processes_per_node), "--num_machines", "1",
            "--main_process_port", "0", "--dynamo_backend", "no", "-m", "pipeline.cli"]


def expand_hostlist(hostlist: str) -> list[str]:
    """SLURM's compressed host list (``gpu[01-03,07],login1``, ``rack[1-2]-n[1,3]``) as host names, in order.
    Numeric ranges keep their zero padding (``01-03`` -> ``01 02 03``)."""
    hosts = []
    for item in re.findall(r"(?:[^,\[]|\[[^\]]*\])+", hostlist):
        parts = re.split(r"\[([^\]]*)\]", item)  # text, ranges, text, ranges, ..., text
        choices = []
        for index, part in enumerate(parts):
            if index % 2 == 0:
                choices.append([part])
                continue
            numbers = []
            for span in part.split(","):
                low, dash, high = span.partition("-")
                high = high if dash else low
                if not (low.isdigit() and high.isdigit()) or int(high) < int(low):
                    raise ValueError(f"host list {hostlist!r}: bad range {span!r} in [{part}]")
                numbers += [str(n).zfill(len(low)) for n in range(int(low), int(high) + 1)]
            choices.append(numbers)
        hosts += ["".join(name) for name in product(*choices)]
    if not hosts or not all(hosts):
        raise ValueError(f"host list {hostlist!r}: no host names")
    return hosts


def rendezvous_port(job_id: str) -> int:
    """The TCP port on the first node where a job's ranks meet (see RENDEZVOUS_BASE_PORT)."""
    return RENDEZVOUS_BASE_PORT + int(job_id) % RENDEZVOUS_PORTS


def _slurm(env: Mapping[str, str], *names: str) -> str:
    for name in names:
        if env.get(name):
            return env[name]
    raise ValueError(f"{' or '.join(names)} is not set: `flame launch-node` runs one task per node inside a SLURM "
                       "allocation of several nodes (train.resources.nodes > 1 needs --profile profiles/slurm)")


def node_command(env: Mapping[str, str], nodes: int, processes_per_node: int, bin_dir: Path | None = None,
                 port: int | None = None) -> list[str]:
    """This node's ``accelerate launch`` prefix for a training over ``nodes`` x ``processes_per_node`` processes:
    ``--machine_rank`` from SLURM_NODEID, the rendezvous at the first host of SLURM_JOB_NODELIST on
    :func:`rendezvous_port` of SLURM_JOB_ID (or ``port``). Refuses an allocation of another node count."""
    allocated = int(_slurm(env, "SLURM_JOB_NUM_NODES", "SLURM_NNODES"))
    if allocated != nodes:
        raise ValueError(f"SLURM allocated {allocated} nodes, the training asks for {nodes} "
                           "(train.resources.nodes): the ranks would never all meet")
    rank = int(_slurm(env, "SLURM_NODEID"))
    main_host = expand_hostlist(_slurm(env, "SLURM_JOB_NODELIST", "SLURM_NODELIST"))[0]
    port = port if port is not None else rendezvous_port(_slurm(env, "SLURM_JOB_ID"))
    _, accelerate = _tools(bin_dir)
    return [accelerate, "launch", "--multi_gpu", "--num_processes", str(nodes * processes_per_node),
            "--num_machines", str(nodes), "--machine_rank", str(rank), "--main_process_ip", main_host,
            "--main_process_port", str(port), "--dynamo_backend", "no", "-m", "pipeline.cli"]
