"""`train.precision: bf16` (the real configs' setting) checked on CPU: accelerate's bf16 autocast runs the forward
pass in bf16, the loss falls as in float32, and the weights stay float32 (only the compute is bf16)."""

import csv

import numpy as np
import torch
from accelerate.state import AcceleratorState

from fixtures.training import TINY_VISION, write_training_pairs
from pipeline.train.data import ShardPair
from pipeline.train.loop import train
from pipeline.train.model import load_flame_model
from pipeline.train.settings import FlameSettings, TrainExecution


def _losses(model_dir) -> list[float]:
    with (model_dir / "train_metrics.csv").open() as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


def test_bf16_autocast_trains_on_cpu_with_float32_weights(tmp_path):
    pairs = [ShardPair(tar, parquet) for tar, parquet in write_training_pairs(tmp_path)]
    doc = dict(vision=TINY_VISION, sources=["raw"], epochs=6, batch_size=8, lr=3e-3, weight_decay=0.0,
               shuffle_buffer=8)
    run = TrainExecution(num_workers=0, checkpoint_every=100)
    for precision in ("no", "bf16"):
        AcceleratorState._reset_state(reset_partial_state=True)  # one process, two mixed-precision settings
        train(pairs, tmp_path / precision, tmp_path / f"state-{precision}",
              FlameSettings.from_document({**doc, "precision": precision}), run)
    full, half = _losses(tmp_path / "no"), _losses(tmp_path / "bf16")
    assert np.mean(half[-4:]) < 0.7 * np.mean(half[:4])  # it learns
    assert half != full  # the compute was bf16: other rounding, other losses
    assert np.allclose(half[:1], full[:1], rtol=0.05)  # the same first step, to bf16's precision
    model, _ = load_flame_model(tmp_path / "bf16")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
