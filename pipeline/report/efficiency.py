"""The data-efficiency curves: each claim's metric against the number of training images, for the models trained
on fractions of the images (config ``data_efficiency``, :mod:`pipeline.replicates`), as a Markdown table and a PNG.

A point is a model at one fraction: its mean ± sd over the seeds it was trained with at every fraction (at 100 %,
the same number of seeds as the smaller fractions). The number of images is the trained model's own count
(``images_with_texts`` of its ``train_summary.json``), so it is what training saw, not what was asked.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.io.atomic import atomic_path
from pipeline.io.model_dir import read_summary
from pipeline.io.results import model_name
from pipeline.replicates import Replica, percent
from pipeline.report.claims import Claim, Spread, mean_metric, seed_names

#: The curves' file in the report directory.
EFFICIENCY_FIGURE = "data_efficiency.png"


@dataclass(frozen=True)
class Point:
    """One model at one fraction of the images: how many images it trained on and the claim's metric over seeds."""

    fraction: float
    images: int | None
    value: Spread


def fractions_of(replicas: Sequence[Replica]) -> list[float]:
    """The fractions below 1 some replica was trained on, ascending, then 1."""
    below = sorted({r.fraction for r in replicas if r.fraction < 1})
    return [*below, 1.0] if below else []


def _images(results: Sequence[dict], names: Sequence[str]) -> int | None:
    """The training images of the first of ``names`` whose model directory records them."""
    for result in results:
        if model_name(result) in names:
            summary = read_summary(Path(result["model"])) if result.get("model") else None
            if summary is not None and "images_with_texts" in summary:
                return int(summary["images_with_texts"])
    return None


def curve(results: Sequence[dict], replicas: Sequence[Replica], claim: Claim, base: str) -> list[Point]:
    """``base``'s points for ``claim``: one per fraction with results, seeds limited to those of the smallest
    fraction's replicas (so every point averages the same number of seeds)."""
    fractions = fractions_of([r for r in replicas if r.base == base])
    if not fractions:
        return []
    seeds = len(seed_names(replicas, base, fractions[0]))
    points = []
    for fraction in fractions:
        names = seed_names(replicas, base, fraction)[:seeds]
        values = [v for v in (mean_metric(results, claim, name) for name in names) if v is not None]
        if values:
            points.append(Point(fraction, _images(results, names), Spread(tuple(values))))
    return points


def efficiency_claims(claims: Sequence[Claim], replicas: Sequence[Replica]) -> list[Claim]:
    """The claims whose model and baseline were both trained on fractions of the images."""
    trained = {r.base for r in replicas if r.fraction < 1}
    return [c for c in claims if c.model in trained and c.baseline in trained]


def efficiency_section(claims: Sequence[Claim], results: Sequence[dict], replicas: Sequence[Replica]) -> str:
    """Markdown: per claim with curves, a row per fraction with both models' values and their difference ("" when
    no claim's models were trained on fractions)."""
    shown = efficiency_claims(claims, replicas)
    if not shown:
        return ""
    lines = ["## Data efficiency\n",
             "The claims' models trained on fractions of the same training images (every other setting equal: "
             "epochs, batch, schedule, so a smaller fraction also means fewer steps). Values: mean ± sd over seeds, "
             "in percent.\n", f"![data efficiency]({EFFICIENCY_FIGURE})\n",
             "| claim | images (fraction) | model | baseline | difference (points) |", "|---|---:|---:|---:|---:|"]
    for claim in shown:
        baseline = {p.fraction: p for p in curve(results, replicas, claim, claim.baseline)}
        for point in curve(results, replicas, claim, claim.model):
            other = baseline.get(point.fraction)
            if other is None:
                continue
            difference = point.value.minus(other.value)
            lines.append(f"| {claim.claim} ({claim.metric}) | {point.images or '?'} ({percent(point.fraction)} %) | "
                         f"{claim.model} {point.value.points()} | {claim.baseline} {other.value.points()} | "
                         f"{difference.points(True)} |")
    return "\n".join(lines) + "\n\n"


def plot_efficiency(claims: Sequence[Claim], results: Sequence[dict], replicas: Sequence[Replica],
                    path: Path) -> None:
    """One panel per claim with curves: its metric (percent) against training images (log 2 axis), a line per
    model with ± sd error bars, chance dotted; written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = efficiency_claims(claims, replicas)
    columns = max(1, min(3, len(shown)))
    rows = max(1, -(-len(shown) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
    for ax, claim in zip(axes.flat, shown):
        curves = {base: curve(results, replicas, claim, base) for base in (claim.model, claim.baseline)}
        for colour, (base, points) in enumerate(curves.items()):
            xs = [p.images if p.images is not None else p.fraction for p in points]
            ax.errorbar(xs, [100 * p.value.mean for p in points], yerr=[100 * p.value.sd for p in points],
                        marker="o", capsize=3, color=f"C{colour}", label=base)
        if claim.chance:
            ax.axhline(100 * claim.chance, linestyle=":", color="grey", label="chance")
        ax.set_xscale("log", base=2)
        ticks = sorted({p.images for p in curves[claim.model] if p.images is not None})
        if ticks:
            ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_title("\n".join(textwrap.wrap(claim.claim, 48)), fontsize=8)
        ax.set_xlabel("training images")
        ax.set_ylabel(f"{claim.metric} (%)")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
