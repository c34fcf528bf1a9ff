"""Facet-decoupled attention against an independent reference: each prompt alone through the unmodified model."""

import pytest
import torch

from pipeline.embed.fda import FacetEmbedder, backbone_upto
from pipeline.embed.prompts import paper_template, text_layout

CAPTIONS = [
    "A red star.",
    "A green hexagon with stripes rests in the fog while a tiny blue circle rolls to the left of it at night; "
    "the scene is calm and mostly grey, and the hexagon looks heavy.",
    "blue",
    "Two objects collide at sunset, a purple heart and a yellow ring.",
    "A small blue circle at sunset is falling past a dotted square.",
    'Is the "red" star falling?',
]
CUSTOM = ["colour", "spatial", 'the texture of the background in this image means in just one word:"']


def reference(model, tokenizer, captions, template, layer):
    """[N, K, D]: every prompt run alone (batch of one, no padding) through the full model."""
    rows = []
    for caption in captions:
        per_facet = []
        for prompt in template.prompts(caption):
            ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
            with torch.no_grad():
                out = model.model(ids, output_hidden_states=True)
            hidden = out.last_hidden_state if layer == -1 else out.hidden_states[layer]
            per_facet.append(hidden[0, -1])
        rows.append(torch.stack(per_facet))
    return torch.stack(rows)


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


TEMPLATES = {
    "paper-long": paper_template("long"), "paper-short": paper_template("short"),
    "paper-custom": paper_template(CUSTOM), **{f"official-{s}": t for s, t in text_layout("official").items()},
}


@pytest.mark.parametrize("template", list(TEMPLATES.values()), ids=list(TEMPLATES))
@pytest.mark.parametrize("layer", [-1, 2])
@pytest.mark.parametrize("mode", ["fda", "naive"])
def test_modes_equal_separate_forward_passes_for_every_layout(tiny_llm, tokenizer, template, layer, mode):
    expected = reference(tiny_llm, tokenizer, CAPTIONS, template, layer)
    got = FacetEmbedder(tiny_llm, tokenizer, template, layer=layer, mode=mode).encode(CAPTIONS)
    assert got.shape == expected.shape == (len(CAPTIONS), template.num_facets, 64)
    assert rel_err(got, expected) <= 1e-4


def test_caption_alone_equals_caption_in_a_batch(tiny_llm, tokenizer):
    embedder = FacetEmbedder(tiny_llm, tokenizer, paper_template("long"))
    batched = embedder.encode(CAPTIONS)
    for i, caption in enumerate(CAPTIONS):
        alone = embedder.encode([caption])[0]
        assert torch.allclose(alone, batched[i], rtol=0, atol=1e-5 * batched.abs().max().item())


def test_small_token_budget_splits_batches_without_changing_results(tiny_llm, tokenizer):
    big = FacetEmbedder(tiny_llm, tokenizer, paper_template("long"), token_budget=100_000).encode(CAPTIONS)
    tiny = FacetEmbedder(tiny_llm, tokenizer, paper_template("long"), token_budget=1)
    small = tiny.encode(CAPTIONS)  # one caption per batch
    assert tiny.stats["captions"] == len(CAPTIONS)
    assert rel_err(small, big) <= 1e-5


def test_layer_cut_runs_only_the_needed_layers(tiny_llm):
    assert len(backbone_upto(tiny_llm, 1).layers) == 1
    assert backbone_upto(tiny_llm, -1) is tiny_llm.model
    assert len(tiny_llm.model.layers) == 3  # the model itself is untouched
    with pytest.raises(ValueError):
        backbone_upto(tiny_llm, 4)


def test_truncation_is_counted(tiny_llm, tokenizer):
    embedder = FacetEmbedder(tiny_llm, tokenizer, paper_template("short"), max_caption_tokens=4)
    long_caption = CAPTIONS[1]
    out = embedder.encode([long_caption, "blue"])
    assert embedder.stats["truncated"] == 1
    cut = tokenizer.decode(tokenizer(long_caption, add_special_tokens=False)["input_ids"][:4])
    assert rel_err(out[:1], reference(tiny_llm, tokenizer, [cut], paper_template("short"), -1)) <= 1e-4


def test_bad_mode_is_refused(tiny_llm, tokenizer):
    with pytest.raises(ValueError, match="mode"):
        FacetEmbedder(tiny_llm, tokenizer, paper_template("long"), mode="packed")


class MergingTokenizer:
    """A character tokenizer that, for one facet, merges the caption's closing quote with what precedes it.

    It mimics a BPE merge across the prefix boundary: that facet's tokenisation differs inside the caption part.
    """

    bos_token_id, eos_token_id, pad_token_id = 1, 2, 0
    MERGED = 3

    def __init__(self, merge_marker: str):
        self.merge_marker = merge_marker

    def _encode(self, text: str, add_special_tokens: bool) -> list[int]:
        ids = [4 + ord(c) % 60 for c in text]
        quote = text.find('".')
        if self.merge_marker in text and quote > 0:
            ids[quote - 1: quote + 1] = [self.MERGED]
        return ([self.bos_token_id] if add_special_tokens else []) + ids

    def __call__(self, text, add_special_tokens=True, return_tensors=None):
        if isinstance(text, str):
            ids = self._encode(text, add_special_tokens)
            return {"input_ids": torch.tensor([ids]) if return_tensors == "pt" else ids}
        return {"input_ids": [self._encode(t, add_special_tokens) for t in text]}


@pytest.mark.parametrize("tiny_llm", ["mistral"], indirect=True)
def test_boundary_merge_is_counted_and_results_stay_exact(tiny_llm):
    marker = 'the oddity in this image means in just one word:"'
    tokenizer = MergingTokenizer(marker)
    template = paper_template(["description", marker])
    embedder = FacetEmbedder(tiny_llm, tokenizer, template)
    got = embedder.encode(["A red star", "blue"])
    assert embedder.stats["prefix_boundary_split"] == 2
    assert rel_err(got, reference(tiny_llm, tokenizer, ["A red star", "blue"], template, -1)) <= 1e-4
