"""Vocabulary mapping (the paper's supplementary C.3, Fig. C1): which LLM word each image region projects to.

Every patch token of the vision tower goes through the trained projector into the LLM's hidden space, at the
hidden state the model's text side reads (``layer``). The patch grid is average-pooled there, in cells of
``pool`` x ``pool`` patches (after the projector, as the released ``eval_semantic_interpretation`` pools the
projected tokens; ``pool`` 2 turns ViT-B/16's 14 x 14 grid into 7 x 7 as the release does; a grid that ``pool`` does
not divide gets smaller cells at its right and bottom edge, each the mean of the patches it covers). Each cell is
then scored as the LLM scores a next token from a hidden state: its final norm (only when ``layer`` is a decoder
layer's output, before that norm; ``layer -1`` is the normed state already), then its ``lm_head``; the word of the
cell is the token of the highest logit. The release feeds the pooled state to ``lm_head`` without the norm.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import nn

from pipeline.train.model import FlameVisionModel, patch_tokens
from pipeline.train.transforms import eval_transform

CELL_PIXELS = 64  # drawn size of one pooled cell


def final_norm(llm: nn.Module) -> nn.Module:
    """The final norm of a decoder-only LLM: its decoder's (``get_decoder()``) ``norm``, where Mistral, Llama and
    Qwen2 keep it; raises ``TypeError`` naming the model's class when it has none."""
    decoder = llm.get_decoder() if hasattr(llm, "get_decoder") else None
    norm = getattr(decoder, "norm", None)
    if not isinstance(norm, nn.Module):
        raise TypeError(f"{type(llm).__name__}: no final norm at get_decoder().norm (Mistral, Llama, Qwen2 and their "
                        "kin keep it there), so its next-token logits of a hidden state cannot be computed")
    return norm


def pool_grid(tokens: torch.Tensor, side: int, pool: int) -> torch.Tensor:
    """``[B, side * side, D]`` patch tokens (row-major) -> ``[B, ceil(side / pool), ceil(side / pool), D]``: the mean
    of each cell of ``pool`` x ``pool`` patches (edge cells: of the patches they cover)."""
    if pool < 1:
        raise ValueError(f"pool must be at least 1, got {pool}")
    grid = tokens.reshape(tokens.shape[0], side, side, tokens.shape[-1]).permute(0, 3, 1, 2)  # [B, D, side, side]
    pooled = F.avg_pool2d(grid, kernel_size=pool, stride=pool, ceil_mode=True)
    return pooled.permute(0, 2, 3, 1)


@torch.inference_mode()
def cell_token_ids(vision: FlameVisionModel, llm: nn.Module, pixels: torch.Tensor, pool: int, layer: int,
                   k: int = 1) -> torch.Tensor:
    """The ``k`` highest-logit token ids of every pooled cell: ``[B, 3, S, S]`` images (``eval_transform``ed, on the
    vision model's device) -> ``[B, rows, cols, k]`` long, best first. ``layer``: the hidden state the model's text
    side reads (``-1``: after the final norm, so the norm is not applied again)."""
    side = vision.vision_config["image_size"] // vision.vision_config["patch_size"]
    cells = pool_grid(vision.projector(patch_tokens(vision.tower, pixels)), side, pool)  # [B, rows, cols, D]
    head = llm.get_output_embeddings()
    hidden = cells.to(device=head.weight.device, dtype=head.weight.dtype)
    if layer != -1:
        hidden = final_norm(llm)(hidden)
    return head(hidden).topk(k, dim=-1).indices.cpu()


def token_word(tokenizer, token_id: int) -> str:
    """The text of one token, stripped (empty for a special or whitespace token)."""
    return tokenizer.decode([token_id], skip_special_tokens=True).strip()


def cell_words(tokenizer, ids: torch.Tensor) -> list[list[str]]:
    """``[rows, cols]`` token ids -> their words as ``rows x cols`` strings (a token without text as its repr)."""
    return [[token_word(tokenizer, i) or repr(tokenizer.decode([i])) for i in row] for row in ids.tolist()]


def draw_words(image: Image.Image, words: list[list[str]]) -> Image.Image:
    """``image`` resized to the grid (:data:`CELL_PIXELS` per cell) with each cell's word written in it."""
    rows, cols = len(words), len(words[0])
    canvas = image.convert("RGB").resize((cols * CELL_PIXELS, rows * CELL_PIXELS), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(words):
        for c, word in enumerate(row):
            x, y = c * CELL_PIXELS, r * CELL_PIXELS
            draw.rectangle([x, y, x + CELL_PIXELS - 1, y + CELL_PIXELS - 1], outline=(255, 255, 255))
            text = word[:9]
            box = draw.textbbox((0, 0), text)
            position = (x + (CELL_PIXELS - box[2]) / 2, y + (CELL_PIXELS - box[3]) / 2)
            draw.text(position, text, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
    return canvas


def vocabulary_figure(vision: FlameVisionModel, llm: nn.Module, tokenizer, images: Sequence[Image.Image], pool: int,
                      layer: int) -> Image.Image:
    """The images side by side, each with the word of every pooled cell (:func:`cell_token_ids`)."""
    device = next(vision.parameters()).device
    size = vision.vision_config["image_size"]
    pixels = torch.stack([eval_transform(image.convert("RGB"), size) for image in images]).to(device)
    ids = cell_token_ids(vision, llm, pixels, pool, layer)[..., 0]  # [B, rows, cols]
    panels = [draw_words(image, cell_words(tokenizer, grid)) for image, grid in zip(images, ids)]
    figure = Image.new("RGB", (sum(p.width for p in panels), max(p.height for p in panels)), (255, 255, 255))
    x = 0
    for panel in panels:
        figure.paste(panel, (x, 0))
        x += panel.width
    return figure
