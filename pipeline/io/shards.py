"""Image shards: reading img2dataset webdataset tars, naming shards, decoding images.

A training shard is a tar in the img2dataset layout: per sample ``{key}.jpg`` (or ``.png``/``.webp``), ``{key}.txt``
(alt-text) and optionally ``{key}.json``.
"""

from __future__ import annotations

import glob
import io
import json
import os
import re
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from braceexpand import braceexpand
from PIL import Image

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


@dataclass
class Sample:
    """One webdataset sample: its key and the raw bytes of each member, by extension (``"jpg"``, ``"txt"`` …)."""

    key: str
    members: dict[str, bytes]

    @property
    def image_bytes(self) -> bytes | None:
        """The image member's bytes: the first whose extension's last part is an image type (``jpg``,
        ``b.jpg`` ...), as webdataset's decoders match them."""
        found = {ext.rsplit(".", 1)[-1]: data for ext, data in self.members.items()}
        return next((found[e] for e in IMAGE_EXTENSIONS if e in found), None)

    def text(self, ext: str = "txt") -> str:
        """The member ``ext`` as stripped text ("" when absent); raises :class:`BadSample` if it is not UTF-8."""
        try:
            return self.members.get(ext, b"").decode("utf-8").strip()
        except UnicodeDecodeError as err:
            raise BadSample(f"{ext} not UTF-8", f"{self.key}.{ext} is not UTF-8 ({err.reason})") from err

    def json(self) -> dict:
        """The ``json`` member as an object ({} when absent); raises :class:`BadSample` if it is malformed."""
        if "json" not in self.members:
            return {}
        try:
            value = json.loads(self.members["json"])
        except ValueError as err:
            raise BadSample("malformed json", f"{self.key}.json is not JSON ({err})") from err
        if not isinstance(value, dict):
            raise BadSample("malformed json", f"{self.key}.json holds a {type(value).__name__}, not an object")
        return value


class BadSample(ValueError):
    """One sample that cannot be used: ``reason`` (short, for counting) and the message naming the member."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


#: A tar member name -> (key, extension), as webdataset groups them: the key is the path up to the first dot of the
#: file name (folders included), the extension the rest.
MEMBER_NAME = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")


class TruncatedShard(ValueError):
    """A tar that ends before its end-of-archive marker: cut at, or inside, a member."""


def iter_shard(path: str | Path, ignored: Counter | None = None) -> Iterator[Sample]:
    """Samples of a webdataset tar in file order; consecutive members with the same key (:data:`MEMBER_NAME`) are
    one sample. Members without an extension are ignored, as webdataset does; so are links, directories and other
    non-files, counted in ``ignored`` (by kind) when given.

    Raises :class:`TruncatedShard` naming the shard and the byte offset when the tar is cut (Python's ``tarfile``
    reads a tar cut at a header as a shorter archive: the end-of-archive marker is checked here).
    """
    current: Sample | None = None
    with tarfile.open(path, "r") as tar:
        try:
            for member in tar:
                match = MEMBER_NAME.match(member.name)
                if not member.isfile() or not match:
                    if ignored is not None and not member.isfile():
                        ignored["link" if member.issym() or member.islnk() else "not a file"] += 1
                    continue
                key, ext = match.groups()
                if current is None or key != current.key:
                    if current is not None:
                        yield current
                    current = Sample(key=key, members={})
                current.members[ext.lower()] = tar.extractfile(member).read()
        except tarfile.ReadError as err:  # cut inside a member's data
            raise TruncatedShard(f"{path}: truncated inside the member at byte {tar.offset} ({err}); the shard is "
                                 "cut: copy or download it again") from None
        _check_end_of_archive(tar, path)
    if current is not None:
        yield current


def _check_end_of_archive(tar: tarfile.TarFile, path: str | Path) -> None:
    """After the last member, a tar holds a zero block (its end-of-archive marker); raise when it does not."""
    tar.fileobj.seek(tar.offset)
    block = tar.fileobj.read(tarfile.BLOCKSIZE)
    if len(block) < tarfile.BLOCKSIZE or block.count(0) != tarfile.BLOCKSIZE:
        raise TruncatedShard(f"{path}: truncated at byte {tar.offset} (no end-of-archive marker after the last "
                             "complete member); the shard is cut: copy or download it again")


def decode_image(data: bytes | None) -> Image.Image | None:
    """The RGB image in ``data``, or None when it is missing or cannot be decoded."""
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit greyscale: convert("RGB") would clip at 255
                img = Image.fromarray((np.asarray(img, dtype=np.int64).clip(0, 65535) >> 8).astype(np.uint8))
            return img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def expand_shards(pattern: str) -> list[Path]:
    """The sorted shard paths of ``pattern``: brace ranges (``{00000..00331}``) expanded first; a part with glob
    characters (``* ? [``) stands for the files it matches, a part without them for that file, present or not (so a
    brace pattern plans without its data, and a missing file is an error of the plan, naming it).

    Raises naming the pattern when it stands for no path at all.
    """
    paths: set[Path] = set()
    for part in braceexpand(pattern):
        if glob.has_magic(part):
            paths.update(Path(p) for p in glob.glob(part))
        else:
            paths.add(Path(part))
    if not paths:
        raise FileNotFoundError(f"shard glob {pattern!r} matches no file")
    return sorted(paths)


def shard_names(paths: list[Path]) -> dict[str, Path]:
    """Name -> path of every shard: the path relative to the shards' common folder, without ``.tar``
    (``/data/cc3m/00003.tar`` -> ``00003``, ``part1/00000.tar`` and ``part2/00000.tar`` -> ``part1/00000`` and
    ``part2/00000``, ``train.00007.tar`` -> ``train.00007``), so distinct paths get distinct names; a name that still
    occurs twice (``x.tar`` beside a file ``x``) raises naming both paths."""
    resolved = [Path(p).absolute() for p in paths]
    common = Path(os.path.commonpath([p.parent for p in resolved])) if resolved else Path()
    names: dict[str, Path] = {}
    for path, absolute in zip(paths, resolved):
        relative = absolute.relative_to(common).as_posix()
        name = relative[:-len(".tar")] if relative.endswith(".tar") else relative
        if name in names:
            raise ValueError(f"shards {names[name]} and {path} would both be named {name!r}: rename one")
        names[name] = Path(path)
    return names


def shard_identity(path: Path) -> dict:
    """What the captions and embeddings files record of the shard they were made from, and training checks: its
    resolved path and size in bytes."""
    return {"path": str(Path(path).resolve()), "size": Path(path).stat().st_size}


def file_identity(path: Path) -> dict:
    """What tells a changed input file apart cheaply: its name, size and modification time (ns)."""
    stat = path.stat()
    return {"name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
