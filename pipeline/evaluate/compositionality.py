"""Compositionality: SugarCrepe (does the image prefer its caption to a hard negative?) and Winoground (text,
image and group scores), with CLIP_benchmark's metric names."""

from __future__ import annotations

import torch

from pipeline.evaluate.readers import CaptionSelectionSet, WinogroundSet


def _ordered_images(model, dataset) -> torch.Tensor:
    features, index = model.encode_images(dataset)
    return features[index.argsort()]


def evaluate_sugar_crepe(model, subsets: dict[str, CaptionSelectionSet], prompt: str = "short") -> dict[str, float]:
    """Per subset ``acc_<subset>``: the fraction of images more similar to their caption than to its negative;
    ``acc``: the mean over the subsets."""
    metrics = {}
    for name, data in subsets.items():
        images = _ordered_images(model, data.images)
        positive = (images * model.encode_text(data.positives, prompt=prompt)).sum(dim=-1)
        negative = (images * model.encode_text(data.negatives, prompt=prompt)).sum(dim=-1)
        metrics[f"acc_{name}"] = (positive > negative).float().mean().item()
    metrics["acc"] = sum(metrics.values()) / len(subsets)
    return metrics


def winoground_scores(image_0, image_1, caption_0, caption_1) -> dict[str, float]:
    """Winoground's scores from ``[N, D]`` features: ``text_acc`` (each image prefers its caption), ``image_acc``
    (each caption prefers its image), ``acc`` (both: the group score)."""
    def sim(c, i):
        return (c * i).sum(dim=-1)

    text = (sim(caption_0, image_0) > sim(caption_1, image_0)) & (sim(caption_1, image_1) > sim(caption_0, image_1))
    image = (sim(caption_0, image_0) > sim(caption_0, image_1)) & (sim(caption_1, image_1) > sim(caption_1, image_0))
    return {"text_acc": text.float().mean().item(), "image_acc": image.float().mean().item(),
            "acc": (text & image).float().mean().item()}


def evaluate_winoground(model, data: WinogroundSet, prompt: str = "short") -> dict[str, float]:
    images = _ordered_images(model, data.images)
    return winoground_scores(images[0::2], images[1::2], model.encode_text(data.captions_0, prompt=prompt),
                             model.encode_text(data.captions_1, prompt=prompt))
