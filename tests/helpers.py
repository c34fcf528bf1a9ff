"""Small builders for tests: webdataset shards and captions tables written by hand, independent of the demo."""

from __future__ import annotations

import io
import json
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
