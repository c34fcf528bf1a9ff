"""Evaluation result documents (CLIP_benchmark's JSON plus ``model``, ``model_kind``, ``language`` ...): loading and
naming the model each belongs to."""

from __future__ import annotations

import json
from pathlib import Path


def load_results(paths: list[Path]) -> list[dict]:
    """The evaluation results, in the order given; raises naming a file that is not one."""
    results = []
    for path in paths:
        result = json.loads(path.read_text(encoding="utf-8"))
        for key in ("dataset", "task", "metrics"):
            if key not in result:
                raise ValueError(f"{path}: not an evaluation result (no key {key!r})")
        results.append(result)
    return results


def model_name(result: dict) -> str:
    """The model a result belongs to: its model directory's name (``flame``, ``flame_single``, ``clip`` in a
    workflow run), else its kind."""
    if result.get("model"):
        return Path(result["model"]).name
    return result.get("model_kind", "flame")
