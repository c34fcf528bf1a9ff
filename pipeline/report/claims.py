"""Claims: comparisons of two models stated in the config (``report.claims``), checked on the evaluation results
over the seeds each model was trained with (:mod:`pipeline.replicates`).

A claim names a ``metric``, the ``benchmarks`` (and optionally ``languages``) it is averaged over, the ``model`` that
should win and the ``baseline`` it should beat, and optionally the metric's ``chance`` level (a fraction). Per seed
(the i-th seed of each model: both trained with the same data and schedule), the difference is the model's mean
minus the baseline's. With n ≥ 2 seeds the claim *held* when the mean difference is more than two standard errors
(sd / √n, sd with n - 1) above zero, was *reversed* when as far below, and is *within noise* otherwise; one seed
gives no noise estimate and its verdict says so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.io.results import model_name
from pipeline.replicates import Replica


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
class Spread:
    """Values over seeds (fractions): their number, mean and sample standard deviation (0 for one value)."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def sd(self) -> float:
        return statistics.stdev(self.values) if self.n > 1 else 0.0

    @property
    def se(self) -> float:
        """The standard error of the mean, sd / √n."""
        return self.sd / math.sqrt(self.n)

    def minus(self, other: Spread) -> Spread:
        """The differences value by value (the i-th seed of each)."""
        return Spread(tuple(a - b for a, b in zip(self.values, other.values)))

    def points(self, signed: bool = False) -> str:
        """``mean ± sd`` in percentage points (``mean`` alone for one value)."""
        mean = round(100 * self.mean, 1) + 0.0  # + 0.0: no "-0.0"
        return (f"{mean:+.1f}" if signed else f"{mean:.1f}") + (f" ± {100 * self.sd:.1f}" if self.n > 1 else "")


@dataclass(frozen=True)
class Outcome:
    """A claim checked: per seed, the mean ``metric`` of each model over the claim's results (fractions); a seed
    is kept only when both models have results for it."""

    claim: Claim
    model: Spread | None
    baseline: Spread | None

    @property
    def difference(self) -> Spread | None:
        if self.model is None:
            return None
        return self.model.minus(self.baseline)

    @property
    def verdict(self) -> str:
        """held / reversed / within noise (n ≥ 2 seeds), higher / lower with one seed, or not measured."""
        d = self.difference
        if d is None:
            return "not measured"
        if d.n == 1:
            return ("higher" if d.mean > 0 else "not higher") + ", 1 seed: noise not measured"
        if d.mean > 2 * d.se:
            return "held"
        return "reversed" if d.mean < -2 * d.se else "within noise"


def mean_metric(results: Sequence[dict], claim: Claim, model: str) -> float | None:
    """The mean of ``claim.metric`` over ``model``'s results of the claim's benchmarks and languages (None: none)."""
    values = [r["metrics"][claim.metric] for r in results
              if model_name(r) == model and r["dataset"] in claim.benchmarks and claim.metric in r["metrics"]
              and (claim.languages is None or r.get("language", "en") in claim.languages)]
    return sum(values) / len(values) if values else None


def seed_names(replicas: Sequence[Replica], base: str, fraction: float = 1.0) -> list[str]:
    """The models that are ``base`` trained on ``fraction`` of the images, by seed (``[base]`` without replicas)."""
    names = [r.name for r in sorted(replicas, key=lambda r: r.seed) if r.base == base and r.fraction == fraction]
    return names or ([base] if fraction == 1.0 else [])


def paired_spreads(results: Sequence[dict], claim: Claim, models: Sequence[str],
                   baselines: Sequence[str]) -> tuple[Spread | None, Spread | None]:
    """The claim's means of the i-th model and the i-th baseline (seeds in order), for the seeds both have."""
    pairs = [(m, b) for m, b in ((mean_metric(results, claim, model), mean_metric(results, claim, baseline))
                                 for model, baseline in zip(models, baselines)) if m is not None and b is not None]
    if not pairs:
        return None, None
    return Spread(tuple(m for m, _ in pairs)), Spread(tuple(b for _, b in pairs))


def check_claims(claims: Sequence[Claim], results: Sequence[dict], replicas: Sequence[Replica] = ()) -> list[Outcome]:
    """Each claim checked on ``results`` (evaluation JSON documents) over its models' seeds (``replicas``)."""
    return [Outcome(claim, *paired_spreads(results, claim, seed_names(replicas, claim.model),
                                           seed_names(replicas, claim.baseline)))
            for claim in claims]


def _ratio(numerator: Spread | None, denominator: float | None) -> str:
    if numerator is None or not denominator:
        return "–"
    return f"{numerator.mean / denominator:.1f}×"


def _over(claim: Claim) -> str:
    return ", ".join(claim.benchmarks) + (f" [{', '.join(claim.languages)}]" if claim.languages else "")


def _sentence(o: Outcome) -> str:
    c, d = o.claim, o.difference
    if d is None:
        return f"*{c.claim}*: not measured (no {c.metric} result of {c.model} or {c.baseline})."
    both = f"{c.model} {o.model.points()} % vs {c.baseline} {o.baseline.points()} %"
    if d.n == 1:
        return (f"*{c.claim}*: {both}, a difference of {d.points(True)} points from one seed, so it is not known "
                "whether another seed would give the same sign.")
    size = f"the difference, {d.points(True)} points over {d.n} seeds, is"
    if o.verdict == "held":
        return f"*{c.claim}*: held. {both}; {size} more than twice its standard error ({100 * d.se:.1f} points)."
    if o.verdict == "reversed":
        return (f"*{c.claim}*: reversed, the baseline wins. {both}; {size} more than twice its standard error "
                f"({100 * d.se:.1f} points) below zero.")
    return (f"*{c.claim}*: within noise. {both}; {size} less than twice its standard error "
            f"({100 * d.se:.1f} points), so these seeds cannot tell the two models apart.")


def claims_section(outcomes: Sequence[Outcome]) -> str:
    """Markdown: a table of the claims (means ± sd over seeds) and a paragraph stating which held, in words ("" without
    claims)."""
    if not outcomes:
        return ""
    seeds = max((o.difference.n for o in outcomes if o.difference is not None), default=0)
    lines = ["## Claims\n",
             f"Each model is trained with {seeds} seed{'s' if seeds != 1 else ''} (the same embeddings, images and "
             "schedule; only initialisation, data order and crops change). Values are the mean ± standard deviation "
             "over seeds, in percent; the difference is taken seed by seed. A claim *held* when its mean difference "
             "is more than two standard errors (sd / √seeds) above zero: a gap that size is unlikely to come from "
             "the choice of seeds alone.\n",
             "| claim | metric (mean over) | model | baseline | difference (points) | seeds | 2 SE (points) | "
             "model / chance | verdict |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for o in outcomes:
        c, d = o.claim, o.difference
        cells = ("–", "–", "–", "0", "–") if d is None else (
            o.model.points(), o.baseline.points(), d.points(True), str(d.n),
            f"{200 * d.se:.1f}" if d.n > 1 else "–")
        chance = _ratio(o.model, c.chance) if c.chance else "–"
        lines.append(f"| {c.claim} | {c.metric} ({_over(c)}) | {c.model} {cells[0]} | {c.baseline} {cells[1]} | "
                     f"{cells[2]} | {cells[3]} | {cells[4]} | {chance} | {o.verdict} |")
    held = sum(o.verdict == "held" for o in outcomes)
    summary = f"{held} of {len(outcomes)} claims held. " + " ".join(map(_sentence, outcomes))
    return "\n".join(lines) + "\n\n" + summary + "\n\n"
