"""The one table of evaluation formats: each on-disk format (the schema's ``$defs/benchmark/format``) with the
CLIP_benchmark task it is, how it is read (:mod:`~pipeline.evaluate.readers`) and how it is scored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.evaluate import readers
from pipeline.evaluate.compositionality import evaluate_sugar_crepe, evaluate_winoground
from pipeline.evaluate.fewshot import FewShotBenchmark, FewShotSettings, evaluate_fewshot
from pipeline.evaluate.linear_probe import evaluate_linear_probe
from pipeline.evaluate.retrieval import evaluate_retrieval
from pipeline.evaluate.zeroshot import evaluate_zeroshot


@dataclass(frozen=True)
class Request:
    """What one evaluation job reads: the benchmark's root directory, the texts' language, SugarCrepe's subsets,
    the few-shot settings document (``$defs/fewshot_settings``; keys left out take their defaults)."""

    data: Path
    language: str = "en"
    subsets: tuple[str, ...] = readers.SUGAR_CREPE_SUBSETS
    fewshot: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Format:
    """How a format is evaluated: ``read(request) -> data set``, ``score(model, data set, prompt) -> metrics``;
    ``multilingual``: whether it has texts in other languages than English."""

    task: str
    read: Callable[[Request], object]
    score: Callable[[object, object, str], dict[str, float]]
    multilingual: bool = False


def _english(reader: Callable[[Path], object]) -> Callable[[Request], object]:
    return lambda request: reader(request.data)


def _per_language(reader: Callable[[Path, str], object]) -> Callable[[Request], object]:
    return lambda request: reader(request.data, request.language)


def _sugar_crepe(request: Request) -> dict[str, readers.CaptionSelectionSet]:
    return {name: readers.read_sugar_crepe(request.data, name) for name in request.subsets}


def _flickr(name: str) -> Callable[[Request], object]:
    return lambda request: readers.read_flickr(request.data, name=name)


def _fewshot(request: Request) -> FewShotBenchmark:
    return FewShotBenchmark(readers.read_fewshot_miniimagenet(request.data),
                            FewShotSettings.from_document(request.fewshot))


def _probe(model, probe: readers.LinearProbeSet, prompt: str) -> dict[str, float]:
    return evaluate_linear_probe(model, probe.train, probe.test, len(probe.classnames))


RETRIEVAL, CLASSIFICATION, SELECTION = "zeroshot_retrieval", "zeroshot_classification", "image_caption_selection"
FORMATS: dict[str, Format] = {
    "urban1k": Format(RETRIEVAL, _english(readers.read_urban1k), evaluate_retrieval),
    "sharegpt4v": Format(RETRIEVAL, _english(readers.read_sharegpt4v), evaluate_retrieval),
    "dci": Format(RETRIEVAL, _english(readers.read_dci), evaluate_retrieval),
    "docci": Format(RETRIEVAL, _english(readers.read_docci), evaluate_retrieval),
    "mscoco_captions": Format(RETRIEVAL, _english(readers.read_mscoco_captions), evaluate_retrieval),
    "flickr30k": Format(RETRIEVAL, _flickr("flickr30k"), evaluate_retrieval),
    "flickr8k": Format(RETRIEVAL, _flickr("flickr8k"), evaluate_retrieval),
    "karpathy": Format(RETRIEVAL, _english(readers.read_karpathy), evaluate_retrieval),
    "xm3600": Format(RETRIEVAL, _per_language(readers.read_xm3600), evaluate_retrieval, multilingual=True),
    "wds_classification": Format(CLASSIFICATION, _english(readers.read_wds_classification), evaluate_zeroshot),
    "sugar_crepe": Format(SELECTION, _sugar_crepe, evaluate_sugar_crepe),
    "winoground": Format(SELECTION, _english(readers.read_winoground), evaluate_winoground),
    "wds_linear_probe": Format("linear_probe", _english(readers.read_wds_linear_probe), _probe),
    "wds_imagenet_multilingual": Format(CLASSIFICATION, _per_language(readers.read_wds_multilingual),
                                        evaluate_zeroshot, multilingual=True),
    "fewshot_miniimagenet": Format("fewshot_classification", _fewshot, evaluate_fewshot),
}


def evaluate(model, fmt: str, request: Request, prompt: str) -> tuple[str, dict[str, float]]:
    """``(task, metrics)`` of ``model`` on the benchmark ``request`` reads in format ``fmt``; raises naming the
    format when it has no texts in the request's language."""
    spec = FORMATS[fmt]
    if request.language != "en" and not spec.multilingual:
        multilingual = ", ".join(name for name, f in FORMATS.items() if f.multilingual)
        raise ValueError(f"--format {fmt}: English texts only (--language {request.language}); multilingual "
                         f"formats: {multilingual}")
    return spec.task, spec.score(model, spec.read(request), prompt)
