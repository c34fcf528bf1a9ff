"""The embeddings Parquet file (embed stage -> train stage): one row per (caption, facet).

Columns: ``key`` (the image), ``source`` (the caption's label, :func:`pipeline.io.captions.caption_label`),
``facet`` (the facet name) and ``embedding`` (a fixed-size list of D float16, L2-normalised unless the embed
settings say ``normalize: false``). An image's rows follow its captions in source order (raw, short, long) and each
caption's facets in template order, so captions of different sources may have different facet counts without
padding. The metadata (``flame``) records the text side (:data:`TEXT_SIDE_KEYS`: LLM, revision, the LLM's content
identity, layer, mode, caption limit, layout, every source's template and their hash, D, normalisation, sources)
plus dtype, the shard the captions were made from (``shard``, checked by training), the captions file, counts,
skipped captions, seconds and provenance.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.io.captions import label_source
from pipeline.io.parquet import named_errors, write_parquet

#: Bump when the layout or meaning of the file changes: a rule param, so the stage reruns after such a release.
VERSION = 3
#: The metadata that defines what the vectors mean; every embeddings file of one training must agree on it.
TEXT_SIDE_KEYS = ("llm", "revision", "llm_identity", "layer", "mode", "max_caption_tokens", "layout", "templates",
                  "prompts_hash", "dim", "normalized", "sources")
# Row groups of ~32 MiB: training reads one group at a time (about 3300 rows of 5120 float16 for Mistral-Nemo).
ROW_GROUP_BYTES = 32 << 20


def text_side(metadata: dict) -> dict:
    """The :data:`TEXT_SIDE_KEYS` of an embeddings file's metadata (None where absent)."""
    return {key: metadata.get(key) for key in TEXT_SIDE_KEYS}


def write_embeddings(rows: Sequence[tuple[str, str, str]], vectors: np.ndarray, out: Path, metadata: dict) -> None:
    """Write ``rows`` (key, source label, facet) with their ``vectors`` ``[len(rows), D]`` float16 to ``out``
    (atomic), with ``metadata``."""
    dim = vectors.shape[1]
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float16).reshape(-1), type=pa.float16())
    table = pa.table({"key": pa.array([r[0] for r in rows], pa.string()),
                      "source": pa.array([r[1] for r in rows], pa.string()),
                      "facet": pa.array([r[2] for r in rows], pa.string()),
                      "embedding": pa.FixedSizeListArray.from_arrays(flat, dim)})
    write_parquet(table, out, metadata, row_group_bytes=ROW_GROUP_BYTES)


def embedding_array(column: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    """An ``embedding`` column (fixed-size lists of D float16) as ``[N, D]`` float16."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)


def embedding_dim(path: Path) -> int:
    """D of an embeddings file (from its schema)."""
    with named_errors(path):
        return pq.read_schema(path).field("embedding").type.list_size


def read_embeddings(path: Path) -> tuple[pa.Table, np.ndarray]:
    """``(table of key, source, facet; embeddings [N, D] float16)`` of an embeddings file."""
    with named_errors(path):
        table = pq.read_table(path)
    return table.select(["key", "source", "facet"]), embedding_array(table.column("embedding"), embedding_dim(path))


class EmbeddingRows:
    """One embeddings Parquet file opened for lookups: key -> its rows among ``sources`` (and of ``facets``, unless
    None) as ``(row, caption label, facet)``, and vectors read a row group at a time (rows are in the shard's sample
    order, so reading a shard in order decodes each row group once)."""

    def __init__(self, path: Path, sources: list[str], facets: tuple[str, ...] | None = None):
        self.path = path
        with named_errors(path):
            self.file = pq.ParquetFile(path)
            table = self.file.read(columns=["key", "source", "facet"])
        self.dim = self.file.schema_arrow.field("embedding").type.list_size
        self.rows: dict[str, list[tuple[int, str, str]]] = {}
        for row, (key, label, facet) in enumerate(zip(*(table[c].to_pylist() for c in ("key", "source", "facet")))):
            if label_source(label) in sources and (facets is None or facet in facets):
                self.rows.setdefault(key, []).append((row, label, facet))
        sizes = [self.file.metadata.row_group(g).num_rows for g in range(self.file.num_row_groups)]
        self.group_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
        self._group, self._vectors = -1, np.empty((0, self.dim), np.float16)

    def vector(self, row: int) -> np.ndarray:
        """Row ``row`` as a ``[D]`` float16 array (a copy: it does not pin the row group)."""
        group = bisect_right(self.group_starts, row) - 1
        if group != self._group:
            with named_errors(self.path):
                column = self.file.read_row_group(group, columns=["embedding"]).column("embedding")
            self._group, self._vectors = group, embedding_array(column, self.dim)
        return self._vectors[row - self.group_starts[group]].copy()
