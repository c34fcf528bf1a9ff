"""Few-shot image comprehension (the paper's supplementary C.3, Table C5, after SPAE and V2L-Tokenizer): the frozen
LLM classifies an image from a few labelled examples, all of them given to it as words.

- **Words of an image** (C_i): the vocabulary map (:func:`~pipeline.evaluate.vocabulary.cell_token_ids`, the
  patch grid pooled in cells of ``pool`` x ``pool``) gives one word per cell; the image's words are the
  ``words_per_image`` most frequent of them (ties: the first cell in row-major order), most frequent first, joined
  by spaces (a token without text is left out).
- **Episodes** (N-way K-shot): N classes drawn among those with at least K + ``queries`` images, then K support and
  ``queries`` query images per class, the support shuffled; seeded per (seed, way, shots, queries), so the settings
  that differ only in repetitions share their episodes.
- **Prompt** (the release's ``eval_fs_classification`` shape, with its task induction): a line naming the N
  candidate classes, then each support image as ``###\\nInput: < C_i >\\nOutput: A_i`` (A_i its class name), the
  whole support set shown 1 + R times (R repetitions: the release repeats it so, and Frozen/SPAE name such extra
  showings of the same support set "repeats"), then the query as ``###\\nInput: < C_q >\\nOutput:``.
- **Answer**: the candidate class name whose tokens the frozen LLM scores highest after the prompt (the sum of their
  log-probabilities, :class:`LogProbScorer`); the release decodes greedily under a mask of the names' tokens
  instead. Accuracy per (way, shots, repetitions): ``acc_<N>way_<K>shot_<R>rep``, and their mean per way,
  ``acc_<N>way``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pipeline.embed.fda import common_prefix_length, fda_forward, pad_right
from pipeline.evaluate.models import FlameModel
from pipeline.evaluate.readers import FewShotSet
from pipeline.evaluate.vocabulary import cell_token_ids, token_word
from pipeline.settings import validate_document

#: ``score(prompt, continuations) -> one score per continuation`` (higher: more likely).
Scorer = Callable[[str, Sequence[str]], list[float]]

INDUCTION = "For each of the following input output pairs, output is one of {names}.\n"
EXAMPLE = "###\nInput: < {words} >\nOutput: {name}\n"
QUERY = "###\nInput: < {words} >\nOutput:"


@dataclass(frozen=True)
class FewShotSettings:
    """The keys of the schema's ``$defs/fewshot_settings``; ``settings``: ``(shots, repetitions)`` pairs."""

    ways: tuple[int, ...]
    settings: tuple[tuple[int, int], ...]
    episodes: int
    queries: int
    seed: int
    words_per_image: int
    pool: int

    @classmethod
    def from_document(cls, document: dict, where: str = "fewshot settings") -> FewShotSettings:
        """A settings document (keys left out take the schema's defaults), validated; raises naming ``where``."""
        d = validate_document("fewshot_settings", document, where)
        return cls(tuple(d["ways"]), tuple((s["shots"], s["repetitions"]) for s in d["settings"]), d["episodes"],
                   d["queries"], d["seed"], d["words_per_image"], d["pool"])


@dataclass(frozen=True)
class FewShotBenchmark:
    """What a few-shot evaluation reads: the labelled images and the settings."""

    data: FewShotSet
    settings: FewShotSettings


@dataclass(frozen=True)
class Episode:
    """One N-way episode: the class labels (in drawn order: the candidates' order), the support images as
    ``(image index, label)`` in prompt order, and the query images likewise."""

    classes: tuple[str, ...]
    support: tuple[tuple[int, str], ...]
    queries: tuple[tuple[int, str], ...]


def build_episodes(images_by_class: Mapping[str, Sequence[int]], way: int, shots: int, queries: int, count: int,
                   seed: int) -> list[Episode]:
    """``count`` seeded N-way (``way``) K-shot (``shots``) episodes over ``images_by_class`` (label -> image
    indices); raises ``ValueError`` when fewer than ``way`` classes have ``shots + queries`` images."""
    needed = shots + queries
    eligible = sorted(label for label, indices in images_by_class.items() if len(indices) >= needed)
    if len(eligible) < way:
        raise ValueError(f"{way}-way {shots}-shot with {queries} queries per class needs {way} classes of at least "
                         f"{needed} readable images; the set has {len(eligible)} such classes")
    rng = random.Random(f"{seed}-{way}-{shots}-{queries}")
    episodes = []
    for _ in range(count):
        classes = rng.sample(eligible, way)
        support, query = [], []
        for label in classes:
            drawn = rng.sample(list(images_by_class[label]), needed)
            support += [(index, label) for index in drawn[:shots]]
            query += [(index, label) for index in drawn[shots:]]
        rng.shuffle(support)
        episodes.append(Episode(tuple(classes), tuple(support), tuple(query)))
    return episodes


def episode_prompt(episode: Episode, words: Mapping[int, str], names: Mapping[str, str], repetitions: int,
                   query: int) -> str:
    """The prompt of ``episode`` for its query image ``query``: the task induction, the support set shown
    ``1 + repetitions`` times, then the query (``words``: image index -> its words; ``names``: label -> name)."""
    induction = INDUCTION.format(names=" or ".join(names[label] for label in episode.classes))
    examples = "".join(EXAMPLE.format(words=words[index], name=names[label]) for index, label in episode.support)
    return induction + examples * (1 + repetitions) + QUERY.format(words=words[query])


