"""Report: the evaluation JSON files (CLIP_benchmark format) as one Markdown table with the models side by side
(FLAME, its ablations and the CLIP baseline when they were trained), the config's claims checked, a per-language
table, one long-format CSV, a grouped bar chart of the headline metrics and recall@k curves."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

from pipeline.claims import Claim, check_claims, claims_section
from pipeline.data import atomic_path
from pipeline.results import load_results, model_name


Row = tuple[str, str, str, str]  # (dataset, language, task, metric)


def side_by_side(results: list[dict]) -> tuple[list[str], dict[Row, dict[str, float]]]:
    """``(models in first-seen order, {(dataset, language, task, metric): {model: value}})`` in first-seen order."""
    models: dict[str, None] = {}
    rows: dict[Row, dict[str, float]] = {}
    for result in results:
        models[model_name(result)] = None
        for metric, value in result["metrics"].items():
            key = (result["dataset"], result.get("language", "en"), result["task"], metric)
            rows.setdefault(key, {})[model_name(result)] = value
    return list(models), rows


def markdown_table(results: list[dict]) -> str:
    """One row per (dataset, language, metric), one column per model, values in percent with one decimal."""
    models, rows = side_by_side(results)
    lines = ["| dataset | language | task | metric | " + " | ".join(f"{m} (%)" for m in models) + " |",
             "|---|---|---|---|" + "---:|" * len(models)]
    for (dataset, language, task, metric), values in rows.items():
        cells = " | ".join(f"{100 * values[m]:.1f}" if m in values else "–" for m in models)
        lines.append(f"| {dataset} | {language} | {task} | {metric} | {cells} |")
    return "\n".join(lines) + "\n"


def language_table(results: list[dict], metric: str = "image_retrieval_recall@1") -> str:
    """Per multilingual dataset, one row per language and a column per model: ``metric`` in percent ("" when no
    dataset has more than one language)."""
    models, rows = side_by_side(results)
    languages: dict[str, set[str]] = {}
    for dataset, language, _, _ in rows:
        languages.setdefault(dataset, set()).add(language)
    multilingual = [d for d, langs in languages.items() if len(langs) > 1]
    if not multilingual:
        return ""
    lines = [f"## Per language ({metric})\n", "| dataset | language | " + " | ".join(models) + " |",
             "|---|---|" + "---:|" * len(models)]
    for (dataset, language, _, name), values in rows.items():
        if dataset in multilingual and name == metric:
            cells = " | ".join(f"{100 * values[m]:.1f}" if m in values else "–" for m in models)
            lines.append(f"| {dataset} | {language} | {cells} |")
    return "\n".join(lines) + "\n\n"


#: The headline metrics drawn in the bar chart (every metric is in the tables).
PLOTTED_METRICS = ("image_retrieval_recall@1", "text_retrieval_recall@1", "acc1", "acc")  # acc: compositionality


def plot_results(results: list[dict], path: Path) -> None:
    """Horizontal bars of the headline metrics (:data:`PLOTTED_METRICS`) of every (dataset, language) in percent,
    one bar per model, written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models, every_row = side_by_side(results)
    rows = {key: values for key, values in every_row.items() if key[3] in PLOTTED_METRICS}
    labels = [f"{dataset} ({language}): {metric}" for dataset, language, _, metric in rows]
    height = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(labels) * len(models) + 1))
    for m, model in enumerate(models):
        positions = [len(labels) - 1 - i + (len(models) - 1 - m) * height for i in range(len(labels))]
        ax.barh(positions, [100 * values.get(model, 0.0) for values in rows.values()], height=height, label=model)
    ax.set_yticks([len(labels) - 1 - i + 0.4 - height / 2 for i in range(len(labels))], labels)
    ax.set_xlabel("%")
    ax.set_xlim(0, 100)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def plot_recall_curves(results: list[dict], path: Path) -> None:
    """Recall@k against k for every retrieval result (text -> image solid, image -> text dashed), one panel per
    (dataset, language), one colour per model; written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    retrieval = [r for r in results if r["task"] == "zeroshot_retrieval"]
    panels = list(dict.fromkeys((r["dataset"], r.get("language", "en")) for r in retrieval)) or [("none", "")]
    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    colours = {model: f"C{i}" for i, model in enumerate(dict.fromkeys(model_name(r) for r in retrieval))}
    for ax, (dataset, language) in zip(axes.flat, panels):
        for result in (r for r in retrieval if (r["dataset"], r.get("language", "en")) == (dataset, language)):
            for direction, style, label in (("image_retrieval", "-", "text→image"),
                                            ("text_retrieval", "--", "image→text")):
                points = sorted((int(m.split("@")[1]), v) for m, v in result["metrics"].items()
                                if m.startswith(f"{direction}_recall@"))
                ax.plot([k for k, _ in points], [100 * v for _, v in points], style, marker="o",
                        color=colours[model_name(result)], label=f"{model_name(result)} {label}")
        ax.set_title(f"{dataset} ({language})", fontsize=9)
        ax.set_xlabel("k")
        ax.set_ylabel("recall@k (%)")
        ax.set_ylim(0, 100)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def provenance_table(results: list[dict]) -> str:
    """Markdown: what produced each model (its ``train_summary.json``, when the model directory is readable) and the
    evaluations (each distinct code and library version, with how many results it made)."""
    from collections import Counter

    columns = ("git_commit", "flame_pipeline", "torch", "transformers", "timm", "open_clip_torch")
    rows = []
    for model, result in {model_name(r): r for r in results}.items():
        summary = Path(result["model"]) / "train_summary.json"
        if summary.is_file():
            found = json.loads(summary.read_text(encoding="utf-8")).get("provenance") or {}
            rows.append((f"train {model} (settings {str(found.get('settings_sha256'))[:12]})", found))
    versions = Counter(tuple((key, r.get("provenance", {}).get(key)) for key in columns) for r in results)
    rows += [(f"evaluate ({count} results)", dict(version)) for version, count in versions.items()]
    lines = ["| stage | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    lines += [f"| {what} | " + " | ".join(str(found.get(key)) for key in columns) + " |" for what, found in rows]
    return "## Provenance\n\n" + "\n".join(lines) + "\n"


def write_report(paths: list[Path], out_dir: Path, title: str, claims: Sequence[Claim] = ()) -> Path:
    """Write ``report.md`` (with ``claims`` checked), ``results.csv``, ``results.png`` and ``recall_curves.png``
    into ``out_dir``; returns the Markdown path."""
    results = load_results(paths)
    plot_results(results, out_dir / "results.png")
    plot_recall_curves(results, out_dir / "recall_curves.png")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["model", "dataset", "language", "task", "metric", "value"])
    for result in results:
        for metric, value in result["metrics"].items():
            writer.writerow([model_name(result), result["dataset"], result.get("language", "en"), result["task"],
                             metric, value])
    with atomic_path(out_dir / "results.csv") as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    sources = "\n".join(f"- {model_name(r)}: `{r['model']}`" for r in {model_name(r): r for r in results}.values())
    report = out_dir / "report.md"
    with atomic_path(report) as tmp:
        tmp.write_text(f"# {title}\n\nModels:\n{sources}\n\n{claims_section(check_claims(claims, results))}"
                       f"{language_table(results)}## All results\n\n"
                       f"{markdown_table(results)}\n![results](results.png)\n\n![recall@k](recall_curves.png)\n\n"
                       f"{provenance_table(results)}",
                       encoding="utf-8")
    return report
