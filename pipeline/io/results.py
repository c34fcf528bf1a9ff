"""The evaluation result (evaluate stage -> report): one JSON document per (model, benchmark, language), in
CLIP_benchmark's format (``dataset``, ``model``, ``pretrained``, ``task``, ``metrics``) plus ``model_kind``
(flame or clip), ``language``, ``prompt`` (FLAME: what embedded the texts: ``name`` as configured, the
``source`` whose trained template it is, its ``facets`` and ``long_mean``, the facet average; None for CLIP and for
a benchmark without texts), ``scored`` (images and texts scored, and how many texts were cut: FLAME at the model's
max_caption_tokens, CLIP at its context length; few-shot: the episodes and queries answered), ``skipped`` (by
reason: ``unreadable_image``, ``missing_image`` listed by the benchmark without a file, ``text_of_skipped_image``;
empty when nothing was skipped), ``rankings`` (None unless the job was asked for them: see
:func:`rankings_document`) and ``provenance`` (with the hash of the evaluation's inputs).

``rankings`` (retrieval only, for the report's retrieval figure): ``format`` and ``data`` (the benchmark's format
and root, to re-read its images with the evaluate stage's reader), ``top`` (images per query) and ``queries``, the
first scored texts in order, each ``{text, caption, image, file, rank, top, top_files}``: the benchmark's text
index and caption, its own image (the reader's image index, and its path where the reader has image files, else
None), the 1-based rank of that image, and the ``top`` best images, best first, the same way. Image indices are the
reader's, never feature rows, so a skipped image shifts nothing."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.io.atomic import write_json

#: Bump when the layout or meaning of the document changes: a rule param, so the stage reruns after such a release.
VERSION = 4
REQUIRED_KEYS = ("dataset", "task", "metrics")


def result_document(dataset: str, model_dir: Path, kind: str, task: str, metrics: dict, language: str,
                    prompt: dict | None, provenance: dict, scored: dict, skipped: dict,
                    rankings: dict | None = None) -> dict:
    """One evaluation result (``kind``: flame or clip; ``prompt``: FLAME's, see the module's docstring; ``scored`` and
    ``skipped``: counts; ``rankings``: see the module's docstring)."""
    return {"dataset": dataset, "model": str(model_dir), "model_kind": kind, "pretrained": kind, "task": task,
            "metrics": metrics, "language": language, "prompt": None if kind == "clip" else prompt,
            "scored": scored, "skipped": skipped, "rankings": rankings, "provenance": provenance}


def rankings_document(fmt: str, data: Path, top: int, queries: list[dict]) -> dict:
    """A result's ``rankings``: the benchmark's format and root, images per query, the queries (module docstring)."""
    return {"format": fmt, "data": str(data), "top": top, "queries": queries}


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
