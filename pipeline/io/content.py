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
SHA256_CACHE = "sha256.json"


def user_cache(name: str) -> Path:
    """The file ``name`` in the user's cache folder for this pipeline (``$XDG_CACHE_HOME/flame-pipeline``)."""
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "flame-pipeline" / name


def read_cache(name: str) -> dict:
    """The JSON object cached in the user cache file ``name``; ``{}`` when it is missing or unreadable."""
    try:
        return json.loads(user_cache(name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_cache(name: str, cache: dict) -> None:
    """Store ``cache`` in the user cache file ``name`` (atomically); an unwritable cache only costs the work again."""
    try:
        write_text(json.dumps(cache, sort_keys=True), user_cache(name))
    except OSError:
        pass


def file_key(path: Path) -> str:
    """What identifies a file's content as long as nobody rewrites it in place: its resolved path, size,
    modification time and inode (the key of every user cache of file contents)."""
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}"


def file_sha256(path: Path, cache: dict | None = None) -> str:
    """The hex SHA-256 of the file ``path``. ``cache`` (from the cache file) is read and updated in place; without
    one the user cache file is read and written here (module docstring)."""
    if cache is None:
        cache = read_cache(SHA256_CACHE)
        known = len(cache)
        digest = file_sha256(path, cache)
        if len(cache) != known:
            write_cache(SHA256_CACHE, cache)
        return digest
    key = file_key(path)
    if key in cache:
        return cache[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    cache[key] = digest.hexdigest()
    return digest.hexdigest()


def folder_sha256(folder: Path) -> str:
    """The hex SHA-256 of every regular file under ``folder`` (names relative to it, sorted, with each file's
    SHA-256); hidden files and folders (``.cache``, ``.git`` ...) are left out. Digests are cached (module
    docstring); an unwritable cache only costs the hashing again."""
    cache = read_cache(SHA256_CACHE)
    before = dict(cache)
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    listing = [(p.relative_to(folder).as_posix(), file_sha256(p, cache)) for p in files]
    if cache != before:
        write_cache(SHA256_CACHE, cache)
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()
