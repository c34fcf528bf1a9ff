"""The CLIP baseline: open_clip's CLIP (its own text transformer and BPE tokenizer, 77-token context, ``ClipLoss``)
with FLAME's vision tower, trained on the same shards and captions.

The image side is the same timm ViT as FLAME's (:func:`pipeline.train.model.vision_tower`), its patch tokens averaged
and projected linearly to the joint width (open_clip's ``TimmModel`` with ``pool="avg"``, ``proj="linear"``); it
replaces open_clip's own ``visual``. Everything else (text tower, ``encode_text``, ``forward``, the logit scale
initialised to log(1/0.07)) is open_clip's code. Saved like a FLAME model, with ``kind: "clip"``.
"""

from __future__ import annotations

import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
from torch import nn

from pipeline.train.model import patch_tokens, vision_tower

#: Placeholder for open_clip's own vision tower, replaced at once by :class:`PooledVisionTower`.
_UNUSED_VISION = CLIPVisionCfg(layers=1, width=8, head_width=8, patch_size=8, image_size=8)


class PooledVisionTower(nn.Module):
    """FLAME's ViT, patch tokens averaged, then a linear projection: ``[B, 3, H, W] -> [B, embed_dim]``."""

    def __init__(self, vision: dict, embed_dim: int):
        super().__init__()
        self.tower = vision_tower(vision)
        self.proj = nn.Linear(self.tower.num_features, embed_dim, bias=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(patch_tokens(self.tower, images).mean(dim=1))


def build_clip(vision: dict, embed_dim: int, text: dict) -> CLIP:
    """open_clip's CLIP with FLAME's vision tower; ``text``: ``CLIPTextCfg`` fields (width, heads, layers,
    context_length)."""
    model = CLIP(embed_dim, _UNUSED_VISION, CLIPTextCfg(**text))
    model.visual = PooledVisionTower(vision, embed_dim)
    return model


def clip_config(vision: dict, embed_dim: int, text: dict, captions: dict) -> dict:
    """The model config saved with the weights (``captions``: which caption sources it was trained on)."""
    return {"kind": "clip", "vision": vision, "embed_dim": embed_dim, "text": text, "captions": captions}


def clip_from_config(config: dict) -> CLIP:
    return build_clip(config["vision"], config["embed_dim"], config["text"])
