"""Image shards: reading img2dataset webdataset tars, naming shards, decoding images.

A training shard is a tar in the img2dataset layout: per sample ``{key}.jpg`` (or ``.png``/``.webp``), ``{key}.txt``
(alt-text) and optionally ``{key}.json``.
"""

from __future__ import annotations

import glob
import io
import json
import re
import tarfile
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


def iter_shard(path: str | Path) -> Iterator[Sample]:
    """Samples of a webdataset tar in file order; consecutive members with the same key (:data:`MEMBER_NAME`) are
    one sample. Members without an extension are ignored, as webdataset does."""
    current: Sample | None = None
    with tarfile.open(path, "r") as tar:
        for member in tar:
            match = MEMBER_NAME.match(member.name)
            if not member.isfile() or not match:
                continue
            key, ext = match.groups()
            if current is None or key != current.key:
                if current is not None:
                    yield current
                current = Sample(key=key, members={})
            current.members[ext.lower()] = tar.extractfile(member).read()
    if current is not None:
        yield current


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


def shard_name(path: str | Path) -> str:
    """A shard's name: its file name without extension (``.../shard-00003.tar`` -> ``shard-00003``)."""
    return Path(path).name.split(".")[0]


def file_identity(path: Path) -> dict:
    """What tells a changed input file apart cheaply: its name, size and modification time (ns)."""
    stat = path.stat()
    return {"name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
