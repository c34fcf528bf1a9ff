"""The demo LLM's settings (``$defs/demo_llm`` of the schema: its shape and its pre-training) as a typed object."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.settings import validate_document


@dataclass(frozen=True)
class PretrainSettings:
    """What the demo LLM is and how it is pre-trained (recorded in ``pretraining.json``); meanings, bounds and
    defaults in the schema. Build it with :meth:`from_document`."""

    seed: int
    corpus_size: int  # captions (one scene each) in the pre-training corpus
    validation_size: int  # captions of the validation stream, for the accuracy check
    steps: int
    batch_size: int  # captions per step (each with its nine facets)
    lr: float
    arch: str
    vocab_size: int
    hidden_size: int
    layers: int
    heads: int
    kv_heads: int

    @classmethod
    def from_document(cls, document: dict, where: str = "demo LLM settings") -> PretrainSettings:
        return cls(**validate_document("demo_llm", document, where))
