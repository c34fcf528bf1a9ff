"""Embed stage: a captions Parquet shard in, a facet-embeddings Parquet shard out.

Output rows: ``key``, ``source`` (``raw``, ``short_0``, ``long_1`` …: which caption of the image) and
``embedding``: a fixed-size list of K*D float16 (facet-major, reshape to ``[K, D]``), L2-normalised per facet unless
``normalize=False``. The schema metadata (``flame``) records the LLM id and revision, layer, facet names, prompt
texts and their hash, K, D, dtype and the counts (captions, empty, truncated, prefix_boundary_split).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pipeline.data import read_parquet_metadata, write_parquet
from pipeline.embed import FacetEmbedder
from pipeline.prompts import PREFIX, prompts_hash

SOURCES = ("raw", "short", "long")
# Row groups of ~32 MiB: training reads one group at a time (about 460 rows of 7 x 5120 float16 for Mistral-Nemo).
ROW_GROUP_BYTES = 32 << 20


def captions_to_embed(table: pa.Table, sources: list[str]) -> tuple[list[str], list[str], list[str], int]:
    """``(keys, source labels, captions, empty count)`` for the chosen caption sources of a captions table."""
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown caption sources {sorted(unknown)}; choose from {SOURCES}")
    keys, labels, texts, empty = [], [], [], 0
    columns = {name: table.column(name).to_pylist() for name in ("key", *sources)}
    for row, key in enumerate(columns["key"]):
        for source in sources:
            value = columns[source][row]
            captions = [(source, value)] if source == "raw" else [(f"{source}_{i}", v) for i, v in enumerate(value)]
            for label, text in captions:
                if not text or not text.strip():
                    empty += 1
                    continue
                keys.append(key)
                labels.append(label)
                texts.append(text.strip())
    return keys, labels, texts, empty


def embed_captions_file(captions_path: Path, out: Path, embedder: FacetEmbedder, sources: list[str],
                        normalize: bool = True, llm_meta: dict | None = None) -> Counter:
    """Embed the captions of ``captions_path`` into ``out`` (atomic write). Returns the counts."""
    table = pq.read_table(captions_path)
    keys, labels, texts, empty = captions_to_embed(table, sources)
    embedder.stats.clear()
    start = time.perf_counter()
    with tqdm(total=len(texts), desc=f"embed {captions_path.name}", unit="cap") as bar:
        def progress(n_captions: int, n_tokens: int) -> None:
            bar.update(n_captions)
            elapsed = time.perf_counter() - start
            bar.set_postfix(tok_per_s=f"{embedder.stats['prompt_tokens'] / max(elapsed, 1e-9):.0f}")

        vectors = embedder.encode(texts, progress=progress) if texts else torch.empty(0, embedder.num_facets,
                                                                                        embedder.hidden_size)
    if normalize:
        vectors = F.normalize(vectors, dim=-1)
    k, d = embedder.num_facets, embedder.hidden_size
    flat = pa.array(vectors.reshape(-1).numpy().astype(np.float16), type=pa.float16())
    embedding = pa.FixedSizeListArray.from_arrays(flat, k * d)
    out_table = pa.table({"key": pa.array(keys, pa.string()), "source": pa.array(labels, pa.string()),
                          "embedding": embedding})
    counts = Counter({"captions": len(texts), "empty": empty, "truncated": embedder.stats["truncated"],
                      "prefix_boundary_split": embedder.stats["prefix_boundary_split"],
                      "prompt_tokens": embedder.stats["prompt_tokens"]})
    metadata = {
        "stage": "embed", **(llm_meta or {}), "layer": embedder.layer, "mode": embedder.mode,
        "facets": list(embedder.facet_names), "prefix": PREFIX, "suffixes": list(embedder.suffixes),
        "prompts_hash": prompts_hash(embedder.facets), "num_facets": k, "dim": d, "dtype": "float16",
        "normalized": normalize, "sources": sources, "captions_file": str(captions_path), "counts": dict(counts),
        "seconds": round(time.perf_counter() - start, 3),
    }
    write_parquet(out_table, out, metadata, row_group_bytes=ROW_GROUP_BYTES)
    return counts


def embedding_array(column: pa.ChunkedArray, num_facets: int, dim: int) -> np.ndarray:
    """The ``embedding`` column (fixed-size lists of K*D float16) as ``[N, K, D]`` float16."""
    flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(-1, num_facets, dim)


def read_embeddings(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """``(keys, sources, embeddings[N, K, D] float16)`` of an embeddings Parquet file."""
    meta = read_parquet_metadata(path)
    table = pq.read_table(path)
    emb = embedding_array(table.column("embedding"), meta["num_facets"], meta["dim"])
    return table.column("key").to_pylist(), table.column("source").to_pylist(), emb
