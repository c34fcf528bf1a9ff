"""Embed stage: a captions file in (:mod:`pipeline.io.captions`), an embeddings file out
(:mod:`pipeline.io.embeddings`), every caption of the chosen sources embedded with its source's template of the text
layout by one frozen LLM (:class:`~pipeline.embed.fda.FacetEmbedder`).

The file's metadata records the shard the captions were made from, the LLM id, revision, commit and content identity
(:func:`pipeline.llm.llm_identity`), layer, mode, the caption limit (max_caption_tokens), every source's template and
their hash, D, dtype and the counts (captions, rows, empty, non_finite, truncated, prefix_boundary_split,
beyond_sliding_window, prompt_tokens); a
caption whose embedding is not finite loses its rows only (listed under ``skipped``).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pipeline.embed.fda import FacetEmbedder
from pipeline.embed.prompts import SOURCES, templates_hash, text_layout
from pipeline.io import embeddings
from pipeline.io.captions import iter_captions, label_source
from pipeline.io.locks import single_writer
from pipeline.io.parquet import read_parquet_metadata
from pipeline.io.provenance import provenance
from pipeline.llm import llm_identity, load_llm
from pipeline.settings import as_json

#: FacetEmbedder counts summed over the sources.
STAT_KEYS = ("truncated", "prefix_boundary_split", "beyond_sliding_window")


def captions_to_embed(path: Path, sources: list[str]) -> tuple[list[str], list[str], list[str], int]:
    """``(keys, caption labels, captions, empty count)`` of the chosen caption sources of a captions file."""
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown caption sources {sorted(unknown)}; choose from {SOURCES}")
    keys, labels, texts, empty = [], [], [], 0
    for key, label, text in iter_captions(path, sources, SOURCES):
        if not text.strip():
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
            chosen = [i for i, label in enumerate(labels) if label_source(label) == source]
            if not chosen:
                continue
            embedder.stats.clear()
            batch = embedder.batch_bytes([texts[i] for i in chosen]) / 2**20
            tqdm.write(f"{name}: {source} captions: at most {batch:.0f} MiB per LLM batch beyond the weights "
                       f"(token budget {embedder.token_budget}; size embed.resources.mem_mb for it)", file=sys.stderr)
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
    metadata (LLM id, revision, layout name, provenance).
    """
    missing = [s for s in sources if s not in embedders]
    if missing:
        raise ValueError(f"no embedder for caption sources {missing}")
    keys, labels, texts, empty = captions_to_embed(captions_path, sources)
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
        rows += [(key, label, facet) for facet in embedders[label_source(label)].template.names]
    stacked = torch.cat(kept).numpy() if kept else np.empty((0, dim), np.float16)  # [rows, D]
    counts = Counter({"captions": len(texts), "rows": len(rows), "empty": empty, "non_finite": len(skipped),
                      **{key: stats[key] for key in (*STAT_KEYS, "prompt_tokens")}})
    file_meta = {
        "stage": "embed", **(metadata or {}), "layer": embedder.layer, "mode": embedder.mode,
        "max_caption_tokens": embedder.max_caption_tokens,
        "templates": {source: e.template.describe() for source, e in embedders.items()},
        "prompts_hash": templates_hash({source: e.template for source, e in embedders.items()}),
        "dim": dim, "dtype": "float16", "normalized": normalize, "sources": [s for s in SOURCES if s in sources],
        "captions_file": str(captions_path), "counts": dict(counts), "skipped": skipped,
        "seconds": round(time.perf_counter() - start, 3),
    }
    embeddings.write_embeddings(rows, stacked, out, file_meta)
    return counts


def run(pairs: list[tuple[Path, Path]], settings: dict, token_budget: int, device: str = "auto") -> list[Counter]:
    """The embed stage: load ``settings["llm"]`` once, then embed every caption source of ``settings["sources"]`` of
    each captions file of ``pairs`` (captions, out) into its out (one writer at a time, one file after the other).
    ``settings``: a validated ``embed_settings`` document; ``token_budget``: padded tokens per LLM batch (speed
    only). Returns the counts per pair; every captions file must exist before the LLM is loaded."""
    outs = [out.resolve() for _, out in pairs]
    twice = sorted({str(out) for out in outs if outs.count(out) > 1})
    if twice:
        raise ValueError(f"output given for more than one captions file: {', '.join(twice)}")
    missing = [str(captions) for captions, _ in pairs if not captions.exists()]
    if missing:
        raise FileNotFoundError(f"captions file not found: {', '.join(missing)}")
    templates = text_layout(settings["layout"], settings["facets"])
    model, tokenizer = load_llm(settings["llm"], revision=settings["revision"], dtype=settings["dtype"],
                                device=device, trust_remote_code=settings["trust_remote_code"])
    embedders = {source: FacetEmbedder(model, tokenizer, template, layer=settings["layer"], mode=settings["mode"],
                                       token_budget=token_budget, max_caption_tokens=settings["max_caption_tokens"])
                 for source, template in templates.items()}
    metadata = {"llm": settings["llm"], "revision": settings["revision"], "layout": settings["layout"],
                "llm_commit": getattr(model.config, "_commit_hash", None),
                "llm_identity": llm_identity(settings["llm"], model),
                "llm_dtype": str(next(model.parameters()).dtype),
                "provenance": provenance(embeddings.VERSION, as_json(settings))}
    counts = []
    for captions, out in pairs:
        # the shard the captions were made from; a captions file made elsewhere has none (training refuses it)
        shard = read_parquet_metadata(captions, required=False).get("shard")
        with single_writer(out):
            counts.append(embed_captions_file(captions, out, embedders, settings["sources"],
                                              normalize=settings["normalize"], metadata={**metadata, "shard": shard}))
    return counts
