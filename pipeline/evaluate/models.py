"""Models for evaluation: ``encode_image(images) -> [N, D]`` and ``encode_text(texts, prompt=...) -> [N, D]``, both
L2-normalised, for a trained FLAME model (the text side is the frozen LLM) and for the open_clip CLIP baseline.

FLAME embeds a text as the model's training captions of source ``prompt`` (``raw``, ``short``, ``long``) were
embedded: that source's template of the recorded text layout (prefix, facets, cleaning), each facet L2-normalised
as in training, averaged over facets, then normalised. CLIP ignores ``prompt`` and uses its own tokenizer and text
tower. :func:`load_model` reads either kind from a model directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from pipeline.embed import FacetEmbedder
from pipeline.llm import load_llm, resolve_device
from pipeline.model import FlameVisionModel, load_weights, read_config
from pipeline.prompts import PromptTemplate
from pipeline.transforms import eval_transform


class EvalModel:
    """Image side shared by both kinds: batches of PIL images through ``eval_transform`` and ``image_features``."""

    batch_size = 64

    def __init__(self, image_size: int, device: torch.device):
        self.image_size, self.device = image_size, device

    def image_features(self, batch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.inference_mode()
    def encode_image(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """PIL images -> ``[N, D]`` float32, L2-normalised."""
        out = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            batch = torch.stack([eval_transform(img.convert("RGB"), self.image_size) for img in chunk])
            out.append(F.normalize(self.image_features(batch.to(self.device)).float(), dim=-1).cpu())
        return torch.cat(out)


class FlameModel(EvalModel):
    """Vision model + frozen LLM. Use :meth:`load`."""

    def __init__(self, vision: FlameVisionModel, llm, tokenizer, layer: int, templates: dict[str, PromptTemplate],
                 token_budget: int = 8192):
        super().__init__(vision.vision_config["image_size"], next(vision.parameters()).device)
        self.vision, self.llm, self.tokenizer = vision, llm, tokenizer
        self.layer, self.templates, self.token_budget = layer, templates, token_budget
        self._embedders: dict[str, FacetEmbedder] = {}

    @classmethod
    def load(cls, model_dir: Path, config: dict, llm: str | None = None, device: str = "auto", dtype: str = "auto",
             token_budget: int = 8192) -> FlameModel:
        """The model of ``model_dir`` (``config``: its config); the LLM is the recorded one unless ``llm`` overrides
        its path or id."""
        vision = load_weights(FlameVisionModel.from_config(config), model_dir)
        text = config["text"]
        llm_model, tokenizer = load_llm(llm or text["llm"], revision=text.get("revision"), dtype=dtype,
                                        device=device)
        templates = {source: PromptTemplate.from_description(t) for source, t in text["templates"].items()}
        return cls(vision.to(resolve_device(device)), llm_model, tokenizer, text["layer"], templates, token_budget)

    def image_features(self, batch: torch.Tensor) -> torch.Tensor:
        return self.vision(batch)

    def encode_text(self, texts: Sequence[str], prompt: str = "long") -> torch.Tensor:
        """Texts -> ``[N, D]`` float32, L2-normalised mean of the normalised facet embeddings of ``prompt``'s
        template."""
        if prompt not in self.templates:
            raise ValueError(f"prompt {prompt!r}: the model's layout has templates for {sorted(self.templates)}")
        if prompt not in self._embedders:
            self._embedders[prompt] = FacetEmbedder(self.llm, self.tokenizer, self.templates[prompt],
                                                    layer=self.layer, token_budget=self.token_budget)
        per_facet = F.normalize(self._embedders[prompt].encode(list(texts)), dim=-1)
        return F.normalize(per_facet.mean(dim=1), dim=-1)


class ClipModel(EvalModel):
    """The open_clip CLIP baseline. Use :meth:`load`."""

    def __init__(self, model, context_length: int, image_size: int, device: torch.device):
        super().__init__(image_size, device)
        from open_clip.tokenizer import SimpleTokenizer

        self.model, self.tokenizer = model, SimpleTokenizer(context_length=context_length)

    @classmethod
    def load(cls, model_dir: Path, config: dict, device: str = "auto") -> ClipModel:
        from pipeline.clip_baseline import clip_from_config

        dev = resolve_device(device)
        model = load_weights(clip_from_config(config), model_dir).to(dev)
        return cls(model, config["text"]["context_length"], config["vision"]["image_size"], dev)

    def image_features(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(batch)

    @torch.inference_mode()
    def encode_text(self, texts: Sequence[str], prompt: str | None = None) -> torch.Tensor:
        """Texts -> ``[N, D]`` float32, L2-normalised (cut to the context length); ``prompt`` is ignored."""
        out = [self.model.encode_text(self.tokenizer(list(texts[i:i + self.batch_size])).to(self.device)).float()
               for i in range(0, len(texts), self.batch_size)]
        return F.normalize(torch.cat(out), dim=-1).cpu()


def load_model(model_dir: Path, llm: str | None = None, device: str = "auto", dtype: str = "auto",
               token_budget: int = 8192) -> FlameModel | ClipModel:
    """The evaluation model of a directory written by ``flame train`` (FLAME) or ``flame train-clip`` (CLIP)."""
    config = read_config(model_dir)
    if config.get("kind") == "clip":
        return ClipModel.load(model_dir, config, device)
    return FlameModel.load(model_dir, config, llm, device, dtype, token_budget)
