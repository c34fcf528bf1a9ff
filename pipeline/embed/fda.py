"""Facet embeddings from a frozen decoder-only LLM, with exact facet-decoupled attention.

The embedding of facet k of a caption is defined as the hidden state (``layer``) at the last token of
``tokenizer(template.prompts(caption)[k])`` run *alone* through the model (``template``: a
:class:`~pipeline.embed.prompts.PromptTemplate`). Two modes compute it, a third computes the release's variant:

``naive``
    The N*K full prompts as independent rows of a right-padded batch (the reference, and the benchmark baseline).
``official``
    The released code's packed sequence (:mod:`pipeline.embed.official`): a different definition, for the
    released checkpoint; one caption at a time.
``fda`` (facet-decoupled attention, default)
    The K tokenisations of a caption share a prefix of token ids (the caption part). That prefix runs once; its
    KV cache is repeated to K rows and the K suffixes run on top of it with a plain 2-D padding mask and position
    ids restarting at ``len(prefix)`` for every suffix. Each suffix therefore sees exactly the tokens, positions and
    keys it would see alone: the result equals ``naive`` up to float rounding, whatever the batch and its padding.

The shared prefix is the longest common prefix of the K token-id lists (so a BPE merge across the prefix/suffix
boundary only shortens what is shared, it never changes the result); captions whose caption text is not entirely
inside that shared part are counted in ``stats["prefix_boundary_split"]``.

Only the layers up to ``layer`` run: later layers cannot change the hidden state that is read.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import DynamicCache

from pipeline.embed.official import official_facet_states
from pipeline.embed.prompts import PromptTemplate
from pipeline.settings import allowed

MODES = allowed("embed_settings", "mode")

#: Called after each batch with (captions done in the batch, tokens processed in the batch).
ProgressFn = Callable[[int, int], None]


def backbone_upto(model: nn.Module, layer: int) -> nn.Module:
    """The decoder stack of ``model`` (a causal LM or its base model) that outputs hidden state ``layer``.

    ``layer == -1`` (or the number of layers N): the model's final hidden state, after the final norm, exactly what
    transformers returns as ``last_hidden_state`` and as ``hidden_states[N]``.
    ``1 <= layer < N``: ``hidden_states[layer]``, the output of decoder layer ``layer`` before any norm; the returned
    module shares its parameters with ``model`` but holds only the first ``layer`` decoder layers and no final norm.
    """
    base = model.get_decoder() if hasattr(model, "get_decoder") else model
    if not isinstance(getattr(base, "layers", None), nn.ModuleList) or not hasattr(base, "norm"):
        raise TypeError(f"{type(model).__name__}: expected a decoder with `.layers` and `.norm` "
                        "(Mistral, Llama, Qwen2 and their kin)")
    n_layers = len(base.layers)
    if layer in (-1, n_layers):
        return base
    if not 1 <= layer < n_layers:
        raise ValueError(f"layer must be -1 or in 1..{n_layers} for this {n_layers}-layer model, got {layer}")
    cut = copy.copy(base)
    cut._modules = dict(base._modules)  # own module table: replacing entries below leaves `model` untouched
    cut.layers = nn.ModuleList(list(base.layers)[:layer])
    cut.norm = nn.Identity()
    return cut


@dataclass(frozen=True)
class _Tokenized:
    """One caption's K prompts as token ids: ``prefix`` shared by all facets, then one suffix per facet."""

    prefix: list[int]
    suffixes: list[list[int]]

    @property
    def full_lengths(self) -> list[int]:
        return [len(self.prefix) + len(s) for s in self.suffixes]


def common_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    shortest = min(len(r) for r in rows)
    for i in range(shortest):
        if any(r[i] != rows[0][i] for r in rows[1:]):
            return i
    return shortest


