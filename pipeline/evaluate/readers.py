"""Readers for the benchmarks' real on-disk formats. Each returns plain Python data; images are loaded as PIL.

- ``urban1k``: ``image/{stem}.jpg`` + ``caption/{stem}.txt`` (Long-CLIP's Urban-1k layout; 1 caption per image).
- ``coco``: a COCO-Karpathy ``dataset_coco.json`` (``images[].filepath/filename/split/sentences[].raw``).
- ``wds_classification``: CLIP_benchmark's webdataset layout: ``classnames.txt``,
  ``zeroshot_classification_templates.txt``, ``{split}/nshards.txt`` and ``{split}/{i}.tar`` with an image and a
  ``.cls`` (class index) per sample.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from pipeline.data import decode_image, iter_shard


@dataclass
class RetrievalSet:
    """Images, captions, and for caption t the index of its image: ``text_to_image[t]``."""

    images: list[Image.Image]
    texts: list[str]
    text_to_image: list[int]


@dataclass
class ClassificationSet:
    """Images with class indices, the class names and the prompt templates (each containing ``{c}``)."""

    images: list[Image.Image]
    labels: list[int]
    classnames: list[str]
    templates: list[str]


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing ({what})")
    return path


def _open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


def read_urban1k(root: Path) -> RetrievalSet:
    """Urban-1k layout: every ``image/*.jpg`` with its ``caption/<same stem>.txt``."""
    image_dir, caption_dir = _require(root / "image", "Urban-1k image/ folder"), root / "caption"
    images, texts = [], []
    for image_path in sorted(image_dir.glob("*.jpg"), key=lambda p: (len(p.stem), p.stem)):
        caption_path = _require(caption_dir / f"{image_path.stem}.txt", f"caption of {image_path.name}")
        images.append(_open_rgb(image_path))
        texts.append(caption_path.read_text(encoding="utf-8").strip())
    if not images:
        raise FileNotFoundError(f"{image_dir}: no .jpg images")
    return RetrievalSet(images, texts, list(range(len(images))))


def read_coco_karpathy(root: Path, split: str = "test") -> RetrievalSet:
    """COCO-Karpathy JSON: the images of ``split`` with all their sentences."""
    spec = json.loads(_require(root / "dataset_coco.json", "Karpathy split file").read_text(encoding="utf-8"))
    images, texts, owner = [], [], []
    for entry in spec["images"]:
        if entry.get("split") != split:
            continue
        images.append(_open_rgb(root / entry.get("filepath", "") / entry["filename"]))
        for sentence in entry["sentences"]:
            texts.append(sentence["raw"].strip())
            owner.append(len(images) - 1)
    if not images:
        raise ValueError(f"{root / 'dataset_coco.json'}: no image in split {split!r}")
    return RetrievalSet(images, texts, owner)


def read_wds_classification(root: Path, split: str = "test") -> ClassificationSet:
    """CLIP_benchmark webdataset classification set."""
    classnames = _require(root / "classnames.txt", "class names").read_text(encoding="utf-8").splitlines()
    templates = _require(root / "zeroshot_classification_templates.txt", "templates").read_text(
        encoding="utf-8").splitlines()
    n_shards = int(_require(root / split / "nshards.txt", "shard count").read_text().strip())
    images, labels = [], []
    for i in range(n_shards):
        shard = _require(root / split / f"{i}.tar", "shard listed in nshards.txt")
        for sample in iter_shard(shard):
            image = decode_image(sample.image_bytes)
            if image is None:
                raise ValueError(f"{shard}: sample {sample.key!r} has no readable image")
            images.append(image)
            labels.append(int(sample.text("cls")))
    return ClassificationSet(images, labels, [c.strip() for c in classnames if c.strip()],
                             [t.strip() for t in templates if t.strip()])
