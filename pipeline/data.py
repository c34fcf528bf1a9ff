"""Shards and tables: reading img2dataset webdataset shards, atomic Parquet/JSON writes.

A training shard is a tar in the img2dataset layout: per sample ``{key}.jpg`` (or ``.png``/``.webp``), ``{key}.txt``
(alt-text) and optionally ``{key}.json``. Parquet files carry their provenance as JSON under the schema metadata key
``flame``.
"""

from __future__ import annotations

import glob
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from braceexpand import braceexpand
from PIL import Image

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
METADATA_KEY = b"flame"


@dataclass
class Sample:
    """One webdataset sample: its key and the raw bytes of each member, by extension (``"jpg"``, ``"txt"`` …)."""

    key: str
    members: dict[str, bytes]

    @property
    def image_bytes(self) -> bytes | None:
        return next((self.members[e] for e in IMAGE_EXTENSIONS if e in self.members), None)

    def text(self, ext: str = "txt") -> str:
        return self.members.get(ext, b"").decode("utf-8").strip()

    def json(self) -> dict:
        return json.loads(self.members["json"]) if "json" in self.members else {}


def iter_shard(path: str | Path) -> Iterator[Sample]:
    """Samples of a webdataset tar in file order; members are grouped by key (the name up to the first dot)."""
    current: Sample | None = None
    with tarfile.open(path, "r") as tar:
        for member in tar:
            if not member.isfile():
                continue
            name = os.path.basename(member.name)
            key, _, ext = name.partition(".")
            if current is None or key != current.key:
                if current is not None:
                    yield current
                current = Sample(key=key, members={})
            current.members[ext.lower()] = tar.extractfile(member).read()
    if current is not None:
        yield current


def decode_image(data: bytes | None) -> Image.Image | None:
    """The RGB image in ``data``, or None when it is missing or cannot be decoded."""
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def expand_shards(pattern: str) -> list[Path]:
    """The sorted files matching ``pattern``: brace ranges (``{00000..00331}``) expanded first, then globs.

    Raises naming the pattern when nothing matches.
    """
    paths = sorted({Path(p) for part in braceexpand(pattern) for p in glob.glob(part)})
    if not paths:
        raise FileNotFoundError(f"shard glob {pattern!r} matches no file")
    return paths


def shard_name(path: str | Path) -> str:
    """A shard's name: its file name without extension (``.../shard-00003.tar`` -> ``shard-00003``)."""
    return Path(path).name.split(".")[0]


@contextmanager
def atomic_path(final: str | Path):
    """Yields a temporary path beside ``final``; renamed onto ``final`` only if the block completes."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_parquet(table: pa.Table, path: str | Path, metadata: dict, row_group_bytes: int | None = None) -> None:
    """Write ``table`` atomically with ``metadata`` (JSON) under the schema key ``flame``.

    ``row_group_bytes``: aim for row groups of about this many (uncompressed) bytes, so a reader can fetch rows
    without decoding the whole file; default: pyarrow's row count.
    """
    meta = dict(table.schema.metadata or {})
    meta[METADATA_KEY] = json.dumps(metadata, sort_keys=True).encode()
    rows = None
    if row_group_bytes is not None and len(table):
        rows = max(1, row_group_bytes * len(table) // max(1, table.nbytes))
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(meta), tmp, row_group_size=rows)


def read_parquet_metadata(path: str | Path) -> dict:
    """The ``flame`` metadata of a Parquet file written by :func:`write_parquet`."""
    meta = pq.read_schema(path).metadata or {}
    if METADATA_KEY not in meta:
        raise ValueError(f"{path}: no '{METADATA_KEY.decode()}' metadata; not written by flame")
    return json.loads(meta[METADATA_KEY])


def write_json(obj, path: str | Path) -> None:
    """Write ``obj`` as indented JSON (keys in insertion order), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
