"""Importing the released checkpoint (``FLAME-Mistral-Nemo-ViT-B-16-CC3M``): an open_clip-fork state dict, open_clip's
``VisionTransformer`` (average pooling) under ``visual.`` and the per-token projector ``mm_projector`` (an
``nn.Sequential`` of Linear, GELU, Linear, LayerNorm), as a model directory the evaluate stage reads.

The tower becomes timm's open_clip-style ViT (``vit_base_patch16_clip_224``, its shape read from the weights) with
the weights converted by timm's own open_clip/OpenAI key map; the projector's keys map onto
:class:`~pipeline.train.model.Projector`. The text side recorded is the release's: the official layout and
``mode: official`` (:mod:`pipeline.embed.official`), hidden state 39, normalised facets, all three sources, and the
schema's default caption limit (``embed.max_caption_tokens``), where evaluation cuts benchmark texts.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import torch
from timm.models.vision_transformer import checkpoint_filter_fn

from pipeline.embed.prompts import SOURCES, templates_hash, text_layout
from pipeline.io.model_dir import save_model
from pipeline.settings import default
from pipeline.train.model import FlameVisionModel

TOWER = "vit_base_patch16_clip_224"
PROJECTOR_KEYS = {"0": "net.0", "2": "net.2", "3": "net.3"}  # mm_projector.<i> -> Projector.<...>


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors (``state_dict`` of an open_clip training checkpoint, or the dict itself), without a
    DDP ``module.`` prefix. Loaded with ``weights_only=True``: a checkpoint cannot run code."""
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a state dict (a {type(loaded).__name__})")
    return {key.removeprefix("module."): value for key, value in state.items() if isinstance(value, torch.Tensor)}


def vision_settings(state: dict[str, torch.Tensor], heads: int) -> dict:
    """The timm vision settings of an open_clip ``visual.*`` state dict: width, depth, patch and image size from the
    shapes; ``heads`` (not in the weights) given."""
    width = state["visual.class_embedding"].shape[0]
    patch = state["visual.conv1.weight"].shape[-1]
    grid = math.isqrt(state["visual.positional_embedding"].shape[0] - 1)
    depth = len({key.split(".")[3] for key in state if key.startswith("visual.transformer.resblocks.")})
    mlp = state["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0] / width
    return {"model": TOWER, "image_size": grid * patch, "patch_size": patch,
            "kwargs": {"embed_dim": width, "depth": depth, "num_heads": heads, "mlp_ratio": mlp}}


def import_official(checkpoint: Path, out: Path, llm: str, heads: int = 12, layer: int = 39) -> Path:
    """Write the released checkpoint as a FLAME model directory ``out`` whose texts are embedded with ``llm`` as
    released (official layout and mode, hidden state ``layer``); returns ``out``."""
    state = _state_dict(checkpoint)
    if "visual.class_embedding" not in state or "mm_projector.0.weight" not in state:
        raise ValueError(f"{checkpoint}: no open_clip visual.* and mm_projector.* weights (keys: "
                         f"{sorted(state)[:8]} ...)")
    vision = vision_settings(state, heads)
    dim = state["mm_projector.0.weight"].shape[0]
    model = FlameVisionModel(vision, dim, "per_token", "sigmoid_multi_positive")
    tower = checkpoint_filter_fn({k: v for k, v in state.items() if k.startswith("visual.")}, model.tower)
    model.tower.load_state_dict({k: v for k, v in tower.items() if not k.startswith("head.")})
    model.projector.load_state_dict({f"{PROJECTOR_KEYS[k.split('.')[1]]}.{k.split('.')[2]}": v
                                     for k, v in state.items() if k.startswith("mm_projector.")})
    with torch.no_grad():
        for name in ("logit_scale", "logit_bias"):
            if name in state:
                getattr(model, name).copy_(state[name].reshape(()))
    templates = text_layout("official")
    text = {"llm": llm, "revision": None, "layer": layer, "mode": "official", "layout": "official",
            "max_caption_tokens": default("embed_settings", "max_caption_tokens"),
            "templates": {s: t.describe() for s, t in templates.items()}, "prompts_hash": templates_hash(templates),
            "dim": dim, "normalized": True, "sources": list(SOURCES), "train_sources": list(SOURCES),
            "trained_templates": {s: t.describe() for s, t in templates.items()}}
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    config = {**model.config(text), "imported_from": {"path": str(checkpoint), "sha256": digest}}
    save_model(model, config, out)
    return out
