"""A command's outputs against its inputs: no stage writes over a file it reads."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def same_file(a: Path, b: Path) -> bool:
    """``a`` and ``b`` name one file: the same path once symlinks are resolved, or (both existing) one file under
    two names (a hard link)."""
    return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))


def check_outputs(outputs: Iterable[Path], inputs: Iterable[Path]) -> None:
    """Raises ``ValueError`` naming both when an output path is the same file as an input (before any work)."""
    inputs = list(inputs)
    for output in outputs:
        for source in inputs:
            if same_file(output, source):
                raise ValueError(f"output {output} is the same file as its input {source}: refusing to overwrite it")
