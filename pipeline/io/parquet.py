"""What every Parquet file of the pipeline shares: written atomically, its provenance and counts as JSON under the
schema metadata key ``flame``, and read under :func:`named_errors` (a corrupt file is named). The column layouts
are the formats' own (:mod:`pipeline.io.captions`, :mod:`pipeline.io.embeddings`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.io.atomic import atomic_path

METADATA_KEY = b"flame"


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


@contextmanager
def named_errors(path: str | Path) -> Iterator[None]:
    """Re-raise pyarrow's error on a corrupt or truncated Parquet file (footer, page header, compressed data) as a
    ``ValueError`` naming ``path``; a missing file stays ``FileNotFoundError``."""
    try:
        yield
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as err:
        raise ValueError(f"{path}: not a readable Parquet file ({err})") from err


def read_parquet_metadata(path: str | Path, required: bool = True) -> dict:
    """The ``flame`` metadata of a Parquet file written by :func:`write_parquet` ({} for another file, unless
    ``required``: then an error)."""
    with named_errors(path):
        meta = pq.read_schema(path).metadata or {}
    if METADATA_KEY not in meta and not required:
        return {}
    if METADATA_KEY not in meta:
        raise ValueError(f"{path}: no '{METADATA_KEY.decode()}' metadata; not written by flame")
    return json.loads(meta[METADATA_KEY])
