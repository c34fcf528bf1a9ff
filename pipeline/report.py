"""Report: one Markdown table and one CSV from the evaluation JSON files (CLIP_benchmark format)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from pipeline.data import atomic_path


def load_results(paths: list[Path]) -> list[dict]:
    """The evaluation results, in the order given."""
    results = []
    for path in paths:
        result = json.loads(path.read_text(encoding="utf-8"))
        for key in ("dataset", "task", "metrics"):
            if key not in result:
                raise ValueError(f"{path}: not an evaluation result (no key {key!r})")
        results.append(result)
    return results


def markdown_table(results: list[dict]) -> str:
    """One row per (dataset, metric), values in percent with one decimal."""
    lines = ["| dataset | task | metric | value (%) |", "|---|---|---|---:|"]
    for result in results:
        for metric, value in result["metrics"].items():
            lines.append(f"| {result['dataset']} | {result['task']} | {metric} | {100 * value:.1f} |")
    return "\n".join(lines) + "\n"


def write_report(paths: list[Path], out_dir: Path, title: str) -> Path:
    """Write ``report.md`` and ``results.csv`` into ``out_dir``; returns the Markdown path."""
    results = load_results(paths)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["dataset", "task", "metric", "value"])
    for result in results:
        for metric, value in result["metrics"].items():
            writer.writerow([result["dataset"], result["task"], metric, value])
    with atomic_path(out_dir / "results.csv") as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    report = out_dir / "report.md"
    with atomic_path(report) as tmp:
        tmp.write_text(f"# {title}\n\nModel: `{results[0]['model']}`\n\n{markdown_table(results)}", encoding="utf-8")
    return report
