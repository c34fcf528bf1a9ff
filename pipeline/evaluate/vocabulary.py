"""Vocabulary mapping (the paper's Fig. C1): which LLM word each image patch projects to.

Every patch token of the vision tower goes through the trained projector into the LLM's hidden space; its word is
the vocabulary entry whose output embedding (the LLM's ``lm_head`` row) is the most cosine-similar. The words are
drawn over the image on the patch grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from pipeline.train.model import FlameVisionModel, patch_tokens
from pipeline.train.transforms import eval_transform

CELL_PIXELS = 64  # drawn size of one patch


@torch.inference_mode()
def patch_words(vision: FlameVisionModel, llm, tokenizer, image: Image.Image) -> list[list[str]]:
    """The nearest vocabulary word of every patch, as ``rows x cols`` strings (row-major, as the patches)."""
    size, patch = vision.vision_config["image_size"], vision.vision_config["patch_size"]
    device = next(vision.parameters()).device
    pixels = eval_transform(image.convert("RGB"), size)[None].to(device)
    projected = vision.projector(patch_tokens(vision.tower, pixels))[0]  # [T, D]
    vocabulary = llm.get_output_embeddings().weight  # [V, D]
    scores = F.normalize(projected.float(), dim=-1) @ F.normalize(vocabulary.float().to(device), dim=-1).T
    ids = scores.argmax(dim=-1).tolist()
    side = size // patch
    words = [tokenizer.decode([i]).strip() or repr(tokenizer.decode([i])) for i in ids]
    return [words[r * side:(r + 1) * side] for r in range(side)]


def draw_words(image: Image.Image, words: list[list[str]]) -> Image.Image:
    """``image`` resized to the grid (:data:`CELL_PIXELS` per patch) with each patch's word written in its cell."""
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


def vocabulary_figure(vision: FlameVisionModel, llm, tokenizer, images: list[Image.Image]) -> Image.Image:
    """The images side by side, each with its patch words."""
    panels = [draw_words(image, patch_words(vision, llm, tokenizer, image)) for image in images]
    figure = Image.new("RGB", (sum(p.width for p in panels), max(p.height for p in panels)), (255, 255, 255))
    x = 0
    for panel in panels:
        figure.paste(panel, (x, 0))
        x += panel.width
    return figure
