"""The train stage's settings as typed objects, built from documents validated against the schema
(``$defs/train_common``, ``train_settings``, ``clip_settings``, ``train_execution``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from pipeline.settings import validate_document


@dataclass(frozen=True)
class TrainSettings:
    """What every trained model shares (vision backbone, data, schedule): meanings, bounds and defaults in
    ``$defs/train_common`` of ``pipeline/schema.yaml``. Build a :class:`FlameSettings` or :class:`ClipSettings`
    with ``from_document``."""

    DEFINITION: ClassVar[str] = "train_common"
    vision: dict
    sources: list[str]
    epochs: int
    batch_size: int
    grad_accum: int
    lr: float
    weight_decay: float
    betas: list[float]
    eps: float
    warmup_steps: int
    precision: str
    shuffle_buffer: int
    seed: int
    data_fraction: float = field(default=1.0, kw_only=True)  # absent from a document: every image

    @classmethod
    def from_document(cls, document: dict, where: str = "train settings"):
        return cls(**validate_document(cls.DEFINITION, document, where))


@dataclass(frozen=True)
class FlameSettings(TrainSettings):
    """FLAME training (``$defs/train_settings``): the shared settings plus the objective and the projector."""

    DEFINITION: ClassVar[str] = "train_settings"
    loss: str
    texts_per_step: str
    positives: int
    projector: str
    facets: list[str] | dict | None


@dataclass(frozen=True)
class ClipSettings(TrainSettings):
    """The CLIP baseline (``$defs/clip_settings``): the shared settings plus open_clip's joint width and text tower
    (``CLIPTextCfg`` fields)."""

    DEFINITION: ClassVar[str] = "clip_settings"
    embed_dim: int
    text: dict


@dataclass(frozen=True)
class TrainExecution:
    """How training runs: loader workers, checkpoint interval (``$defs/train_execution``); never rerun triggers."""

    num_workers: int
    checkpoint_every: int
