"""Embed stage: a captions Parquet shard in, a facet-embeddings Parquet shard out.

One row per (caption, facet), so captions of different sources can have different numbers of facets without
padding: ``key``, ``source`` (``raw``, ``short_0``, ``long_1`` …: which caption of the image), ``facet`` (the facet
name) and ``embedding`` (a fixed-size list of D float16, L2-normalised unless ``normalize=False``). An image's rows
follow its captions in source order (raw, short, long) and each caption's facets in template order: one raw, one
short and one long caption under the official layout give its 1 + 3 + 7 = 11 rows. The schema metadata (``flame``)
records the LLM id and revision, layer, the text layout with every source's template (prefix, facet names, suffixes,
cleaning) and their hash, D, dtype and the counts (captions, rows, empty, truncated, prefix_boundary_split).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pipeline.data import write_parquet
from pipeline.embed import FacetEmbedder
from pipeline.prompts import SOURCES, templates_hash

# Row groups of ~32 MiB: training reads one group at a time (about 3300 rows of 5120 float16 for Mistral-Nemo).
ROW_GROUP_BYTES = 32 << 20
STAT_KEYS = ("truncated", "prefix_boundary_split")  # FacetEmbedder counts summed over the sources


def captions_to_embed(table: pa.Table, sources: list[str]) -> tuple[list[str], list[str], list[str], int]:
    """``(keys, source labels, captions, empty count)`` for the chosen caption sources of a captions table."""
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown caption sources {sorted(unknown)}; choose from {SOURCES}")
    keys, labels, texts, empty = [], [], [], 0
    columns = {name: table.column(name).to_pylist() for name in ("key", *sources)}
    for row, key in enumerate(columns["key"]):
        for source in (s for s in SOURCES if s in sources):  # row order: raw, short, long
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


def _encode_by_source(labels: list[str], texts: list[str], embedders: Mapping[str, FacetEmbedder],
                      name: str) -> tuple[list[torch.Tensor], Counter]:
    """Every caption's ``[K_source, D]`` embeddings (in caption order) and the embedders' summed counts."""
    vectors: list[torch.Tensor | None] = [None] * len(texts)
    stats: Counter = Counter()
    start = time.perf_counter()
    with tqdm(total=len(texts), desc=f"embed {name}", unit="cap") as bar:
        def progress(n_captions: int, n_tokens: int) -> None:
            stats["prompt_tokens"] += n_tokens
            bar.update(n_captions)
            bar.set_postfix(tok_per_s=f"{stats['prompt_tokens'] / max(time.perf_counter() - start, 1e-9):.0f}")

        for source, embedder in embedders.items():
            chosen = [i for i, label in enumerate(labels) if label.split("_")[0] == source]
            if not chosen:
                continue
            embedder.stats.clear()
            encoded = embedder.encode([texts[i] for i in chosen], progress=progress)
            for i, row in zip(chosen, encoded):
                vectors[i] = row
            stats.update({key: embedder.stats[key] for key in STAT_KEYS})
    return vectors, stats


def embed_captions_file(captions_path: Path, out: Path, embedders: Mapping[str, FacetEmbedder], sources: list[str],
                        normalize: bool = True, metadata: dict | None = None) -> Counter:
    """Embed the ``sources`` captions of ``captions_path`` into ``out`` (atomic write); returns the counts.

    ``embedders``: one per caption source of the text layout (its template decides the prompts; every template is
    recorded, so evaluation can embed text as any source), sharing one LLM; ``metadata``: extra keys for the file's
    metadata (LLM id, revision, layout name).
    """
    missing = [s for s in sources if s not in embedders]
    if missing:
        raise ValueError(f"no embedder for caption sources {missing}")
    table = pq.read_table(captions_path)
    keys, labels, texts, empty = captions_to_embed(table, sources)
    start = time.perf_counter()
    vectors, stats = _encode_by_source(labels, texts, embedders, captions_path.name)
    embedder = embedders[sources[0]]
    dim = embedder.hidden_size
    rows, kept, skipped = [], [], {}
    for key, label, vector in zip(keys, labels, vectors):
        stored = (F.normalize(vector, dim=-1) if normalize else vector).to(torch.float16)  # [K_source, D]
        if not torch.isfinite(stored).all():  # NaN from the LLM, or beyond float16's range
            print(f"{captions_path}: {key} {label}: non-finite embedding; its rows are left out", file=sys.stderr)
            skipped[f"{key} {label}"] = "non-finite embedding"
            continue
        kept.append(stored)
        rows += [(key, label, facet) for facet in embedders[label.split("_")[0]].template.names]
    stacked = torch.cat(kept) if kept else torch.empty(0, dim, dtype=torch.float16)  # [rows, D]
    flat = pa.array(stacked.reshape(-1).numpy(), type=pa.float16())
    out_table = pa.table({"key": pa.array([r[0] for r in rows], pa.string()),
                          "source": pa.array([r[1] for r in rows], pa.string()),
                          "facet": pa.array([r[2] for r in rows], pa.string()),
                          "embedding": pa.FixedSizeListArray.from_arrays(flat, dim)})
    counts = Counter({"captions": len(texts), "rows": len(rows), "empty": empty, "non_finite": len(skipped),
                      **{key: stats[key] for key in (*STAT_KEYS, "prompt_tokens")}})
    file_meta = {
        "stage": "embed", **(metadata or {}), "layer": embedder.layer, "mode": embedder.mode,
        "templates": {source: e.template.describe() for source, e in embedders.items()},
        "prompts_hash": templates_hash({source: e.template for source, e in embedders.items()}),
        "dim": dim, "dtype": "float16", "normalized": normalize, "sources": [s for s in SOURCES if s in sources],
        "captions_file": str(captions_path), "counts": dict(counts), "skipped": skipped,
        "seconds": round(time.perf_counter() - start, 3),
    }
    write_parquet(out_table, out, file_meta, row_group_bytes=ROW_GROUP_BYTES)
    return counts


def embedding_array(column: pa.ChunkedArray, dim: int) -> np.ndarray:
    """The ``embedding`` column (fixed-size lists of D float16) as ``[N, D]`` float16."""
    flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(-1, dim)


def read_embeddings(path: Path) -> tuple[pa.Table, np.ndarray]:
    """``(table of key, source, facet; embeddings [N, D] float16)`` of an embeddings Parquet file."""
    table = pq.read_table(path)
    return table.select(["key", "source", "facet"]), embedding_array(table.column("embedding"),
                                                                        table.schema.field("embedding").type.list_size)