def accuracy(episodes: Sequence[Episode], words: Mapping[int, str], names: Mapping[str, str], repetitions: int,
             score: Scorer) -> tuple[int, int]:
    """``(correct, queries)`` of ``episodes``: each query answered by the candidate name (`` <name>``) that
    ``score`` rates highest after its prompt (a tie: the first in the episode's class order)."""
    correct = total = 0
    for episode in episodes:
        candidates = [f" {names[label]}" for label in episode.classes]
        for index, label in episode.queries:
            scores = score(episode_prompt(episode, words, names, repetitions, index), candidates)
            correct += episode.classes[max(range(len(scores)), key=scores.__getitem__)] == label
            total += 1
    return correct, total


def image_words(tokenizer, ids: torch.Tensor, limit: int) -> str:
    """One image's words C_i from its cells' token ids (``[rows, cols]``): the ``limit`` most frequent non-empty
    words, most frequent first, ties in row-major order of their first cell, joined by spaces."""
    counts = Counter(word for word in (token_word(tokenizer, i) for i in ids.flatten().tolist()) if word)
    return " ".join(word for word, _ in counts.most_common(limit))


class LogProbScorer:
    """A frozen causal LM as a :data:`Scorer`: the sum of the log-probabilities of a continuation's tokens after
    the prompt. Each ``prompt + continuation`` is tokenised whole (with the tokenizer's special tokens, as a user
    would); the continuation's tokens are those after the longest prefix shared with the prompt alone and all
    continuations, so a merge across the boundary never scores a prompt token. The shared prefix runs once, the
    continuations on its KV cache (:func:`~pipeline.embed.fda.fda_forward`)."""

    def __init__(self, llm, tokenizer):
        self.llm, self.tokenizer = llm, tokenizer
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_id = pad if pad is not None else 0
        self.limit = getattr(llm.config, "max_position_embeddings", None)

    @torch.inference_mode()
    def __call__(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        rows = [self.tokenizer(prompt + text)["input_ids"] for text in continuations]
        shared = common_prefix_length([self.tokenizer(prompt)["input_ids"], *rows])
        longest = max(len(row) for row in rows)
        if self.limit is not None and longest > self.limit:
            raise ValueError(f"a few-shot prompt of {longest} tokens is longer than the LLM's max_position_embeddings "
                             f"{self.limit}: lower words_per_image, the shots or the repetitions")
        suffixes = [row[shared:] for row in rows]
        if shared == 0 or not all(suffixes):
            raise ValueError(f"continuations {list(continuations)}: each needs tokens of its own after a non-empty "
                             "prompt")
        device = next(self.llm.parameters()).device
        prefix = torch.tensor([rows[0][:shared]], device=device)
        suffix_ids, suffix_mask = pad_right(suffixes, self.pad_id, device)
        prefix_out, suffix_out = fda_forward(self.llm, prefix, torch.ones_like(prefix), suffix_ids, suffix_mask,
                                             len(rows))
        first = F.log_softmax(prefix_out.logits[0, -1].float(), dim=-1)[suffix_ids[:, 0]]  # [N]
        rest = F.log_softmax(suffix_out.logits[:, :-1].float(), dim=-1)  # [N, S - 1, V]
        later = rest.gather(-1, suffix_ids[:, 1:, None])[..., 0] * suffix_mask[:, 1:]
        return (first + later.sum(dim=1)).tolist()


def fewshot_words(model: FlameModel, data: FewShotSet, settings: FewShotSettings) -> dict[int, str]:
    """Image index -> its words C_i, for every readable image of ``data`` (unreadable ones are counted by the
    model and left out of every episode)."""
    words = {}
    for pixels, indices in model.image_batches(data.images):
        ids = cell_token_ids(model.vision, model.llm, pixels, settings.pool, model.text_key["layer"])[..., 0]
        for index, grid in zip(indices.tolist(), ids):
            words[index] = image_words(model.tokenizer, grid, settings.words_per_image)
    return words


def fewshot_metrics(words: Mapping[int, str], labels: Sequence[str], names: Mapping[str, str],
                    settings: FewShotSettings, score: Scorer) -> tuple[dict[str, float], Counter]:
    """``(metrics, counts)``: the accuracy of every (way, shots, repetitions) and the mean per way, over episodes
    of the images in ``words`` (``labels[index]``: an image's class); counts of episodes and queries."""
    by_class: dict[str, list[int]] = {}
    for index in sorted(words):
        by_class.setdefault(labels[index], []).append(index)
    metrics, counts = {}, Counter()
    for way in settings.ways:
        per_way = []
        for shots, repetitions in settings.settings:
            episodes = build_episodes(by_class, way, shots, settings.queries, settings.episodes, settings.seed)
            correct, total = accuracy(episodes, words, names, repetitions, score)
            metrics[f"acc_{way}way_{shots}shot_{repetitions}rep"] = correct / total
            per_way.append(correct / total)
            counts.update(episodes=len(episodes), queries=total)
        metrics[f"acc_{way}way"] = sum(per_way) / len(per_way)
    return metrics, counts


def evaluate_fewshot(model, benchmark: FewShotBenchmark, prompt: str | None = None) -> dict[str, float]:
    """The few-shot metrics of a FLAME ``model`` (its frozen LLM reads and answers; ``prompt`` is unused: no text
    is embedded); the CLIP baseline, which has no LLM, is refused."""
    if not isinstance(model, FlameModel):
        raise ValueError("fewshot_miniimagenet needs a FLAME model: its frozen LLM reads the images' words and "
                         "answers, and the CLIP baseline has no LLM (list only FLAME models in the benchmark's "
                         "`models:`)")
    words = fewshot_words(model, benchmark.data, benchmark.settings)
    metrics, counts = fewshot_metrics(words, benchmark.data.labels, benchmark.data.classnames, benchmark.settings,
                                      LogProbScorer(model.llm, model.tokenizer))
    model.scored.update(counts)
    return metrics
