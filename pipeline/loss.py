"""Contrastive losses between image features and K facet embeddings per text.

Shapes: ``image [B, D]`` and ``text [B, K, D]``, both L2-normalised; row b of each is a positive pair. With several
processes, features are gathered from all ranks with gradients (``torch.distributed.nn.all_gather``), so every
image is contrasted against the global batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank along dim 0, keeping the gradient path (identity on one process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    import torch.distributed.nn

    return torch.cat(torch.distributed.nn.all_gather(x), dim=0)


def _rank_offset(local_batch: int) -> int:
    return dist.get_rank() * local_batch if dist.is_available() and dist.is_initialized() else 0


def facet_info_nce(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Mean over facets k of the symmetric InfoNCE between ``image`` and ``text[:, k]`` (FLAME Eq. 1).

    ``logit_scale`` is the log of the inverse temperature (scalar). Local rows are scored against the global batch.
    """
    all_image, all_text = gather_with_grad(image), gather_with_grad(text)
    labels = torch.arange(image.shape[0], device=image.device) + _rank_offset(image.shape[0])
    scale = logit_scale.exp()
    losses = []
    for k in range(text.shape[1]):
        logits_i2t = scale * image @ all_text[:, k].T  # [B, B_global]
        logits_t2i = scale * text[:, k] @ all_image.T
        losses.append((F.cross_entropy(logits_i2t, labels) + F.cross_entropy(logits_t2i, labels)) / 2)
    return torch.stack(losses).mean()
