"""The written-out preprocessing: crops in the stated range, no colour change, a crop fixed by the sample's seed."""

import random

import numpy as np
import torch
from PIL import Image

from pipeline.train.transforms import CLIP_MEAN, CLIP_STD, eval_transform, random_crop_box, train_transform


def test_crop_boxes_cover_90_to_100_percent_with_bounded_aspect_ratio():
    rng = random.Random(0)
    areas = []
    for width, height in [(64, 64), (224, 200), (300, 320)]:
        for _ in range(300):
            left, top, right, bottom = random_crop_box(width, height, rng)
            assert 0 <= left < right <= width and 0 <= top < bottom <= height
            areas.append((right - left) * (bottom - top) / (width * height))
            ratio = (right - left) / (bottom - top)
            assert 0.89 <= areas[-1] <= 1.0 and 3 / 4 - 0.02 <= ratio <= 4 / 3 + 0.02, (width, height, ratio)
    assert max(areas) - min(areas) > 0.05  # the crops do vary
    # too wide for any crop of >= 90 % at ratio <= 4/3: the centre crop at ratio 4/3
    assert random_crop_box(320, 200, rng) == (26, 0, 293, 200)


def test_train_transform_keeps_colours_and_depends_only_on_the_seed():
    flat = Image.new("RGB", (48, 40), (200, 30, 90))
    out = train_transform(flat, 32, random.Random(5))
    expected = (torch.tensor([200, 30, 90]) / 255 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    assert out.shape == (3, 32, 32)
    assert torch.allclose(out, expected.view(3, 1, 1).expand_as(out), atol=1e-5)  # no jitter, no flip of colour
    textured = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8))
    same = [train_transform(textured, 32, random.Random(7)) for _ in range(2)]
    other = train_transform(textured, 32, random.Random(8))
    assert torch.equal(same[0], same[1]) and not torch.equal(same[0], other)


def test_eval_transform_centre_crops_the_resized_image():
    red_left_edge = Image.new("RGB", (90, 30), (0, 0, 255))
    red_left_edge.paste((255, 0, 0), (0, 0, 15, 30))
    out = eval_transform(red_left_edge, 16)
    blue = (torch.tensor([0.0, 0.0, 1.0]) - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    assert out.shape == (3, 16, 16)
    assert torch.allclose(out, blue.view(3, 1, 1).expand_as(out), atol=1e-5)  # the red edge is cropped away
