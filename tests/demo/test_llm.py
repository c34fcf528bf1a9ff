"""The demo LLM's corpus and pre-training: held-out streams, answer positions, the facet-decoupled losses equal
separate forward passes, a short run writes a loadable model and its report. (That the demo's LLM answers facet
prompts on held-out captions: tests/demo/test_learns.py.)"""

import json

import pytest
import torch
import torch.nn.functional as F

from pipeline.demo.llm import (
    TEMPLATE,
    answer_accuracy,
    answer_text,
    build_demo_llm,
    chance_levels,
    encode_example,
    pretrain_loss,
)
from pipeline.demo.llm_corpus import FACET_ANSWERS, facet_examples
from pipeline.demo.llm_settings import PretrainSettings
from pipeline.demo.tiny_llm import build_tiny_llm, train_tokenizer
from pipeline.demo.writers import write_demo_data
from pipeline.llm import load_llm


@pytest.fixture(scope="module")
def examples():
    return list(facet_examples(0, "corpus", 40))


@pytest.fixture(scope="module")
def tokenizer(examples):
    texts = [p + answer_text(e.answers[n])
             for e in examples for p, n in zip(TEMPLATE.prompts(e.caption), TEMPLATE.names)]
    return train_tokenizer(texts, vocab_size=400)


def test_examples_cover_every_language_and_kind_and_are_deterministic(examples):
    assert {e.language for e in examples} == {"en", "de", "fr", "es", "it"}
    assert {e.kind for e in examples} == {"long", "short"}
    assert all(set(e.answers) == set(FACET_ANSWERS) and all(" " not in a for a in e.answers.values())
               for e in examples)
    assert list(facet_examples(0, "corpus", 40)) == examples
    assert list(facet_examples(1, "corpus", 40)) != examples
    validation = list(facet_examples(0, "validation", 40))
    assert not {e.caption for e in validation} & {e.caption for e in examples}


def test_no_demo_caption_is_in_the_pretraining_corpus(tmp_path):
    write_demo_data(tmp_path / "demo", seed=0, train_shards=1, samples_per_shard=8, eval_size=30, image_size=16,
                    overwrite=False)
    demo_captions = set((tmp_path / "demo" / "corpus.txt").read_text(encoding="utf-8").splitlines())
    demo_captions |= {p.read_text(encoding="utf-8") for p in (tmp_path / "demo").rglob("caption/*.txt")}
    corpus = {e.caption for e in facet_examples(0, "corpus", 2000)}
    assert len(demo_captions) > 30 and not demo_captions & corpus


def test_answer_positions(examples, tokenizer):
    for example in examples[:10]:
        encoded = encode_example(tokenizer, example)
        for name, suffix, question in zip(TEMPLATE.names, encoded.suffixes, encoded.question_lengths):
            assert tokenizer.decode(encoded.prefix + suffix[:question]) == TEMPLATE.prompts(example.caption)[
                TEMPLATE.names.index(name)].join(["<s>", ""])
            assert tokenizer.decode(suffix[question:]) == f'{example.answers[name]}"'


def test_facet_decoupled_losses_equal_separate_forward_passes(examples, tokenizer):
    model = build_tiny_llm(tokenizer, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, seed=3)
    batch = [encode_example(tokenizer, e) for e in examples[:3]]
    losses = pretrain_loss(model, batch, tokenizer.pad_token_id)
    answer_ce, caption_ce = [], []
    for encoded in batch:
        ids = torch.tensor([encoded.prefix])
        caption_ce.append(F.cross_entropy(model(input_ids=ids).logits[0, :-1], ids[0, 1:], reduction="none"))
        for suffix, question in zip(encoded.suffixes, encoded.question_lengths):
            ids = torch.tensor([encoded.prefix + suffix])
            logits = model(input_ids=ids).logits[0]
            start = len(encoded.prefix) + question  # first answer token
            answer_ce.append(F.cross_entropy(logits[start - 1:-1], ids[0, start:], reduction="none"))
    torch.testing.assert_close(losses["answer"], torch.cat(answer_ce).mean(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(losses["caption"], torch.cat(caption_ce).mean(), rtol=1e-4, atol=1e-5)


def test_a_short_pretraining_writes_a_loadable_model_and_its_report(tmp_path):
    settings = PretrainSettings.from_document(dict(corpus_size=30, validation_size=20, steps=3, batch_size=4,
                                                   hidden_size=32, layers=2, vocab_size=400))
    report = build_demo_llm(tmp_path / "llm", settings)
    assert json.loads((tmp_path / "llm" / "pretraining.json").read_text()) == report
    assert report["settings"]["steps"] == 3 and set(report["validation_accuracy"]) == set(FACET_ANSWERS)
    model, tok = load_llm(str(tmp_path / "llm"), device="cpu")  # the embed stage's loading path
    validation = list(facet_examples(0, "validation", 20))
    assert answer_accuracy(model, tok, validation) == report["validation_accuracy"]
    assert chance_levels(validation) == report["chance"]
