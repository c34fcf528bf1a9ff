"""Training samples: micro-batches of (images, facet targets) streamed from (image tar, embeddings Parquet) pairs.

The design is webdataset's resampled shards with a fixed epoch length (open_clip's ``--dataset-resampled``):

- A process's micro-batches of an epoch are numbered 0..M-1 and dealt round-robin to W *streams* (W = loader
  workers; batch i belongs to stream i mod W). A stream draws shards uniformly at random (with replacement) from
  every pair, reads each shard's samples in order, looks up one of the image's embedding rows (restricted to the
  training sources, chosen at random), shuffles the (encoded image bytes, target) samples in a buffer
  (``webdataset.shuffle``), and only then decodes and crops them. Every process runs exactly M micro-batches per
  epoch whatever the shard sizes, so ranks never wait for each other at an epoch end.
- Everything random in a stream comes from one ``random.Random`` seeded by (seed, epoch, rank, stream), and a
  sample's crop from its own seed drawn there, so a stream is a pure function of those and of how many samples it
  has handed out (its *position*). A checkpoint stores each stream's position; resuming replays the raw stream up
  to it without decoding, which makes mid-epoch resume exact.
- Samples without an embedding row (empty caption, missing key) and undecodable images are skipped and counted;
  a batch is always full.

Memory per loader worker: the shuffle buffer (``shuffle_buffer`` x (encoded image + K x D float16 target)), one row
group of one embeddings file, and one shard's key index.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
import webdataset
from torch.utils.data import IterableDataset, get_worker_info

from pipeline.data import decode_image, iter_shard, read_parquet_metadata
from pipeline.embed_shard import embedding_array
from pipeline.transforms import train_transform


@dataclass(frozen=True)
class ShardPair:
    """An image shard and the embeddings of its captions (same shard name)."""

    tar: Path
    embeddings: Path


def _source_kind(label: str) -> str:
    """``"long_3"`` -> ``"long"``: the caption source of an embeddings row label."""
    return label.split("_")[0]


def count_images(pairs: list[ShardPair], sources: list[str]) -> int:
    """Images with at least one embedding row among ``sources`` over all pairs (reads the key/source columns)."""
    total = 0
    for pair in pairs:
        table = pq.read_table(pair.embeddings, columns=["key", "source"])
        total += len({key for key, label in zip(table["key"].to_pylist(), table["source"].to_pylist())
                      if _source_kind(label) in sources})
    return total


class EmbeddingRows:
    """One embeddings Parquet file opened for lookups: key -> row numbers, and rows read a row group at a time.

    Rows are in the shard's sample order, so reading a shard in order decodes each row group once.
    """

    def __init__(self, path: Path, sources: list[str]):
        meta = read_parquet_metadata(path)
        self.shape = (meta["num_facets"], meta["dim"])
        self.file = pq.ParquetFile(path)
        table = self.file.read(columns=["key", "source"])
        self.rows: dict[str, list[int]] = {}
        for row, (key, label) in enumerate(zip(table["key"].to_pylist(), table["source"].to_pylist())):
            if _source_kind(label) in sources:
                self.rows.setdefault(key, []).append(row)
        sizes = [self.file.metadata.row_group(g).num_rows for g in range(self.file.num_row_groups)]
        self.group_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
        self._group, self._vectors = -1, np.empty((0, *self.shape), np.float16)

    def vector(self, row: int) -> np.ndarray:
        """Row ``row`` as a ``[K, D]`` float16 array (a copy: it does not pin the row group)."""
        group = bisect_right(self.group_starts, row) - 1
        if group != self._group:
            column = self.file.read_row_group(group, columns=["embedding"]).column("embedding")
            self._group, self._vectors = group, embedding_array(column, *self.shape)
        return self._vectors[row - self.group_starts[group]].copy()


@dataclass
class StreamState:
    """A stream's progress in an epoch: samples taken from its shuffled stream, and how many were skipped."""

    position: int = 0
    missing: int = 0      # no embedding row for the image (empty caption, missing key)
    unreadable: int = 0   # image bytes missing or undecodable

    def as_list(self) -> list[int]:
        return [self.position, self.missing, self.unreadable]


@dataclass
class Batch:
    """One micro-batch: ``images [B, 3, S, S]`` float32, ``targets [B, K, D]`` float32, and its stream's state
    after it (a copy)."""

    images: torch.Tensor
    targets: torch.Tensor
    stream: int
    state: StreamState


@dataclass
class _Raw:
    image: bytes | None
    target: np.ndarray | None
    seed: int


@dataclass
class TrainStream(IterableDataset):
    """This process's micro-batches of one epoch; call :meth:`start_epoch` before each ``iter(DataLoader(...))``.

    ``batches_per_epoch``: micro-batches this process runs per epoch (the same on every process).
    """

    pairs: list[ShardPair]
    sources: list[str]
    image_size: int
    batch_size: int
    shuffle_buffer: int
    seed: int
    rank: int
    batches_per_epoch: int
    epoch: int = 0
    done: int = 0
    resume: dict[int, StreamState] = field(default_factory=dict)

    def start_epoch(self, epoch: int, done: int = 0, resume: dict[int, StreamState] | None = None) -> None:
        """Iterate ``epoch`` from micro-batch ``done`` on, each stream continuing from its state in ``resume``."""
        self.epoch, self.done, self.resume = epoch, done, dict(resume or {})

    def _raw_samples(self, rng: random.Random) -> Iterator[_Raw]:
        """Resampled shards, samples in shard order, each with one target drawn among its rows (or None)."""
        while True:
            pair = rng.choice(self.pairs)
            rows, matched = EmbeddingRows(pair.embeddings, self.sources), 0
            for sample in iter_shard(pair.tar):
                candidates = rows.rows.get(sample.key)
                matched += bool(candidates)
                target = rows.vector(rng.choice(candidates)) if candidates else None
                yield _Raw(sample.image_bytes, target, rng.getrandbits(64))
            if not matched:
                raise ValueError(f"no sample of {pair.tar} has an embedding row for sources {self.sources} in "
                                 f"{pair.embeddings}: the shard and its embeddings do not match")

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        stream = (self.done + worker) % workers  # batches leave the loader round-robin from worker 0
        remaining = len(range(self.done + worker, self.batches_per_epoch, workers))
        state = replace(self.resume.get(stream, StreamState()))  # a copy: the resume states are not changed
        rng = random.Random(f"flame-train/{self.seed}/{self.epoch}/{self.rank}/{stream}")
        samples = webdataset.shuffle(self.shuffle_buffer, self.shuffle_buffer, rng=rng)(self._raw_samples(rng))
        for _ in range(state.position):
            next(samples)
        for _ in range(remaining):
            images, targets = [], []
            while len(images) < self.batch_size:
                raw = next(samples)
                state.position += 1
                if raw.target is None:
                    state.missing += 1
                    continue
                image = decode_image(raw.image)
                if image is None:
                    state.unreadable += 1
                    continue
                images.append(train_transform(image, self.image_size, random.Random(raw.seed)))
                targets.append(torch.from_numpy(raw.target.astype(np.float32)))
            yield Batch(torch.stack(images), torch.stack(targets), stream, replace(state))
