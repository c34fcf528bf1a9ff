"""FLAME's prompt policy in evaluation: which template embeds a benchmark's texts (the format's default, the
layout's description prompt) and how its facets are averaged (``long_mean``), checked against forward passes of
the prompts typed out literally."""

import pytest
import torch
import torch.nn.functional as F

from pipeline.embed.prompts import description_template, text_layout
from pipeline.evaluate.benchmarks import FORMATS, default_prompt


def test_long_caption_sets_default_to_the_long_facets_and_short_texts_to_the_description_prompt():
    assert {f for f in FORMATS if default_prompt(f) == "long"} == {"urban1k", "sharegpt4v", "dci", "docci"}
    for fmt in ("mscoco_captions", "flickr30k", "flickr8k", "karpathy", "xm3600", "wds_classification",
                "wds_imagenet_multilingual", "sugar_crepe", "winoground"):
        assert default_prompt(fmt) == "description", fmt
    assert default_prompt("wds_linear_probe") is None  # no texts


def test_the_description_prompt_of_each_layout_typed_out():
    paper_source, paper = description_template(text_layout("paper"))
    assert (paper_source, paper.prompts('a "red" star')) == (
        "raw", ["Detailed image description: \"a 'red' star\". After thinking step by step, this image description "
                'means in just one word:"'])
    official_source, official = description_template(text_layout("official"))
    assert (official_source, official.prompts("a red star")) == (
        "raw", ['Image description : "a red star." . After thinking step by step , this image description means '
                'in just one word:"'])
    # a model trained on long captions only: the long template's description facet, under its prefix
    source, long_only = description_template({"long": text_layout("official")["long"]})
    assert (source, long_only.prompts("x")) == (
        "long", ['Detailed Image description : "x." . After thinking step by step , <s> this image description '
                 'means in just one word:"'])
    with pytest.raises(ValueError, match=r"trained on the description facet.*long: \['action'\]"):
        description_template({"long": text_layout("paper", "long")["long"].restricted(["action"])})


def _hidden(llm, tokenizer, prompt: str) -> torch.Tensor:
    """Decoder layer 1's output (before any final norm: facet norms differ) at the prompt's last token, the prompt
    run alone."""
    with torch.no_grad():
        return llm(**tokenizer(prompt, return_tensors="pt"), output_hidden_states=True).hidden_states[1][0, -1]


@pytest.mark.parametrize("tiny_llm", ["mistral"], indirect=True)
def test_texts_are_embedded_with_the_chosen_prompt_and_facet_mean(tmp_path, tiny_llm, tokenizer):
    from fixtures.training import TINY_VISION
    from pipeline.evaluate.models import FlameModel
    from pipeline.train.model import FlameVisionModel

    key = {"llm_identity": "tiny", "revision": None, "layer": 1, "dtype": "torch.float32",
           "max_caption_tokens": 512}
    templates = {"short": text_layout("paper")["short"], "long": text_layout("paper")["long"]}
    vision = FlameVisionModel(TINY_VISION, tiny_llm.config.hidden_size)
    text = "a red star"
    long_prompts = [f'Detailed image description: "{text}". After thinking step by step, {suffix}' for suffix in (
        'this image description means in just one word:"',
        'the category of the main object in this image means in just one word:"',
        'the prominent characteristic or pattern of the main object in this image means in just one word:"',
        'the category of the minor object in this image means in just one word:"',
        'the prominent characteristic or pattern of the minor object in this image means in just one word:"',
        'the primary action or event taking place in this image means in just one word:"',
        'the overall atmosphere or emotion of this image means in just one word:"')]
    states = torch.stack([_hidden(tiny_llm, tokenizer, p) for p in long_prompts])  # [7, D]
    expected = {"normalized": F.normalize(F.normalize(states, dim=-1).mean(0), dim=-1),
                "raw": F.normalize(states.mean(0), dim=-1)}
    cache = tmp_path / "cache"
    got = {}
    for mean in ("normalized", "raw"):
        model = FlameModel(vision, tiny_llm, tokenizer, key, templates, cache_dir=cache, long_mean=mean)
        got[mean] = model.encode_text([text], prompt="long")[0]
        assert torch.allclose(got[mean], expected[mean], atol=1e-5), mean
        assert model.describe_prompt("long") == {"name": "long", "source": "long", "facets": list(
            templates["long"].names), "long_mean": mean}
        # description: the short source's template (the paper layout's description facet), one prompt
        assert torch.allclose(model.encode_text([text], prompt="description")[0],
                              F.normalize(states[0], dim=-1), atol=1e-5)
        assert model.describe_prompt("description")["source"] == "short"
    # the two means differ by more than the tolerance above (on this random LLM the facet norms differ little)
    assert not torch.allclose(got["raw"], expected["normalized"], atol=1e-5)
    assert len(list(cache.glob("*.npy"))) == 4  # 2 prompts x 2 means: the facet mean is part of the cache key
