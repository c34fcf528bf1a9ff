"""Few-shot image comprehension: the seeded episodes, the prompt, the accuracy under a stand-in scorer, the LLM's
log-probability scorer against a forward pass of each whole text, and a run through a real tiny LLM."""

import json
import re

import pytest
import torch
import torch.nn.functional as F

from fixtures.benchmarks import jpeg
from pipeline.evaluate.fewshot import (
    Episode,
    FewShotSettings,
    LogProbScorer,
    accuracy,
    build_episodes,
    episode_prompt,
    fewshot_metrics,
    image_words,
)

NAMES = {"n1": "cat", "n2": "dog", "n3": "fox"}


def copy_the_matching_class(prompt: str, candidates: list[str]) -> list[float]:
    """A stand-in LLM: each candidate scores the support examples of that class sharing a word with the query."""
    examples = re.findall(r"###\nInput: < (.*?) >\nOutput: (.*)\n", prompt)
    query = set(re.search(r"###\nInput: < ([^<>]*?) >\nOutput:$", prompt).group(1).split())
    return [float(sum(name == candidate.strip() and bool(query & set(words.split())) for words, name in examples))
            for candidate in candidates]


def test_the_prompt_shows_the_support_set_one_plus_repetitions_times_then_the_query():
    episode = Episode(("n1", "n2"), ((0, "n1"), (1, "n2")), ((2, "n2"),))
    words = {0: "whisker fur", 1: "bark", 2: "tail"}
    support = "###\nInput: < whisker fur >\nOutput: cat\n###\nInput: < bark >\nOutput: dog\n"
    expected = ("For each of the following input output pairs, output is one of cat or dog.\n" + support * 3
                + "###\nInput: < tail >\nOutput:")
    assert episode_prompt(episode, words, NAMES, 2, 2) == expected


def test_a_hand_built_episode_scores_the_expected_accuracy_with_a_stand_in_scorer():
    """Query 3 shares its words with its own class's support image, query 4 with the other class's: 1 of 2."""
    episode = Episode(("n1", "n2"), ((0, "n1"), (1, "n2")), ((3, "n1"), (4, "n2")))
    words = {0: "whisker fur", 1: "bark tail", 3: "fur grass", 4: "whisker"}
    for repetitions in (0, 1, 3):
        assert accuracy([episode], words, NAMES, repetitions, copy_the_matching_class) == (1, 2)
    words[4] = "tail"
    assert accuracy([episode], words, NAMES, 0, copy_the_matching_class) == (2, 2)


def test_episodes_are_seeded_and_deterministic_and_drawn_as_n_way_k_shot():
    by_class = {label: list(range(10 * k, 10 * k + 5)) for k, label in enumerate(["a", "b", "c", "d", "e", "f"])}
    episodes = build_episodes(by_class, way=5, shots=3, queries=2, count=20, seed=4)
    assert episodes == build_episodes(by_class, way=5, shots=3, queries=2, count=20, seed=4)
    assert episodes != build_episodes(by_class, way=5, shots=3, queries=2, count=20, seed=5)
    for episode in episodes:
        assert len(set(episode.classes)) == 5
        for label in episode.classes:
            support = [i for i, owner in episode.support if owner == label]
            queries = [i for i, owner in episode.queries if owner == label]
            assert len(support) == 3 and len(queries) == 2 and not set(support) & set(queries)
            assert set(support + queries) <= set(by_class[label])
        assert {owner for _, owner in episode.support + episode.queries} == set(episode.classes)
    assert len({tuple(e.support) for e in episodes}) > 15  # drawn, and the support order shuffled
    with pytest.raises(ValueError, match="5-way 3-shot with 3 queries per class needs 5 classes of at least 6"):
        build_episodes(by_class, way=5, shots=3, queries=3, count=1, seed=0)


def test_metrics_name_every_setting_and_average_each_way():
    """Words that identify each class: every query is answered right, in every (way, shots, repetitions)."""
    labels = [label for label in NAMES for _ in range(4)]
    words = {i: f"{NAMES[label]}ish spot{i}" for i, label in enumerate(labels)}
    settings = FewShotSettings.from_document({"ways": [2, 3], "settings": [{"shots": 1, "repetitions": 0},
                                                                          {"shots": 3, "repetitions": 1}],
                                              "episodes": 5})
    metrics, counts = fewshot_metrics(words, labels, NAMES, settings, copy_the_matching_class)
    assert metrics == {"acc_2way_1shot_0rep": 1.0, "acc_2way_3shot_1rep": 1.0, "acc_2way": 1.0,
                       "acc_3way_1shot_0rep": 1.0, "acc_3way_3shot_1rep": 1.0, "acc_3way": 1.0}
    assert counts == {"episodes": 20, "queries": 5 * 2 * 2 + 5 * 3 * 2}
    confused = {i: "spot" for i in words}  # every image alike: the scorer cannot tell, the first candidate wins
    metrics, _ = fewshot_metrics(confused, labels, NAMES, settings, copy_the_matching_class)
    assert metrics["acc_2way_1shot_0rep"] == 0.5 and metrics["acc_3way_3shot_1rep"] == pytest.approx(1 / 3)


