"""Content identities: the SHA-256 of a file or of a folder of files (a model directory), so that what decides a
result is recorded by what it holds, not by its path.

Hashing a 24 GB LLM takes tens of seconds, once: a file's digest is cached per (resolved path, size, modification
time, inode) in ``$XDG_CACHE_HOME/flame-pipeline/sha256.json`` (``~/.cache`` by default), so later jobs on the same
files read it back; a changed file has a new size or time and is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pipeline.io.atomic import write_text

CHUNK = 8 << 20


def user_cache(name: str) -> Path:
    """The file ``name`` in the user's cache folder for this pipeline (``$XDG_CACHE_HOME/flame-pipeline``)."""
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "flame-pipeline" / name


def _read_cache() -> dict:
    try:
        return json.loads(user_cache("sha256.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def file_sha256(path: Path, cache: dict | None = None) -> str:
    """The hex SHA-256 of the file ``path``; ``cache`` (from the cache file) is read and updated in place."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}"
    if cache is not None and key in cache:
        return cache[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    if cache is not None:
        cache[key] = digest.hexdigest()
    return digest.hexdigest()


def folder_sha256(folder: Path) -> str:
    """The hex SHA-256 of every regular file under ``folder`` (names relative to it, sorted, with each file's
    SHA-256); hidden files and folders (``.cache``, ``.git`` ...) are left out. Digests are cached (module
    docstring); an unwritable cache only costs the hashing again."""
    cache = _read_cache()
    before = dict(cache)
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    listing = [(p.relative_to(folder).as_posix(), file_sha256(p, cache)) for p in files]
    if cache != before:
        try:
            write_text(json.dumps(cache, sort_keys=True), user_cache("sha256.json"))
        except OSError:
            pass
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()
