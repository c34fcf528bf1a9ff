"""The report's figures (PNG, written atomically): headline metrics as bars, recall@k curves."""

from __future__ import annotations

from pathlib import Path

from pipeline.io.atomic import atomic_path
from pipeline.io.results import model_name
from pipeline.report.tables import side_by_side

#: The headline metrics drawn in the bar chart (every metric is in the tables).
PLOTTED_METRICS = ("image_retrieval_recall@1", "text_retrieval_recall@1", "acc1", "lp_acc1",
                   "acc")  # acc: compositionality


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
