"""A trained FLAME model for evaluation: the vision side from the model directory, the text side the frozen LLM.

``encode_image(images) -> [N, D]`` and ``encode_text(texts, facets=...) -> [N, D]``, both L2-normalised. A text is
embedded with the facet prompts given (``"long"``: the mean of the seven facets, for long captions; ``"short"``: the
single description prompt, for short text), each facet L2-normalised as in training, averaged, then normalised.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from pipeline.embed import FacetEmbedder
from pipeline.llm import load_llm, resolve_device
from pipeline.model import FlameVisionModel
from pipeline.prompts import FacetSpec
from pipeline.transforms import eval_transform


class FlameModel:
    """Vision model + frozen LLM. Use :meth:`load`."""

    def __init__(self, vision: FlameVisionModel, llm, tokenizer, layer: int, token_budget: int = 8192,
                 batch_size: int = 64):
        self.vision, self.llm, self.tokenizer = vision, llm, tokenizer
        self.layer, self.token_budget, self.batch_size = layer, token_budget, batch_size
        self.device = next(vision.parameters()).device
        self.image_size = vision.vision_config["image_size"]
        self._embedders: dict[str, FacetEmbedder] = {}

    @classmethod
    def load(cls, model_dir: Path, llm: str | None = None, device: str = "auto", dtype: str = "auto",
             token_budget: int = 8192) -> FlameModel:
        """Load ``model_dir``; the LLM is the one recorded there unless ``llm`` overrides its path or id."""
        vision, config = FlameVisionModel.load(model_dir)
        text = config["text"]
        llm_model, tokenizer = load_llm(llm or text["llm"], revision=text.get("revision"), dtype=dtype,
                                        device=device)
        return cls(vision.to(resolve_device(device)), llm_model, tokenizer, text["layer"], token_budget)

    @torch.inference_mode()
    def encode_image(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """PIL images -> ``[N, D]`` float32, L2-normalised."""
        out = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            batch = torch.stack([eval_transform(img.convert("RGB"), self.image_size) for img in chunk])
            out.append(self.vision(batch.to(self.device)).float().cpu())
        return torch.cat(out) if out else torch.empty(0, self.vision.dim)

    def encode_text(self, texts: Sequence[str], facets: FacetSpec = "long") -> torch.Tensor:
        """Texts -> ``[N, D]`` float32, L2-normalised mean of the normalised facet embeddings."""
        key = repr(facets)
        if key not in self._embedders:
            self._embedders[key] = FacetEmbedder(self.llm, self.tokenizer, facets, layer=self.layer,
                                                 token_budget=self.token_budget)
        per_facet = F.normalize(self._embedders[key].encode(list(texts)), dim=-1)
        return F.normalize(per_facet.mean(dim=1), dim=-1)
