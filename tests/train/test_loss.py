"""The two objectives: hand-computed values, equality with open_clip's losses (1 and 2 processes), masking."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from fixtures import HUNG_AFTER_S
from pipeline.train.loss import facet_info_nce, sigmoid_multi_positive

SCRIPT = Path(__file__).parent / "loss_vs_open_clip.py"


def test_sigmoid_multi_positive_on_a_hand_computed_batch():
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[[1.0, 0.0], [0.6, 0.8]], [[0.0, 1.0], [0.8, 0.6]]])  # 2 images x 2 rows
    scale, bias = torch.tensor(math.log(10.0)), torch.tensor(-10.0)
    total = 0.0
    for i in range(2):
        for j in range(2):
            for r in range(2):
                logit = 10.0 * float(image[i] @ text[j, r]) - 10.0
                label = 1.0 if i == j else -1.0
                total += -math.log(1 / (1 + math.exp(-label * logit)))
    got = sigmoid_multi_positive(image, text, torch.ones(2, 2, dtype=torch.bool), scale, bias)
    assert got.item() == pytest.approx(total / (2 * 2), rel=1e-6)
    # a masked row drops out of the sum (the normaliser stays B x R, as released)
    mask = torch.tensor([[True, False], [True, True]])
    dropped = sum(-math.log(1 / (1 + math.exp(-(1.0 if i == 0 else -1.0) * (10.0 * float(image[i] @ text[0, 1]) - 10))))
                  for i in range(2))
    assert sigmoid_multi_positive(image, text, mask, scale, bias).item() == pytest.approx((total - dropped) / 4,
                                                                                        rel=1e-6)


def test_info_nce_masks_facets_a_caption_does_not_have():
    torch.manual_seed(0)
    image = F.normalize(torch.randn(4, 8), dim=-1)
    text = F.normalize(torch.randn(4, 2, 8), dim=-1)
    mask = torch.tensor([[True, True], [True, False], [True, True], [True, False]])  # images 1, 3: one facet
    scale = torch.tensor(1.5)
    garbage = text.clone()
    garbage[1, 1] = garbage[3, 1] = image[0]  # what sits in an empty slot must not matter
    got = facet_info_nce(image, garbage, mask, scale)

    def clip_loss(img, txt):
        logits = scale.exp() * img @ txt.T
        labels = torch.arange(len(img))
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2

    keep = torch.tensor([0, 2])  # facet 1 is contrasted among the images that have it
    expected = (clip_loss(image, text[:, 0]) + clip_loss(image[keep], text[keep, 1])) / 2
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("processes", [1, 2])
def test_objectives_equal_open_clip_losses_in_values_and_gradients(tmp_path, processes):
    launcher = ([sys.executable] if processes == 1 else
                [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes)])
    proc = subprocess.run([*launcher, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=HUNG_AFTER_S,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rank in range(processes):
        results = torch.load(tmp_path / f"rank{rank}.pt")
        for name, (ours, theirs) in results.items():
            for what, a, b in zip(("loss", "image grad", "text grad"), ours, theirs):
                assert b.abs().sum() > 0, (name, what)
                assert torch.allclose(a, b, rtol=1e-5, atol=1e-7), (name, rank, what)
