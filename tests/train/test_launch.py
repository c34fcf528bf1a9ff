"""How training processes start: the one-node launcher and, on several SLURM nodes, the per-node `accelerate launch`
derived from SLURM's environment (host list syntax, node ids, the rendezvous port), typed out literally."""

import pytest

from pipeline.train.launch import expand_hostlist, launch_command, node_command


@pytest.mark.parametrize(("hostlist", "hosts"), [
    ("gpu[01-03,07]", ["gpu01", "gpu02", "gpu03", "gpu07"]),
    ("node7", ["node7"]),
    ("login1,gpu[9-11]", ["login1", "gpu9", "gpu10", "gpu11"]),
    ("rack[1-2]-n[1,3]", ["rack1-n1", "rack1-n3", "rack2-n1", "rack2-n3"]),
    ("a[008-010],b1", ["a008", "a009", "a010", "b1"]),
    ("localhost,vm", ["localhost", "vm"]),
])
def test_slurm_host_lists_expand_in_order_keeping_zero_padding(hostlist, hosts):
    assert expand_hostlist(hostlist) == hosts


@pytest.mark.parametrize("hostlist", ["gpu[03-01]", "gpu[a-b]", "", "gpu[1-]"])
def test_a_malformed_host_list_is_refused_naming_it(hostlist):
    with pytest.raises(ValueError, match="host list"):
        expand_hostlist(hostlist)


SLURM = {"SLURM_JOB_ID": "123456", "SLURM_JOB_NUM_NODES": "4", "SLURM_NODEID": "2",
         "SLURM_JOB_NODELIST": "gpu[01-03,07]"}


def test_each_node_launches_its_share_with_its_rank_and_meets_at_the_first_host():
    assert node_command(SLURM, nodes=4, processes_per_node=8) == [
        "accelerate", "launch", "--multi_gpu", "--num_processes", "32", "--num_machines", "4", "--machine_rank", "2",
        "--main_process_ip", "gpu01", "--main_process_port", "23456", "--dynamo_backend", "no", "-m",
        "pipeline.cli"]
    # every node of the job derives the same port and host: only the rank differs
    first = node_command({**SLURM, "SLURM_NODEID": "0"}, nodes=4, processes_per_node=8)
    assert [a != b for a, b in zip(first, node_command(SLURM, 4, 8))].count(True) == 1
    assert first[first.index("--machine_rank") + 1] == "0"
    # another job on the same node meets on another port; the older SLURM_NNODES / SLURM_NODELIST are read too
    older = node_command({"SLURM_JOB_ID": "123457", "SLURM_NNODES": "4", "SLURM_NODEID": "2",
                          "SLURM_NODELIST": "gpu[01-03,07]"}, 4, 8)
    assert older[older.index("--main_process_port") + 1] == "23457" and older[older.index("--machine_rank") + 1] == "2"


def test_an_allocation_of_other_nodes_or_outside_slurm_is_refused_naming_why():
    with pytest.raises(ValueError, match="SLURM allocated 4 nodes, the training asks for 2"):
        node_command(SLURM, nodes=2, processes_per_node=8)
    with pytest.raises(ValueError, match="SLURM_JOB_NUM_NODES or SLURM_NNODES is not set.*profiles/slurm"):
        node_command({}, nodes=2, processes_per_node=8)
    with pytest.raises(ValueError, match="SLURM_NODEID is not set"):
        node_command({k: v for k, v in SLURM.items() if k != "SLURM_NODEID"}, nodes=4, processes_per_node=8)


def test_the_train_job_runs_one_launcher_per_node_through_srun_or_accelerate_on_one_node():
    assert launch_command(8, nodes=4) == [
        "srun", "--nodes", "4", "--ntasks-per-node", "1", "--kill-on-bad-exit=1", "python", "-m", "pipeline.cli",
        "launch-node", "--nodes", "4", "--processes-per-node", "8", "--"]
    assert launch_command(0, nodes=2)[-4:] == ["2", "--processes-per-node", "1", "--"]  # CPU nodes: one process
    assert launch_command(8) == ["accelerate", "launch", "--multi_gpu", "--num_processes", "8", "--num_machines",
                                 "1", "--main_process_port", "0", "--dynamo_backend", "no", "-m", "pipeline.cli"]
    assert launch_command(1) == launch_command(0) == ["python", "-m", "pipeline.cli"]
