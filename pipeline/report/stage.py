"""Report stage: the evaluation results (:mod:`pipeline.io.results`) as ``report.md`` (the models side by side,
FLAME, its ablations and the CLIP baseline when they were trained; the config's claims checked; a per-language
table; the prompt of every FLAME number; provenance), one long-format ``results.csv``, a bar chart of the headline
metrics, recall@k curves and, when asked, the retrieval figure of one benchmark
(:mod:`~pipeline.report.retrieval_figure`) and the data-efficiency curves (:mod:`~pipeline.report.efficiency`).

Replicas (:mod:`pipeline.replicates`: other seeds, fractions of the images) enter the claims and the curves only;
the other tables and figures show each model once, as trained with its own settings, and ``results.csv`` has every
result."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from pipeline.io.atomic import write_text
from pipeline.io.results import load_results, model_name
from pipeline.replicates import Replica
from pipeline.report.claims import Claim, check_claims, claims_section
from pipeline.report.efficiency import EFFICIENCY_FIGURE, efficiency_claims, efficiency_section, plot_efficiency
from pipeline.report.plots import plot_recall_curves, plot_results
from pipeline.report.tables import language_table, markdown_table, prompt_table, provenance_table, text_side_table

#: The retrieval figure's file in the report directory.
RETRIEVAL_FIGURE = "retrieval.png"


def run(paths: list[Path], out_dir: Path, title: str, claims: Sequence[Claim] = (),
        retrieval_figure: str | None = None, figure_language: str = "en", replicas: Sequence[Replica] = ()) -> Path:
    """Write ``report.md`` (with ``claims`` checked over the seeds of ``replicas``), ``results.csv``,
    ``results.png``, ``recall_curves.png``, with ``retrieval_figure`` (a benchmark whose results record rankings)
    :data:`RETRIEVAL_FIGURE` of its ``figure_language`` texts, and when claims compare models trained on fractions of
    the images :data:`~pipeline.report.efficiency.EFFICIENCY_FIGURE`, into ``out_dir``; returns the Markdown path."""
    every_result = load_results(paths)
    replica_names = {r.name for r in replicas if r.name != r.base}
    results = [r for r in every_result if model_name(r) not in replica_names]
    plot_results(results, out_dir / "results.png")
    plot_recall_curves(results, out_dir / "recall_curves.png")
    figure = ""
    if retrieval_figure is not None:
        from pipeline.report.retrieval_figure import write_retrieval_figure  # the evaluate stage's readers: torch

        write_retrieval_figure(results, retrieval_figure, figure_language, out_dir / RETRIEVAL_FIGURE)
        figure = (f"## Retrieval examples ({retrieval_figure}, {figure_language})\n\nPer query, each model's best "
                  "images, best first: the query's own image framed green, others red.\n\n"
                  f"![retrieval examples]({RETRIEVAL_FIGURE})\n\n")
    if efficiency_claims(claims, replicas):
        plot_efficiency(claims, every_result, replicas, out_dir / EFFICIENCY_FIGURE)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["model", "dataset", "language", "task", "metric", "value"])
    for result in every_result:
        for metric, value in result["metrics"].items():
            writer.writerow([model_name(result), result["dataset"], result.get("language", "en"), result["task"],
                             metric, value])
    write_text(buffer.getvalue(), out_dir / "results.csv")
    sources = "\n".join(f"- {model_name(r)}: `{r['model']}`" for r in {model_name(r): r for r in results}.values())
    report = out_dir / "report.md"
    write_text(f"# {title}\n\nModels:\n{sources}\n\n{claims_section(check_claims(claims, every_result, replicas))}"
               f"{efficiency_section(claims, every_result, replicas)}{language_table(results)}## All results\n\n"
               f"{markdown_table(results)}\n![results](results.png)\n\n![recall@k](recall_curves.png)\n\n{figure}"
               f"{prompt_table(results)}{text_side_table(results)}{provenance_table(results)}", report)
    return report
