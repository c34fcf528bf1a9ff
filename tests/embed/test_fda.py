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


def test_truncation_never_leaves_a_broken_character(tokenizer):
    """The byte-level BPE splits Chinese characters and emoji into byte tokens: a cut between them must drop the
    partial character (no U+FFFD), keep a prefix of the caption and stay within the limit."""
    from pipeline.embed.fda import truncate_caption

    caption = "一只猫 sits on a red mat 🐱👍🏽 at sunset, 安静"
    ids = tokenizer(caption, add_special_tokens=False)["input_ids"]
    for limit in range(1, len(ids) + 2):
        cut, truncated = truncate_caption(tokenizer, caption, limit)
        assert "\ufffd" not in cut and caption.startswith(cut), (limit, cut)
        assert len(tokenizer(cut, add_special_tokens=False)["input_ids"]) <= limit
        assert truncated == (limit < len(ids)) and (cut == caption) == (limit >= len(ids))
    assert truncate_caption(tokenizer, "a \ufffd kept as it was", 3)[0].count("\ufffd") == 1


def _last_layer_reference(model, tokenizer, captions, template):
    """[N, K, D]: each prompt alone, the output of the last decoder layer captured by a forward hook (before the
    final norm)."""
    captured = []
    hook = model.model.layers[-1].register_forward_hook(
        lambda module, args, output: captured.append(output[0] if isinstance(output, tuple) else output))
    try:
        rows = []
        for caption in captions:
            for prompt in template.prompts(caption):
                with torch.no_grad():
                    model.model(tokenizer(prompt, return_tensors="pt")["input_ids"])
                rows.append(captured.pop()[0, -1])
    finally:
        hook.remove()
    return torch.stack(rows).view(len(captions), template.num_facets, -1)


@pytest.mark.parametrize("mode", ["fda", "naive"])
def test_layer_equal_to_the_depth_is_the_last_decoder_layer_before_the_final_norm(tiny_llm, tokenizer, mode):
    template = paper_template("short")
    depth = len(tiny_llm.model.layers)
    expected = _last_layer_reference(tiny_llm, tokenizer, CAPTIONS, template)
    got = FacetEmbedder(tiny_llm, tokenizer, template, layer=depth, mode=mode).encode(CAPTIONS)
    assert rel_err(got, expected) <= 1e-4
    normed = FacetEmbedder(tiny_llm, tokenizer, template, layer=-1, mode=mode).encode(CAPTIONS)
    assert rel_err(normed, reference(tiny_llm, tokenizer, CAPTIONS, template, -1)) <= 1e-4
    assert rel_err(normed, expected) > 1e-2  # -1 is after the final norm: another vector


def _windowed_llm(tokenizer, arch: str, window: int):
    """A 3-layer random Mistral or Qwen2 whose every layer attends to the last ``window`` positions only."""
    from transformers import MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM

    config_cls, model_cls, extra = {"mistral": (MistralConfig, MistralForCausalLM, {}),
                                    "qwen2": (Qwen2Config, Qwen2ForCausalLM,
                                              {"use_sliding_window": True, "max_window_layers": 0})}[arch]
    config = config_cls(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=256, num_hidden_layers=3,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                        sliding_window=window, bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                        tie_word_embeddings=False, **extra)
    torch.manual_seed(1)
    return model_cls(config).eval()


@pytest.mark.parametrize("arch", ["mistral", "qwen2"])
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_a_sliding_window_shorter_than_the_prompts_keeps_fda_equal_to_separate_passes(tokenizer, arch, attention):
    template = paper_template("long")
    windowed = _windowed_llm(tokenizer, arch, window=30)
    windowed.config._attn_implementation = attention
    prompt_lengths = [len(tokenizer(p)["input_ids"]) for c in CAPTIONS for p in template.prompts(c)]
    assert min(prompt_lengths) < 30 < max(prompt_lengths)  # some prompts fit the window, others do not
    expected = reference(windowed, tokenizer, CAPTIONS, template, -1)
    unwindowed = _windowed_llm(tokenizer, arch, window=None)
    assert rel_err(reference(unwindowed, tokenizer, CAPTIONS, template, -1), expected) > 1e-2  # the window acts
    for mode in ("naive", "fda"):
        got = FacetEmbedder(windowed, tokenizer, template, mode=mode, token_budget=4096).encode(CAPTIONS)
        assert rel_err(got, expected) <= 1e-4, mode


def test_a_caption_limit_beyond_the_llms_context_is_refused_before_any_forward_pass(tokenizer):
    from pipeline.demo.tiny_llm import build_tiny_llm

    model = build_tiny_llm(tokenizer, hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=1, max_positions=64)
    model.forward = model.model.forward = None  # any forward pass would fail
    template = paper_template("long")
    longest = max(len(tokenizer(p)["input_ids"]) for p in template.prompts(""))
    FacetEmbedder(model, tokenizer, template, max_caption_tokens=64 - longest)
    with pytest.raises(ValueError, match=rf"embed.max_caption_tokens: {65 - longest} caption tokens \+ {longest} "
                                         r"tokens of the longest prompt .* max_position_embeddings 64"):
        FacetEmbedder(model, tokenizer, template, max_caption_tokens=65 - longest)
