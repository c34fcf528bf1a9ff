"""`dtype: bfloat16` (the GPU default) checked on CPU: a bf16 copy of the LLM embeds within bf16's precision of the
float32 reference, in fda and naive mode alike, and fda stays equal to naive at that precision."""

import copy

import pytest
import torch
import torch.nn.functional as F
from conftest import CORPUS

from pipeline.embed.fda import FacetEmbedder
from pipeline.embed.prompts import paper_template


@pytest.mark.parametrize("tiny_llm", ["mistral", "qwen2"], indirect=True)
def test_bf16_embeddings_are_the_float32_ones_to_bf16_precision_in_both_modes(tiny_llm, tokenizer):
    template, captions = paper_template("long"), CORPUS[:4]
    reference = FacetEmbedder(tiny_llm, tokenizer, template, mode="naive").encode(captions)  # [N, K, D] float32
    half = copy.deepcopy(tiny_llm).to(torch.bfloat16)
    got = {mode: FacetEmbedder(half, tokenizer, template, mode=mode).encode(captions) for mode in ("naive", "fda")}
    for mode, vectors in got.items():
        assert vectors.dtype == torch.float32 and vectors.shape == reference.shape
        assert not torch.equal(vectors, reference)  # the model really ran in bf16
        assert F.cosine_similarity(vectors, reference, dim=-1).min() > 0.99, mode
    assert F.cosine_similarity(got["fda"], got["naive"], dim=-1).min() > 0.99
