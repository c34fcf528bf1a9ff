"""The FLAME image side: a timm vision transformer + a 2-layer MLP projector into the LLM's hidden space.

``projector``:

``per_token`` (the official code)
    The MLP (Linear -> GELU -> Linear -> LayerNorm) runs on every patch token and the projected tokens are averaged.
    For ViT-B/16 at 224 px into Mistral-Nemo's 5120 that is ~6 GMAC per image, about a third of the ViT itself.
``pooled``
    The patch tokens are averaged first and the MLP runs once per image: T times fewer projector FLOPs (T = patch
    tokens, 196 for ViT-B/16), a different (cheaper, less expressive) model.

The image feature is the result, L2-normalised: ``images [B, 3, H, W] -> [B, D]``. Saved as a model directory
(:mod:`pipeline.io.model_dir`).
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.io.model_dir import load_weights, read_config
from pipeline.settings import allowed
from pipeline.train.loss import INITIAL_LOGITS

PROJECTORS = allowed("flame_only", "projector")


def vision_tower(vision: dict) -> nn.Module:
    """The timm ViT of ``vision`` (``{"model", "image_size", "patch_size", "kwargs"}``), random init, no head."""
    return timm.create_model(vision["model"], pretrained=False, num_classes=0, img_size=vision["image_size"],
                             patch_size=vision["patch_size"], **vision.get("kwargs", {}))


def patch_tokens(tower: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``[B, 3, H, W] -> [B, T, W]``: the tower's output tokens without its prefix (class/register) tokens."""
    return tower.forward_features(images)[:, tower.num_prefix_tokens:]


class Projector(nn.Module):
    """2-layer MLP: ``[..., width] -> [..., dim]``."""

    def __init__(self, width: int, dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, dim), nn.GELU(), nn.Linear(dim, dim), nn.LayerNorm(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FlameVisionModel(nn.Module):
    """Vision tower + projector + the objective's learnable logit scale (and bias).

    ``vision``: ``{"model": timm name, "image_size": int, "patch_size": int, "kwargs": {...}}``; ``dim``: the LLM
    hidden size D; ``projector``: one of :data:`PROJECTORS`; ``objective``: sets the initial ``logit_scale`` (log of
    the inverse temperature) and whether there is a ``logit_bias`` (:data:`pipeline.train.loss.INITIAL_LOGITS`).
    """

    def __init__(self, vision: dict, dim: int, projector: str = "per_token", objective: str = "info_nce"):
        super().__init__()
        if projector not in PROJECTORS:
            raise ValueError(f"projector must be one of {PROJECTORS}, got {projector!r}")
        self.vision_config, self.dim, self.projector_kind, self.objective = dict(vision), dim, projector, objective
        self.tower = vision_tower(vision)
        self.projector = Projector(self.tower.num_features, dim)
        scale, bias = INITIAL_LOGITS[objective]
        self.logit_scale = nn.Parameter(torch.tensor(scale))
        self.logit_bias = nn.Parameter(torch.tensor(bias)) if bias is not None else None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` -> L2-normalised ``[B, D]``."""
        tokens = patch_tokens(self.tower, images)  # [B, T, W]
        if self.projector_kind == "per_token":
            return F.normalize(self.projector(tokens).mean(dim=1), dim=-1)
        return F.normalize(self.projector(tokens.mean(dim=1)), dim=-1)

    def config(self, text_side: dict) -> dict:
        return {"kind": "flame", "vision": self.vision_config, "dim": self.dim, "projector": self.projector_kind,
                "objective": self.objective, "text": text_side}

    @classmethod
    def from_config(cls, config: dict) -> FlameVisionModel:
        return cls(config["vision"], config["dim"], config["projector"], config["objective"])


def load_flame_model(directory: Path) -> tuple[FlameVisionModel, dict]:
    """``(model, config)`` of a FLAME model directory."""
    config = read_config(directory)
    if config.get("kind") != "flame":
        raise ValueError(f"{directory}: a {config.get('kind')!r} model, not a FLAME model")
    return load_weights(FlameVisionModel.from_config(config), directory), config
