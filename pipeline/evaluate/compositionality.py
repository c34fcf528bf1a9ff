"""Compositionality: SugarCrepe (does the image prefer its caption to a hard negative?) and Winoground (text,
image and group scores), with CLIP_benchmark's metric names. An item with an unreadable image (a SugarCrepe image,
a Winoground example with either image) is left out, its texts counted in ``model.skipped``."""

from __future__ import annotations

from pipeline.evaluate.readers import CaptionSelectionSet, WinogroundSet


def evaluate_sugar_crepe(model, subsets: dict[str, CaptionSelectionSet], prompt: str = "short") -> dict[str, float]:
    """Per subset ``acc_<subset>``: the fraction of images more similar to their caption than to its negative;
    ``acc``: the mean over the subsets."""
    metrics = {}
    for name, data in subsets.items():
        images, kept = model.encode_indexed(data.images)
        model.skip_texts(2 * (len(data.positives) - len(kept)))
        positive = (images * model.encode_text([data.positives[i] for i in kept], prompt=prompt)).sum(dim=-1)
        negative = (images * model.encode_text([data.negatives[i] for i in kept], prompt=prompt)).sum(dim=-1)
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
    """Winoground's scores over the examples whose two images are readable."""
    images, position = model.encode_indexed(data.images)
    examples = [i for i in range(len(data.captions_0)) if 2 * i in position and 2 * i + 1 in position]
    model.skip_texts(2 * (len(data.captions_0) - len(examples)))
    if not examples:
        raise ValueError("winoground: no example has two readable images")
    return winoground_scores(images[[position[2 * i] for i in examples]],
                             images[[position[2 * i + 1] for i in examples]],
                             model.encode_text([data.captions_0[i] for i in examples], prompt=prompt),
                             model.encode_text([data.captions_1[i] for i in examples], prompt=prompt))
