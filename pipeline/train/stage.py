"""Train stage: FLAME (the vision tower + projector against every shard's precomputed facet embeddings) or the
open_clip CLIP baseline (against the shards' captions), one training loop for both (:mod:`pipeline.train.loop`).
Run it in N processes with ``accelerate launch`` (:mod:`pipeline.train.launch`); every process calls :func:`run`."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pipeline.io.locks import single_writer
from pipeline.io.parquet import read_parquet_metadata
from pipeline.io.shards import shard_identity
from pipeline.train.data import ShardPair
from pipeline.train.loop import listed, train
from pipeline.train.settings import ClipSettings, FlameSettings, TrainExecution

#: What each model kind trains against, per shard.
TEXTS = {"flame": "embeddings", "clip": "captions"}


def pair_shards(shards: list[Path], texts: list[Path], what: str = "embeddings") -> list[ShardPair]:
    """Pair every shard with the texts file (``what``: embeddings or captions) made from it, by the shard identity
    the file records (:func:`pipeline.io.shards.shard_identity`), whatever the files' names or order.

    Raises naming the files when a shard has no texts file, when two files were made from one shard, when a file
    was made from a shard not given, or when a shard changed since its texts were made (another size).
    """
    made_from: dict[str, tuple[Path, dict]] = {}
    for path in map(Path, texts):
        recorded = read_parquet_metadata(path).get("shard")
        if not isinstance(recorded, dict) or "path" not in recorded:
            raise ValueError(f"{path}: records no shard identity (written by an older release): rerun the caption "
                             "and embed stages")
        if recorded["path"] in made_from:
            raise ValueError(f"{made_from[recorded['path']][0]} and {path} were both made from shard "
                             f"{recorded['path']}")
        made_from[recorded["path"]] = (path, recorded)
    pairs = []
    for shard in map(Path, shards):
        identity = shard_identity(shard)
        if identity["path"] not in made_from:
            raise FileNotFoundError(f"no {what} file among the {len(texts)} given was made from shard {shard}")
        path, recorded = made_from.pop(identity["path"])
        if recorded["size"] != identity["size"]:
            raise ValueError(f"{path} was made from shard {shard} when it had {recorded['size']} bytes; it now has "
                             f"{identity['size']}: the shard changed, rerun the caption and embed stages")
        pairs.append(ShardPair(shard, path))
    if made_from:
        unpaired = [f"{path} (from {shard})" for shard, (path, _) in made_from.items()]
        raise ValueError(f"{what} files made from shards that are not among --shards: {listed(unpaired)}")
    return pairs


def run(kind: str, shards: list[Path], texts: list[Path], out: Path, state_dir: Path, settings: dict,
        execution: dict, empty_shards: str = "skip") -> dict:
    """Train a model of ``kind`` (``flame``: ``texts`` are embeddings files; ``clip``: captions files) on the shards
    and save it to ``out``; resumable from ``state_dir``. ``settings``: a ``train_settings`` (FLAME) or
    ``clip_settings`` (CLIP) document, defaults filled in here; ``execution``: a validated ``train_execution``
    document; ``empty_shards``: ``skip`` or ``error`` for shards without a usable sample. Returns the training
    summary."""
    typed = (ClipSettings if kind == "clip" else FlameSettings).from_document(settings, "--settings")
    # one training per state directory: the first process of a launch holds the lock for all of them
    with single_writer(state_dir) if os.environ.get("RANK", "0") == "0" else contextlib.nullcontext():
        pairs = pair_shards(shards, texts, TEXTS[kind])
        return train(pairs, out, state_dir, typed, TrainExecution(**execution), empty_shards)
