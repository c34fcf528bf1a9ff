"""Train stage: FLAME (the vision tower + projector against every shard's precomputed facet embeddings) or the
open_clip CLIP baseline (against the shards' captions), one training loop for both (:mod:`pipeline.train.loop`).
Run it in N processes with ``accelerate launch`` (:mod:`pipeline.train.launch`); every process calls :func:`run`."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pipeline.io.locks import single_writer
from pipeline.io.shards import shard_name
from pipeline.train.data import ShardPair
from pipeline.train.loop import train
from pipeline.train.settings import ClipSettings, FlameSettings, TrainExecution

#: What each model kind trains against, per shard.
TEXTS = {"flame": "embeddings", "clip": "captions"}


def pair_shards(shards: list[Path], texts: list[Path], what: str = "embeddings") -> list[ShardPair]:
    """Pair every shard with the texts file (``what``: embeddings or captions) of the same shard name; raises
    naming an unpaired shard."""
    by_name = {shard_name(p): Path(p) for p in texts}
    pairs = []
    for shard in shards:
        if shard_name(shard) not in by_name:
            raise FileNotFoundError(f"no {what} file for shard {shard} among the {what} files given")
        pairs.append(ShardPair(Path(shard), by_name[shard_name(shard)]))
    return pairs


def run(kind: str, shards: list[Path], texts: list[Path], out: Path, state_dir: Path, settings: dict,
        execution: dict) -> dict:
    """Train a model of ``kind`` (``flame``: ``texts`` are embeddings files; ``clip``: captions files) on the shards
    and save it to ``out``; resumable from ``state_dir``. ``settings``: a ``train_settings`` (FLAME) or
    ``clip_settings`` (CLIP) document, defaults filled in here; ``execution``: a validated ``train_execution``
    document. Returns the training summary."""
    typed = (ClipSettings if kind == "clip" else FlameSettings).from_document(settings, "--settings")
    pairs = pair_shards(shards, texts, TEXTS[kind])
    # one training per state directory: the first process of a launch holds the lock for all of them
    with single_writer(state_dir) if os.environ.get("RANK", "0") == "0" else contextlib.nullcontext():
        return train(pairs, out, state_dir, typed, TrainExecution(**execution))
