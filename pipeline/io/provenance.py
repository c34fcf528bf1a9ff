"""What produced an output: the settings it depends on (hashed), the code (package version, git commit) and the
library versions. Every stage writes :func:`provenance` into its output's metadata; the report lists it."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

LIBRARIES = ("torch", "transformers", "timm", "open_clip_torch", "accelerate")


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


@cache
def code_version() -> dict:
    """The package version, the git commit of its checkout (``+dirty`` with uncommitted changes; None outside git),
    and the Python and library versions."""
    root = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit and git("status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    return {"flame_pipeline": _version("flame-pipeline"), "git_commit": commit,
            "python": platform.python_version(), **{name: _version(name) for name in LIBRARIES}}


def provenance(output_format: int, settings_json: str) -> dict:
    """The output's format version (the ``VERSION`` of its :mod:`pipeline.io` module), the SHA-256 of its stage's
    canonical settings document (``settings_json``) and :func:`code_version`."""
    digest = hashlib.sha256(settings_json.encode()).hexdigest()
    return {"output_format": output_format, "settings_sha256": digest, **code_version()}
