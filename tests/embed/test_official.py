"""`embed.mode: official`: the released packed sequence, checked against an independent re-implementation of the
released function (tokens assigned to questions by decoding, the mask built token by token, eager attention)."""

import copy

import pytest
import torch

from pipeline.embed.fda import FacetEmbedder
from pipeline.embed.prompts import text_layout

CAPTIONS = ["A red striped star falls past a small blue circle at sunset", 'It is "big"?']


def released_reference(model, tokenizer, template, caption):
    """The released function, written out: the packed string typed from the template's parts, each token's question
    found by decoding the ids up to it, the additive mask filled pair by pair, positions 0..L-1, eager attention."""
    prefix = template.prefix_of(caption)
    questions = [(" " if k else "") + s for k, s in enumerate(template.suffixes)]
    text = prefix + "".join(questions)
    ids = tokenizer(text)["input_ids"]
    bounds = [len(prefix) + sum(len(q) for q in questions[:k]) for k in range(len(questions))]
    start = 1 if ids[0] == tokenizer.bos_token_id else 0  # the BOS the tokenizer adds is no character of the text
    owner = []
    for i in range(len(ids)):
        before = len(tokenizer.decode(ids[start:i], skip_special_tokens=False)) if i >= start else -1
        owner.append(max([k for k, b in enumerate(bounds) if before >= b], default=-1))
    assert sorted(set(owner)) == list(range(-1, len(questions)))
    n = len(ids)
    mask = torch.full((1, 1, n, n), torch.finfo(torch.float32).min)
    for i in range(n):
        for j in range(i + 1):
            if owner[j] in (-1, owner[i]):
                mask[0, 0, i, j] = 0.0
    eager = copy.deepcopy(model)
    eager.config._attn_implementation = "eager"
    with torch.no_grad():
        hidden = eager(input_ids=torch.tensor([ids]), attention_mask=mask, position_ids=torch.arange(n)[None],
                       output_hidden_states=True).hidden_states[-1][0]
    return torch.stack([hidden[max(i for i in range(n) if owner[i] == k)] for k in range(len(questions))])


@pytest.mark.parametrize("tiny_llm", ["mistral", "llama"], indirect=True)
def test_official_mode_equals_the_released_packed_sequence_and_differs_from_separate_passes(tiny_llm, tokenizer):
    template = text_layout("official")["long"]
    got = FacetEmbedder(tiny_llm, tokenizer, template, mode="official").encode(CAPTIONS)
    for i, caption in enumerate(CAPTIONS):
        expected = released_reference(tiny_llm, tokenizer, template, caption)
        assert torch.allclose(got[i], expected, atol=1e-4), (got[i] - expected).abs().max()
    separate = FacetEmbedder(tiny_llm, tokenizer, template, mode="fda").encode(CAPTIONS)
    assert torch.allclose(got[:, 0], separate[:, 0], atol=1e-4)  # the first question sits right after the prefix
    assert (got[:, 1:] - separate[:, 1:]).abs().max() > 1e-2  # the later ones' positions continue: not equal
