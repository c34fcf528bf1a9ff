"""Models for evaluation: ``encode_image(images) -> [N, D]`` and ``encode_text(texts, prompt=...) -> [N, D]``, both
L2-normalised, for a trained FLAME model (the text side is the frozen LLM) and for the open_clip CLIP baseline.

FLAME embeds a text with the prompt ``prompt`` names: a caption source (``raw``, ``short``, ``long``: that
source's template as the model directory records it trained: prefix, cleaning and only the facets trained on, so a
single-prompt ablation is scored with its one prompt) or ``description`` (the layout's description prompt alone,
:func:`~pipeline.embed.prompts.description_template`). The text feature is the mean over the prompt's facets, then
L2-normalised; ``long_mean`` says what is averaged: ``normalized`` (each facet L2-normalised first, as training
targets are) or ``raw`` (the hidden states as they come, the released evaluation's choice). A text longer than the
model's ``max_caption_tokens`` is cut by the embed stage's own :func:`~pipeline.embed.fda.truncate_caption`, as its
training captions were. CLIP ignores ``prompt`` and uses its own tokenizer and text tower. :func:`load_model` reads
either kind from a model directory.

Both count what they scored (``scored``: images, texts, texts_truncated) and what they skipped (``skipped``, by
reason: an unreadable image, and the scorers' texts of skipped images), for the result document.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, default_collate, get_worker_info

from pipeline.embed.fda import FacetEmbedder, check_context, truncate_caption
from pipeline.embed.prompts import PromptTemplate, description_template
from pipeline.io.atomic import atomic_path
from pipeline.io.model_dir import load_weights, read_config
from pipeline.llm import llm_identity, load_llm, local_identity, resolve_device
from pipeline.train.model import FlameVisionModel
from pipeline.train.transforms import eval_transform

#: Within :func:`reusing_llms`: the LLM loaded last, by what was asked and its content (one entry at most).
_reused: dict | None = None


@contextmanager
def reusing_llms() -> Iterator[None]:
    """Within it, a FLAME model whose LLM was loaded last (same path or id, revision, dtype, device and, for a local
    LLM, file content) reuses that model and tokenizer instead of loading them again: ``flame evaluate-batch``
    loads a model's LLM once for all its evaluations. Outside it, every :meth:`FlameModel.load` loads its own."""
    global _reused
    _reused = {}
    try:
        yield
    finally:
        _reused = None


def _load_llm(path_or_id: str, revision: str | None, dtype: str, device: str):
    """:func:`~pipeline.llm.load_llm`, or inside :func:`reusing_llms` the LLM loaded last if it is the same."""
    if _reused is None:
        return load_llm(path_or_id, revision=revision, dtype=dtype, device=device)
    key = (path_or_id, revision, dtype, device, local_identity(path_or_id))
    if key not in _reused:
        _reused.clear()
        _reused[key] = load_llm(path_or_id, revision=revision, dtype=dtype, device=device)
    return _reused[key]


class _Transformed(IterableDataset):
    """``(PIL image, target)`` items of a dataset (map-style or iterable) as ``(image tensor, target)``, in order;
    the decoding and ``eval_transform`` run in the DataLoader's workers. An unreadable image (None: the reader
    logged it) stays None."""

    def __init__(self, dataset, image_size: int):
        self.dataset, self.image_size = dataset, image_size

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if isinstance(self.dataset, IterableDataset):
            items = (item for i, item in enumerate(self.dataset) if i % workers == worker)
        else:
            items = (self.dataset[i] for i in range(worker, len(self.dataset), workers))
        for image, target in items:
            yield (None if image is None else eval_transform(image.convert("RGB"), self.image_size)), target


def _collate_readable(items: list) -> tuple[torch.Tensor | None, torch.Tensor | None, int]:
    """A batch of ``(image tensor [3, S, S] or None, target)`` -> ``(images [B, 3, S, S], targets [B], unreadable
    count)``, the unreadable images (None) left out; ``(None, None, count)`` when none is readable."""
    readable = [item for item in items if item[0] is not None]
    images, targets = default_collate(readable) if readable else (None, None)
    return images, targets, len(items) - len(readable)


