"""The evaluation result (evaluate stage -> report): one JSON document per (model, benchmark, language), in
CLIP_benchmark's format (``dataset``, ``model``, ``pretrained``, ``task``, ``metrics``) plus ``model_kind``
(flame or clip), ``language``, ``prompt`` (FLAME: the caption source whose template embedded the texts; None for
CLIP), ``scored`` (images and texts scored, and how many texts were cut: FLAME at the model's max_caption_tokens,
CLIP at its context length; few-shot: the episodes and queries answered), ``skipped`` (by reason:
``unreadable_image``, ``missing_image`` listed by the benchmark without a file, ``text_of_skipped_image``; empty
when nothing was skipped), the evaluation ``inputs`` and ``provenance``."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.io.atomic import write_json

#: Bump when the layout or meaning of the document changes: a rule param, so the stage reruns after such a release.
VERSION = 3
REQUIRED_KEYS = ("dataset", "task", "metrics")


def result_document(dataset: str, model_dir: Path, kind: str, task: str, metrics: dict, language: str,
                    prompt: str | None, provenance: dict, scored: dict, skipped: dict) -> dict:
    """One evaluation result (``kind``: flame or clip; ``prompt`` is recorded for FLAME only; ``scored`` and
    ``skipped``: counts, see the module's docstring)."""
    return {"dataset": dataset, "model": str(model_dir), "model_kind": kind, "pretrained": kind, "task": task,
            "metrics": metrics, "language": language, "prompt": None if kind == "clip" else prompt,
            "scored": scored, "skipped": skipped, "provenance": provenance}


def write_result(result: dict, out: Path) -> None:
    """Write ``result`` to ``out`` atomically."""
    write_json(result, out)


def load_results(paths: list[Path]) -> list[dict]:
    """The evaluation results, in the order given; raises naming a file that is not one."""
    results = []
    for path in paths:
        result = json.loads(path.read_text(encoding="utf-8"))
        for key in REQUIRED_KEYS:
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
