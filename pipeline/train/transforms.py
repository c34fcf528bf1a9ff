"""Image preprocessing, written out rather than taken from a library's defaults.

Training: the paper's / open_clip's only augmentation, a random resized crop with area scale (0.9, 1.0) and aspect
ratio (3/4, 4/3), resized bicubically to ``image_size``; no flip, no colour jitter (colour and atmosphere are facets
the model must learn). The crop is drawn from a ``random.Random`` given per sample, so a sample's tensor depends on
its own seed only (exact resume, same result in any worker). Evaluation: the shorter side resized to
``image_size`` (bicubic), centre crop. Both end with CLIP's mean/std normalisation: PIL image -> ``[3, S, S]``
float32.
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CROP_SCALE = (0.9, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)


def to_normalized_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> ``[3, H, W]`` float32, CLIP-normalised."""
    array = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean, std = torch.tensor(CLIP_MEAN).view(3, 1, 1), torch.tensor(CLIP_STD).view(3, 1, 1)
    return (array - mean) / std


def random_crop_box(width: int, height: int, rng: random.Random) -> tuple[int, int, int, int]:
    """A ``(left, top, right, bottom)`` box covering CROP_SCALE of the area with aspect ratio in CROP_RATIO.

    The usual rejection sampling (10 tries, log-uniform ratio); the centre crop at the nearest allowed ratio when
    none fits.
    """
    area = width * height
    log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    for _ in range(10):
        target = area * rng.uniform(*CROP_SCALE)
        ratio = math.exp(rng.uniform(*log_ratio))
        w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            left, top = rng.randint(0, width - w), rng.randint(0, height - h)
            return left, top, left + w, top + h
    ratio = min(max(width / height, CROP_RATIO[0]), CROP_RATIO[1])
    w, h = (width, round(width / ratio)) if width / height < ratio else (round(height * ratio), height)
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def train_transform(image: Image.Image, image_size: int, rng: random.Random) -> torch.Tensor:
    """Random resized crop (scale 0.9-1.0) to ``image_size`` -> ``[3, S, S]`` normalised."""
    box = random_crop_box(*image.size, rng)
    return to_normalized_tensor(image.resize((image_size, image_size), Image.BICUBIC, box=box))


def eval_transform(image: Image.Image, image_size: int) -> torch.Tensor:
    """Shorter side to ``image_size`` (bicubic), centre crop -> ``[3, S, S]`` normalised."""
    width, height = image.size
    scale = image_size / min(width, height)
    resized = image.resize((max(image_size, round(width * scale)), max(image_size, round(height * scale))),
                           Image.BICUBIC)
    left, top = (resized.width - image_size) // 2, (resized.height - image_size) // 2
    return to_normalized_tensor(resized.crop((left, top, left + image_size, top + image_size)))
