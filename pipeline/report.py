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


def plot_results(results: list[dict], path: Path) -> None:
    """A horizontal bar chart of every (dataset, metric) value in percent, written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['dataset']}: {m}" for r in results for m in r["metrics"]]
    values = [100 * v for r in results for v in r["metrics"].values()]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(labels) + 1))
    ax.barh(labels[::-1], values[::-1], color="tab:orange")
    ax.set_xlabel("%")
    ax.set_xlim(0, 100)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def write_report(paths: list[Path], out_dir: Path, title: str) -> Path:
    """Write ``report.md``, ``results.csv`` and ``results.png`` into ``out_dir``; returns the Markdown path."""
    results = load_results(paths)
    plot_results(results, out_dir / "results.png")
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
        tmp.write_text(f"# {title}\n\nModel: `{results[0]['model']}`\n\n{markdown_table(results)}\n"
                       "![results](results.png)\n", encoding="utf-8")
    return report
