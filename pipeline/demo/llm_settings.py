"""The demo LLM's settings (a light module: the CLI reads its defaults without importing torch)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PretrainSettings:
    """What the demo LLM is and how it is pre-trained (recorded in ``pretraining.json``)."""

    seed: int = 0
    corpus_size: int = 8000  # captions (one scene each) in the pre-training corpus
    validation_size: int = 300  # captions of the validation stream, for the accuracy check
    steps: int = 600
    batch_size: int = 16  # captions per step (each with its nine facets)
    lr: float = 3e-3
    arch: str = "mistral"
    vocab_size: int = 2048
    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
