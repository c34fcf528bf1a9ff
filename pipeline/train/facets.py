"""Which embedded facets FLAME trains on: ``train.facets`` of ``$defs/flame_only``.

``null`` keeps every embedded facet; a list keeps the named ones; ``{sample: N, seed: S}`` draws N of them at random
(the paper's prompt-count ablation, Table 6: N of the nine). The draw depends only on the seed and the embedded
facets: each facet gets a key from ``random.Random(seed).random()`` in embedding order and the N smallest keys win,
so a draw is the same on every Python version (``random()``'s sequence is guaranteed stable, ``sample``'s is not) and
the draws of one seed are nested (N = 3 is a subset of N = 5).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

FacetChoice = Sequence[str] | Mapping[str, int] | None


def sample_facets(embedded: Sequence[str], count: int, seed: int) -> tuple[str, ...]:
    """``count`` of the ``embedded`` facet names drawn with ``seed`` (see the module docstring), in embedding
    order."""
    if not 1 <= count <= len(embedded):
        raise ValueError(f"facets: sample {count}, but {len(embedded)} facets are embedded ({list(embedded)})")
    rng = random.Random(seed)
    keys = [rng.random() for _ in embedded]
    drawn = set(sorted(range(len(embedded)), key=keys.__getitem__)[:count])
    return tuple(name for i, name in enumerate(embedded) if i in drawn)


def choose_facets(choice: FacetChoice, embedded: Sequence[str]) -> tuple[str, ...] | None:
    """The facets to train on, in embedding order; None (every embedded facet) when ``choice`` is None.

    ``embedded``: the distinct facet names of the training sources' templates (``facet_slots``). Raises
    ``ValueError`` naming a chosen facet that is not embedded, or a sample larger than what is embedded.
    """
    if choice is None:
        return None
    if isinstance(choice, Mapping):
        return sample_facets(embedded, choice["sample"], choice.get("seed", 0))
    missing = [name for name in choice if name not in embedded]
    if missing:
        raise ValueError(f"facets: {missing} are not among the embedded facets ({list(embedded)})")
    return tuple(name for name in embedded if name in choice)
