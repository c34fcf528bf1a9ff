"""Training: learning, 2 processes on uneven shards, gradients vs one process, LR schedule, exact resume after
SIGKILL, stale state after an upstream change, bad samples, non-finite loss, settings from the schema."""

import csv
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fixtures import HUNG_AFTER_S
from fixtures.training import TINY_VISION, write_training_pairs
from pipeline.io import model_dir
from pipeline.train.data import ShardPair
from pipeline.train.facets import sample_facets
from pipeline.train.launch import launch_command
from pipeline.train.loop import TrainingDiverged, train
from pipeline.train.model import load_flame_model
from pipeline.train.schedule import lr_factor
from pipeline.train.settings import ClipSettings, FlameSettings, TrainExecution

BIN = Path(sys.executable).parent
SCRIPTS = Path(__file__).parent
BASE = dict(vision=TINY_VISION, sources=["raw"], epochs=3, batch_size=8, lr=3e-3, weight_decay=0.0, shuffle_buffer=8)


def settings(**overrides) -> FlameSettings:
    return FlameSettings.from_document({**BASE, **overrides})


def pairs_of(raw_pairs) -> list[ShardPair]:
    return [ShardPair(tar, parquet) for tar, parquet in raw_pairs]


def read_metrics(model_dir: Path) -> list[dict]:
    with (model_dir / "train_metrics.csv").open() as handle:
        return list(csv.DictReader(handle))


def flame_train(raw_pairs, out, state, doc: dict, processes=1, num_workers=0, checkpoint_every=100, popen=False,
                clip=False, launcher=None, env=None):
    """`flame train` (or `flame train-clip` on captions files) in a subprocess, through `accelerate launch` (gloo on
    CPU) when ``processes`` > 1, or through ``launcher`` (a command prefix) with ``env`` added to the environment."""
    command, texts = ("train-clip", "--captions") if clip else ("train", "--embeddings")
    cmd = [*(launcher or launch_command(processes, BIN)), command, "--shards", *[str(t) for t, _ in raw_pairs],
           texts, *[str(p) for _, p in raw_pairs], "--out", str(out), "--state-dir", str(state),
           "--settings", json.dumps(doc), "--num-workers", str(num_workers), "--checkpoint-every",
           str(checkpoint_every)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {}))
    if popen:  # in its own process group, so a kill takes the launcher and every training process at once
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HUNG_AFTER_S)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize("objective", [{}, {"loss": "sigmoid_multi_positive", "positives": 2},
                                       {"projector": "pooled"}], ids=["info_nce", "sigmoid", "pooled_projector"])
def test_loss_falls_and_model_round_trips(tmp_path, objective):
    summary = train(pairs_of(write_training_pairs(tmp_path)), tmp_path / "model", tmp_path / "state",
                    settings(epochs=6, **objective), TrainExecution(num_workers=0, checkpoint_every=100))
    rows = read_metrics(tmp_path / "model")
    assert summary["steps"] == len(rows) == 6 * 4 and [int(r["step"]) for r in rows] == list(range(1, 25))
    first, last = np.mean([float(r["loss"]) for r in rows[:4]]), np.mean([float(r["loss"]) for r in rows[-4:]])
    assert last < 0.7 * first
    model, cfg = load_flame_model(tmp_path / "model")
    assert cfg["dim"] == 16 and cfg["text"]["templates"]["raw"]["names"] == ["a", "b"]
    assert cfg["objective"] == summary["settings"]["loss"] and cfg["projector"] == summary["settings"]["projector"]
    assert (model.logit_bias is not None) == (cfg["objective"] == "sigmoid_multi_positive")
    out = model(torch.randn(3, 3, 32, 32))
    assert out.shape == (3, 16) and torch.allclose(out.norm(dim=-1), torch.ones(3), atol=1e-5)