def test_an_image_words_are_its_most_frequent_cell_words(tokenizer):
    ids = {tokenizer.decode([i]).strip(): i for i in range(len(tokenizer)) if tokenizer.decode([i]).strip().isalpha()}
    red, star, blue = ids["red"], ids["star"], ids["sunset"]
    grid = torch.tensor([[blue, red, star], [star, red, blue], [star, red, tokenizer.pad_token_id]])
    assert image_words(tokenizer, grid, 2) == "red star"  # 3 each: red's first cell comes first; pad has no text
    assert image_words(tokenizer, grid, 9) == "red star sunset"


def test_the_scorer_sums_the_continuation_log_probs_after_the_prompt(tiny_llm, tokenizer):
    """Against one forward pass of each whole text: the log-probability of every token after the prompt's."""
    prompt = "For each pair: red star. Output:"
    continuations = [" circle", " blue circle", " star"]
    found = LogProbScorer(tiny_llm, tokenizer)(prompt, continuations)
    prompt_ids = tokenizer(prompt)["input_ids"]
    for text, score in zip(continuations, found):
        ids = tokenizer(prompt + text)["input_ids"]
        assert ids[:len(prompt_ids)] == prompt_ids
        with torch.no_grad():
            log_probs = F.log_softmax(tiny_llm(torch.tensor([ids])).logits[0].float(), dim=-1)
        expected = sum(log_probs[t - 1, ids[t]].item() for t in range(len(prompt_ids), len(ids)))
        assert score == pytest.approx(expected, abs=1e-4)


def _mini_imagenet(root, per_class=4):
    (root / "images").mkdir(parents=True)
    rows = ["filename,label"]
    for label, color in {"n1": (250, 0, 0), "n2": (0, 250, 0), "n3": (0, 0, 250)}.items():
        for j in range(per_class):
            (root / "images" / f"{label}{j:08d}.jpg").write_bytes(jpeg((color[0] - 20 * j, color[1], color[2]), 32))
            rows.append(f"{label}{j:08d}.jpg,{label}")
    (root / "test.csv").write_text("\n".join(rows) + "\n")
    (root / "classnames.json").write_text(json.dumps(NAMES))
    return root


@pytest.mark.parametrize("tiny_llm", ["mistral"], indirect=True)
def test_a_flame_model_with_a_tiny_llm_runs_the_benchmark_end_to_end(tmp_path, tiny_llm, tokenizer):
    from fixtures.training import TINY_VISION
    from pipeline.embed.prompts import text_layout
    from pipeline.evaluate.benchmarks import Request, evaluate
    from pipeline.evaluate.models import FlameModel
    from pipeline.train.model import FlameVisionModel

    torch.manual_seed(0)
    vision = FlameVisionModel(TINY_VISION, tiny_llm.config.hidden_size).eval()
    key = {"llm_identity": "tiny", "revision": None, "layer": 2, "dtype": "torch.float32", "max_caption_tokens": 64}
    model = FlameModel(vision, tiny_llm, tokenizer, key, text_layout("paper"))
    settings = {"ways": [2, 3], "settings": [{"shots": 1, "repetitions": 0}, {"shots": 2, "repetitions": 1}],
                "episodes": 2, "pool": 2, "words_per_image": 3}
    task, metrics, _ = evaluate(model, "fewshot_miniimagenet",
                                Request(_mini_imagenet(tmp_path / "m"), fewshot=settings), None)
    assert task == "fewshot_classification"
    assert set(metrics) == {"acc_2way_1shot_0rep", "acc_2way_2shot_1rep", "acc_2way", "acc_3way_1shot_0rep",
                            "acc_3way_2shot_1rep", "acc_3way"}
    for way in (2, 3):
        values = [metrics[f"acc_{way}way_1shot_0rep"], metrics[f"acc_{way}way_2shot_1rep"]]
        assert all(0 <= v <= 1 for v in values) and metrics[f"acc_{way}way"] == pytest.approx(sum(values) / 2)
    assert model.scored == {"images": 12, "episodes": 8, "queries": 2 * 2 * 2 + 2 * 3 * 2}


def test_the_clip_baseline_is_refused_for_it_has_no_llm(tmp_path, capsys):
    from fixtures.training import tiny_clip
    from pipeline.cli import main

    out = tmp_path / "r.json"
    assert main(["evaluate", "--model-dir", str(tiny_clip(tmp_path / "clip")), "--name", "mini", "--format",
                 "fewshot_miniimagenet", "--data", str(_mini_imagenet(tmp_path / "m")), "--out", str(out),
                 "--device", "cpu"]) == 1
    assert "fewshot_miniimagenet needs a FLAME model" in capsys.readouterr().err and not out.exists()
