"""Training on hand-made shards whose targets are separable: the loss falls, errors name shard and key, resume."""

import json

import numpy as np
import pyarrow as pa
import pytest
import torch

from helpers import write_shard
from pipeline.data import write_parquet
from pipeline.model import FlameVisionModel
from pipeline.train import TrainConfig, train

COLORS = [(220, 20, 20), (20, 220, 20), (20, 20, 220), (230, 230, 20)]
VISION = {"model": "vit_tiny_patch16_224", "image_size": 32, "patch_size": 8,
          "kwargs": {"embed_dim": 32, "depth": 1, "num_heads": 2}}


def make_pairs(tmp_path, n_shards=2, per_shard=16, drop_key=None):
    """Shards of coloured squares; each image's 2-facet target is a fixed random unit vector of its colour."""
    rng = np.random.default_rng(0)
    targets = rng.normal(size=(len(COLORS), 2, 16)).astype(np.float32)
    targets /= np.linalg.norm(targets, axis=-1, keepdims=True)
    pairs = []
    for s in range(n_shards):
        samples = [{"key": f"{s}{i:03d}", "color": COLORS[i % len(COLORS)]} for i in range(per_shard)]
        tar = write_shard(tmp_path / "shards" / f"shard-{s:05d}.tar", samples)
        keys = [x["key"] for x in samples if x["key"] != drop_key]
        emb = np.stack([targets[int(k[1:]) % len(COLORS)] for k in keys]).astype(np.float16)
        table = pa.table({"key": keys, "source": ["raw"] * len(keys),
                          "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), 32)})
        parquet = tmp_path / "emb" / f"shard-{s:05d}.parquet"
        write_parquet(table, parquet, {"num_facets": 2, "dim": 16, "llm": "none", "layer": -1,
                                       "facets": ["a", "b"]})
        pairs.append((tar, parquet))
    return pairs


def config(**overrides):
    base = dict(vision=VISION, sources=["raw"], epochs=6, batch_size=8, lr=3e-3, weight_decay=0.0, shuffle_buffer=8)
    base.update(overrides)
    return TrainConfig(**base)


def test_loss_falls_and_model_round_trips(tmp_path):
    pairs = make_pairs(tmp_path)
    summary = train(pairs, tmp_path / "model", tmp_path / "state", config())
    log = [json.loads(line) for line in (tmp_path / "model" / "train_log.jsonl").read_text().splitlines()]
    assert summary["steps"] == len(log) == 6 * 4
    first, last = np.mean([r["loss"] for r in log[:4]]), np.mean([r["loss"] for r in log[-4:]])
    assert last < 0.7 * first
    model, cfg = FlameVisionModel.load(tmp_path / "model")
    assert cfg["dim"] == 16 and cfg["text"]["facets"] == ["a", "b"]
    out = model(torch.randn(3, 3, 32, 32))
    assert out.shape == (3, 16) and torch.allclose(out.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_missing_embedding_names_shard_and_key(tmp_path):
    pairs = make_pairs(tmp_path, n_shards=1, drop_key="0005")
    with pytest.raises(KeyError, match=r"shard-00000.tar.*'0005'"):
        train(pairs, tmp_path / "model", tmp_path / "state", config(epochs=1))


def test_rerun_resumes_after_the_last_finished_epoch(tmp_path):
    pairs = make_pairs(tmp_path, n_shards=1)
    train(pairs, tmp_path / "model", tmp_path / "state", config(epochs=2))
    first = (tmp_path / "model" / "model.safetensors").read_bytes()
    summary = train(pairs, tmp_path / "model2", tmp_path / "state", config(epochs=2))
    assert summary["steps"] == 4  # nothing left to do: both epochs were checkpointed
    assert (tmp_path / "model2" / "model.safetensors").read_bytes() == first
    changed = train(pairs, tmp_path / "model3", tmp_path / "state", config(epochs=2, lr=1e-3))
    assert changed["steps"] == 4 and (tmp_path / "model3" / "model.safetensors").read_bytes() != first
