"""The FLAME models a config trains: ``flame`` (its ``embed:`` and ``train:`` sections) and its variants (section
``ablations``: each changes a few embed and/or train keys).

A FLAME model is made by two settings documents, its embedding settings (``$defs/embed_settings``) and its training
settings (``$defs/train_settings``), both merged from the config and validated (defaults filled in). The embeddings
are addressed by the hash of their settings (:func:`settings_id`), so models whose embedding settings agree share
one embedding of every shard, and a changed embedding setting writes beside, never over, another model's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pipeline.settings import as_json, stage_settings, validate_document


def settings_id(document: dict) -> str:
    """The first 12 hex digits of the SHA-256 of ``document``'s canonical JSON: the name of its outputs' folder."""
    return hashlib.sha256(as_json(document).encode()).hexdigest()[:12]


def merge(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` applied: mappings merged key by key (recursively), other values replaced."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            value = merge(base[key], value)
        merged[key] = value
    return merged


@dataclass(frozen=True)
class Variant:
    """One FLAME model of a run: its name and its two settings documents (validated, defaults filled in)."""

    name: str
    embed: dict
    train: dict

    @property
    def embedding_id(self) -> str:
        """The folder of its embeddings: the id of its embedding settings."""
        return settings_id(self.embed)


def flame_variants(config: dict) -> dict[str, Variant]:
    """``flame`` and every ablation of ``config`` (a whole workflow config), in config order.

    Raises ``ValueError`` naming the config key of an invalid merged document, or two models with the same settings
    (they would train the same model twice).
    """
    embed, train = stage_settings(config["embed"]), stage_settings(config["train"])
    changes = {"flame": ("", {})} | {name: (f"ablations.{name}.", c) for name, c in config.get("ablations", {}).items()}
    variants: dict[str, Variant] = {}
    for name, (key, change) in changes.items():
        merged = {
            stage: validate_document(f"{stage}_settings", merge(section, change.get(stage, {})),
                                     f"config key {key}{stage}" + (f" (merged into {stage}:)" if key else ""))
            for stage, section in (("embed", embed), ("train", train))
        }
        variant = Variant(name, merged["embed"], merged["train"])
        same = next((v.name for v in variants.values() if (v.embed, v.train) == (variant.embed, variant.train)), None)
        if same is not None:
            raise ValueError(f"config key ablations.{name}: the same embedding and training settings as {same!r} "
                             "(it would train the same model twice)")
        variants[name] = variant
    return variants
