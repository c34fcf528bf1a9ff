"""Hard negatives from the scene grammar, for the demo's compositionality sets (SugarCrepe and Winoground layouts).

A perturbation changes one part of a scene (an attribute, an object, the relation); the negative caption is the
caption of the perturbed scene drawn with the same random choices as the positive one, so the two differ only in the
perturbed words.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from .captions import short_captions
from .scenes import COLOURS, LAYOUTS, SHAPES, Scene


def _other(value: str, choices, rng: random.Random, avoid: tuple[str, ...] = ()) -> str:
    return rng.choice([c for c in choices if c != value and c not in avoid])


def _replace_att(scene: Scene, rng: random.Random) -> Scene:
    colour = _other(scene.main.colour, tuple(COLOURS), rng, (scene.minor.colour,))
    return replace(scene, main=replace(scene.main, colour=colour))


def _replace_obj(scene: Scene, rng: random.Random) -> Scene:
    shape = _other(scene.main.shape, SHAPES, rng, (scene.minor.shape,))
    return replace(scene, main=replace(scene.main, shape=shape))


def _replace_rel(scene: Scene, rng: random.Random) -> Scene:
    return replace(scene, layout=_other(scene.layout, LAYOUTS, rng))


def _swap_att(scene: Scene, rng: random.Random) -> Scene:
    return replace(scene, main=replace(scene.main, colour=scene.minor.colour),
                   minor=replace(scene.minor, colour=scene.main.colour))


def _swap_obj(scene: Scene, rng: random.Random) -> Scene:
    return replace(scene, main=replace(scene.main, shape=scene.minor.shape),
                   minor=replace(scene.minor, shape=scene.main.shape))


#: SugarCrepe subsets the scene grammar can make (add_att and add_obj need words the grammar cannot add).
PERTURBATIONS: dict[str, Callable[[Scene, random.Random], Scene]] = {
    "replace_att": _replace_att, "replace_obj": _replace_obj, "replace_rel": _replace_rel,
    "swap_att": _swap_att, "swap_obj": _swap_obj,
}


def caption_pair(scene: Scene, other: Scene, seed: int, attempts: int = 20) -> tuple[str, str]:
    """Captions of ``scene`` and ``other`` drawn with the same random choices, differing in words; raises if none
    of ``attempts`` seeds gives two different captions."""
    for attempt in range(attempts):
        first = short_captions(scene, random.Random(f"{seed}/{attempt}"), 1)[0]
        second = short_captions(other, random.Random(f"{seed}/{attempt}"), 1)[0]
        if first != second:
            return first, second
    raise RuntimeError("the perturbation does not change the caption")
