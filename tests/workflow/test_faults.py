"""The fault suite: what a user's bad input, a kill or a second writer does to a run. Each case states the outcome
docs/reliability.md promises; the per-sample cases of each stage live beside the stage's tests (tests/caption,
tests/embed, tests/train, tests/io) and are listed there too."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from fixtures import HUNG_AFTER_S
from fixtures.shards import write_shard
from fixtures.workflow import shrink_demo
from pipeline.io.locks import single_writer

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def flame(*args, check=True, env=None, **kwargs):
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], capture_output=True, text=True,
                          env=env or dict(os.environ, OMP_NUM_THREADS="1"), timeout=HUNG_AFTER_S, **kwargs)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_a_second_writer_of_one_output_fails_fast_naming_it(tmp_path):
    shard = write_shard(tmp_path / "s.tar", [{"key": "a"}])
    out = tmp_path / "out.parquet"
    with single_writer(out):
        proc = flame("caption", shard, out, check=False)
    assert proc.returncode != 0 and f"{out} is being written by pid {os.getpid()}" in proc.stderr
    assert not out.exists()
    flame("caption", shard, out)  # the lock went with its holder
    assert out.exists()


def test_a_second_training_on_one_state_directory_fails_fast(tmp_path):
    state = tmp_path / "state"
    with single_writer(state):
        proc = flame("train", "--shards", tmp_path / "none.tar", "--embeddings", tmp_path / "none.parquet",
                     "--out", tmp_path / "model", "--state-dir", state, "--settings",
                     '{"vision": {"model": "vit_tiny_patch16_224", "image_size": 32, "patch_size": 8}}', check=False)
    assert proc.returncode != 0 and f"{state} is being written by" in proc.stderr


@pytest.mark.parametrize("tiny_llm", ["mistral"], indirect=True)
def test_sigkill_of_embed_mid_shard_leaves_nothing_and_a_rerun_completes(tmp_path, tiny_llm, tokenizer):
    llm = tmp_path / "llm"
    tiny_llm.save_pretrained(llm)
    tokenizer.save_pretrained(llm)
    keys = [f"k{i:03d}" for i in range(400)]
    pq.write_table(pa.table({"key": keys, "raw": [f"a red star number {i} falls past a circle" for i in range(400)],
                             "long": [[f"A long caption about star {i}, at night, in the fog."] for i in range(400)],
                             "short": [[] for _ in keys]}), tmp_path / "captions.parquet")
    settings = json.dumps({"llm": str(llm), "layout": "paper"})

    def command(out):
        return [sys.executable, "-m", "pipeline.cli", "embed", str(tmp_path / "captions.parquet"), str(out),
                "--settings", settings, "--token-budget", "256"]

    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(command(tmp_path / "emb.parquet"), env=env, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    seen = ""
    while proc.poll() is None and "cap/s" not in seen and "cap]" not in seen:  # the progress bar has moved
        seen += proc.stderr.read(64)
    time.sleep(0.5)
    assert proc.poll() is None, "finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "emb.parquet").exists() and not list(tmp_path.glob(".emb.parquet*tmp"))
    subprocess.run(command(tmp_path / "emb.parquet"), env=env, check=True, capture_output=True)
    subprocess.run(command(tmp_path / "whole.parquet"), env=env, check=True, capture_output=True)
    rerun, whole = (pq.read_table(tmp_path / name) for name in ("emb.parquet", "whole.parquet"))
    assert rerun.equals(whole)
    pairs = list(zip(rerun.column("key").to_pylist(), rerun.column("source").to_pylist(),
                     rerun.column("facet").to_pylist()))
    assert len(pairs) == len(set(pairs)) and {k for k, _, _ in pairs} == set(keys)


@pytest.mark.e2e
def test_a_path_with_a_space_a_quote_and_a_command_substitution_runs_and_executes_nothing(tmp_path):
    """The demo's caption and embed jobs in a folder named `it's a $(touch PWNED) dir`, with a custom facet suffix
    holding a quote and a comma, and a PATH without the workflow's environment: the jobs still find `flame`."""
    weird = tmp_path / "it's a $(touch PWNED) dir"
    weird.mkdir()
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    shrink_demo(config, train_shards=1, samples_per_shard=6, eval_size=12, out=str(weird / "data"))
    # absolute paths, so the folder's name reaches every shell command
    config.update(results=str(weird / "results"), state=str(weird / "state"))
    config["demo"]["llm_out"] = config["embed"]["llm"] = str(weird / "models" / "tiny-llm")
    suffix = ' the image\'s gist, "in" one word:"'
    config["embed"]["facets"] = {"raw": [suffix], "short": "short", "long": "short"}
    (weird / "c.yaml").write_text(yaml.safe_dump(config))
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(BIN / "snakemake"), "--snakefile", str(REPO / "Snakefile"), "--directory", str(weird),
                           "--cores", "2", "--configfile", str(weird / "c.yaml"), "--until", "embed"], cwd=weird,
                          env=env, capture_output=True, text=True, timeout=HUNG_AFTER_S)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not list(tmp_path.rglob("PWNED")) and not (REPO / "PWNED").exists() and not Path("PWNED").exists()
    [written] = (weird / "results" / "embed").glob("*/shard-00000.parquet")
    embeddings = pq.read_table(written)
    raw_facets = {f for f, s in zip(embeddings.column("facet").to_pylist(), embeddings.column("source").to_pylist())
                  if s == "raw"}
    assert raw_facets == {suffix}  # one facet, the quote and the comma intact


def test_a_file_system_without_flock_writes_unguarded_with_a_warning(tmp_path, monkeypatch, capsys):
    import fcntl

    def no_flock(*args):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    with single_writer(tmp_path / "out.parquet"):
        (tmp_path / "out.parquet").write_text("x")
    assert "cannot lock" in capsys.readouterr().err and (tmp_path / "out.parquet").exists()
