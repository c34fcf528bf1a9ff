"""Small builders for tests: webdataset shards and captions tables written by hand, independent of the demo; running
the workflow."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from PIL import Image


def write_shard(path: Path, samples: list[dict]) -> Path:
    """A webdataset tar: each sample dict has ``key`` and optional ``color`` (RGB), ``txt``, ``json``, ``jpg``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for sample in samples:
            members = {}
            if "jpg" in sample:
                members["jpg"] = sample["jpg"]
            else:
                buf = io.BytesIO()
                Image.new("RGB", (32, 32), sample.get("color", (200, 30, 30))).save(buf, format="JPEG")
                members["jpg"] = buf.getvalue()
            members["txt"] = sample.get("txt", "").encode()
            if "json" in sample:
                members["json"] = json.dumps(sample["json"]).encode()
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{sample['key']}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


COLORS = [(220, 20, 20), (20, 220, 20), (20, 20, 220), (230, 230, 20)]
TINY_VISION = {"model": "vit_tiny_patch16_224", "image_size": 32, "patch_size": 8,
               "kwargs": {"embed_dim": 32, "depth": 1, "num_heads": 2}}


TEMPLATE = {"prefix": "{caption}", "names": ["a", "b"], "suffixes": [' a:"', ' b:"'], "cleaning": "quotes"}


def write_training_pairs(root: Path, sizes=(16, 16), no_embedding=(), unreadable=(), nan=(), text_side=None):
    """Image shards of coloured squares + embeddings files whose 2-facet target is a fixed unit vector per colour.

    ``sizes``: samples per shard. Keys are ``{shard}{index:03d}``; each has one ``raw`` caption embedded with two
    facets ``a`` and ``b`` (two rows of D = 16, as the embed stage writes them). Keys in ``no_embedding`` get no rows
    (as an empty caption), keys in ``unreadable`` get corrupt image bytes, keys in ``nan`` a NaN target.
    Returns ``[(tar, parquet), ...]``.
    """
    import numpy as np
    import pyarrow as pa

    from pipeline.data import write_parquet

    rng = np.random.default_rng(0)
    targets = rng.normal(size=(len(COLORS), 2, 16)).astype(np.float32)
    targets /= np.linalg.norm(targets, axis=-1, keepdims=True)
    pairs = []
    for s, size in enumerate(sizes):
        samples = [{"key": f"{s}{i:03d}", "color": COLORS[i % len(COLORS)]} for i in range(size)]
        for sample in samples:
            if sample["key"] in unreadable:
                sample["jpg"] = b"\xff\xd8 not a jpeg"
        tar = write_shard(root / "shards" / f"shard-{s:05d}.tar", samples)
        keys = [x["key"] for x in samples if x["key"] not in no_embedding]
        emb = np.stack([targets[int(k[1:]) % len(COLORS)] for k in keys]).astype(np.float16)  # [N, 2, 16]
        for i, key in enumerate(keys):
            if key in nan:
                emb[i] = np.nan
        table = pa.table({"key": [k for k in keys for _ in "ab"], "source": ["raw"] * (2 * len(keys)),
                          "facet": ["a", "b"] * len(keys),
                          "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), 16)})
        parquet = root / "emb" / f"shard-{s:05d}.parquet"
        write_parquet(table, parquet, {"dim": 16, "llm": "none", "layer": -1, "layout": "paper",
                                       "templates": {"raw": TEMPLATE}, "sources": ["raw"], "prompts_hash": "h0",
                                       **(text_side or {})},
                      row_group_bytes=256)
        pairs.append((tar, parquet))
    return pairs


#: demo.llm overrides that make the demo LLM's pre-training take seconds: for tests of the plumbing, not of learning
QUICK_LLM = {"corpus_size": 40, "validation_size": 10, "steps": 2, "batch_size": 2}


def shrink_demo(config: dict, **sizes) -> dict:
    """``config`` (a parsed demo config) with the demo's sizes replaced by ``sizes`` and a quick demo LLM."""
    config["demo"].update(sizes)
    config["demo"]["llm"].update(QUICK_LLM)
    return config


REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def snakemake(*args, cwd=REPO, check=True, timeout=1500):
    """Run the workflow's Snakemake with ``args``; raises with the output's tail unless it succeeds (``check``)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run([SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc
