"""The caption stage's resumable state: every finished batch is appended to a partial file (JSON lines, flushed and
fsynced) in the state directory, so a killed job resumes with the keys already done."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zlib
from pathlib import Path

from pipeline.io.shards import file_identity
from pipeline.settings import as_json


def fingerprint(settings: dict, shard: Path) -> str:
    """What a partial file belongs to: the settings and the shard (its path, size and modification time)."""
    document = {"settings": settings, "shard": str(shard.resolve()), **file_identity(shard)}
    return hashlib.sha256(as_json(document).encode()).hexdigest()[:16]


class PartialCaptions:
    """The append-only record of finished keys: a header line ``{"fingerprint": ...}``, then one JSON line per key,
    either a caption row or ``{"key", "skipped": reason}``. A line cut by a kill is dropped on load."""

    def __init__(self, path: Path, fingerprint: str):
        self.path, self.fingerprint = path, fingerprint

    def load(self) -> dict[str, dict]:
        """The records already finished (by key); a partial file of other settings or another shard is removed."""
        if not self.path.exists():
            return {}
        lines = self.path.read_bytes().split(b"\n")
        try:
            header = json.loads(lines[0])
        except ValueError:
            header = {}
        if header.get("fingerprint") != self.fingerprint:
            print(f"{self.path}: not from these caption settings and this shard (or cut before its first line); "
                  "starting over", file=sys.stderr)
            self.path.unlink()
            return {}
        records, good_bytes = {}, len(lines[0]) + 1
        for line in lines[1:]:
            try:
                record = json.loads(line)
            except ValueError:
                break  # the line a kill cut short (or the empty tail after the last newline)
            records[record["key"]] = record
            good_bytes += len(line) + 1
        with open(self.path, "r+b") as f:
            f.truncate(good_bytes)
        return records

    def append(self, records: list[dict]) -> None:
        """Append ``records`` durably (flushed and fsynced before returning)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        with open(self.path, "ab") as f:
            if new:
                f.write(json.dumps({"fingerprint": self.fingerprint}).encode() + b"\n")
            f.write(b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records))
            f.flush()
            os.fsync(f.fileno())


def batch_seed(seed: int, first_key: str) -> int:
    """The sampling seed of the batch that starts at ``first_key`` (so a resumed run draws as the first one did)."""
    return (seed * 1_000_003 + zlib.crc32(first_key.encode())) % 2**31
