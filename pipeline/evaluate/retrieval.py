"""Image-text retrieval: recall@k in both directions, several captions per image allowed (CLIP_benchmark keys), and
the top images of a few queries for the report's retrieval figure.

``image_retrieval_recall@k``: text -> image, the fraction of captions whose image is among the top k images.
``text_retrieval_recall@k``: image -> text, the fraction of images with at least one own caption in the top k texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from pipeline.evaluate.readers import RetrievalSet, image_file

#: The k of the recall@k written into every retrieval result.
KS = (1, 5, 10)


def recall_at_k(image_emb: torch.Tensor, text_emb: torch.Tensor, text_to_image: Sequence[int],
                ks: Sequence[int] = KS) -> dict[str, float]:
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


@dataclass(frozen=True)
class Ranking:
    """The rankings a retrieval evaluation records: the ``top`` best images of the first ``queries`` scored texts
    (the benchmark's lowest text indices whose image was readable)."""

    queries: int
    top: int

    def __post_init__(self):
        if self.queries < 1 or self.top < 1:
            raise ValueError(f"rankings: queries ({self.queries}) and images per query ({self.top}) must be at "
                             "least 1")


@dataclass
class ScoredRetrieval:
    """A retrieval benchmark embedded: ``images [Ni, D]`` (the readable images, in the benchmark's index order),
    ``texts [Nt, D]`` (the texts whose image is readable), ``text_index[t]`` / ``image_index[i]``: the benchmark's
    (the reader's) index of row t / column i, ``owner[t]``: the column of text t's image."""

    images: torch.Tensor
    texts: torch.Tensor
    text_index: list[int]
    image_index: list[int]
    owner: list[int]

    def recall(self, ks: Sequence[int] = KS) -> dict[str, float]:
        return recall_at_k(self.images, self.texts, self.owner, ks)


def score_retrieval(model, dataset: RetrievalSet, prompt: str = "long") -> ScoredRetrieval:
    """``model`` (FLAME or CLIP) over a RetrievalSet (images streamed), texts embedded with ``prompt``. The texts of
    an image that was skipped (unreadable here, missing in the reader) are left out, counted in ``model.skipped``."""
    features, position = model.encode_indexed(dataset.images)
    kept = [t for t, image in enumerate(dataset.text_to_image) if image in position]
    model.skipped.update(dataset.skipped)
    model.skip_texts(len(dataset.texts) - len(kept))
    return ScoredRetrieval(features, model.encode_text([dataset.texts[t] for t in kept], prompt=prompt), kept,
                           list(position), [position[dataset.text_to_image[t]] for t in kept])


def evaluate_retrieval(model, dataset: RetrievalSet, prompt="long", ks: Sequence[int] = KS) -> dict[str, float]:
    """Recall@k of ``model`` on a RetrievalSet (:func:`score_retrieval`)."""
    return score_retrieval(model, dataset, prompt).recall(ks)


def top_images(scored: ScoredRetrieval, dataset: RetrievalSet, ranking: Ranking) -> list[dict]:
    """Per query (the first ``ranking.queries`` scored texts, in order): ``text`` (the benchmark's text index),
    ``caption`` (as read, before any cut), ``image`` and ``file`` (its own image: the benchmark's image index and,
    for image-file readers, the path), ``rank`` (1-based rank of its own image among all scored images; ties
    count against it), ``top`` and ``top_files`` (the ``ranking.top`` most similar images, best first, the same
    way). Indices are the reader's, not feature rows, so they survive skipped images."""
    rows = min(ranking.queries, len(scored.text_index))
    scores = scored.texts[:rows] @ scored.images.T  # [rows, Ni]
    best = scores.topk(min(ranking.top, scores.shape[1]), dim=1).indices.tolist()  # [rows, top] columns
    queries = []
    for row in range(rows):
        own = scored.owner[row]
        top = [scored.image_index[column] for column in best[row]]
        image = scored.image_index[own]
        queries.append({"text": scored.text_index[row], "caption": dataset.texts[scored.text_index[row]],
                        "image": image, "file": image_file(dataset.images, image),
                        "rank": int((scores[row] >= scores[row, own]).sum().item()),
                        "top": top, "top_files": [image_file(dataset.images, i) for i in top]})
    return queries
