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
    The K tokenisations of a caption share a prefix of token ids (the caption part). That prefix runs once into a
    KV cache; the K suffixes then run side by side in one row on top of it, under a 4-D mask that lets each attend
    only to the prefix and to itself, with position ids restarting at ``len(prefix)`` for every suffix
    (:func:`fda_forward`). Each suffix therefore sees exactly the tokens, positions and keys it would see alone: the
    result equals ``naive`` up to float rounding, whatever the batch and its padding.

The shared prefix is the longest common prefix of the K token-id lists (so a BPE merge across the prefix/suffix
boundary only shortens what is shared, it never changes the result); captions whose caption text is not entirely
inside that shared part are counted in ``stats["prefix_boundary_split"]``.

With a sliding attention window (Mistral, Qwen2 with ``use_sliding_window``), ``fda``'s mask replaces the window,
so it stays exact only while every prompt fits the window: batches are cut to fit it, and a prompt longer than the
window runs as in ``naive`` (the window then acts exactly as on the prompt alone; counted in
``stats["beyond_sliding_window"]``).

Captions longer than ``max_caption_tokens`` are cut by :func:`truncate_caption` (the evaluation cuts benchmark texts
with it too), and a limit that the LLM's positions cannot hold is refused (:func:`check_context`).

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

from pipeline.embed.official import official_facet_states, packed_text
from pipeline.embed.prompts import PromptTemplate
from pipeline.settings import allowed

MODES = allowed("embed_settings", "mode")

#: Called after each batch with (captions done in the batch, tokens processed in the batch).
ProgressFn = Callable[[int, int], None]
#: What a decoder writes for bytes that are not a whole UTF-8 character.
REPLACEMENT = "\ufffd"


def truncate_caption(tokenizer, caption: str, max_tokens: int | None) -> tuple[str, bool]:
    """``(caption cut to at most max_tokens tokens, whether it was cut)``; ``None``: no limit.

    The first ``max_tokens`` token ids (no special tokens) are decoded; while the text ends in a partial character
    (more U+FFFD than the caption has: a byte-level BPE splits a Chinese character or an emoji into byte tokens),
    the last id is dropped, so no broken character enters a prompt.
    """
    if max_tokens is None:
        return caption, False
    ids = tokenizer(caption, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return caption, False
    keep, allowed = max_tokens, caption.count(REPLACEMENT)
    text = tokenizer.decode(ids[:keep])
    while keep > 0 and text.count(REPLACEMENT) > allowed:
        keep -= 1
        text = tokenizer.decode(ids[:keep])
    return text, True


def prompt_overhead(tokenizer, template: PromptTemplate, mode: str) -> int:
    """Tokens of ``template``'s longest prompt with an empty caption (special tokens included): its prefix and
    longest suffix, or, in ``official`` mode, its prefix and all suffixes packed into one sequence."""
    if mode == "official":
        return len(tokenizer(packed_text(template, "")[0])["input_ids"])
    return max(len(ids) for ids in tokenizer(template.prompts(""))["input_ids"])


def check_context(config, tokenizer, template: PromptTemplate, max_caption_tokens: int, mode: str) -> None:
    """Raise ``ValueError`` naming ``embed.max_caption_tokens`` and both numbers when a caption of
    ``max_caption_tokens`` tokens in ``template``'s longest prompt (:func:`prompt_overhead`) would pass the LLM's
    ``max_position_embeddings`` (``config``: the LLM's config; nothing is checked when it has none)."""
    limit = getattr(config, "max_position_embeddings", None)
    overhead = prompt_overhead(tokenizer, template, mode)
    if limit is not None and max_caption_tokens + overhead > limit:
        raise ValueError(f"embed.max_caption_tokens: {max_caption_tokens} caption tokens + {overhead} tokens of the "
                         f"longest prompt without its caption = {max_caption_tokens + overhead}, more than the "
                         f"LLM's max_position_embeddings {limit}; set embed.max_caption_tokens to at most "
                         f"{limit - overhead}")


def attention_window(config) -> int | None:
    """The sliding attention window of an LLM ``config`` when any of its layers uses one (``layer_types``, else
    ``sliding_window`` alone, as Mistral's), else None."""
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None)
    if window is None or (layer_types is not None and "sliding_attention" not in layer_types):
        return None
    return window


