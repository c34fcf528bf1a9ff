"""The one table of evaluation formats: each on-disk format (the schema's ``$defs/benchmark/format``) with the
CLIP_benchmark task it is, how it is read (:mod:`~pipeline.evaluate.readers`), how it is scored, and the kind of its
texts, which decides FLAME's default prompt (:func:`default_prompt`): long captions the mean of the trained long
facets (``long``), short texts (short captions, class prompts, compositional pairs) the layout's description
prompt alone (``description``), as the paper scores them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.evaluate import readers
from pipeline.evaluate.compositionality import evaluate_sugar_crepe, evaluate_winoground
from pipeline.evaluate.fewshot import FewShotBenchmark, FewShotSettings, evaluate_fewshot
from pipeline.evaluate.linear_probe import ProbeSettings, evaluate_linear_probe
from pipeline.evaluate.retrieval import Ranking, evaluate_retrieval, score_retrieval, top_images
from pipeline.evaluate.zeroshot import evaluate_zeroshot


@dataclass(frozen=True)
class Request:
    """What one evaluation job reads: the benchmark's root directory, the texts' language, SugarCrepe's subsets,
    the linear probe's settings, the few-shot settings document (``$defs/fewshot_settings``; keys left out take
    their defaults)."""

    data: Path
    language: str = "en"
    subsets: tuple[str, ...] = readers.SUGAR_CREPE_SUBSETS
    probe: ProbeSettings = ProbeSettings()
    fewshot: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Format:
    """How a format is evaluated: ``read(request) -> data set``, ``score(model, data set, prompt) -> metrics``;
    ``texts``: ``long``, ``short`` or None (no texts: the prompt is unused); ``multilingual``: whether it has texts in
    other languages than English."""

    task: str
    read: Callable[[Request], object]
    score: Callable[[object, object, str], dict[str, float]]
    texts: str | None
    multilingual: bool = False


def _english(reader: Callable[[Path], object]) -> Callable[[Request], object]:
    return lambda request: reader(request.data)


def _per_language(reader: Callable[[Path, str], object]) -> Callable[[Request], object]:
    return lambda request: reader(request.data, request.language)


def _sugar_crepe(request: Request) -> dict[str, readers.CaptionSelectionSet]:
    return {name: readers.read_sugar_crepe(request.data, name) for name in request.subsets}


def _flickr(name: str) -> Callable[[Request], object]:
    return lambda request: readers.read_flickr(request.data, name=name)


def _linear_probe(request: Request) -> tuple[readers.LinearProbeSet, ProbeSettings]:
    return readers.read_wds_linear_probe(request.data), request.probe


def _probe(model, read: tuple[readers.LinearProbeSet, ProbeSettings], prompt: str) -> dict[str, float]:
    probe, settings = read
    return evaluate_linear_probe(model, probe.train, probe.test, len(probe.classnames), settings)


def _fewshot(request: Request) -> FewShotBenchmark:
    return FewShotBenchmark(readers.read_fewshot_miniimagenet(request.data),
                            FewShotSettings.from_document(request.fewshot))


RETRIEVAL, CLASSIFICATION, SELECTION = "zeroshot_retrieval", "zeroshot_classification", "image_caption_selection"
PROBE = "linear_probe"
LONG, SHORT = "long", "short"
#: FLAME's prompt for a benchmark that names none, by the kind of its texts.
DEFAULT_PROMPTS = {LONG: "long", SHORT: "description"}
FORMATS: dict[str, Format] = {
    "urban1k": Format(RETRIEVAL, _english(readers.read_urban1k), evaluate_retrieval, LONG),
    "sharegpt4v": Format(RETRIEVAL, _english(readers.read_sharegpt4v), evaluate_retrieval, LONG),
    "dci": Format(RETRIEVAL, _english(readers.read_dci), evaluate_retrieval, LONG),
    "docci": Format(RETRIEVAL, _english(readers.read_docci), evaluate_retrieval, LONG),
    "mscoco_captions": Format(RETRIEVAL, _english(readers.read_mscoco_captions), evaluate_retrieval, SHORT),
    "flickr30k": Format(RETRIEVAL, _flickr("flickr30k"), evaluate_retrieval, SHORT),
    "flickr8k": Format(RETRIEVAL, _flickr("flickr8k"), evaluate_retrieval, SHORT),
    "karpathy": Format(RETRIEVAL, _english(readers.read_karpathy), evaluate_retrieval, SHORT),
    "xm3600": Format(RETRIEVAL, _per_language(readers.read_xm3600), evaluate_retrieval, SHORT, multilingual=True),
    "wds_classification": Format(CLASSIFICATION, _english(readers.read_wds_classification), evaluate_zeroshot, SHORT),
    "sugar_crepe": Format(SELECTION, _sugar_crepe, evaluate_sugar_crepe, SHORT),
    "winoground": Format(SELECTION, _english(readers.read_winoground), evaluate_winoground, SHORT),
    "wds_linear_probe": Format(PROBE, _linear_probe, _probe, None),
    "wds_imagenet_multilingual": Format(CLASSIFICATION, _per_language(readers.read_wds_multilingual),
                                        evaluate_zeroshot, SHORT, multilingual=True),
    "fewshot_miniimagenet": Format("fewshot_classification", _fewshot, evaluate_fewshot, None),
}


def default_prompt(fmt: str) -> str | None:
    """The prompt FLAME embeds format ``fmt``'s texts with when the benchmark names none (None: it has no texts)."""
    texts = FORMATS[fmt].texts
    return None if texts is None else DEFAULT_PROMPTS[texts]


def evaluate(model, fmt: str, request: Request, prompt: str | None,
             ranking: Ranking | None = None) -> tuple[str, dict[str, float], list[dict] | None]:
    """``(task, metrics, rankings)`` of ``model`` on the benchmark ``request`` reads in format ``fmt``; with
    ``ranking`` (retrieval formats only), ``rankings`` are the top images of its first queries
    (:func:`~pipeline.evaluate.retrieval.top_images`), else None. Raises naming the format when it has no texts in
    the request's language, or when rankings are asked of a format that is no retrieval."""
    spec = FORMATS[fmt]
    if request.language != "en" and not spec.multilingual:
        multilingual = ", ".join(name for name, f in FORMATS.items() if f.multilingual)
        raise ValueError(f"--format {fmt}: English texts only (--language {request.language}); multilingual "
                         f"formats: {multilingual}")
    if ranking is None:
        return spec.task, spec.score(model, spec.read(request), prompt), None
    if spec.task != RETRIEVAL:
        retrieval = ", ".join(name for name, f in FORMATS.items() if f.task == RETRIEVAL)
        raise ValueError(f"--format {fmt}: rankings (--rank-queries) are recorded for retrieval formats only: "
                         f"{retrieval}")
    data = spec.read(request)
    scored = score_retrieval(model, data, prompt)
    return spec.task, scored.recall(), top_images(scored, data, ranking)
