"""Claims: comparisons of two models stated in the config (``report.claims``) and checked on the evaluation results.

A claim names a ``metric``, the ``benchmarks`` (and optionally ``languages``) it is averaged over, the ``model`` that
should win and the ``baseline`` it should beat, and optionally the metric's ``chance`` level (a fraction). It *held*
when the model's mean is above the baseline's. :func:`claims_section` writes them as a Markdown table and a
paragraph for the report: every claim with both means, the difference in points and the ratio, whether it held.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.io.results import model_name


@dataclass(frozen=True)
class Claim:
    """One comparison (a ``report.claims`` item of the config; see ``$defs/claim`` in the schema)."""

    claim: str
    metric: str
    benchmarks: list[str]
    model: str
    baseline: str
    languages: list[str] | None = None
    chance: float | None = None


@dataclass(frozen=True)
class Outcome:
    """A claim checked: the mean ``metric`` of each model over the claim's results (fractions)."""

    claim: Claim
    model_mean: float | None
    baseline_mean: float | None

    @property
    def held(self) -> bool | None:
        """True/False, or None when a model has no result for the claim."""
        if self.model_mean is None or self.baseline_mean is None:
            return None
        return self.model_mean > self.baseline_mean


def _mean_metric(results: Sequence[dict], claim: Claim, model: str) -> float | None:
    values = [r["metrics"][claim.metric] for r in results
              if model_name(r) == model and r["dataset"] in claim.benchmarks and claim.metric in r["metrics"]
              and (claim.languages is None or r.get("language", "en") in claim.languages)]
    return sum(values) / len(values) if values else None


def check_claims(claims: Sequence[Claim], results: Sequence[dict]) -> list[Outcome]:
    """Each claim checked on ``results`` (evaluation JSON documents)."""
    return [Outcome(claim, _mean_metric(results, claim, claim.model), _mean_metric(results, claim, claim.baseline))
            for claim in claims]


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _verdict(outcome: Outcome) -> str:
    return {True: "held", False: "did not hold", None: "not measured"}[outcome.held]


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or not denominator:
        return "–"
    return f"{numerator / denominator:.1f}×"


def claims_section(outcomes: Sequence[Outcome]) -> str:
    """Markdown: a table of the claims and a paragraph stating which held and by how much ("" without claims)."""
    if not outcomes:
        return ""
    lines = ["## Claims\n", "| claim | metric (mean over) | model | baseline | difference (points) | ratio | "
             "model / chance | verdict |", "|---|---|---:|---:|---:|---:|---:|---|"]
    sentences = []
    for o in outcomes:
        c = o.claim
        over = ", ".join(c.benchmarks) + (f" [{', '.join(c.languages)}]" if c.languages else "")
        difference = ("–" if o.held is None else f"{100 * (o.model_mean - o.baseline_mean):+.1f}")
        chance = _ratio(o.model_mean, c.chance) if c.chance else "–"
        lines.append(f"| {c.claim} | {c.metric} ({over}) | {c.model} {_percent(o.model_mean)} | {c.baseline} "
                     f"{_percent(o.baseline_mean)} | {difference} | {_ratio(o.model_mean, o.baseline_mean)} | "
                     f"{chance} | {_verdict(o)} |")
        if o.held is None:
            sentences.append(f"*{c.claim}*: not measured (no {c.metric} result of {c.model} or {c.baseline}).")
        else:
            sentences.append(f"*{c.claim}*: {_verdict(o)}, {c.model} {_percent(o.model_mean)} % vs {c.baseline} "
                             f"{_percent(o.baseline_mean)} % ({difference} points)"
                             + (f", {chance} chance ({_percent(c.chance)} %)" if c.chance else "") + ".")
    held = sum(o.held is True for o in outcomes)
    summary = f"{held} of {len(outcomes)} claims held. " + " ".join(sentences)
    return "\n".join(lines) + "\n\n" + summary + "\n\n"