def backbone_upto(model: nn.Module, layer: int) -> nn.Module:
    """The decoder stack of ``model`` (a causal LM or its base model) that outputs hidden state ``layer``.

    ``layer == -1``: the model's final hidden state, after the final norm, exactly what transformers returns as
    ``last_hidden_state`` (and as its last ``hidden_states`` entry).
    ``1 <= layer <= N`` (N decoder layers): the output of decoder layer ``layer`` before any norm (for ``layer < N``
    transformers' ``hidden_states[layer]``; for ``N`` the last layer's output, which transformers only returns
    normed); the returned module shares its parameters with ``model`` but holds only the first ``layer`` decoder
    layers and no final norm.
    """
    base = model.get_decoder() if hasattr(model, "get_decoder") else model
    if not isinstance(getattr(base, "layers", None), nn.ModuleList) or not hasattr(base, "norm"):
        raise TypeError(f"{type(model).__name__}: expected a decoder with `.layers` and `.norm` "
                        "(Mistral, Llama, Qwen2 and their kin)")
    n_layers = len(base.layers)
    if layer == -1:
        return base
    if not 1 <= layer <= n_layers:
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
    boundary_split: bool = False  # the caption text is not entirely inside the shared prefix

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


def last_token_states(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``hidden[i, last real token of row i]``: ``[rows, T, D] -> [rows, D]`` (right padding)."""
    last = mask.sum(dim=1) - 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def fda_forward(model: nn.Module, prefix_ids: torch.Tensor, prefix_mask: torch.Tensor, suffix_ids: torch.Tensor,
                suffix_mask: torch.Tensor, k: int) -> tuple:
    """Facet-decoupled forward pass: ``(prefix_output, suffix_output)`` of ``model`` (a causal LM or its backbone).

    The B right-padded prefixes ``[B, P]`` run once into a KV cache of B rows. The right-padded suffixes
    ``[B*K, S]`` (rows ``b*K .. b*K+K-1`` belong to prefix b) then run as one row per prefix, its K suffixes side by
    side (``[B, K*S]``), on top of that cache, under a 4-D mask: suffix k of caption b attends to the real tokens of
    prefix b and to its own earlier tokens only, at position ids restarting at the prefix's length. Every suffix so
    sees exactly the tokens, positions and keys it would see run alone after its prefix, and the cache holds each
    prefix once (no K-fold copy): B*(P + K*S) cached tokens, the tokens the batch processes. A sliding window is not
    applied (the mask is the whole attention pattern): callers keep prompts within it. ``suffix_output``'s
    ``last_hidden_state`` (and ``logits``) come back as ``[B*K, S, ...]``. Gradients flow through the cache (used by
    the demo LLM's pre-training).
    """
    cache = DynamicCache(config=model.config)
    prefix_out = model(input_ids=prefix_ids, attention_mask=prefix_mask, past_key_values=cache, use_cache=True)
    batch, width, device = prefix_ids.shape[0], suffix_ids.shape[1], suffix_ids.device
    facet = torch.arange(k, device=device).repeat_interleave(width)  # [K*S]: the suffix of each column
    step = torch.arange(width, device=device).repeat(k)  # [K*S]: the position inside it
    own = (facet[:, None] == facet[None, :]) & (step[None, :] <= step[:, None])  # [K*S, K*S] query x key
    real = suffix_mask.reshape(batch, 1, k * width).bool()
    allowed = torch.cat([prefix_mask.bool()[:, None, :].expand(batch, k * width, -1), own[None] & real], dim=2)
    dtype = next(model.parameters()).dtype
    mask = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill_(~allowed, torch.finfo(dtype).min)
    positions = prefix_mask.sum(dim=1)[:, None] + step[None, :]
    suffix_out = model(input_ids=suffix_ids.reshape(batch, k * width), attention_mask=mask[:, None],
                       position_ids=positions, past_key_values=cache, use_cache=True)
    for name in ("last_hidden_state", "logits"):
        value = getattr(suffix_out, name, None)
        if value is not None:
            setattr(suffix_out, name, value.reshape(batch * k, width, *value.shape[2:]))
    return prefix_out, suffix_out


class FacetEmbedder:
    """Embeds captions with K multifaceted prompts: ``encode(captions) -> Tensor[N, K, D]`` (float32, CPU).

    Args:
        model: a causal LM (or its base model) from ``AutoModelForCausalLM.from_pretrained``; not modified.
        tokenizer: its tokenizer. Prompts are tokenised with the tokenizer's special tokens (BOS), as a user would.
        template: the prompt template (prefix, K facet suffixes, caption cleaning), e.g. ``paper_template("long")``.
        layer: ``-1`` for the final normed hidden state, ``L >= 1`` for decoder layer L's output before the final
            norm (see :func:`backbone_upto`).
        mode: ``"fda"`` (facet-decoupled attention), ``"naive"`` (K independent sequences) or ``"official"``.
        token_budget: padded tokens per forward batch; captions are sorted by length and packed up to it.
        max_caption_tokens: captions longer than this many tokens are cut to it by :func:`truncate_caption`
            (counted in ``stats["truncated"]``); a limit the LLM's positions cannot hold is refused here, before any
            forward pass (:func:`check_context`).
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
        if max_caption_tokens is not None:
            check_context(model.config, tokenizer, template, max_caption_tokens, mode)
        self.window = attention_window(model.config) if mode == "fda" else None
        self.device = next(model.parameters()).device
        self.hidden_size = model.config.hidden_size
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_id = pad if pad is not None else 0
        self.stats: Counter[str] = Counter()

    @property
    def num_facets(self) -> int:
        return self.template.num_facets

    def batch_bytes(self, captions: Sequence[str]) -> int:
        """At most how many bytes one forward batch of these ``captions`` holds beyond the LLM's weights, at this
        token budget (the model's float dtype; measured against peak RSS in tests/embed/test_real_llm.py):

        - the KV cache of every layer run, for ``token_budget`` tokens (fda caches each prefix once, then its
          suffixes: the tokens the batch processes; naive keeps no cache);
        - one layer's activations for ``token_budget`` tokens: q/k/v, three MLP tensors, six of the hidden size, and
          the two passes' outputs;
        - that layer's attention scores (three times: the product, its masked copy, the softmax) and the mask,
          ``token_budget`` queries by the longest row of keys among ``captions`` (fda: prefix + K suffixes; naive:
          the longest prompt), as the CPU's eager/sdpa math path makes them.
        """
        config = self.backbone.config
        items = [self._tokenize(truncate_caption(self.tokenizer, c, self.max_caption_tokens)[0]) for c in captions]
        longest = max(len(t.prefix) + self.num_facets * max(map(len, t.suffixes)) if self.mode == "fda"
                      else max(t.full_lengths) for t in items)
        heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        layers = len(self.backbone.layers)
        per_token = ((layers * 2 * kv_heads * head_dim if self.mode != "naive" else 0)
                     + (heads + 2 * kv_heads) * head_dim + 3 * config.intermediate_size + 8 * config.hidden_size
                     + (3 * heads + 1) * longest)
        return self.token_budget * per_token * next(self.backbone.parameters()).element_size()

    # ---- tokenisation -------------------------------------------------------------------------------------------
    def _truncate(self, caption: str) -> str:
        text, truncated = truncate_caption(self.tokenizer, caption, self.max_caption_tokens)
        self.stats["truncated"] += truncated
        return text

    def _tokenize(self, caption: str) -> _Tokenized:
        *rows, caption_part = self.tokenizer(self.template.prompts(caption)
                                             + [self.template.caption_part(caption)])["input_ids"]
        shared = min(common_prefix_length(rows), min(len(r) for r in rows) - 1)  # every suffix keeps >= 1 token
        # the closing quote may merge with what follows it; more may not
        return _Tokenized(prefix=list(rows[0][:shared]), suffixes=[list(r[shared:]) for r in rows],
                          boundary_split=shared < len(caption_part) - 1)

    # ---- batching -----------------------------------------------------------------------------------------------
    def _padded_cost(self, n: int, longest: tuple[int, int, int], mode: str) -> int:
        """Tokens a ``mode`` forward batch of ``n`` captions processes, padding included; in ``fda`` mode also the
        tokens its KV cache holds at the end (each prefix once, then the suffixes: the same count).

        ``longest`` holds the batch's longest (prefix, suffix, full prompt) in tokens.
        """
        prefix, suffix, full = longest
        if mode == "naive":
            return n * self.num_facets * full
        return n * (prefix + self.num_facets * suffix)

    def _fits(self, prefix: int, suffix: int, mode: str) -> bool:
        """Whether a prompt of ``prefix`` plus ``suffix`` tokens fits the sliding window, which fda's mask does not
        apply (:func:`fda_forward`); naive passes apply it as on the prompt alone, so they always fit."""
        return mode == "naive" or self.window is None or prefix + suffix <= self.window

    def _batches(self, items: Sequence[_Tokenized], chosen: Sequence[int], mode: str) -> Iterator[list[int]]:
        """The indices ``chosen`` of ``items`` in ``mode`` batches of similar length whose padded cost stays within
        the token budget."""
        order = sorted(chosen, key=lambda i: max(items[i].full_lengths), reverse=True)
        batch: list[int] = []
        longest = (0, 0, 0)
        for i in order:
            item = items[i]
            own = (len(item.prefix), max(len(s) for s in item.suffixes), max(item.full_lengths))
            grown = tuple(max(a, b) for a, b in zip(longest, own))
            if batch and self._padded_cost(len(batch) + 1, grown, mode) > self.token_budget:
                yield batch
                batch, grown = [], own
            batch.append(i)
            longest = grown
        if batch:
            yield batch

    def _plan(self, items: Sequence[_Tokenized]) -> Iterator[tuple[Callable, list[int]]]:
        """``(forward pass, indices of items)`` per batch: the mode's own, and naive batches for the prompts (in fda
        mode) that the sliding window cannot hold whole (counted in ``stats["beyond_sliding_window"]``)."""
        beyond = [i for i, t in enumerate(items) if not self._fits(len(t.prefix), max(map(len, t.suffixes)),
                                                                   self.mode)]
        self.stats["beyond_sliding_window"] += len(beyond)
        within = sorted(set(range(len(items))) - set(beyond))
        forward = self._forward_fda if self.mode == "fda" else self._forward_naive
        yield from ((forward, batch) for batch in self._batches(items, within, self.mode))
        yield from ((self._forward_naive, batch) for batch in self._batches(items, beyond, "naive"))

    # ---- forward passes -----------------------------------------------------------------------------------------
    def _forward_naive(self, items: Sequence[_Tokenized]) -> torch.Tensor:
        rows = [t.prefix + s for t in items for s in t.suffixes]
        ids, mask = pad_right(rows, self.pad_id, self.device)
        hidden = self.backbone(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        return last_token_states(hidden, mask).view(len(items), self.num_facets, -1)

    def _forward_fda(self, items: Sequence[_Tokenized]) -> torch.Tensor:
        k = self.num_facets
        prefix_ids, prefix_mask = pad_right([t.prefix for t in items], self.pad_id, self.device)
        suffix_ids, suffix_mask = pad_right([s for t in items for s in t.suffixes], self.pad_id, self.device)
        _, out = fda_forward(self.backbone, prefix_ids, prefix_mask, suffix_ids, suffix_mask, k)
        return last_token_states(out.last_hidden_state, suffix_mask).view(len(items), k, -1)

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
        self.stats["prefix_boundary_split"] += sum(t.boundary_split for t in items)
        out = torch.empty((len(items), self.num_facets, self.hidden_size), dtype=torch.float32)
        for forward, batch in self._plan(items):
            chosen = [items[i] for i in batch]
            out[batch] = forward(chosen).float().cpu()
            tokens = sum(sum(t.full_lengths) for t in chosen)
            self.stats["captions"] += len(batch)
            self.stats["prompt_tokens"] += tokens
            if progress is not None:
                progress(len(batch), tokens)
        return out
