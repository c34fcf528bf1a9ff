"""The one table of evaluation formats: each on-disk format (the schema's ``$defs/benchmark/format``) with the
CLIP_benchmark task it is, how it is read (:mod:`~pipeline.evaluate.readers`), how it is scored, and the kind of its
texts, which decides FLAME's default prompt (:func:`default_prompt`): long captions the mean of the trained long
facets (``long``), short texts (short captions, class prompts, compositional pairs) the layout's description
prompt alone (``description``), as the paper scores them."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.settings import allowed

if TYPE_CHECKING:
    from pipeline.evaluate.fewshot import FewShotBenchmark
    from pipeline.evaluate.linear_probe import ProbeSettings
    from pipeline.evaluate.readers import CaptionSelectionSet, LinearProbeSet
    from pipeline.evaluate.retrieval import Ranking


@dataclass(frozen=True)
class Request:
    """What one evaluation job reads: the benchmark's root directory, the texts' language, SugarCrepe's subsets,
    the linear probe's settings, the few-shot settings document (``$defs/fewshot_settings``; keys left out take
    their defaults)."""

    data: Path
    language: str = "en"
    subsets: tuple[str, ...] = allowed("benchmark", "subsets")
    probe: ProbeSettings = field(default_factory=lambda: _module("linear_probe").ProbeSettings())
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


def _module(name: str):
    """``pipeline.evaluate.<name>``, imported when a benchmark is read or scored, not with this table: the workflow
    reads the table to plan, and importing torch would cost every ``snakemake`` call seconds."""
    return importlib.import_module(f"pipeline.evaluate.{name}")


def _lazy(module: str, name: str) -> Callable:
    """``pipeline.evaluate.<module>.<name>``, imported at its first call."""
    return lambda *args: getattr(_module(module), name)(*args)


def _english(reader: str) -> Callable[[Request], object]:
    return lambda request: getattr(_module("readers"), reader)(request.data)


def _per_language(reader: str) -> Callable[[Request], object]:
    return lambda request: getattr(_module("readers"), reader)(request.data, request.language)


def _sugar_crepe(request: Request) -> dict[str, CaptionSelectionSet]:
    return {name: _module("readers").read_sugar_crepe(request.data, name) for name in request.subsets}


def _flickr(name: str) -> Callable[[Request], object]:
    return lambda request: _module("readers").read_flickr(request.data, name=name)


def _linear_probe(request: Request) -> tuple[LinearProbeSet, ProbeSettings]:
    return _module("readers").read_wds_linear_probe(request.data), request.probe


def _probe(model, read: tuple[LinearProbeSet, ProbeSettings], prompt: str) -> dict[str, float]:
    probe, settings = read
    return _module("linear_probe").evaluate_linear_probe(model, probe.train, probe.test, len(probe.classnames),
                                                         settings)


def _fewshot(request: Request) -> FewShotBenchmark:
    fewshot = _module("fewshot")
    return fewshot.FewShotBenchmark(_module("readers").read_fewshot_miniimagenet(request.data),
                                    fewshot.FewShotSettings.from_document(request.fewshot))


_retrieval = _lazy("retrieval", "evaluate_retrieval")
_zeroshot = _lazy("zeroshot", "evaluate_zeroshot")
_sugar_crepe_selection = _lazy("compositionality", "evaluate_sugar_crepe")
_winoground = _lazy("compositionality", "evaluate_winoground")
_fewshot_answers = _lazy("fewshot", "evaluate_fewshot")

RETRIEVAL, CLASSIFICATION, SELECTION = "zeroshot_retrieval", "zeroshot_classification", "image_caption_selection"
PROBE = "linear_probe"
LONG, SHORT = "long", "short"
#: FLAME's prompt for a benchmark that names none, by the kind of its texts.
DEFAULT_PROMPTS = {LONG: "long", SHORT: "description"}
FORMATS: dict[str, Format] = {
    "urban1k": Format(RETRIEVAL, _english("read_urban1k"), _retrieval, LONG),
    "sharegpt4v": Format(RETRIEVAL, _english("read_sharegpt4v"), _retrieval, LONG),
    "dci": Format(RETRIEVAL, _english("read_dci"), _retrieval, LONG),
    "docci": Format(RETRIEVAL, _english("read_docci"), _retrieval, LONG),
    "mscoco_captions": Format(RETRIEVAL, _english("read_mscoco_captions"), _retrieval, SHORT),
    "flickr30k": Format(RETRIEVAL, _flickr("flickr30k"), _retrieval, SHORT),
    "flickr8k": Format(RETRIEVAL, _flickr("flickr8k"), _retrieval, SHORT),
    "karpathy": Format(RETRIEVAL, _english("read_karpathy"), _retrieval, SHORT),
    "xm3600": Format(RETRIEVAL, _per_language("read_xm3600"), _retrieval, SHORT, multilingual=True),
    "wds_classification": Format(CLASSIFICATION, _english("read_wds_classification"), _zeroshot, SHORT),
    "sugar_crepe": Format(SELECTION, _sugar_crepe, _sugar_crepe_selection, SHORT),
    "winoground": Format(SELECTION, _english("read_winoground"), _winoground, SHORT),
    "wds_linear_probe": Format(PROBE, _linear_probe, _probe, None),
    "wds_imagenet_multilingual": Format(CLASSIFICATION, _per_language("read_wds_multilingual"),
                                        _zeroshot, SHORT, multilingual=True),
    "fewshot_miniimagenet": Format("fewshot_classification", _fewshot, _fewshot_answers, None),
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
    retrieval = _module("retrieval")
    scored = retrieval.score_retrieval(model, data, prompt)
    return spec.task, scored.recall(), retrieval.top_images(scored, data, ranking)
