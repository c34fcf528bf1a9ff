"""Shared fixtures: a locally trained tokenizer and tiny random LLMs of three architectures."""

from __future__ import annotations

import pytest

from pipeline.demo.tiny_llm import build_tiny_llm, train_tokenizer
from pipeline.embed.prompts import FACETS, OFFICIAL_LONG_PREFIX, PREFIX

CORPUS = [
    "A red striped star is falling past a small blue circle at sunset.",
    "Detailed image description: a green hexagon with dots rests in the fog, a yellow ring to its left.",
    "Two objects collide at night; the scene feels tense and dark, mostly purple.",
    "wallpaper star red img_0423 hd sunset",
    PREFIX.format(caption="a caption"),
    OFFICIAL_LONG_PREFIX.format(caption="a caption."),
    *FACETS.values(),
]


def pytest_collection_modifyitems(items):
    """The end-to-end tests (marker e2e, minutes each) first, so that with several workers (`make test`) none is left
    to run alone at the end; the order is otherwise kept."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)


@pytest.fixture(scope="session")
def tokenizer():
    return train_tokenizer(CORPUS * 5, vocab_size=400)


@pytest.fixture(scope="session", params=["mistral", "llama", "qwen2"])
def tiny_llm(request, tokenizer):
    """A 3-layer random model of each architecture (fp32, eval)."""
    return build_tiny_llm(tokenizer, arch=request.param, hidden_size=64, num_layers=3, num_heads=4, num_kv_heads=2,
                          seed=1)
