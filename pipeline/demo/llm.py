"""The demo LLM: a tiny Mistral-architecture model pre-trained on the demo's language, then frozen like Mistral-Nemo.

:func:`build_demo_llm` trains a byte-level BPE tokenizer and a tiny causal LM on :func:`facet_examples` of the
``corpus`` stream, checks it on the ``validation`` stream and saves an ordinary Hugging Face directory (loaded by the
embed stage with ``from_pretrained``, the code path of a real LLM) plus ``pretraining.json`` (settings, losses,
validation accuracy per facet and language, chance levels).

Pre-training is next-token prediction on the paper's facet prompts with their answers: for a caption, the shared
prefix ``Detailed image description: "<caption>". After thinking step by step, `` runs once and each of the nine
facet suffixes, followed by its one-word answer and the closing quote, runs on top of it with facet-decoupled
attention (:func:`pipeline.embed.fda.fda_forward`), exactly as the embed stage will run the suffixes: one caption
teaches nine answers. The loss is the next-token cross-entropy over the caption plus that over the answer tokens
(the questions are fixed text); about 600 CPU steps suffice for the main object's category, the action and the
atmosphere (the patterns and the spatial layout stay near chance: ``pretraining.json`` says which).
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import PreTrainedModel

from pipeline.demo.tiny_llm import build_tiny_llm, train_tokenizer
from pipeline.embed.fda import common_prefix_length, fda_forward, pad_right
from pipeline.embed.prompts import paper_template
from pipeline.io.atomic import atomic_path
from pipeline.train.schedule import lr_factor

from .llm_corpus import FACET_ANSWERS, FacetExample, facet_examples
from .llm_settings import PretrainSettings

TEMPLATE = paper_template(tuple(FACET_ANSWERS))
REPORT_NAME = "pretraining.json"


def answer_text(word: str) -> str:
    """What follows a facet prompt in the corpus: the word and the closing quote, ``star"``."""
    return f'{word}"'


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of one example: the shared ``prefix``, per facet the ``suffixes`` (question, answer, closing quote)
    and the ``question_lengths`` (suffix tokens before the answer)."""

    prefix: list[int]
    suffixes: list[list[int]]
    question_lengths: list[int]


def encode_example(tokenizer, example: FacetExample) -> EncodedExample:
    """Tokenise the nine facet prompts of ``example`` with their answers appended; the answer must start a new token
    (it does with a byte-level BPE, which splits at the opening quote) or the answer's position would be lost."""
    prompts = TEMPLATE.prompts(example.caption)
    questions = tokenizer(prompts)["input_ids"]
    answered = tokenizer([prompt + answer_text(example.answers[name])
                          for prompt, name in zip(prompts, TEMPLATE.names)])["input_ids"]
    shared = min(common_prefix_length(questions), min(len(q) for q in questions) - 1)
    for question, full, name in zip(questions, answered, TEMPLATE.names):
        if full[:len(question)] != question:
            raise ValueError(f"facet {name}: the answer {example.answers[name]!r} merges with the prompt's last token")
    return EncodedExample(questions[0][:shared], [full[shared:] for full in answered],
                          [len(q) - shared for q in questions])


def _batch_tensors(batch: Sequence[EncodedExample], pad_id: int) -> tuple[torch.Tensor, ...]:
    """``(prefix_ids, prefix_mask, suffix_ids, suffix_mask, answer_mask)``; ``answer_mask[r, t]`` marks the suffix
    positions whose next token (``t + 1``) is part of the answer or the closing quote."""
    prefix_ids, prefix_mask = pad_right([e.prefix for e in batch], pad_id, torch.device("cpu"))
    suffix_ids, suffix_mask = pad_right([s for e in batch for s in e.suffixes], pad_id, torch.device("cpu"))
    question = torch.tensor([q for e in batch for q in e.question_lengths])
    next_position = torch.arange(1, suffix_ids.shape[1] + 1)[None, :]
    answer_mask = (next_position >= question[:, None]) & (torch.roll(suffix_mask, -1, dims=1) == 1)
    answer_mask[:, -1] = False
    return prefix_ids, prefix_mask, suffix_ids, suffix_mask, answer_mask


