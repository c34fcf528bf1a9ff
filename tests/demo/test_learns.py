"""`make demo` as a user runs it (config/demo.yaml unchanged, in the repository): the demo LLM it pre-trains answers
facet prompts on held-out captions, the models it trains learn (measured on held-out evaluation sets against
chance, so a bug that pairs images with the wrong texts or breaks the loss fails here), and the report states the
claims over seeds and the data-efficiency curves.

Marked ``demo`` and left out of `make test` (the demo takes longer than the rest of the suite): `make check-demo`
runs the demo, then these tests on its results (by hand; CI runs `make test`). Run alone, the fixture runs the demo
(nothing to do after `make demo`)."""

import json
import re

import pytest

from fixtures.workflow import REPO, snakemake
from pipeline.demo.llm import answer_accuracy, chance_levels
from pipeline.demo.llm_corpus import facet_examples
from pipeline.llm import load_llm

LANGUAGES = ("en", "de", "fr", "es", "it")

pytestmark = pytest.mark.demo


@pytest.fixture(scope="module")
def demo():
    """The repository root after `make demo` (run here if anything is missing or out of date)."""
    snakemake("--profile", str(REPO / "profiles" / "local"), "--cores", "2",
              "--configfile", str(REPO / "config" / "demo.yaml"), timeout=None)
    return REPO


def metric(demo, model, benchmark, name, language="en"):
    path = demo / "results" / "demo" / "eval" / model / benchmark / f"{language}.json"
    return json.loads(path.read_text())["metrics"][name]


def test_the_demo_llm_answers_facet_prompts_on_held_out_captions(demo):
    """Captions of seed 1's validation stream (never in seed 0's pre-training corpus): for the main object's
    category, the action and the atmosphere, the next-token argmax after the facet prompt is the right word for most
    captions in every language, far above always answering the most frequent word."""
    model, tokenizer = load_llm(str(demo / "models" / "tiny-llm"), device="cpu")
    held_out = list(facet_examples(1, "validation", 250))
    accuracy, chance = answer_accuracy(model, tokenizer, held_out), chance_levels(held_out)
    for facet in ("main_category", "action", "atmosphere"):
        for language in ("all", *LANGUAGES):
            assert accuracy[facet][language] > max(0.5, 2 * chance[facet]), (facet, language, accuracy[facet])


def mean_metric(demo, model, benchmarks, name, languages=("en",)):
    return sum(metric(demo, model, b, name, lang) for b in benchmarks for lang in languages) / (
        len(benchmarks) * len(languages))


def test_the_trained_models_retrieve_held_out_images_far_above_chance(demo):
    """100 held-out images per set, so recall@5 by chance is 5 %: FLAME on the long-caption sets and CLIP on COCO
    reach three times that in both directions; FLAME with Crossmodal-3600 captions in the four languages it never
    trained on reaches 1.5 times chance (two standard errors above it) and at least 70 % of its English score. A
    model paired with the wrong texts, or with a broken loss, stays near chance."""
    long_sets = ("urban1k", "sharegpt4v", "dci", "docci")
    for direction in ("image", "text"):
        assert mean_metric(demo, "flame", long_sets, f"{direction}_retrieval_recall@5") >= 3 * 0.05
        assert mean_metric(demo, "clip", ("coco",), f"{direction}_retrieval_recall@5") >= 3 * 0.05
    other_languages = [mean_metric(demo, "flame", ("xm3600",), f"{direction}_retrieval_recall@5", LANGUAGES[1:])
                       for direction in ("image", "text")]
    english = [mean_metric(demo, "flame", ("xm3600",), f"{direction}_retrieval_recall@5")
               for direction in ("image", "text")]
    assert sum(other_languages) / 2 >= 1.5 * 0.05 and sum(other_languages) >= 0.7 * sum(english)


def test_the_report_states_the_claims_over_three_seeds_and_the_data_efficiency_curves(demo):
    """Every claim of config/demo.yaml with its models' mean ± sd over 3 seeds and a verdict; the curves' rows for
    128, 256 and 512 images and all 1024, each the image count the model recorded."""
    report = (demo / "results" / "demo" / "report" / "report.md").read_text()
    assert "## Claims" in report and "claims held." in report and "Each model is trained with 3 seeds" in report
    for claim in ("Long captions: FLAME beats the same-data CLIP baseline", "Multifaceted prompts beat a single prompt",
                  "Short captions: FLAME beats CLIP", "Zero-shot classification: FLAME beats CLIP"):
        assert re.search(rf"\| {re.escape(claim)} \| .* \| \w+ [\d.]+ ± [\d.]+ \| \w+ [\d.]+ ± [\d.]+ \| "
                         r"[+-][\d.]+ ± [\d.]+ \| 3 \| [\d.]+ \| .* \| (held|within noise|reversed) \|", report), claim
    for images in (128, 256, 512, 1024):
        assert re.search(rf"\| {images} \(\d+(\.5)? %\) \| flame [\d.]+ \| clip [\d.]+ \|", report), images
    summary = json.loads((demo / "results" / "demo" / "train" / "flame-data25" / "train_summary.json").read_text())
    assert summary["images_with_texts"] == 256 and summary["settings"]["data_fraction"] == 0.25
