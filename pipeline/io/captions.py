"""The captions Parquet file (caption stage -> embed stage, CLIP baseline): one row per readable image of a shard.

Columns: ``key`` (the sample key in the shard), ``raw`` (its alt-text), ``long`` and ``short`` (lists of synthetic
captions). The metadata (``flame``) records the backend, model, revision, prompts, sampling, seed, the shard it was
made from (``shard``: :func:`pipeline.io.shards.shard_identity`, checked by training), the counts and the skipped
keys (key -> reason).

A caption of an image is named by its *label*: ``raw``, or ``<kind>_<i>`` for the i-th caption of kind ``short`` or
``long`` (``long_0``); the embeddings file keeps the label in its ``source`` column.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.io.parquet import named_errors, write_parquet

#: Bump when the layout or meaning of the file changes: a rule param, so the stage reruns after such a release.
VERSION = 3
SCHEMA = pa.schema([("key", pa.string()), ("raw", pa.string()), ("long", pa.list_(pa.string())),
                    ("short", pa.list_(pa.string()))])
#: The synthetic caption kinds (lists of captions per image).
KINDS = ("long", "short")


def caption_label(source: str, index: int | None = None) -> str:
    """The label of a caption: ``raw`` (index None), else ``<source>_<index>``."""
    return source if index is None else f"{source}_{index}"


def label_source(label: str) -> str:
    """The caption source of a label: ``long_1`` -> ``long``, ``raw`` -> ``raw``."""
    return label.split("_")[0]


def write_captions(rows: Sequence[dict], out: Path, metadata: dict) -> None:
    """Write the caption rows (dicts with every :data:`SCHEMA` column) to ``out`` atomically, with ``metadata``."""
    table = pa.table({name: [row[name] for row in rows] for name in SCHEMA.names}, schema=SCHEMA)
    write_parquet(table, out, metadata)


def iter_captions(path: Path, sources: Sequence[str], order: Sequence[str]) -> Iterator[tuple[str, str, str]]:
    """``(key, label, text)`` of every caption of ``sources`` in the file, image by image in file order and, within
    an image, sources in ``order`` (raw, short, long) then caption index. Texts are as stored (maybe empty)."""
    with named_errors(path):
        table = pq.read_table(path, columns=["key", *sources])
    columns = {name: table.column(name).to_pylist() for name in sources}
    for row, key in enumerate(table.column("key").to_pylist()):
        for source in (s for s in order if s in sources):
            value = columns[source][row]
            if source == "raw":
                yield key, caption_label(source), value or ""
            else:
                for i, text in enumerate(value or []):
                    yield key, caption_label(source, i), text or ""
