"""The FLAME image side: a timm vision transformer + a 2-layer MLP projector into the LLM's hidden space.

As in the official code, the projector runs on every patch token (Linear -> GELU -> Linear -> LayerNorm) and the
projected tokens are averaged; the image feature is that mean, L2-normalised: ``images [B, 3, H, W] -> [B, D]``.
A saved model directory holds ``model.safetensors`` and ``flame_config.json`` (vision and projector settings plus
the text side that produced the training targets: LLM, layer, facets).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from pipeline.data import atomic_path

CONFIG_NAME = "flame_config.json"
WEIGHTS_NAME = "model.safetensors"


class Projector(nn.Module):
    """Per-token 2-layer MLP: ``[..., width] -> [..., dim]``."""

    def __init__(self, width: int, dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, dim), nn.GELU(), nn.Linear(dim, dim), nn.LayerNorm(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FlameVisionModel(nn.Module):
    """Vision tower + projector + learnable temperature.

    ``vision``: ``{"model": timm name, "image_size": int, "patch_size": int, "kwargs": {...}}``; ``dim``: the LLM
    hidden size D. ``logit_scale`` is log(1/T), initialised to log(1/0.07) (paper).
    """

    def __init__(self, vision: dict, dim: int, init_temperature: float = 0.07):
        super().__init__()
        self.vision_config = dict(vision)
        self.dim = dim
        self.tower = timm.create_model(vision["model"], pretrained=False, num_classes=0,
                                       img_size=vision["image_size"], patch_size=vision["patch_size"],
                                       **vision.get("kwargs", {}))
        self.projector = Projector(self.tower.num_features, dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` -> L2-normalised ``[B, D]``."""
        tokens = self.tower.forward_features(images)[:, self.tower.num_prefix_tokens:]  # patch tokens [B, T, W]
        return F.normalize(self.projector(tokens).mean(dim=1), dim=-1)

    def save(self, out: Path, text_side: dict) -> None:
        """Write weights and config into the directory ``out`` (each file atomically)."""
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / WEIGHTS_NAME) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(tmp))
        config = {"vision": self.vision_config, "dim": self.dim, "text": text_side}
        with atomic_path(out / CONFIG_NAME) as tmp:
            tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> tuple[FlameVisionModel, dict]:
        """``(model, config)`` from a directory written by :meth:`save`."""
        config_path = directory / CONFIG_NAME
        if not config_path.exists():
            raise FileNotFoundError(f"{config_path}: not a FLAME model directory (no {CONFIG_NAME})")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        model = cls(config["vision"], config["dim"])
        model.load_state_dict(load_file(str(directory / WEIGHTS_NAME)))
        return model.eval(), config