def pad_right(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token rows: ``(ids, mask)``, both ``[len(rows), max_len]`` (mask 1 = real token)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids.to(device), mask.to(device)


def _last_token_states(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``hidden[i, last real token of row i]``: ``[rows, T, D] -> [rows, D]`` (right padding)."""
    last = mask.sum(dim=1) - 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def fda_forward(model: nn.Module, prefix_ids: torch.Tensor, prefix_mask: torch.Tensor, suffix_ids: torch.Tensor,
                suffix_mask: torch.Tensor, k: int) -> tuple:
    """Facet-decoupled forward pass: ``(prefix_output, suffix_output)`` of ``model`` (a causal LM or its backbone).

    The B right-padded prefixes ``[B, P]`` run once into a KV cache, repeated to ``B*K`` rows; the right-padded
    suffixes ``[B*K, S]`` (rows ``b*K .. b*K+K-1`` belong to prefix b) run on top of it with position ids restarting at
    each prefix's length, so every suffix sees exactly what it would see run alone after its prefix. Gradients flow
    through the cache (used by the demo LLM's pre-training).
    """
    cache = DynamicCache(config=model.config)
    prefix_out = model(input_ids=prefix_ids, attention_mask=prefix_mask, past_key_values=cache, use_cache=True)
    cache.batch_repeat_interleave(k)  # [B, ...] -> [B*K, ...]
    prefix_len = prefix_mask.sum(dim=1).repeat_interleave(k)
    positions = prefix_len[:, None] + torch.arange(suffix_ids.shape[1], device=suffix_ids.device)[None, :]
    mask = torch.cat([prefix_mask.repeat_interleave(k, dim=0), suffix_mask], dim=1)
    suffix_out = model(input_ids=suffix_ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                       use_cache=True)
    return prefix_out, suffix_out


class FacetEmbedder:
    """Embeds captions with K multifaceted prompts: ``encode(captions) -> Tensor[N, K, D]`` (float32, CPU).

    Args:
        model: a causal LM (or its base model) from ``AutoModelForCausalLM.from_pretrained``; not modified.
        tokenizer: its tokenizer. Prompts are tokenised with the tokenizer's special tokens (BOS), as a user would.
        template: the prompt template (prefix, K facet suffixes, caption cleaning), e.g. ``paper_template("long")``.
        layer: ``-1`` for the final hidden state, ``L >= 1`` for ``hidden_states[L]`` (see :func:`backbone_upto`).
        mode: ``"fda"`` (facet-decoupled attention), ``"naive"`` (K independent sequences) or ``"official"``.
        token_budget: padded tokens per forward batch; captions are sorted by length and packed up to it.
        max_caption_tokens: captions longer than this many tokens are cut to it (counted in ``stats["truncated"]``).
    """

    def __init__(self, model: nn.Module, tokenizer, template: PromptTemplate, layer: int = -1, mode: str = "fda",
                 token_budget: int = 8192, max_caption_tokens: int | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if token_budget < 1:
            raise ValueError(f"token_budget must be positive, got {token_budget}")
        self.template = template
        self.tokenizer = tokenizer
        self.layer = layer
        self.mode = mode
        self.token_budget = token_budget
        self.max_caption_tokens = max_caption_tokens
        self.backbone = backbone_upto(model, layer)
        self.device = next(model.parameters()).device
        self.hidden_size = model.config.hidden_size
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_id = pad if pad is not None else 0
        self.stats: Counter[str] = Counter()

    @property
    def num_facets(self) -> int:
        return self.template.num_facets

    # ---- tokenisation -------------------------------------------------------------------------------------------
    def _truncate(self, caption: str) -> str:
        if self.max_caption_tokens is None:
            return caption
        ids = self.tokenizer(caption, add_special_tokens=False)["input_ids"]
        if len(ids) <= self.max_caption_tokens:
            return caption
        self.stats["truncated"] += 1
        return self.tokenizer.decode(ids[: self.max_caption_tokens])

    def _tokenize(self, caption: str) -> _Tokenized:
        *rows, caption_part = self.tokenizer(self.template.prompts(caption)
                                             + [self.template.caption_part(caption)])["input_ids"]
        shared = min(common_prefix_length(rows), min(len(r) for r in rows) - 1)  # every suffix keeps >= 1 token
        if shared < len(caption_part) - 1:  # the closing quote may merge with what follows it; more may not
            self.stats["prefix_boundary_split"] += 1
        return _Tokenized(prefix=list(rows[0][:shared]), suffixes=[list(r[shared:]) for r in rows])

    # ---- batching -----------------------------------------------------------------------------------------------
    def _padded_cost(self, n: int, longest: tuple[int, int, int]) -> int:
        """Tokens a forward batch of ``n`` captions processes, padding included.

        ``longest`` holds the batch's longest (prefix, suffix, full prompt) in tokens.
        """
        prefix, suffix, full = longest
        if self.mode == "naive":
            return n * self.num_facets * full
        return n * (prefix + self.num_facets * suffix)

    def _batches(self, items: Sequence[_Tokenized]) -> Iterator[list[int]]:
        """Indices of ``items`` in batches of similar length whose padded cost stays within the token budget."""
        order = sorted(range(len(items)), key=lambda i: max(items[i].full_lengths), reverse=True)
        batch: list[int] = []
        longest = (0, 0, 0)
        for i in order:
            item = items[i]
            own = (len(item.prefix), max(len(s) for s in item.suffixes), max(item.full_lengths))
            grown = tuple(max(a, b) for a, b in zip(longest, own))
            if batch and self._padded_cost(len(batch) + 1, grown) > self.token_budget:
                yield batch
                batch, grown = [], own
            batch.append(i)
            longest = grown
        if batch:
            yield batch

    # ---- forward passes -----------------------------------------------------------------------------------------
    def _forward_naive(self, items: Sequence[_Tokenized]) -> torch.Tensor:
        rows = [t.prefix + s for t in items for s in t.suffixes]
        ids, mask = pad_right(rows, self.pad_id, self.device)
        hidden = self.backbone(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        return _last_token_states(hidden, mask).view(len(items), self.num_facets, -1)

    def _forward_fda(self, items: Sequence[_Tokenized]) -> torch.Tensor:
        k = self.num_facets
        prefix_ids, prefix_mask = pad_right([t.prefix for t in items], self.pad_id, self.device)
        suffix_ids, suffix_mask = pad_right([s for t in items for s in t.suffixes], self.pad_id, self.device)
        _, out = fda_forward(self.backbone, prefix_ids, prefix_mask, suffix_ids, suffix_mask, k)
        return _last_token_states(out.last_hidden_state, suffix_mask).view(len(items), k, -1)

    def _encode_official(self, captions: Sequence[str], progress: ProgressFn | None) -> torch.Tensor:
        out = torch.empty((len(captions), self.num_facets, self.hidden_size), dtype=torch.float32)
        for i, caption in enumerate(captions):
            out[i] = official_facet_states(self.backbone, self.tokenizer, self.template, self._truncate(caption))
            self.stats["captions"] += 1
            if progress is not None:
                progress(1, 0)
        return out

    @torch.inference_mode()
    def encode(self, captions: Sequence[str], progress: ProgressFn | None = None) -> torch.Tensor:
        """Embed ``captions``: ``Tensor[N, K, D]`` float32 on CPU, facet order as given. Not normalised."""
        if self.mode == "official":
            return self._encode_official(captions, progress)
        items = [self._tokenize(self._truncate(c)) for c in captions]
        out = torch.empty((len(items), self.num_facets, self.hidden_size), dtype=torch.float32)
        forward = self._forward_fda if self.mode == "fda" else self._forward_naive
        for batch in self._batches(items):
            chosen = [items[i] for i in batch]
            out[batch] = forward(chosen).float().cpu()
            tokens = sum(sum(t.full_lengths) for t in chosen)
            self.stats["captions"] += len(batch)
            self.stats["prompt_tokens"] += tokens
            if progress is not None:
                progress(len(batch), tokens)
        return out
