"""Multifaceted prompts (FLAME, supplementary B) and the two text layouts.

A caption is embedded with a :class:`PromptTemplate`: its K prompts are ``prefix.format(caption=clean(caption)) +
suffix_k``; the prefix is shared by all K facets, each suffix names one facet and ends in ``in just one word:"``.
The embedding of facet k is the hidden state at the last token of ``tokenizer(template.prompts(caption)[k])`` run
alone through the LLM.

A *text layout* gives one template per caption source (``raw`` alt-text, ``short`` and ``long`` synthetic captions):

``paper``
    The prompt template of the paper (``Detailed image description: "<caption>". After thinking step by step, ``)
    with a facet set of the user's choice per source (default: long -> the seven ``long`` facets, short and raw ->
    ``short``, the description facet alone). Captions: surrounding whitespace stripped, ``"`` -> ``'`` (a quote
    inside a caption would close the prompt's quotation).
``official``
    The released code's strings, spaces and literal ``<s>`` included (MIV-XJTU/FLAME ``embed_cc3m_mask.py``): raw
    alt-text -> the description prompt; each short caption -> facets 1-3 after ``Image description : "…" . After
    thinking step by step , <s> ``; each long caption -> the 7 facets after ``Detailed Image description : "…" .
    After thinking step by step , <s> ``. Captions cleaned as released: append ``.`` unless the caption ends in
    ``. ? " '``, ``"`` -> ``'``, a final ``?`` -> ``.``. One raw, one short and one long caption give 1 + 3 + 7 = 11
    rows per image, in that order. (The released code packs the 7 facets into one sequence, each facet after the
    previous one; here facet k follows the shared prefix directly, as if run alone, which is what its attention
    mask intends.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from pipeline.settings import allowed

#: The caption sources of an image, in row order.
SOURCES = allowed("sources")
LAYOUTS = allowed("embed_settings", "layout")

PREFIX = 'Detailed image description: "{caption}". After thinking step by step, '
OFFICIAL_LONG_PREFIX = 'Detailed Image description : "{caption}" . After thinking step by step , <s> '
OFFICIAL_SHORT_PREFIX = 'Image description : "{caption}" . After thinking step by step , <s> '
OFFICIAL_RAW_PREFIX = 'Image description : "{caption}" . After thinking step by step , '

#: The paper's nine facets, by stable name, in the paper's order.
FACETS: dict[str, str] = {
    # scene level
    "description": 'this image description means in just one word:"',
    # entity level
    "main_category": 'the category of the main object in this image means in just one word:"',
    "main_pattern": 'the prominent characteristic or pattern of the main object in this image means in just one word:"',
    "minor_category": 'the category of the minor object in this image means in just one word:"',
    "minor_pattern": 'the prominent characteristic or pattern of the minor object in this image means in just one word:"',  # noqa: E501
    # interaction level
    "action": 'the primary action or event taking place in this image means in just one word:"',
    "spatial": 'the positioning layout or spatial relationship in this image means in just one word:"',
    # scene level
    "atmosphere": 'the overall atmosphere or emotion of this image means in just one word:"',
    "colour": 'the dominant color or color combination of this image means in just one word:"',
}

#: Named facet sets. ``long`` is the paper's default seven (the official code's order), ``short`` the description alone.
FACET_SETS: dict[str, tuple[str, ...]] = {
    "long": ("description", "main_category", "main_pattern", "minor_category", "minor_pattern", "action",
             "atmosphere"),
    "short": ("description",),
    "all": tuple(FACETS),
}

#: The paper layout's default facet set per caption source.
PAPER_FACETS: dict[str, str] = {"raw": "short", "short": "short", "long": "long"}

FacetSpec = str | Sequence[str]


def resolve_facets(facets: FacetSpec) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Resolve a facet spec to ``(names, suffixes)``, both of length K.

    ``facets`` is a set name from :data:`FACET_SETS`, or a list whose items are facet names from :data:`FACETS` or
    custom suffixes, which must end in ``:"`` like the paper's (a mistyped facet name is refused, not taken as a
    prompt). A custom suffix's name is the suffix itself.
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
        if item not in FACETS and not item.endswith(':"'):
            raise ValueError(f"facet {item!r} is neither a facet name ({', '.join(FACETS)}) nor a custom suffix "
                             "ending in ':\"'")
    return tuple(items), tuple(FACETS.get(item, item) for item in items)


def clean_quotes(caption: str) -> str:
    """The paper layout's cleaning: strip, and ``"`` -> ``'`` so the caption cannot close the prompt's quote."""
    return caption.strip().replace('"', "'")


def clean_official(caption: str) -> str:
    """The released cleaning, in its order: append ``.`` unless the caption ends in ``. ? " '``; ``"`` -> ``'``;
    a final ``?`` -> ``.``."""
    text = caption.strip()
    if text and text[-1] not in ".?\"'":
        text += "."
    text = text.replace('"', "'")
    if text.endswith("?"):
        text = text[:-1] + "."
    return text


CLEANERS = {"quotes": clean_quotes, "official": clean_official}


