"""The demo LLM's pre-training data: the demo's language, drawn from the scene grammar on streams of its own.

A :class:`FacetExample` is one caption of a scene (long or short, in any of the demo's :data:`LANGUAGES`) with the
one-word English answer of every facet of the paper (:data:`FACET_ANSWERS`): e.g. the category of the main object
``"star"``, the action ``"falling"``. Pre-training on them (:mod:`pipeline.demo.llm`) teaches the frozen demo LLM to
answer ``...the category of the main object in this image means in just one word:"`` with the right word, in every
language, so its hidden state at that token carries the facet as Mistral-Nemo's does for real captions.

Scenes are drawn from ``random.Random(f"{seed}-llm-{stream}-{i}")`` (streams ``corpus`` and ``validation``): never
the streams of the demo's training images (``{seed}-train-{i}``) or evaluation sets (``{seed}-eval-{name}-{i}``),
so no evaluation caption is seen in pre-training.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .captions import LANGUAGES, long_caption, short_captions, translate_long, translate_short
from .scenes import Scene, dominant_colour, sample_scene

#: Facet name (:data:`pipeline.embed.prompts.FACETS`) -> the one-word answer for a scene.
FACET_ANSWERS: dict[str, Callable[[Scene], str]] = {
    "description": lambda scene: scene.main.shape,
    "main_category": lambda scene: scene.main.shape,
    "main_pattern": lambda scene: scene.main.pattern,
    "minor_category": lambda scene: scene.minor.shape,
    "minor_pattern": lambda scene: scene.minor.pattern,
    "action": lambda scene: scene.action.split()[0],  # "moving fast" -> "moving"
    "spatial": lambda scene: scene.layout,
    "atmosphere": lambda scene: scene.atmosphere,
    "colour": lambda scene: dominant_colour(scene).split()[-1],  # "dark navy blue" -> "blue"
}
STREAMS = ("corpus", "validation")
KINDS = ("long", "short")


@dataclass(frozen=True)
class FacetExample:
    """One caption with the answers of every facet: ``answers[facet]`` is one English word."""

    caption: str
    language: str
    kind: str  # "long" or "short"
    answers: dict[str, str]


def caption_in(scene: Scene, language: str, kind: str, rng: random.Random) -> str:
    """A ``kind`` ("long"/"short") caption of ``scene`` in ``language`` (one of :data:`LANGUAGES`)."""
    if language == "en":
        return long_caption(scene, rng) if kind == "long" else short_captions(scene, rng, 1)[0]
    return (translate_long if kind == "long" else translate_short)(scene, language, rng)


def facet_examples(seed: int, stream: str, count: int, long_fraction: float = 0.5) -> Iterator[FacetExample]:
    """``count`` examples of ``stream`` (see the module docstring): one scene each, the language uniform over
    :data:`LANGUAGES`, a long caption with probability ``long_fraction``, else a short one."""
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {STREAMS}, got {stream!r}")
    for index in range(count):
        rng = random.Random(f"{seed}-llm-{stream}-{index}")
        scene = sample_scene(rng)
        language = rng.choice(LANGUAGES)
        kind = KINDS[0] if rng.random() < long_fraction else KINDS[1]
        yield FacetExample(caption_in(scene, language, kind, rng), language, kind,
                           {facet: answer(scene) for facet, answer in FACET_ANSWERS.items()})
