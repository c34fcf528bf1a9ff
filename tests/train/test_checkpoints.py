"""Checkpoints without code: a pickle planted in a state directory (shared scratch, resumed by an automatic retry)
never runs; resume refuses the checkpoint, naming the file."""

import shutil

import pytest
import torch

from fixtures.training import TINY_VISION, write_training_pairs
from pipeline.train.data import ShardPair
from pipeline.train.loop import train
from pipeline.train.settings import FlameSettings, TrainExecution

SETTINGS = dict(vision=TINY_VISION, sources=["raw"], epochs=2, batch_size=8, lr=3e-3, shuffle_buffer=8)
RUN = TrainExecution(num_workers=0, checkpoint_every=100)
WRITTEN = {"model.safetensors", "optimizer.bin", "random_states_0.pkl", "progress.json", "scheduler.json"}


class Planted:
    """Unpickled, it creates the file ``marker``: any code could run there."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished training: its pairs and state directory (checkpoints of the last step)."""
    root = tmp_path_factory.mktemp("trained")
    pairs = [ShardPair(tar, parquet) for tar, parquet in write_training_pairs(root)]
    train(pairs, root / "model", root / "state", FlameSettings.from_document(SETTINGS), RUN)
    return pairs, root / "state"


def _latest(state):
    return sorted((state / "checkpoints").glob("step-*"))[-1]


def test_a_checkpoint_holds_only_safetensors_json_and_weights_only_tensors(trained):
    _, state = trained
    assert {p.name for p in _latest(state).iterdir()} == WRITTEN


@pytest.mark.parametrize("name", [*sorted(WRITTEN), "custom_checkpoint_0.pkl", "pytorch_model.bin"])
def test_a_planted_pickle_never_runs_and_resume_refuses_naming_it(trained, tmp_path, name):
    pairs, trained_state = trained
    state = tmp_path / "state"
    shutil.copytree(trained_state, state)
    marker = tmp_path / "PWNED"
    torch.save(Planted(marker), _latest(state) / name)
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        train(pairs, tmp_path / "model", state, FlameSettings.from_document(SETTINGS), RUN)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["fingerprint.json", "metrics.csv"])
def test_a_planted_pickle_beside_the_checkpoints_never_runs_and_resume_refuses_naming_it(trained, tmp_path, name):
    pairs, trained_state = trained
    state = tmp_path / "state"
    shutil.copytree(trained_state, state)
    marker = tmp_path / "PWNED"
    torch.save(Planted(marker), state / name)
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        train(pairs, tmp_path / "model", state, FlameSettings.from_document(SETTINGS), RUN)
    assert not marker.exists()