def _next_token_loss(logits: torch.Tensor, ids: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of predicting ``ids[:, t+1]`` from ``logits[:, t]`` over the positions ``weight[:, t]``."""
    ce = F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="none")
    w = weight[:, :-1].flatten().float()
    return (ce * w).sum() / w.sum().clamp(min=1)


def pretrain_loss(model: PreTrainedModel, batch: Sequence[EncodedExample], pad_id: int) -> dict[str, torch.Tensor]:
    """The losses of one batch: ``caption`` (next-token cross-entropy over the prefix) and ``answer`` (over the
    answer tokens and closing quotes of every facet). The questions are fixed text, so the output layer runs only
    on the prefix and at the answer positions."""
    prefix_ids, prefix_mask, suffix_ids, suffix_mask, answer_mask = _batch_tensors(batch, pad_id)
    prefix_out, suffix_out = fda_forward(model.get_decoder(), prefix_ids, prefix_mask, suffix_ids, suffix_mask,
                                         len(TEMPLATE.names))
    head = model.get_output_embeddings()
    caption = _next_token_loss(head(prefix_out.last_hidden_state), prefix_ids, torch.roll(prefix_mask, -1, dims=1))
    rows, positions = answer_mask.nonzero(as_tuple=True)
    logits = head(suffix_out.last_hidden_state[rows, positions])
    return {"caption": caption, "answer": F.cross_entropy(logits, suffix_ids[rows, positions + 1])}


def pretrain(model: PreTrainedModel, encoded: Sequence[EncodedExample], pad_id: int, settings: PretrainSettings
             ) -> list[dict[str, float]]:
    """AdamW on :func:`pretrain_loss` for ``settings.steps`` steps of ``settings.batch_size`` examples drawn at random
    (seeded); returns each step's losses. The model is left in eval mode."""
    rng = random.Random(f"{settings.seed}-llm-batches")
    torch.manual_seed(settings.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, betas=(0.9, 0.95), weight_decay=0.0)
    warmup = max(1, settings.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, warmup, settings.steps))
    model.train()
    history = []
    bar = tqdm(range(settings.steps), desc="pre-train the demo LLM", unit="step", mininterval=5)
    for _ in bar:
        losses = pretrain_loss(model, [encoded[rng.randrange(len(encoded))] for _ in range(settings.batch_size)],
                               pad_id)
        sum(losses.values()).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        history.append({name: round(value.item(), 4) for name, value in losses.items()})
        bar.set_postfix(history[-1], refresh=False)
    model.eval()
    return history


@torch.inference_mode()
def answer_accuracy(model: PreTrainedModel, tokenizer, examples: Sequence[FacetExample], batch_size: int = 32
                    ) -> dict[str, dict[str, float]]:
    """Per facet and caption language (plus ``all``): the fraction of ``examples`` where the next-token argmax after
    the facet's prompt is the first token of the right answer."""
    hits: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    k = len(TEMPLATE.names)
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        encoded = [encode_example(tokenizer, e) for e in chunk]
        prefix_ids, prefix_mask, suffix_ids, suffix_mask, _ = _batch_tensors(encoded, tokenizer.pad_token_id)
        _, out = fda_forward(model.get_decoder(), prefix_ids, prefix_mask, suffix_ids, suffix_mask, k)
        question = torch.tensor([q for e in encoded for q in e.question_lengths])
        rows = torch.arange(len(question))
        predicted = model.get_output_embeddings()(out.last_hidden_state[rows, question - 1]).argmax(dim=-1)
        wanted = suffix_ids[rows, question]
        for row, correct in enumerate((predicted == wanted).tolist()):
            example, name = chunk[row // k], TEMPLATE.names[row % k]
            hits[name][example.language].append(correct)
            hits[name]["all"].append(correct)
    return {name: {lang: round(sum(v) / len(v), 4) for lang, v in sorted(by_lang.items())}
            for name, by_lang in hits.items()}


def chance_levels(examples: Sequence[FacetExample]) -> dict[str, float]:
    """Per facet: the accuracy of always answering the most frequent answer of ``examples``."""
    levels = {}
    for name in TEMPLATE.names:
        answers = [e.answers[name] for e in examples]
        levels[name] = round(max(answers.count(a) for a in set(answers)) / len(answers), 4)
    return levels


def build_demo_llm(out: Path, settings: PretrainSettings) -> dict:
    """Pre-train the demo LLM (see the module docstring) and save it to ``out``; returns the report written to
    ``out/pretraining.json``."""
    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    corpus = list(facet_examples(settings.seed, "corpus", settings.corpus_size))
    validation = list(facet_examples(settings.seed, "validation", settings.validation_size))
    texts = [TEMPLATE.prompts(e.caption)[0] for e in corpus]
    texts += [suffix + answer_text(e.answers[name]) for e in corpus
              for name, suffix in zip(TEMPLATE.names, TEMPLATE.suffixes)]
    tokenizer = train_tokenizer(texts, vocab_size=settings.vocab_size)
    model = build_tiny_llm(tokenizer, arch=settings.arch, hidden_size=settings.hidden_size,
                           num_layers=settings.layers, num_heads=settings.heads, num_kv_heads=settings.kv_heads,
                           seed=settings.seed)
    encoded = [encode_example(tokenizer, e) for e in corpus]
    history = pretrain(model, encoded, tokenizer.pad_token_id, settings)
    report = {
        "settings": asdict(settings),
        "parameters": sum(p.numel() for p in model.parameters()),
        "loss_first_step": history[0],
        "loss_last_50_steps": {name: round(sum(h[name] for h in history[-50:]) / len(history[-50:]), 4)
                               for name in history[0]},
        "validation_accuracy": answer_accuracy(model, tokenizer, validation),
        "chance": chance_levels(validation),
        "seconds": round(time.perf_counter() - started, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    with atomic_path(out / REPORT_NAME) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report
