"""Multifaceted prompts (FLAME, supplementary B).

Every prompt is ``PREFIX.format(caption=...) + suffix``: the prefix is shared by all K facets of a caption, the
suffix names one facet and ends in ``in just one word:"``. The embedding of facet k is the hidden state at the last
token of ``tokenizer(build_prompts(caption, facets)[k])`` run alone through the LLM.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

PREFIX = 'Detailed image description: "{caption}". After thinking step by step, '

#: The paper's nine facets, by stable name, in the paper's order.
FACETS: dict[str, str] = {
    # scene level
    "description": 'this image description means in just one word:"',
    # entity level
    "main_category": 'the category of the main object in this image means in just one word:"',
    "main_pattern": 'the prominent characteristic or pattern of the main object in this image means in just one word:"',
    "minor_category": 'the category of the minor object in this image means in just one word:"',
    "minor_pattern": 'the prominent characteristic or pattern of the minor object in this image means in just one word:"',
    # interaction level
    "action": 'the primary action or event taking place in this image means in just one word:"',
    "spatial": 'the spatial layout of the objects in this image means in just one word:"',
    # scene level
    "atmosphere": 'the overall atmosphere or emotion of this image means in just one word:"',
    "colour": 'the dominant colour of this image means in just one word:"',
}

#: Named facet sets. ``long`` is the paper's default seven (the official code's order), ``short`` the description alone.
FACET_SETS: dict[str, tuple[str, ...]] = {
    "long": ("description", "main_category", "main_pattern", "minor_category", "minor_pattern", "action",
             "atmosphere"),
    "short": ("description",),
    "all": tuple(FACETS),
}

FacetSpec = str | Sequence[str]


def resolve_facets(facets: FacetSpec) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Resolve a facet spec to ``(names, suffixes)``, both of length K.

    ``facets`` is a set name from :data:`FACET_SETS`, or a list whose items are facet names from :data:`FACETS` or
    custom suffixes (any other string; its name is the suffix itself).
    """
    if isinstance(facets, str):
        if facets not in FACET_SETS:
            raise ValueError(f"unknown facet set {facets!r}; known sets: {sorted(FACET_SETS)} (or give a list)")
        names = FACET_SETS[facets]
        return names, tuple(FACETS[n] for n in names)
    items = list(facets)
    if not items:
        raise ValueError("facets must not be empty")
    if len(set(items)) != len(items):
        raise ValueError(f"facets contain duplicates: {items}")
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"facet {item!r} must be a facet name or a non-empty suffix string")
    return tuple(items), tuple(FACETS.get(item, item) for item in items)


def build_prefix(caption: str) -> str:
    """The shared prefix for ``caption`` (the caption is inserted verbatim)."""
    return PREFIX.format(caption=caption)


def build_caption_part(caption: str) -> str:
    """The prefix up to and including the caption's closing quote: the part every facet must share."""
    head = PREFIX[: PREFIX.index("{caption}") + len("{caption}") + 1]
    return head.format(caption=caption)


def build_prompts(caption: str, facets: FacetSpec) -> list[str]:
    """The K full prompt strings for ``caption``, one per facet, in facet order."""
    _, suffixes = resolve_facets(facets)
    prefix = build_prefix(caption)
    return [prefix + suffix for suffix in suffixes]


def prompts_hash(facets: FacetSpec) -> str:
    """A short stable hash of the prompt template and suffixes: changes whenever any prompt text changes."""
    names, suffixes = resolve_facets(facets)
    blob = json.dumps({"prefix": PREFIX, "names": names, "suffixes": suffixes}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
