"""Metrics on hand-made features: recall@k, classification, compositionality (the linear probe:
test_linear_probe.py)."""


import pytest
import torch

from pipeline.evaluate.models import EvalModel
from pipeline.evaluate.retrieval import recall_at_k
from pipeline.evaluate.zeroshot import classification_metrics


def test_recall_with_several_captions_per_image():
    images = torch.eye(3)
    # captions 0,1 belong to image 0; caption 2 to image 1; caption 3 to image 2
    texts = torch.tensor([[1.0, 0, 0], [0, 0.2, 1.0], [0, 1.0, 0], [0, 1.0, 0.1]])
    texts = torch.nn.functional.normalize(texts, dim=-1)
    m = recall_at_k(images, texts, [0, 0, 1, 2], ks=(1, 2))
    assert m["image_retrieval_recall@1"] == pytest.approx(2 / 4)  # captions 0 and 2 rank their image first
    assert m["image_retrieval_recall@2"] == pytest.approx(3 / 4)
    assert m["text_retrieval_recall@1"] == pytest.approx(2 / 3)  # image 2's best text is caption 2 (image 1's)
    assert m["text_retrieval_recall@2"] == pytest.approx(1.0)


def test_classification_metrics():
    logits = torch.tensor([[3.0, 1, 0, 0, 0, 0], [0, 2, 3, 0, 0, 0], [0, 0, 1, 0, 0, 0]])
    m = classification_metrics(logits, torch.tensor([0, 1, 2]))
    assert m["acc1"] == pytest.approx(2 / 3) and m["acc5"] == 1.0
    assert m["mean_per_class_recall"] == pytest.approx(2 / 3)


class FixedModel(EvalModel):
    """The evaluation interface over fixed vectors: images by index, texts by their string."""

    def __init__(self, images, texts):
        super().__init__(image_size=0, device=torch.device("cpu"))
        self.images, self.texts = images, texts

    def encode_images(self, dataset):
        order = torch.tensor([index for _, index in dataset]).flip(0)  # out of order, as several workers give
        return self.images[order], order

    def encode_text(self, texts, prompt=None):
        return torch.stack([self.texts[t] for t in texts])


def test_compositionality_scores_on_hand_made_features():
    from pipeline.evaluate.compositionality import evaluate_sugar_crepe, evaluate_winoground
    from pipeline.evaluate.readers import CaptionSelectionSet, WinogroundSet

    e = torch.eye(3)
    images = e[[0, 1, 2]]
    texts = {"p0": e[0], "n0": e[1], "p1": e[0], "n1": e[1], "p2": e[2], "n2": 0.5 * e[2]}
    data = CaptionSelectionSet([(None, i) for i in range(3)], ["p0", "p1", "p2"], ["n0", "n1", "n2"])
    got = evaluate_sugar_crepe(FixedModel(images, texts), {"swap_att": data})
    assert got == {"acc_swap_att": pytest.approx(2 / 3), "acc": pytest.approx(2 / 3)}  # image 1 prefers n1

    # example 0: both scores right; example 1: both captions are closest to image 0 and tie there, so both fail
    images = torch.stack([e[0], e[1], e[0], e[1]])
    texts = {"c00": e[0], "c10": e[1], "c01": e[0] + 0.1 * e[1], "c11": e[0] + 0.2 * e[1]}
    wino = WinogroundSet([(None, i) for i in range(4)], ["c00", "c01"], ["c10", "c11"])
    scores = evaluate_winoground(FixedModel(images, texts), wino)
    assert scores == {"text_acc": 0.5, "image_acc": 0.5, "acc": 0.5}
