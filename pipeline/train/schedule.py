"""The learning-rate schedule shared by FLAME/CLIP training and the demo LLM's pre-training."""

from __future__ import annotations

import math


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Multiplier of the peak LR at optimizer step ``step`` (0-based): linear warm-up, then cosine to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
