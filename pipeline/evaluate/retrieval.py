"""Image-text retrieval: recall@k in both directions, several captions per image allowed (CLIP_benchmark keys).

``image_retrieval_recall@k``: text -> image, the fraction of captions whose image is among the top k images.
``text_retrieval_recall@k``: image -> text, the fraction of images with at least one own caption in the top k texts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def recall_at_k(image_emb: torch.Tensor, text_emb: torch.Tensor, text_to_image: Sequence[int],
                ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """``image_emb [Ni, D]``, ``text_emb [Nt, D]`` (normalised); ``text_to_image[t]`` is caption t's image."""
    scores = text_emb @ image_emb.T  # [Nt, Ni]
    owner = torch.as_tensor(list(text_to_image))
    positive = owner[:, None] == torch.arange(image_emb.shape[0])[None, :]  # [Nt, Ni]
    metrics = {}
    for k in ks:
        top_images = scores.topk(min(k, scores.shape[1]), dim=1).indices  # [Nt, k]
        metrics[f"image_retrieval_recall@{k}"] = positive.gather(1, top_images).any(dim=1).float().mean().item()
        top_texts = scores.T.topk(min(k, scores.shape[0]), dim=1).indices  # [Ni, k]
        metrics[f"text_retrieval_recall@{k}"] = positive.T.gather(1, top_texts).any(dim=1).float().mean().item()
    return metrics


def evaluate_retrieval(model, dataset, prompt="long", ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Recall@k of ``model`` (FLAME or CLIP) on a RetrievalSet (images streamed), texts embedded with ``prompt``.

    The texts of an image that was skipped (unreadable here, missing in the reader) are left out, counted in
    ``model.skipped``."""
    features, position = model.encode_indexed(dataset.images)
    scored = [(text, position[image]) for text, image in zip(dataset.texts, dataset.text_to_image)
              if image in position]
    model.skipped.update(dataset.skipped)
    model.skip_texts(len(dataset.texts) - len(scored))
    return recall_at_k(features, model.encode_text([text for text, _ in scored], prompt=prompt),
                       [image for _, image in scored], ks)
