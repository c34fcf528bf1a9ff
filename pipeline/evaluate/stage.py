"""Evaluate stage: a trained model (FLAME or the CLIP baseline) scored on one benchmark in its real on-disk format
(:mod:`~pipeline.evaluate.benchmarks`), written as an evaluation result (:mod:`pipeline.io.results`); and the
vocabulary-mapping figure of a FLAME model."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.evaluate.benchmarks import PROBE, Request, default_prompt, evaluate
from pipeline.evaluate.models import ClipModel, FlameModel, load_model
from pipeline.evaluate.retrieval import Ranking
from pipeline.io import results
from pipeline.io.atomic import atomic_path
from pipeline.io.provenance import provenance
from pipeline.settings import as_json


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its ``name`` (written into the result), ``format`` (a key of
    :data:`~pipeline.evaluate.benchmarks.FORMATS`), what to read (``request``), ``prompt``: what embeds FLAME's
    texts (a caption source's trained template, or ``description``; None: the format's default,
    :func:`~pipeline.evaluate.benchmarks.default_prompt`) and ``long_mean``: how FLAME averages the prompt's facets
    (``normalized`` or ``raw``, :mod:`~pipeline.evaluate.models`). CLIP ignores both."""

    name: str
    format: str
    request: Request
    prompt: str | None = None
    long_mean: str = "normalized"


def run(model_dir: Path, benchmark: Benchmark, out: Path, llm: str | None = None, device: str = "auto",
        dtype: str = "auto", token_budget: int = 8192, num_workers: int = 0, cache_dir: Path | None = None,
        ranking: Ranking | None = None) -> dict:
    """Score the model of ``model_dir`` on ``benchmark`` and write the result to ``out``; returns it. ``llm``
    overrides the LLM recorded in a FLAME model; ``ranking`` (retrieval benchmarks): also record the top images of
    the first queries, for the report's retrieval figure; ``token_budget``, ``num_workers`` (image decoding) and
    ``cache_dir`` (FLAME's text embeddings) only change speed."""
    model = load_model(model_dir, llm=llm, device=device, dtype=dtype, token_budget=token_budget,
                       cache_dir=cache_dir, num_workers=num_workers, long_mean=benchmark.long_mean)
    has_texts = default_prompt(benchmark.format) is not None
    prompt = (benchmark.prompt or default_prompt(benchmark.format)) if has_texts else None
    task, metrics, queries = evaluate(model, benchmark.format, benchmark.request, prompt, ranking)
    kind = "clip" if isinstance(model, ClipModel) else "flame"
    used = model.describe_prompt(prompt) if kind == "flame" and has_texts else None
    inputs = {"format": benchmark.format, "data": str(benchmark.request.data),
              "language": benchmark.request.language, "prompt": prompt, "long_mean": benchmark.long_mean,
              "subsets": list(benchmark.request.subsets), "fewshot": benchmark.request.fewshot,
              "ranking": None if ranking is None else {"queries": ranking.queries, "top": ranking.top}}
    if task == PROBE:
        inputs["linear_probe"] = asdict(benchmark.request.probe)
    rankings = None if queries is None else results.rankings_document(benchmark.format, benchmark.request.data,
                                                                     ranking.top, queries)
    result = results.result_document(benchmark.name, model_dir, kind, task, metrics, benchmark.request.language,
                                     used, provenance(results.VERSION, as_json(inputs)),
                                     scored=dict(model.scored), skipped=dict(model.skipped), rankings=rankings)
    results.write_result(result, out)
    return result


def vocabulary_map(model_dir: Path, images: list[Path], out: Path, pool: int, llm: str | None = None,
                   device: str = "auto", dtype: str = "auto") -> None:
    """Write the vocabulary-mapping figure (:mod:`~pipeline.evaluate.vocabulary`) of a FLAME model for ``images``,
    their patch grid average-pooled in cells of ``pool`` x ``pool`` patches, to the PNG ``out``."""
    from PIL import Image

    from pipeline.evaluate.vocabulary import vocabulary_figure

    model = load_model(model_dir, llm=llm, device=device, dtype=dtype)
    if not isinstance(model, FlameModel):
        raise ValueError(f"{model_dir}: vocabulary mapping needs a FLAME model (this one has its own text tower)")
    loaded = []
    for path in images:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: image not found")
        with Image.open(path) as image:
            loaded.append(image.convert("RGB"))
    figure = vocabulary_figure(model.vision, model.llm, model.tokenizer, loaded, pool, model.text_key["layer"])
    with atomic_path(out) as tmp:
        figure.save(tmp, format="PNG")
