"""Which texts file trains with which shard: the shard each file records it was made from, never its name; and
shards without a usable sample."""

import json
import shutil

import pytest

from fixtures.training import TINY_VISION, write_training_pairs
from pipeline.train import stage
from pipeline.train.stage import pair_shards

SETTINGS = {"vision": TINY_VISION, "sources": ["raw"], "epochs": 1, "batch_size": 8}
EXECUTION = {"num_workers": 0, "checkpoint_every": 100}


def test_files_pair_with_the_shard_they_were_made_from_whatever_their_names(tmp_path):
    """Swapped file names (each embeddings file named as the other shard's) pair by what they record: the shard
    whose keys they hold (by name they trained shard 0's images on shard 1's texts with `skipped: 0`)."""
    (tar0, emb0), (tar1, emb1) = write_training_pairs(tmp_path, sizes=(8, 8))
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    shutil.copy(emb0, swapped / emb1.name)
    shutil.copy(emb1, swapped / emb0.name)
    pairs = pair_shards([tar0, tar1], [swapped / emb0.name, swapped / emb1.name])
    assert [(p.tar, p.texts) for p in pairs] == [(tar0, swapped / emb1.name), (tar1, swapped / emb0.name)]


def test_a_pairing_that_cannot_be_right_is_refused_naming_the_files(tmp_path):
    (tar0, emb0), (tar1, emb1) = write_training_pairs(tmp_path, sizes=(8, 8))
    with pytest.raises(FileNotFoundError, match=rf"no embeddings file among the 1 given was made from shard {tar1}"):
        pair_shards([tar0, tar1], [emb0])
    with pytest.raises(ValueError, match=rf"not among --shards: {emb1} \(from {tar1}\)"):
        pair_shards([tar0], [emb0, emb1])
    shutil.copy(emb0, tmp_path / "again.parquet")
    with pytest.raises(ValueError, match=rf"{emb0} and {tmp_path}/again.parquet were both made from shard {tar0}"):
        pair_shards([tar0], [emb0, tmp_path / "again.parquet"])
    with tar1.open("ab") as handle:  # the shard changed after its texts were made
        handle.write(b"\0" * 10240)
    with pytest.raises(ValueError, match=rf"{emb1} was made from shard {tar1} when it had \d+ bytes; it now has"):
        pair_shards([tar0, tar1], [emb0, emb1])


def test_a_shard_without_a_usable_sample_is_skipped_from_the_start_or_refused(tmp_path):
    """A shard whose every caption was empty (0 embedding rows): training leaves it out before the first step and
    lists it (it used to stop at a random step with "the shard and its texts do not match", and every resume
    stopped at the same step); `empty_shards: error` stops before training; all shards empty is always an error."""
    pairs = write_training_pairs(tmp_path, sizes=(16, 8), no_embedding=[f"1{i:03d}" for i in range(8)])
    tars, texts = [t for t, _ in pairs], [e for _, e in pairs]
    summary = stage.run("flame", tars, texts, tmp_path / "m", tmp_path / "s", SETTINGS, EXECUTION)
    assert summary["empty_shards"] == [str(tars[1])] and summary["images_with_texts"] == 16
    assert json.loads((tmp_path / "m" / "train_summary.json").read_text())["steps"] == 2
    with pytest.raises(ValueError, match=rf"1 of 2 shards have no image with a text .*{tars[1]}"):
        stage.run("flame", tars, texts, tmp_path / "m2", tmp_path / "s2", SETTINGS, EXECUTION, empty_shards="error")
    with pytest.raises(ValueError, match=r"1 of 1 shards have no image with a text"):
        stage.run("flame", tars[1:], texts[1:], tmp_path / "m3", tmp_path / "s3", SETTINGS, EXECUTION)