class EvalModel:
    """Image side shared by both kinds: images streamed through ``eval_transform`` and ``image_features`` in
    batches; only the features are kept."""

    batch_size = 64

    def __init__(self, image_size: int, device: torch.device, num_workers: int = 0):
        self.image_size, self.device, self.num_workers = image_size, device, num_workers
        self.scored: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()

    def image_features(self, batch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def image_batches(self, dataset) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """A dataset of ``(PIL image or None, int target)`` -> batches ``(images [B, 3, S, S] on the device, targets
        [B])`` of its readable images, ``eval_transform``ed; an unreadable one (None) is left out and counted, the
        readable ones are counted as scored.

        With ``num_workers`` > 1, items are dealt round-robin to the workers and come back interleaved: images and
        targets stay paired, not in dataset order (retrieval targets are indices, so they restore it)."""
        loader = DataLoader(_Transformed(dataset, self.image_size), batch_size=self.batch_size,
                            num_workers=self.num_workers, collate_fn=_collate_readable)
        for images, target, unreadable in loader:
            if unreadable:
                self.skipped["unreadable_image"] += unreadable
            if images is not None:
                self.scored["images"] += len(images)
                yield images.to(self.device), torch.as_tensor(target)

    @torch.inference_mode()
    def encode_images(self, dataset) -> tuple[torch.Tensor, torch.Tensor]:
        """A dataset of ``(PIL image or None, int target)`` -> ``(features [N, D] float32 L2-normalised, targets
        [N])`` of its readable images (:meth:`image_batches`)."""
        features, targets = [], []
        for images, target in self.image_batches(dataset):
            features.append(F.normalize(self.image_features(images).float(), dim=-1).cpu())
            targets.append(target)
        if not features:
            raise ValueError("the benchmark has no readable images")
        return torch.cat(features), torch.cat(targets)

    def encode_indexed(self, dataset) -> tuple[torch.Tensor, dict[int, int]]:
        """A dataset of ``(PIL image or None, index)`` -> ``(features [M, D] in index order, index -> its row)``: the
        readable images only (the mapping in index order)."""
        features, index = self.encode_images(dataset)
        order = index.argsort()
        return features[order], {image: row for row, image in enumerate(index[order].tolist())}

    def skip_texts(self, count: int) -> None:
        """Count ``count`` texts a scorer left out with their item's skipped image."""
        if count:
            self.skipped["text_of_skipped_image"] += count

    def encode_image(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """PIL images -> ``[N, D]`` float32, L2-normalised, in order."""
        features, order = self.encode_images([(img, i) for i, img in enumerate(images)])
        return features[order.argsort()]


class FlameModel(EvalModel):
    """Vision model + frozen LLM. Use :meth:`load`.

    ``cache_dir``: where text embeddings are cached, one ``.npy`` per (LLM content identity, revision, layer, dtype,
    mode, caption limit, template, facet mean, list of texts), so a rerun (or another model trained on the same text
    side) does not run the LLM again, and a different LLM behind the same path never reads another's. The LLM must be
    the one whose embeddings the model was trained on (its recorded content identity), or loading refuses.
    ``text_key["max_caption_tokens"]``: where texts are cut, as the training captions were. ``templates``: the
    trained template per source; ``long_mean``: ``normalized`` or ``raw`` (see the module's docstring).
    """

    def __init__(self, vision: FlameVisionModel, llm, tokenizer, text_key: dict, templates: dict[str, PromptTemplate],
                 token_budget: int = 8192, cache_dir: Path | None = None, long_mean: str = "normalized"):
        super().__init__(vision.vision_config["image_size"], next(vision.parameters()).device)
        self.vision, self.llm, self.tokenizer = vision, llm, tokenizer
        self.text_key, self.templates, self.token_budget, self.cache_dir = text_key, templates, token_budget, cache_dir
        self.long_mean = long_mean
        self._embedders: dict[str, FacetEmbedder] = {}

    @classmethod
    def load(cls, model_dir: Path, config: dict, llm: str | None = None, device: str = "auto", dtype: str = "auto",
             token_budget: int = 8192, cache_dir: Path | None = None, long_mean: str = "normalized") -> FlameModel:
        """The model of ``model_dir`` (``config``: its config); the LLM is the recorded one unless ``llm`` overrides
        its path or id."""
        vision = load_weights(FlameVisionModel.from_config(config), model_dir)
        text = config["text"]
        llm_model, tokenizer = _load_llm(llm or text["llm"], text.get("revision"), dtype, device)
        missing = [key for key in ("trained_templates", "max_caption_tokens") if key not in text]
        if missing:
            raise ValueError(f"{model_dir}: the model directory does not record {' and '.join(missing)} of its text "
                             "side (written by an older flame train): retrain it")
        templates = {source: PromptTemplate.from_description(t) for source, t in text["trained_templates"].items()}
        identity = llm_identity(llm or text["llm"], llm_model)
        if identity != text.get("llm_identity"):
            raise ValueError(f"{model_dir}: trained on the embeddings of LLM {text['llm']!r} with content "
                             f"{text.get('llm_identity')}, but the LLM at {llm or text['llm']!r} now holds {identity}: "
                             "its texts would embed differently; point --llm at the LLM it was trained with, or "
                             "re-embed and retrain")
        text_key = {"llm_identity": identity, "revision": text.get("revision"), "layer": text["layer"],
                    "dtype": str(next(llm_model.parameters()).dtype), "max_caption_tokens": text["max_caption_tokens"],
                    "mode": "official" if text.get("mode") == "official" else "fda"}  # fda and naive agree
        for template in templates.values():
            try:
                check_context(llm_model.config, tokenizer, template, text["max_caption_tokens"], text_key["mode"])
            except ValueError as err:
                raise ValueError(f"{model_dir}: {err}") from None
        return cls(vision.to(resolve_device(device)), llm_model, tokenizer, text_key, templates, token_budget,
                   cache_dir, long_mean)

    def image_features(self, batch: torch.Tensor) -> torch.Tensor:
        return self.vision(batch)

    def template(self, prompt: str) -> tuple[str, PromptTemplate]:
        """``(source, template)`` that embeds texts for ``prompt`` (a source, or ``description``)."""
        if prompt == "description":
            return description_template(self.templates)
        if prompt not in self.templates:
            raise ValueError(f"prompt {prompt!r}: the model was trained on the facets of caption sources "
                             f"{sorted(self.templates)} only; embed the texts as one of those (or description)")
        return prompt, self.templates[prompt]

    def describe_prompt(self, prompt: str) -> dict:
        """What ``prompt`` embeds texts with, for the result document: the source whose template it is, the facet
        names and how they are averaged."""
        source, template = self.template(prompt)
        return {"name": prompt, "source": source, "facets": list(template.names), "long_mean": self.long_mean}

    def _cache_path(self, texts: Sequence[str], template: PromptTemplate) -> Path | None:
        if self.cache_dir is None:
            return None
        key = json.dumps({**self.text_key, "template": template.describe(), "long_mean": self.long_mean,
                          "texts": list(texts)}, sort_keys=True)
        return self.cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npy"

    def encode_text(self, texts: Sequence[str], prompt: str = "long") -> torch.Tensor:
        """Texts -> ``[N, D]`` float32: the L2-normalised mean of the facet embeddings of ``prompt``'s template
        (each facet normalised first unless ``long_mean`` is ``raw``), each text cut to ``max_caption_tokens``
        first (read from the cache when it holds them)."""
        _, template = self.template(prompt)
        cut = [truncate_caption(self.tokenizer, text, self.text_key["max_caption_tokens"]) for text in texts]
        self.scored.update(texts=len(cut), texts_truncated=sum(truncated for _, truncated in cut))
        cached = self._cache_path(texts, template)
        if cached is not None and cached.exists():
            return torch.from_numpy(np.load(cached))
        if prompt not in self._embedders:  # no max_caption_tokens: the texts are cut already
            self._embedders[prompt] = FacetEmbedder(self.llm, self.tokenizer, template,
                                                    layer=self.text_key["layer"], token_budget=self.token_budget,
                                                    mode=self.text_key.get("mode", "fda"))
        per_facet = self._embedders[prompt].encode([text for text, _ in cut])  # [N, K, D]
        if self.long_mean == "normalized":
            per_facet = F.normalize(per_facet, dim=-1)
        embedded = F.normalize(per_facet.mean(dim=1), dim=-1)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cached) as tmp, tmp.open("wb") as handle:
                np.save(handle, embedded.numpy())
        return embedded


class ClipModel(EvalModel):
    """The open_clip CLIP baseline. Use :meth:`load`."""

    def __init__(self, model, context_length: int, image_size: int, device: torch.device):
        super().__init__(image_size, device)
        from open_clip.tokenizer import SimpleTokenizer

        self.model, self.tokenizer = model, SimpleTokenizer(context_length=context_length)

    @classmethod
    def load(cls, model_dir: Path, config: dict, device: str = "auto") -> ClipModel:
        from pipeline.train.clip_baseline import clip_from_config

        dev = resolve_device(device)
        model = load_weights(clip_from_config(config), model_dir).to(dev)
        return cls(model, config["text"]["context_length"], config["vision"]["image_size"], dev)

    def image_features(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(batch)

    @torch.inference_mode()
    def encode_text(self, texts: Sequence[str], prompt: str | None = None) -> torch.Tensor:
        """Texts -> ``[N, D]`` float32, L2-normalised (cut to the context length, counted); ``prompt`` is ignored."""
        cut = sum(len(self.tokenizer.encode(text)) + 2 > self.tokenizer.context_length for text in texts)  # + SOT, EOT
        self.scored.update(texts=len(texts), texts_truncated=cut)
        out = [self.model.encode_text(self.tokenizer(list(texts[i:i + self.batch_size])).to(self.device)).float()
               for i in range(0, len(texts), self.batch_size)]
        return F.normalize(torch.cat(out), dim=-1).cpu()


def load_model(model_dir: Path, llm: str | None = None, device: str = "auto", dtype: str = "auto",
               token_budget: int = 8192, cache_dir: Path | None = None, num_workers: int = 0,
               long_mean: str = "normalized") -> FlameModel | ClipModel:
    """The evaluation model of a directory written by ``flame train`` (FLAME) or ``flame train-clip`` (CLIP);
    ``num_workers``: DataLoader workers decoding the benchmark's images; ``long_mean``: FLAME's facet mean."""
    config = read_config(model_dir)
    if config.get("kind") == "clip":
        model = ClipModel.load(model_dir, config, device)
    else:
        model = FlameModel.load(model_dir, config, llm, device, dtype, token_budget, cache_dir, long_mean)
    model.num_workers = num_workers
    return model
