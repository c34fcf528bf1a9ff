"""Zero-shot classification: class embeddings from prompt templates, top-k accuracy and mean per-class recall."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def class_embeddings(model, classnames: list[str], templates: list[str], prompt="short") -> torch.Tensor:
    """``[C, D]``: per class, the normalised mean of its template texts' embeddings."""
    texts = [t.format(c=c) for c in classnames for t in templates]
    emb = model.encode_text(texts, prompt=prompt).view(len(classnames), len(templates), -1)
    return F.normalize(emb.mean(dim=1), dim=-1)


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """``acc1``, ``acc5`` (when there are >= 5 classes) and ``mean_per_class_recall`` from ``logits [N, C]``."""
    metrics = {"acc1": (logits.argmax(dim=1) == labels).float().mean().item()}
    if logits.shape[1] >= 5:
        top5 = logits.topk(5, dim=1).indices
        metrics["acc5"] = (top5 == labels[:, None]).any(dim=1).float().mean().item()
    predicted = logits.argmax(dim=1)
    recalls = [(predicted[labels == c] == c).float().mean().item() for c in labels.unique().tolist()]
    metrics["mean_per_class_recall"] = sum(recalls) / len(recalls)
    return metrics


def evaluate_zeroshot(model, dataset, prompt="short") -> dict[str, float]:
    """Zero-shot metrics of ``model`` (FLAME or CLIP) on a ClassificationSet (images streamed)."""
    weights = class_embeddings(model, dataset.classnames, dataset.templates, prompt)
    features, labels = model.encode_images(dataset.images)
    return classification_metrics(features @ weights.T, labels)