def _two_machines(raw, out: Path, state: Path, doc: dict) -> None:
    """The training on two "machines" of one gloo process each on this host, as two SLURM nodes run it: the
    per-node command the train rule's srun starts (`flame launch-node`), with node ids 0 and 1 and the first host
    of the node list as the rendezvous (127.0.0.1, on a free port)."""
    node = launch_command(1, BIN, nodes=2)
    node = node[node.index(str(BIN / "python")):]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    node[-1:-1] = ["--port", str(port)]  # before the `--`: SLURM_JOB_ID's port may be taken on a shared host
    slurm = {"SLURM_JOB_ID": "1", "SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_NODELIST": "127.0.0.1,127.0.0.1"}
    procs = [flame_train(raw, out, state, doc, popen=True, launcher=node, env={**slurm, "SLURM_NODEID": str(rank)})
             for rank in (0, 1)]
    logs = [proc.communicate(timeout=HUNG_AFTER_S)[0] for proc in procs]
    for rank, (proc, log) in enumerate(zip(procs, logs)):
        assert proc.returncode == 0, log[-3000:]
        assert f"--num_processes 2 --num_machines 2 --machine_rank {rank} --main_process_ip 127.0.0.1" in log


@pytest.mark.parametrize("processes", [2])
def test_two_processes_on_uneven_shards_run_the_same_steps_with_the_same_lr_curve(tmp_path, processes):
    """... and two machines of one process each give the two processes' weights bit for bit."""
    raw = write_training_pairs(tmp_path, sizes=(16, 40, 40))
    doc = {**BASE, "batch_size": 8, "warmup_steps": 2}
    flame_train(raw, tmp_path / "two", tmp_path / "state2", doc, processes=processes)
    _two_machines(raw, tmp_path / "two-machines", tmp_path / "state-machines", doc)
    assert ((tmp_path / "two-machines" / "model.safetensors").read_bytes()
            == (tmp_path / "two" / "model.safetensors").read_bytes())
    flame_train(raw, tmp_path / "one", tmp_path / "state1", {**doc, "batch_size": 8 * processes})
    two = json.loads((tmp_path / "two" / "train_summary.json").read_text())
    one = json.loads((tmp_path / "one" / "train_summary.json").read_text())
    per_epoch = 96 // 16
    assert two["steps_per_process_this_run"] == [3 * per_epoch] * processes
    assert two["steps"] == one["steps"] == 3 * per_epoch and two["global_batch"] == one["global_batch"] == 16
    lr_two = [float(r["lr"]) for r in read_metrics(tmp_path / "two")]
    lr_one = [float(r["lr"]) for r in read_metrics(tmp_path / "one")]
    expected = [3e-3 * lr_factor(step, 2, 3 * per_epoch) for step in range(3 * per_epoch)]
    assert np.allclose(lr_two, expected, rtol=1e-6) and np.allclose(lr_one, expected, rtol=1e-6)
    assert lr_two[-2] > 0 and lr_two[len(lr_two) // 2] > 0.4 * 3e-3  # not squeezed to 0 halfway


def _step_gradients(out: Path, processes=1, accum=1, objective=()) -> dict:
    launcher = launch_command(processes, BIN)[:-2]  # the same launcher, running a script instead of the module
    cmd = [*launcher, str(SCRIPTS / "step_gradients.py"), str(out), "--accum", str(accum), *objective]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=HUNG_AFTER_S,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(out)


@pytest.mark.parametrize("objective", [["--loss", "info_nce"], ["--loss", "sigmoid_multi_positive"], ["--clip"]],
                         ids=["info_nce", "sigmoid_multi_positive", "clip"])
def test_two_processes_and_gradient_accumulation_equal_one_process_on_the_same_global_batch(tmp_path, objective):
    reference = _step_gradients(tmp_path / "one.pt", objective=objective)
    for name, result in (("2 processes", _step_gradients(tmp_path / "two.pt", processes=2, objective=objective)),
                         ("grad_accum 2", _step_gradients(tmp_path / "accum.pt", accum=2, objective=objective))):
        assert torch.allclose(result["loss"], reference["loss"], rtol=1e-6), name
        assert result["grads"].keys() == reference["grads"].keys()
        for key, grad in reference["grads"].items():
            assert grad.abs().sum() > 0, key
            assert torch.allclose(result["grads"][key], grad, rtol=1e-4, atol=1e-6 * grad.abs().max()), (name, key)


@pytest.mark.parametrize("processes, num_workers, loss", [(1, 2, "info_nce"), (2, 1, "sigmoid_multi_positive")])
def test_kill_at_a_random_step_then_rerun_gives_bit_identical_weights(tmp_path, processes, num_workers, loss):
    raw = write_training_pairs(tmp_path, sizes=(16, 40, 24))
    doc = {**BASE, "epochs": 4, "grad_accum": 2, "batch_size": 4 // processes, "loss": loss, "positives": 2}
    run = dict(processes=processes, num_workers=num_workers, checkpoint_every=3)
    flame_train(raw, tmp_path / "straight", tmp_path / "state-straight", doc, **run)
    total = len(read_metrics(tmp_path / "straight"))
    # in the first half: a run killed within its last steps can write its outputs before SIGKILL lands (its
    # processes then still tear down gloo, so poll() says running), and there is nothing left to resume
    kill_after = random.Random().randint(4, total // 2)
    proc = flame_train(raw, tmp_path / "killed", tmp_path / "state", doc, popen=True, **run)
    metrics = tmp_path / "state" / "metrics.csv"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) - 1 >= kill_after:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"training finished before the kill at step {kill_after}: {proc.stdout.read()}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed").exists()
    flame_train(raw, tmp_path / "killed", tmp_path / "state", doc, **run)
    summary = json.loads((tmp_path / "killed" / "train_summary.json").read_text())
    assert summary["resumed_from_step"] >= kill_after - 3 > 0, (kill_after, summary["resumed_from_step"])
    assert summary["steps_per_process_this_run"] == [total - summary["resumed_from_step"]] * processes
    straight = (tmp_path / "straight" / "model.safetensors").read_bytes()
    assert (tmp_path / "killed" / "model.safetensors").read_bytes() == straight, f"killed after step {kill_after}"
    assert [int(r["step"]) for r in read_metrics(tmp_path / "killed")] == list(range(1, total + 1))


def test_two_runs_with_the_same_seed_give_identical_weights(tmp_path):
    pairs, run = pairs_of(write_training_pairs(tmp_path, sizes=(16, 24))), TrainExecution(0, 100)
    for name in ("a", "b"):
        train(pairs, tmp_path / name, tmp_path / f"state-{name}", settings(), run)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    train(pairs, tmp_path / "c", tmp_path / "state-c", settings(seed=1), run)
    assert (tmp_path / "c" / "model.safetensors").read_bytes() != (tmp_path / "a" / "model.safetensors").read_bytes()


def test_rerun_resumes_only_when_inputs_and_settings_are_unchanged(tmp_path, capsys):
    raw = write_training_pairs(tmp_path)
    pairs, run = pairs_of(raw), TrainExecution(num_workers=0, checkpoint_every=100)
    first = train(pairs, tmp_path / "m1", tmp_path / "state", settings(epochs=2), run)
    weights = (tmp_path / "m1" / "model.safetensors").read_bytes()
    again = train(pairs, tmp_path / "m2", tmp_path / "state", settings(epochs=2), run)
    assert again["resumed_from_step"] == first["steps"] == again["steps"] and again["steps_this_run"] == 0
    assert again["final_loss"] == pytest.approx(first["final_loss"], rel=1e-6)
    assert (tmp_path / "m2" / "model.safetensors").read_bytes() == weights
    # upstream change: the embeddings were recomputed with other prompts (new vectors, new prompts hash)
    write_training_pairs(tmp_path, text_side={"prompts_hash": "h1"}, unreadable=("0003",))
    capsys.readouterr()
    changed = train(pairs, tmp_path / "m3", tmp_path / "state", settings(epochs=2), run)
    out = capsys.readouterr().out
    assert "discarding training state" in out and "prompts_hash" in out and "shard-00000.tar" in out
    assert changed["resumed_from_step"] == 0 and changed["steps_this_run"] == changed["steps"]
    assert (tmp_path / "m3" / "model.safetensors").read_bytes() != weights
    lr_changed = train(pairs, tmp_path / "m4", tmp_path / "state", settings(epochs=2, lr=1e-3), run)
    assert lr_changed["resumed_from_step"] == 0 and "lr: " in capsys.readouterr().out


def test_images_without_embeddings_or_readable_bytes_are_skipped_and_counted(tmp_path):
    raw = write_training_pairs(tmp_path, sizes=(16, 16), no_embedding=("0001", "1002"), unreadable=("1005",))
    summary = train(pairs_of(raw), tmp_path / "model", tmp_path / "state", settings(epochs=4),
                    TrainExecution(num_workers=0, checkpoint_every=100))
    assert summary["images_with_texts"] == 30 and summary["steps"] == 4 * (30 // 8)
    assert summary["skipped"]["missing_embedding"] >= 2 and summary["skipped"]["unreadable"] >= 1
    saved = json.loads((tmp_path / "model" / "train_summary.json").read_text())
    assert saved["skipped"] == summary["skipped"]


def test_non_finite_loss_stops_before_updating_and_keeps_the_last_checkpoint(tmp_path):
    raw = write_training_pairs(tmp_path, sizes=(16, 16), nan=("1003",))
    with pytest.raises(TrainingDiverged, match=r"non-finite loss \(nan\) at step (\d+)") as err:
        train(pairs_of(raw), tmp_path / "model", tmp_path / "state", settings(epochs=4),
              TrainExecution(num_workers=0, checkpoint_every=1))
    failed_step = int(err.value.args[0].split("at step ")[1].split()[0])
    checkpoints = sorted(p.name for p in (tmp_path / "state" / "checkpoints").iterdir())
    assert failed_step > 1 and checkpoints[-1] == f"step-{failed_step - 1:09d}"
    assert not (tmp_path / "model").exists()


def test_settings_come_from_the_schema_with_errors_naming_the_key(tmp_path):
    filled = FlameSettings.from_document({"vision": TINY_VISION})
    assert filled.grad_accum == 1 and filled.sources == ["raw", "short", "long"]
    assert (filled.lr, filled.betas, filled.eps, filled.weight_decay) == (5e-4, [0.9, 0.98], 1e-8, 0.5)  # Table A1
    assert filled.loss == "info_nce" and filled.positives == 6 and filled.projector == "per_token"
    clip = ClipSettings.from_document({"vision": TINY_VISION})
    assert clip.sources == ["long"] and clip.text == {"width": 512, "heads": 8, "layers": 12, "context_length": 77}
    with pytest.raises(ValueError, match=r"--settings: key lr: -1 is less than or equal to the minimum of 0"):
        FlameSettings.from_document({"vision": TINY_VISION, "lr": -1}, "--settings")
    with pytest.raises(ValueError, match=r"key \(top level\).*'epoch'"):
        FlameSettings.from_document({"vision": TINY_VISION, "epoch": 2})
    with pytest.raises(ValueError, match=r"key \(top level\).*'loss'"):
        ClipSettings.from_document({"vision": TINY_VISION, "loss": "info_nce"})
    with pytest.raises(ValueError, match=r"key loss: 'siglip' is not one of"):
        FlameSettings.from_document({"vision": TINY_VISION, "loss": "siglip"})
    with pytest.raises(ValueError, match="fewer than one step's batch of 64"):
        train(pairs_of(write_training_pairs(tmp_path)), tmp_path / "m", tmp_path / "s", settings(batch_size=64),
              TrainExecution(num_workers=0, checkpoint_every=1))


def test_embeddings_of_another_text_side_or_without_a_training_source_are_refused(tmp_path):
    raw = write_training_pairs(tmp_path)
    write_training_pairs(tmp_path / "other", sizes=(16,), text_side={"layer": 2})
    mixed = [ShardPair(raw[0][0], raw[0][1]), ShardPair(raw[1][0], tmp_path / "other" / "emb" / "shard-00000.parquet")]
    run = TrainExecution(num_workers=0, checkpoint_every=100)
    with pytest.raises(ValueError, match=r"shard-00000.parquet: embedded differently from .* \(layer\)"):
        train(mixed, tmp_path / "m", tmp_path / "s", settings(), run)
    # two LLMs behind one path (a rebuilt model, a hub model updated mid-run): their content identities differ
    write_training_pairs(tmp_path / "rebuilt", sizes=(16,), text_side={"llm_identity": "sha256:another"})
    rebuilt = tmp_path / "rebuilt" / "emb" / "shard-00000.parquet"
    mixed = [ShardPair(raw[0][0], raw[0][1]), ShardPair(raw[1][0], rebuilt)]
    with pytest.raises(ValueError, match=r"embedded differently from .* \(llm_identity\)"):
        train(mixed, tmp_path / "m", tmp_path / "s", settings(), run)
    with pytest.raises(ValueError, match=r"no embeddings of caption sources \['long'\]"):
        train(pairs_of(raw), tmp_path / "m", tmp_path / "s", settings(sources=["raw", "long"]), run)


def test_the_facets_setting_trains_on_those_rows_only(tmp_path):
    """`facets: [b]` (an ablation's one-prompt model): each image's target is its `b` row alone, the epoch counts the
    same images, and a facet the embeddings lack is refused naming it."""
    import pyarrow.parquet as pq

    from pipeline.train.data import FacetTargets, images_used

    raw = write_training_pairs(tmp_path)
    table = pq.read_table(raw[0][1]).to_pylist()
    targets = FacetTargets(["raw"], "info_nce", ("raw:b",), ("b",))
    rows = targets.open(raw[0][1])
    for key in ("0000", "0003"):
        vectors, mask = targets.draw(rows, key, random.Random(0))
        expected = next(r["embedding"] for r in table if r["key"] == key and r["facet"] == "b")
        assert mask.tolist() == [True] and np.allclose(vectors[0], np.array(expected, np.float16))
    both = FacetTargets(["raw"], "info_nce", ("a", "b"))
    assert images_used(targets, raw[0][1]) == images_used(both, raw[0][1]) == 16
    run = TrainExecution(num_workers=0, checkpoint_every=100)
    summary = train(pairs_of(raw), tmp_path / "m", tmp_path / "s", settings(facets=["b"]), run)
    assert summary["settings"]["facets"] == ["b"] and summary["images_with_texts"] == 32
    refused = r"key facets: \['c'\] are not among the embedded facets \(\['a', 'b'\]\) \(caption sources \['raw'\]\)"
    with pytest.raises(ValueError, match=refused):
        train(pairs_of(raw), tmp_path / "m2", tmp_path / "s2", settings(facets=["c"]), run)
    # a random draw (the prompt-count ablation): the model records the facet it drew, the one evaluation embeds with
    drawn = sample_facets(("a", "b"), 1, seed=3)
    train(pairs_of(raw), tmp_path / "m3", tmp_path / "s3", settings(facets={"sample": 1, "seed": 3}), run)
    assert model_dir.read_config(tmp_path / "m3")["text"]["trained_templates"]["raw"]["names"] == list(drawn)
    with pytest.raises(ValueError, match=r"sample 3, but 2 facets are embedded"):
        train(pairs_of(raw), tmp_path / "m4", tmp_path / "s4", settings(facets={"sample": 3}), run)


def test_eq1_every_step_fills_every_sources_facets_and_one_caption_draws_one(tmp_path):
    """The paper's Eq. 1 (`texts_per_step: every_source`): an image with a raw, a short and two long captions gives
    its raw and short rows and one long caption's K rows at every draw; `one_caption` gives one caption's rows."""
    from pipeline.io.embeddings import write_embeddings
    from pipeline.train.data import FacetTargets

    labels = [("raw", ["d"]), ("short_0", ["d"]), ("long_0", ["d", "c", "p"]), ("long_1", ["d", "c", "p"])]
    rows = [("k", label, facet) for label, facets in labels for facet in facets]
    vectors = np.arange(len(rows) * 4, dtype=np.float16).reshape(len(rows), 4)  # row i is [4i .. 4i+3]
    path = tmp_path / "e.parquet"
    write_embeddings(rows, vectors, path, {"dim": 4})
    slots = ("raw:d", "short:d", "long:d", "long:c", "long:p")
    every = FacetTargets(["raw", "short", "long"], "info_nce", slots)
    table = every.open(path)
    firsts = set()
    for seed in range(20):
        got, mask = every.draw(table, "k", random.Random(seed))
        assert mask.all()
        assert got[0, 0] == 0 and got[1, 0] == 4  # raw:d, short:d
        long_rows = [int(v) // 4 for v in got[2:, 0]]  # the long caption's d, c, p rows: 2, 3, 4 or 5, 6, 7
        assert long_rows in ([2, 3, 4], [5, 6, 7])
        firsts.add(long_rows[0])
    assert firsts == {2, 5}  # both long captions are drawn over the seeds
    one = FacetTargets(["raw", "short", "long"], "info_nce", ("d", "c", "p"), texts="one_caption")
    table = one.open(path)
    for seed in range(20):
        got, mask = one.draw(table, "k", random.Random(seed))
        assert mask.tolist() in ([True, False, False], [True, True, True])


COLOR_WORDS = ["red", "green", "blue", "yellow"]


def write_caption_files(raw_pairs) -> list[ShardPair]:
    """Captions Parquet files (the caption stage's columns) for the shards of ``write_training_pairs``: per colour
    a raw alt-text and a long caption naming it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.io.parquet import write_parquet
    from pipeline.io.shards import shard_identity

    pairs = []
    for tar, embeddings in raw_pairs:
        keys = pq.read_table(embeddings, columns=["key"])["key"].unique().to_pylist()
        words = [COLOR_WORDS[int(k[1:]) % len(COLOR_WORDS)] for k in keys]
        table = pa.table({"key": keys, "raw": [f"{w} square" for w in words],
                          "short": [[] for _ in words],
                          "long": [[f"A plain {w} square fills the whole picture."] for w in words]})
        path = embeddings.parent.parent / "captions" / embeddings.name
        path.parent.mkdir(exist_ok=True)
        write_parquet(table, path, {"stage": "caption", "backend": "test", "shard": shard_identity(tar)})
        pairs.append(ShardPair(tar, path))
    return pairs


def test_clip_baseline_runs_on_two_processes_over_uneven_shards(tmp_path):
    raw = write_training_pairs(tmp_path, sizes=(16, 40, 8))
    pairs = [(p.tar, p.texts) for p in write_caption_files(raw)]
    doc = {**{k: v for k, v in BASE.items() if k != "sources"}, "epochs": 2, "batch_size": 4, "sources": ["raw"],
           "embed_dim": 16, "text": {"width": 16, "heads": 2, "layers": 1}}
    flame_train(pairs, tmp_path / "clip", tmp_path / "state", doc, processes=2, clip=True)
    summary = json.loads((tmp_path / "clip" / "train_summary.json").read_text())
    assert summary["kind"] == "clip" and summary["global_batch"] == 8
    assert summary["steps_per_process_this_run"] == [2 * (64 // 8)] * 2
    assert len(read_metrics(tmp_path / "clip")) == summary["steps"] == 16


def test_clip_baseline_trains_on_captions_and_is_evaluated_by_the_same_model_interface(tmp_path):
    from PIL import Image

    from pipeline.evaluate.models import ClipModel, load_model

    pairs = write_caption_files(write_training_pairs(tmp_path))
    doc = {k: v for k, v in BASE.items() if k != "sources"}
    clip = ClipSettings.from_document({**doc, "epochs": 6, "sources": ["raw", "long"], "embed_dim": 16,
                                       "text": {"width": 32, "heads": 2, "layers": 1}})
    summary = train(pairs, tmp_path / "clip", tmp_path / "state", clip, TrainExecution(0, 100))
    rows = read_metrics(tmp_path / "clip")
    assert summary["kind"] == "clip" and summary["steps"] == len(rows) == 6 * 4
    first, last = np.mean([float(r["loss"]) for r in rows[:4]]), np.mean([float(r["loss"]) for r in rows[-4:]])
    assert last < 0.7 * first
    model = load_model(tmp_path / "clip", device="cpu")
    assert isinstance(model, ClipModel) and model.tokenizer.context_length == 77
    images = model.encode_image([Image.new("RGB", (32, 32), c) for c in ((220, 20, 20), (20, 20, 220))])
    texts = model.encode_text(["red square", "blue square", "x " * 200])  # the last is cut to 77 tokens
    assert images.shape == (2, 16) and texts.shape == (3, 16)
    assert torch.allclose(texts.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_weight_decay_spares_biases_norms_the_temperature_and_the_class_token():
    from pipeline.train.loop import _optimizer
    from pipeline.train.model import FlameVisionModel

    model = FlameVisionModel(TINY_VISION, 16)
    decay, spared = (group["params"] for group in _optimizer(model, settings(weight_decay=0.5)).param_groups)
    names = {id(p): n for n, p in model.named_parameters()}
    assert "tower.cls_token" in {names[id(p)] for p in spared} and "logit_scale" in {names[id(p)] for p in spared}
    assert {names[id(p)] for p in decay} == {n for n, p in model.named_parameters()
                                            if p.ndim >= 2 and n != "tower.cls_token"}


def test_a_data_fraction_trains_flame_and_clip_on_the_same_nested_images_by_key_hash(tmp_path):
    """`train.data_fraction` (the data-efficiency replicas): per shard the round(f x n) keys first by SHA-256 —
    computed here with hashlib directly — and nothing else reaches training, for FLAME's embeddings and CLIP's
    captions alike; a smaller fraction's images are among a larger one's; steps follow the images used."""
    import hashlib

    from pipeline.train.data import CaptionTexts, FacetTargets, TrainStream, image_subset, images_used

    raw = write_training_pairs(tmp_path, sizes=(16, 24))
    captions = write_caption_files(raw)

    def expected(shard: int, size: int, fraction: float) -> set[str]:
        keys = [f"{shard}{i:03d}" for i in range(size)]
        return set(sorted(keys, key=lambda k: hashlib.sha256(k.encode()).hexdigest())[:round(fraction * size)])

    quarter = expected(0, 16, 0.25) | expected(1, 24, 0.25)
    assert len(quarter) == 4 + 6 and quarter < expected(0, 16, 0.5) | expected(1, 24, 0.5)
    flame_targets, clip_targets = FacetTargets(["raw"], "info_nce", ("raw:a", "raw:b")), CaptionTexts(["raw"], 77)
    for (_, embeddings), pair, shard, size in zip(raw, captions, (0, 1), (16, 24)):
        assert image_subset(flame_targets.keys(flame_targets.open(embeddings)), 0.25) == expected(shard, size, 0.25)
        assert image_subset(clip_targets.keys(clip_targets.open(pair.texts)), 0.25) == expected(shard, size, 0.25)
        assert images_used(flame_targets, embeddings, 0.25) == images_used(clip_targets, pair.texts, 0.25)
    assert image_subset(["x"], 0.01) == {"x"} and image_subset([], 0.5) == set()

    drawn: list[str] = []

    class Recording(FacetTargets):
        def draw(self, table, key, rng):
            drawn.append(key)
            return super().draw(table, key, rng)

    stream = TrainStream(pairs_of(raw), Recording(["raw"], "info_nce", ("raw:a", "raw:b")), 32, 2, 4, 0, 0, 30,
                         data_fraction=0.25)
    assert sum(len(batch.images) for batch in stream) == 60
    assert set(drawn) == quarter

    summary = train(pairs_of(raw), tmp_path / "m", tmp_path / "s", settings(data_fraction=0.25),
                    TrainExecution(num_workers=0, checkpoint_every=100))
    assert summary["images_with_texts"] == 10 and summary["steps_per_epoch"] == 10 // 8
    assert summary["settings"]["data_fraction"] == 0.25
    with pytest.raises(ValueError, match="data_fraction"):
        settings(data_fraction=0)
