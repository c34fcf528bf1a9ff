"""FLAME's training objectives between image features and precomputed text embeddings.

Shapes: ``image [B, D]`` (this process's images), ``text [B, S, D]`` (S text slots per image) and ``mask [B, S]``
(True where slot s of image b holds a text), all L2-normalised; ``logit_scale`` is the log of the inverse
temperature. With several processes, features and masks are gathered from all ranks with gradients
(``torch.distributed.nn.all_gather``; masks without), every local row is scored against the global batch, and each
process's loss is scaled so that the mean over processes (what DDP does to gradients, and what the logs report) is
the loss of the whole global batch.

``info_nce`` (the paper's Eq. 1)
    Slot s is one facet of one caption source (or one facet, with ``texts_per_step: one_caption``; see
    :class:`pipeline.train.data.FacetTargets`): per slot, the symmetric InfoNCE between the images and the slot's
    texts, over the images that have a text in that slot; then the mean over slots. With every
    slot filled it is open_clip's ``ClipLoss(local_loss=True, gather_with_grad=True)`` per facet, averaged.
``sigmoid_multi_positive`` (the official release's default)
    Slot r is the r-th of the R rows drawn for the image. Logits ``exp(scale) * image @ text.T + bias`` over all
    (image, text row) pairs; every drawn row of an image is a positive (+1) for it, all other rows are negatives
    (-1); loss ``-sum(logsigmoid(label * logit)) / (B * R)``. With R = 1 it is open_clip's ``SigLipLoss``.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from pipeline.settings import allowed

OBJECTIVES = allowed("flame_only", "loss")
#: Initial (logit_scale, logit_bias) of each objective: log(1/0.07) as CLIP and the paper; ln 10 and -10 as released.
INITIAL_LOGITS = {"info_nce": (2.6592600369327779, None), "sigmoid_multi_positive": (2.302585092994046, -10.0)}


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank along dim 0, keeping the gradient path (identity on one process)."""
    if not _distributed():
        return x
    import torch.distributed.nn

    return torch.cat(torch.distributed.nn.all_gather(x), dim=0)


def gather_masks(mask: torch.Tensor) -> torch.Tensor:
    """Concatenate the boolean ``mask`` from every rank along dim 0 (no gradient)."""
    if not _distributed():
        return mask
    parts = [torch.empty_like(mask, dtype=torch.uint8) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, mask.to(torch.uint8))
    return torch.cat(parts).bool()


def _rank_and_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if _distributed() else (0, 1)


def facet_info_nce(image: torch.Tensor, text: torch.Tensor, mask: torch.Tensor,
                   logit_scale: torch.Tensor) -> torch.Tensor:
    """Mean over facets of the symmetric InfoNCE between ``image`` and the present texts of each facet slot."""
    rank, world = _rank_and_world()
    all_image, all_text, all_mask = gather_with_grad(image), gather_with_grad(text), gather_masks(mask)
    labels = torch.arange(image.shape[0], device=image.device) + rank * image.shape[0]
    scale = logit_scale.exp()
    losses = []
    for s in range(text.shape[1]):
        present = int(all_mask[:, s].sum())
        if present == 0:
            continue
        own, absent = mask[:, s], ~all_mask[:, s]  # the facet's batch: the images whose caption has it
        logits_i2t = (scale * image[own] @ all_text[:, s].T).masked_fill(absent, float("-inf"))
        logits_t2i = (scale * text[own, s] @ all_image.T).masked_fill(absent, float("-inf"))
        summed = (F.cross_entropy(logits_i2t, labels[own], reduction="sum")
                  + F.cross_entropy(logits_t2i, labels[own], reduction="sum"))
        losses.append(world * summed / (2 * present))
    return torch.stack(losses).mean()


def sigmoid_multi_positive(image: torch.Tensor, text: torch.Tensor, mask: torch.Tensor, logit_scale: torch.Tensor,
                           logit_bias: torch.Tensor) -> torch.Tensor:
    """Multi-positive sigmoid loss of the local images against every process's text rows."""
    rank, _ = _rank_and_world()
    all_text, all_mask = gather_with_grad(text), gather_masks(mask)
    rows = all_text.shape[1]
    logits = logit_scale.exp() * image @ all_text.flatten(0, 1).T + logit_bias  # [B, N*R]
    owner = torch.arange(all_text.shape[0], device=image.device).repeat_interleave(rows)  # image of each column
    mine = torch.arange(image.shape[0], device=image.device) + rank * image.shape[0]
    labels = (owner[None, :] == mine[:, None]).to(logits.dtype) * 2 - 1
    present = all_mask.flatten()[None, :].to(logits.dtype)
    return -(F.logsigmoid(labels * logits) * present).sum() / (image.shape[0] * rows)


def objective_loss(name: str, image: torch.Tensor, text: torch.Tensor, mask: torch.Tensor,
                   logit_scale: torch.Tensor, logit_bias: torch.Tensor | None) -> torch.Tensor:
    """The loss of objective ``name`` (one of :data:`OBJECTIVES`)."""
    if name == "info_nce":
        return facet_info_nce(image, text, mask, logit_scale)
    if name == "sigmoid_multi_positive":
        return sigmoid_multi_positive(image, text, mask, logit_scale, logit_bias)
    raise ValueError(f"unknown objective {name!r}; choose from {OBJECTIVES}")
