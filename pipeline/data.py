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
import re
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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
        """The image member's bytes: the first whose extension's last part is an image type (``jpg``,
        ``b.jpg`` ...), as webdataset's decoders match them."""
        found = {ext.rsplit(".", 1)[-1]: data for ext, data in self.members.items()}
        return next((found[e] for e in IMAGE_EXTENSIONS if e in found), None)

    def text(self, ext: str = "txt") -> str:
        """The member ``ext`` as stripped text ("" when absent); raises :class:`BadSample` if it is not UTF-8."""
        try:
            return self.members.get(ext, b"").decode("utf-8").strip()
        except UnicodeDecodeError as err:
            raise BadSample(f"{ext} not UTF-8", f"{self.key}.{ext} is not UTF-8 ({err.reason})") from err

    def json(self) -> dict:
        """The ``json`` member as an object ({} when absent); raises :class:`BadSample` if it is malformed."""
        if "json" not in self.members:
            return {}
        try:
            value = json.loads(self.members["json"])
        except ValueError as err:
            raise BadSample("malformed json", f"{self.key}.json is not JSON ({err})") from err
        if not isinstance(value, dict):
            raise BadSample("malformed json", f"{self.key}.json holds a {type(value).__name__}, not an object")
        return value


class BadSample(ValueError):
    """One sample that cannot be used: ``reason`` (short, for counting) and the message naming the member."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


#: A tar member name -> (key, extension), as webdataset groups them: the key is the path up to the first dot of the
#: file name (folders included), the extension the rest.
MEMBER_NAME = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")


def iter_shard(path: str | Path) -> Iterator[Sample]:
    """Samples of a webdataset tar in file order; consecutive members with the same key (:data:`MEMBER_NAME`) are
    one sample. Members without an extension are ignored, as webdataset does."""
    current: Sample | None = None
    with tarfile.open(path, "r") as tar:
        for member in tar:
            match = MEMBER_NAME.match(member.name)
            if not member.isfile() or not match:
                continue
            key, ext = match.groups()
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
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit greyscale: convert("RGB") would clip at 255
                img = Image.fromarray((np.asarray(img, dtype=np.int64).clip(0, 65535) >> 8).astype(np.uint8))
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


def file_identity(path: Path) -> dict:
    """What tells a changed input file apart cheaply: its name, size and modification time (ns)."""
    stat = path.stat()
    return {"name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def current_umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(final: str | Path):
    """Yields a temporary path beside ``final``; renamed onto ``final`` only if the block completes."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; the output gets a normal file's mode
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
