"""Atomic writes: an output file appears whole or not at all (a kill or a full disk leaves the old file or none)."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


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


def write_text(text: str, path: str | Path) -> None:
    """Write ``text`` (UTF-8) to ``path``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(obj, path: str | Path) -> None:
    """Write ``obj`` as indented JSON (keys in insertion order), atomically."""
    write_text(json.dumps(obj, indent=2) + "\n", path)
