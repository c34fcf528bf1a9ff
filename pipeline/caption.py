"""Caption stage: one Parquet row per readable image of a shard: ``key``, ``raw``, ``long``, ``short``.

``raw`` is the shard's alt-text (``{key}.txt``); ``long`` and ``short`` are lists of synthetic captions. Backends:

``dataset``
    Keep the captions the shard already carries in ``{key}.json`` (lists under ``"long"`` and ``"short"``; missing
    lists stay empty). No model is loaded.

Unreadable images are skipped and counted (``unreadable`` in the Parquet metadata), never fatal.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
from tqdm import tqdm

from pipeline.data import decode_image, iter_shard, write_parquet

BACKENDS = ("dataset",)
SCHEMA = pa.schema([("key", pa.string()), ("raw", pa.string()), ("long", pa.list_(pa.string())),
                    ("short", pa.list_(pa.string()))])


def _string_list(value, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: expected a list of strings, got {value!r:.80}")
    return value


def caption_shard(shard: Path, out: Path, backend: str = "dataset") -> Counter:
    """Caption every image of ``shard`` into the Parquet file ``out`` (atomic). Returns the counts."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown caption backend {backend!r}; available: {BACKENDS}")
    counts: Counter[str] = Counter()
    rows: dict[str, list] = {name: [] for name in SCHEMA.names}
    for sample in tqdm(iter_shard(shard), desc=f"caption {shard.name}", unit="img"):
        counts["samples"] += 1
        if decode_image(sample.image_bytes) is None:
            counts["unreadable"] += 1
            continue
        meta = sample.json()
        rows["key"].append(sample.key)
        rows["raw"].append(sample.text("txt"))
        rows["long"].append(_string_list(meta.get("long"), f"{shard}:{sample.key}.json key 'long'"))
        rows["short"].append(_string_list(meta.get("short"), f"{shard}:{sample.key}.json key 'short'"))
    counts["captioned"] = len(rows["key"])
    metadata = {"stage": "caption", "backend": backend, "model": None, "prompt": None, "shard": str(shard),
                "counts": dict(counts)}
    write_parquet(pa.table(rows, schema=SCHEMA), out, metadata)
    return counts