@dataclass(frozen=True)
class PromptTemplate:
    """How captions of one source are prompted: ``prefix`` (with ``{caption}``), K facet ``names`` and their
    ``suffixes``, and the ``cleaning`` applied to a caption first (a key of :data:`CLEANERS`)."""

    prefix: str
    names: tuple[str, ...]
    suffixes: tuple[str, ...]
    cleaning: str

    @property
    def num_facets(self) -> int:
        return len(self.suffixes)

    def clean(self, caption: str) -> str:
        return CLEANERS[self.cleaning](caption)

    def prefix_of(self, caption: str) -> str:
        """The shared prefix for ``caption`` (cleaned)."""
        return self.prefix.format(caption=self.clean(caption))

    def caption_part(self, caption: str) -> str:
        """The prefix up to and including the caption's closing quote: the part every facet must share."""
        head = self.prefix[: self.prefix.index("{caption}") + len("{caption}") + 1]
        return head.format(caption=self.clean(caption))

    def prompts(self, caption: str) -> list[str]:
        """The K full prompt strings for ``caption``, one per facet, in facet order."""
        prefix = self.prefix_of(caption)
        return [prefix + suffix for suffix in self.suffixes]

    def describe(self) -> dict:
        """The template as JSON-able data (recorded in the embeddings' metadata and the model config)."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    def restricted(self, names: Sequence[str] | None) -> PromptTemplate | None:
        """The template with only the facets in ``names`` (in template order): what a model trained on those
        facets' rows saw of this source; itself when ``names`` is None, None when no facet is left."""
        if names is None:
            return self
        kept = [(n, s) for n, s in zip(self.names, self.suffixes) if n in names]
        if not kept:
            return None
        return PromptTemplate(self.prefix, tuple(n for n, _ in kept), tuple(s for _, s in kept), self.cleaning)

    @classmethod
    def from_description(cls, data: Mapping) -> PromptTemplate:
        return cls(data["prefix"], tuple(data["names"]), tuple(data["suffixes"]), data["cleaning"])


def paper_template(facets: FacetSpec) -> PromptTemplate:
    """The paper's prompt template with ``facets``."""
    names, suffixes = resolve_facets(facets)
    return PromptTemplate(PREFIX, names, suffixes, "quotes")


def _official_templates() -> dict[str, PromptTemplate]:
    long_names = FACET_SETS["long"]
    long_suffixes = tuple(FACETS[n] for n in long_names)
    return {
        "raw": PromptTemplate(OFFICIAL_RAW_PREFIX, long_names[:1], long_suffixes[:1], "official"),
        "short": PromptTemplate(OFFICIAL_SHORT_PREFIX, long_names[:3], long_suffixes[:3], "official"),
        "long": PromptTemplate(OFFICIAL_LONG_PREFIX, long_names, long_suffixes, "official"),
    }


def text_layout(layout: str, facets: FacetSpec | Mapping[str, FacetSpec] | None = None) -> dict[str, PromptTemplate]:
    """The prompt template of every caption source (:data:`SOURCES`) under ``layout``.

    ``facets`` (paper layout only): one facet spec for every source, or a mapping source -> facet spec (sources left
    out keep :data:`PAPER_FACETS`); ``None``: :data:`PAPER_FACETS`. The official layout fixes its facets.
    """
    if layout == "official":
        if facets is not None:
            raise ValueError("facets apply to the paper layout only: the official layout fixes raw -> description, "
                             "short -> facets 1-3, long -> the 7 long facets")
        return _official_templates()
    if layout != "paper":
        raise ValueError(f"unknown text layout {layout!r}; choose from {LAYOUTS}")
    chosen = dict(PAPER_FACETS)
    if isinstance(facets, Mapping):
        unknown = set(facets) - set(SOURCES)
        if unknown:
            raise ValueError(f"facets: unknown caption sources {sorted(unknown)}; choose from {SOURCES}")
        chosen.update(facets)
    elif facets is not None:
        chosen = dict.fromkeys(SOURCES, facets)
    return {source: paper_template(chosen[source]) for source in SOURCES}


#: Where the description prompt of a model's layout is found: the first trained source whose template holds the
#: ``description`` facet (raw alt-text first: the official layout's single prompt, the paper layout's description).
DESCRIPTION_SOURCES = ("raw", "short", "long")


def description_template(trained: Mapping[str, PromptTemplate]) -> tuple[str, PromptTemplate]:
    """``(source, template)``: the layout's description prompt among a model's ``trained`` templates (source ->
    template with its trained facets): the first source of :data:`DESCRIPTION_SOURCES` trained on the
    ``description`` facet, restricted to that facet. Raises when no trained source has it."""
    for source in DESCRIPTION_SOURCES:
        if source in trained and "description" in trained[source].names:
            return source, trained[source].restricted(["description"])
    raise ValueError("the description prompt needs a source trained on the description facet; the model trained "
                     + ", ".join(f"{s}: {list(t.names)}" for s, t in trained.items())
                     + ": give the benchmark a prompt naming one of those sources")


def templates_hash(templates: Mapping[str, PromptTemplate]) -> str:
    """A short stable hash of every template's prefix, suffixes and cleaning: changes whenever any prompt changes."""
    blob = json.dumps({source: t.describe() for source, t in templates.items()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def prompt_words(template: PromptTemplate, packed: bool = False) -> int:
    """A lower bound of the tokens ``template``'s longest prompt adds to a caption, for any tokenizer that splits at
    whitespace (BPE, SentencePiece): the whitespace-separated words of the prompt without its caption (``packed``:
    the prefix and every suffix, the official mode's one sequence), less 3 (the empty quotes, and the caption's
    first and last tokens, which may merge with the quotes)."""
    if packed:
        words = len(template.prefix_of("").split()) + sum(len(suffix.split()) for suffix in template.suffixes)
    else:
        words = max(len(prompt.split()) for prompt in template.prompts(""))
    return max(words - 3, 0)


def facet_slots(templates: Mapping[str, PromptTemplate], sources: Sequence[str]) -> tuple[str, ...]:
    """The distinct facet names of ``sources``' templates, in source order then facet order: the per-facet slots
    of the ``info_nce`` objective (a short caption's ``description`` row and a long caption's share a slot)."""
    slots: dict[str, None] = {}
    for source in SOURCES:
        if source in sources:
            slots.update(dict.fromkeys(templates[source].names))
    return tuple(slots)
