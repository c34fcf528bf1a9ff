"""Report stage: the evaluation results (:mod:`pipeline.io.results`) as ``report.md`` (the models side by side,
FLAME, its ablations and the CLIP baseline when they were trained; the config's claims checked; a per-language
table; the prompt of every FLAME number; provenance), one long-format ``results.csv``, a bar chart of the headline
metrics, recall@k curves and, when asked, the retrieval figure of one benchmark
(:mod:`~pipeline.report.retrieval_figure`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from pipeline.io.atomic import write_text
from pipeline.io.results import load_results, model_name
from pipeline.report.claims import Claim, check_claims, claims_section
from pipeline.report.plots import plot_recall_curves, plot_results
from pipeline.report.tables import language_table, markdown_table, prompt_table, provenance_table

#: The retrieval figure's file in the report directory.
RETRIEVAL_FIGURE = "retrieval.png"


def run(paths: list[Path], out_dir: Path, title: str, claims: Sequence[Claim] = (),
        retrieval_figure: str | None = None, figure_language: str = "en") -> Path:
    """Write ``report.md`` (with ``claims`` checked), ``results.csv``, ``results.png``, ``recall_curves.png`` and,
    with ``retrieval_figure`` (a benchmark whose results record rankings), :data:`RETRIEVAL_FIGURE` of its
    ``figure_language`` texts into ``out_dir``; returns the Markdown path."""
    results = load_results(paths)
    plot_results(results, out_dir / "results.png")
    plot_recall_curves(results, out_dir / "recall_curves.png")
    figure = ""
    if retrieval_figure is not None:
        from pipeline.report.retrieval_figure import write_retrieval_figure  # the evaluate stage's readers: torch

        write_retrieval_figure(results, retrieval_figure, figure_language, out_dir / RETRIEVAL_FIGURE)
        figure = (f"## Retrieval examples ({retrieval_figure}, {figure_language})\n\nPer query, each model's best "
                  "images, best first: the query's own image framed green, others red.\n\n"
                  f"![retrieval examples]({RETRIEVAL_FIGURE})\n\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["model", "dataset", "language", "task", "metric", "value"])
    for result in results:
        for metric, value in result["metrics"].items():
            writer.writerow([model_name(result), result["dataset"], result.get("language", "en"), result["task"],
                             metric, value])
    write_text(buffer.getvalue(), out_dir / "results.csv")
    sources = "\n".join(f"- {model_name(r)}: `{r['model']}`" for r in {model_name(r): r for r in results}.values())
    report = out_dir / "report.md"
    write_text(f"# {title}\n\nModels:\n{sources}\n\n{claims_section(check_claims(claims, results))}"
               f"{language_table(results)}## All results\n\n"
               f"{markdown_table(results)}\n![results](results.png)\n\n![recall@k](recall_curves.png)\n\n{figure}"
               f"{prompt_table(results)}{provenance_table(results)}", report)
    return report
