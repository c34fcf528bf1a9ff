"""The released code's embedding (``embed.mode: official``), for evaluating or continuing the released checkpoint.

The release (MIV-XJTU/FLAME ``multiprompteol_embeddings.py``) packs a caption's K facet questions into one
sequence, ``<prefix><question 1> <question 2> ... <question K>`` (the questions space-separated), runs it once with
default positions ``0 .. L-1`` (so question k's positions continue after question k-1's) and a mask under which a
token of question k attends to the prefix and to the earlier tokens of question k only; facet k's embedding is the
hidden state at question k's last token. This is **not** equal to K separate passes (the positions differ: see
``fda``), it is what the released model was trained on. Here one caption runs at a time, so no padding enters (the
release's batches let real tokens attend to padding).

Which question a token belongs to comes from the fast tokenizer's character offsets: a token starting inside the
prefix is the prefix's (special tokens too), a token starting at or after question k's first character (the
separating space included) is question k's.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.embed.prompts import PromptTemplate


def packed_text(template: PromptTemplate, caption: str) -> tuple[str, list[int]]:
    """The released packed sequence for ``caption`` and the character offset where each question starts (the
    separating space belongs to the question after it)."""
    text, starts = template.prefix_of(caption), []
    for k, suffix in enumerate(template.suffixes):
        starts.append(len(text))
        text += (" " if k else "") + suffix
    return text, starts


def token_segments(offsets: list[tuple[int, int]], starts: list[int]) -> list[int]:
    """Per token: -1 for the prefix, else the index of its question (by the token's first character)."""
    segments = []
    for begin, end in offsets:
        if begin == end == 0 or begin < starts[0]:  # special tokens report (0, 0)
            segments.append(-1)
        else:
            segments.append(max(k for k, start in enumerate(starts) if begin >= start))
    return segments


def packed_mask(segments: list[int], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The additive attention mask ``[1, 1, L, L]``: 0 where token i may attend to token j (j <= i, and j in the
    prefix or in i's question), the dtype's minimum elsewhere."""
    seg = torch.tensor(segments, device=device)
    length = len(segments)
    causal = torch.ones(length, length, dtype=torch.bool, device=device).tril()
    same = (seg[None, :] == -1) | (seg[None, :] == seg[:, None])
    allowed = causal & same
    return torch.zeros(1, 1, length, length, dtype=dtype, device=device).masked_fill(~allowed,
                                                                                    torch.finfo(dtype).min)


def official_facet_states(backbone: nn.Module, tokenizer, template: PromptTemplate, caption: str) -> torch.Tensor:
    """``[K, D]``: the hidden states at each question's last token of the released packed sequence."""
    text, starts = packed_text(template, caption)
    encoded = tokenizer(text, return_offsets_mapping=True)
    segments = token_segments([tuple(o) for o in encoded["offset_mapping"]], starts)
    missing = [k for k in range(len(starts)) if k not in segments]
    if missing:
        raise ValueError(f"official mode: questions {missing} of {caption[:60]!r} have no token of their own")
    device = next(backbone.parameters()).device
    dtype = next(backbone.parameters()).dtype
    ids = torch.tensor([encoded["input_ids"]], device=device)
    hidden = backbone(input_ids=ids, attention_mask=packed_mask(segments, dtype, device),
                      position_ids=torch.arange(ids.shape[1], device=device)[None], use_cache=False).last_hidden_state
    last = [max(i for i, s in enumerate(segments) if s == k) for k in range(len(starts))]
    return hidden[0, last]
