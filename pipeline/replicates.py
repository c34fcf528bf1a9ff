"""Replicas: a run's models trained again with other seeds or on part of the training images, everything else equal.

Two config sections make them (``$defs`` ``replicates`` and ``data_efficiency`` in the schema):

- ``replicates: {seeds: N}``: every model a claim compares (``report.claims``) is trained with N seeds, its own
  ``train.seed`` s and s+1 .. s+N-1, so the report gives each claim's difference as mean ± sd over seeds.
- ``data_efficiency: {fractions, models, seeds}``: each model of ``models`` is also trained on each fraction of the
  training images (``train.data_fraction``: the same images for every model and seed, nested across fractions), with
  ``seeds`` seeds, for the report's curves of the claims' metrics against the number of images.

A replica is named after its base model: ``flame-seed1`` (seed 1, all images), ``clip-data25`` (25 % of the images,
the base seed), ``clip-data25-seed1``. The embeddings are shared: a replica changes training settings only, and it
is evaluated only on what the claims that name its base model measure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Replica:
    """One trained model of a comparison: ``base`` (flame, a variant, clip) with ``seed`` on ``fraction`` of the
    training images; the base model itself is the replica with its own seed and fraction 1."""

    name: str
    base: str
    seed: int
    fraction: float

    @property
    def changes(self) -> dict:
        """The training settings it changes in its base model's document (none for the base model itself)."""
        changes = {} if self.name == self.base else {"seed": self.seed}
        if self.fraction < 1:
            changes["data_fraction"] = self.fraction
        return changes


def percent(fraction: float) -> str:
    """``fraction`` in percent without trailing zeros: 0.125 -> ``12.5``, 0.25 -> ``25``."""
    return f"{100 * fraction:g}"


def replica_name(base: str, base_seed: int, seed: int, fraction: float) -> str:
    """The model name of ``base`` trained with ``seed`` on ``fraction`` of the images (``base`` itself for its own
    seed and all images)."""
    return base + (f"-data{percent(fraction)}" if fraction < 1 else "") + (f"-seed{seed}" if seed != base_seed else "")


def claim_models(claims: Sequence[dict]) -> list[str]:
    """The models the claims compare (``model`` and ``baseline``), in first-named order."""
    return list(dict.fromkeys(claim[role] for claim in claims for role in ("model", "baseline")))


def build_replicas(config: dict, seeds_of: dict[str, int]) -> dict[str, Replica]:
    """Every replica of ``config`` (a whole workflow config) by name, base models' own entries included: per model
    its own replica, its seed replicas (``replicates.seeds``) when a claim compares it, and its data-fraction
    replicas (``data_efficiency``). ``seeds_of``: each trained model's own ``train.seed``.

    Raises ``ValueError`` naming the config key of a data-efficiency model that is not trained, or of a replica name
    that is already a model's name.
    """
    claims = config.get("report", {}).get("claims", [])
    replicas = {name: Replica(name, name, seed, 1.0) for name, seed in seeds_of.items()}

    def add(base: str, offsets: int, fraction: float, key: str) -> None:
        if base not in seeds_of:
            raise ValueError(f"config key {key}: no model {base!r} in this run (models: {', '.join(seeds_of)})")
        for offset in range(offsets):
            seed = seeds_of[base] + offset
            name = replica_name(base, seeds_of[base], seed, fraction)
            if name in seeds_of and name != base:
                raise ValueError(f"config key {key}: the replica name {name!r} is already a model of this run")
            replicas.setdefault(name, Replica(name, base, seed, fraction))

    for base in claim_models(claims):
        if base in seeds_of:  # a claim naming no model of the run is the workflow's config error, with its key
            add(base, config.get("replicates", {}).get("seeds", 1), 1.0, "replicates.seeds")
    efficiency = config.get("data_efficiency")
    if efficiency:
        for base in efficiency["models"]:
            for fraction in efficiency["fractions"]:
                add(base, efficiency.get("seeds", 1), fraction, "data_efficiency.models")
    return replicas


def measured_benchmarks(claims: Sequence[dict], base: str) -> dict[str, list[str] | None]:
    """What a replica of ``base`` is evaluated on: benchmark -> the languages the claims naming ``base`` average
    over (None: all of the benchmark's languages)."""
    measured: dict[str, list[str] | None] = {}
    for claim in claims:
        if base not in (claim["model"], claim["baseline"]):
            continue
        for name in claim["benchmarks"]:
            if name in measured and (measured[name] is None or claim.get("languages") is None):
                measured[name] = None
            else:
                measured[name] = sorted({*(measured.get(name) or []), *(claim.get("languages") or [])}) or None
    return measured
