"""Training samples: micro-batches of (images, targets) streamed from (image tar, texts Parquet) pairs: FLAME's
targets are precomputed embedding rows (:class:`FacetTargets`), the CLIP baseline's are caption token ids
(:class:`CaptionTexts`).

The design is webdataset's resampled shards with a fixed epoch length (open_clip's ``--dataset-resampled``):

- A process's micro-batches of an epoch are numbered 0..M-1 and dealt round-robin to W *streams* (W = loader
  workers; batch i belongs to stream i mod W). A stream draws shards uniformly at random (with replacement) from
  every pair, reads each shard's samples in order, draws the image's target (restricted to the training sources,
  chosen at random), shuffles the (encoded image bytes, target) samples in a buffer
  (``webdataset.shuffle``), and only then decodes and crops them. Every process runs exactly M micro-batches per
  epoch whatever the shard sizes, so ranks never wait for each other at an epoch end.
- Everything random in a stream comes from one ``random.Random`` seeded by (seed, epoch, rank, stream), and a
  sample's crop from its own seed drawn there, so a stream is a pure function of those and of how many samples it
  has handed out (its *position*). A checkpoint stores each stream's position; resuming replays the raw stream up
  to it without decoding, which makes mid-epoch resume exact.
- Samples without a text (empty caption, missing key) and undecodable images are skipped and counted;
  a batch is always full.
- With ``data_fraction`` below 1, a shard's samples outside its :func:`image_subset` are passed over before
  anything is drawn for them, as if the shard held only the subset.

Memory per loader worker: the shuffle buffer (``shuffle_buffer`` x (encoded image + S x D float16 target)), one row
group of one embeddings file, and one shard's key index.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

import numpy as np
import torch
import webdataset
from torch.utils.data import IterableDataset, get_worker_info

from pipeline.io.captions import iter_captions, label_source
from pipeline.io.embeddings import EmbeddingRows
from pipeline.io.shards import decode_image, iter_shard
from pipeline.train.transforms import train_transform


def image_subset(keys: Iterable[str], fraction: float) -> set[str]:
    """The ``fraction`` of a shard's image ``keys`` a model trains on: the ``round(fraction * n)`` (at least one of
    a non-empty shard) first in the order of the SHA-256 of the key. It depends on the keys only, so every model and
    seed gets the same images, and a smaller fraction's subset is inside a larger one's."""
    ordered = sorted(set(keys), key=lambda key: (hashlib.sha256(key.encode()).digest(), key))
    return set(ordered[:max(1, round(fraction * len(ordered)))] if ordered else [])


@dataclass(frozen=True)
class ShardPair:
    """An image shard and its texts (made from it): the embeddings Parquet (FLAME) or the captions Parquet (the
    CLIP baseline)."""

    tar: Path
    texts: Path


@dataclass(frozen=True)
class FacetTargets:
    """FLAME's targets: an image's embedding rows, drawn per ``objective`` into ``slots`` text slots.

    ``info_nce`` with ``texts`` ``every_source`` (the paper's Eq. 1): one caption of every source the image has
    (uniformly among that source's captions); its facets fill the slots named ``<source>:<facet>``. With
    ``one_caption``: one caption, uniformly among all its captions in ``sources``; its facets fill the slots named
    by facet (a short caption's description row and a long caption's share a slot). Slots without a row are masked.
    ``sigmoid_multi_positive``: ``len(slots)`` distinct rows uniformly among all the image's rows in ``sources`` (all
    of them, the rest masked, when it has fewer). ``facets`` (None: all) keeps only the rows of those facets. A target
    is ``(vectors [S, D] float16, mask [S] bool)``.
    """

    sources: list[str]
    objective: str
    slots: tuple[str, ...]
    facets: tuple[str, ...] | None = None
    texts: str = "every_source"

    def open(self, path: Path) -> EmbeddingRows:
        return EmbeddingRows(path, self.sources, self.facets)

    def keys(self, table: EmbeddingRows) -> list[str]:
        """The images of the table with at least one row among the sources (and facets)."""
        return [key for key, rows in table.rows.items() if rows]

    def draw(self, table: EmbeddingRows, key: str, rng: random.Random) -> tuple[np.ndarray, np.ndarray] | None:
        rows = table.rows.get(key)
        if not rows:
            return None
        vectors = np.zeros((len(self.slots), table.dim), np.float16)
        mask = np.zeros(len(self.slots), bool)
        if self.objective == "info_nce" and self.texts == "every_source":
            labels: dict[str, set[str]] = {}
            for _, label, _ in rows:
                labels.setdefault(label_source(label), set()).add(label)
            chosen = {rng.choice(sorted(labels[source])) for source in sorted(labels)}
            for row, label, facet in (r for r in rows if r[1] in chosen):
                slot = self.slots.index(f"{label_source(label)}:{facet}")
                vectors[slot], mask[slot] = table.vector(row), True
        elif self.objective == "info_nce":
            label = rng.choice(sorted({label for _, label, _ in rows}))
            for row, _, facet in (r for r in rows if r[1] == label):
                slot = self.slots.index(facet)
                vectors[slot], mask[slot] = table.vector(row), True
        else:
            for slot, (row, _, _) in enumerate(rng.sample(rows, min(len(rows), len(self.slots)))):
                vectors[slot], mask[slot] = table.vector(row), True
        return vectors, mask


@dataclass(frozen=True)
class CaptionTexts:
    """The CLIP baseline's targets: one caption of the image, uniformly among its non-empty captions in
    ``sources``, as open_clip token ids ``[context_length]`` int64 (longer captions are cut, as open_clip does)."""

    sources: list[str]
    context_length: int

    def _captions(self, path: Path) -> dict[str, list[str]]:
        captions: dict[str, list[str]] = {}
        for key, _, text in iter_captions(path, self.sources, order=self.sources):
            if text.strip():
                captions.setdefault(key, []).append(text.strip())
        return captions

    def open(self, path: Path) -> dict[str, list[str]]:
        return self._captions(path)

    def keys(self, table: dict[str, list[str]]) -> list[str]:
        """The images with at least one non-empty caption among the sources."""
        return list(table)

    def draw(self, table: dict[str, list[str]], key: str, rng: random.Random) -> tuple[np.ndarray, None] | None:
        texts = table.get(key)
        if not texts:
            return None
        return _clip_tokenizer(self.context_length)(rng.choice(texts))[0].numpy(), None


@cache
def _clip_tokenizer(context_length: int):
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer(context_length=context_length)


def images_used(targets: FacetTargets | CaptionTexts, path: Path, fraction: float = 1.0) -> int:
    """How many images of the texts file at ``path`` a model trains on: those with a text, cut to ``fraction``."""
    keys = targets.keys(targets.open(path))
    return len(image_subset(keys, fraction)) if fraction < 1 else len(keys)


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
    """One micro-batch: ``images [B, 3, S, S]`` float32; ``targets``: ``[B, S, D]`` float32 text embeddings with
    ``mask [B, S]`` bool (FLAME), or ``[B, L]`` int64 token ids with ``mask`` None (CLIP); and its stream's state
    after it (a copy)."""

    images: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor | None
    stream: int
    state: StreamState


@dataclass
class _Raw:
    image: bytes | None
    target: tuple[np.ndarray, np.ndarray | None] | None
    seed: int


@dataclass
class TrainStream(IterableDataset):
    """This process's micro-batches of one epoch; call :meth:`start_epoch` before each ``iter(DataLoader(...))``.

    ``batches_per_epoch``: micro-batches this process runs per epoch (the same on every process);
    ``data_fraction``: the fraction of each shard's images used (:func:`image_subset`).
    """

    pairs: list[ShardPair]
    targets: FacetTargets | CaptionTexts
    image_size: int
    batch_size: int
    shuffle_buffer: int
    seed: int
    rank: int
    batches_per_epoch: int
    data_fraction: float = 1.0
    epoch: int = 0
    done: int = 0
    resume: dict[int, StreamState] = field(default_factory=dict)

    def start_epoch(self, epoch: int, done: int = 0, resume: dict[int, StreamState] | None = None) -> None:
        """Iterate ``epoch`` from micro-batch ``done`` on, each stream continuing from its state in ``resume``."""
        self.epoch, self.done, self.resume = epoch, done, dict(resume or {})

    def _raw_samples(self, rng: random.Random) -> Iterator[_Raw]:
        """Resampled shards, samples in shard order, each with its target drawn (None: the image has no text)."""
        while True:
            pair = rng.choice(self.pairs)
            table, matched = self.targets.open(pair.texts), 0
            kept = image_subset(self.targets.keys(table), self.data_fraction) if self.data_fraction < 1 else None
            for sample in iter_shard(pair.tar):
                if kept is not None and sample.key not in kept:
                    continue
                target = self.targets.draw(table, sample.key, rng)
                matched += target is not None
                yield _Raw(sample.image_bytes, target, rng.getrandbits(64))
            if not matched:
                raise ValueError(f"no sample of {pair.tar} has a text for sources {self.targets.sources} in "
                                 f"{pair.texts}: the shard and its texts do not match")

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
            images, targets, masks = [], [], []
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
                values, mask = raw.target
                targets.append(torch.from_numpy(values.astype(np.float32) if values.dtype == np.float16 else values))
                masks.append(None if mask is None else torch.from_numpy(mask))
            yield Batch(torch.stack(images), torch.stack(targets), None if masks[0] is None else torch.stack(masks),
                        stream, replace(state))
