"""Readers for the benchmarks' real on-disk formats. Images are never all decoded at once: a reader returns the
texts (small) and a torch ``Dataset`` of ``(PIL image, target)`` that the model streams through a DataLoader
(:meth:`pipeline.evaluate.models.EvalModel.encode_images`), keeping only features.

- ``urban1k``: ``image/{stem}.jpg`` + ``caption/{stem}.txt`` (Long-CLIP's Urban-1k release); the caption is the
  file's **first line**, as the official evaluation reads it; 1 caption per image.
- ``coco``: a COCO-Karpathy ``dataset_coco.json`` (``images[].filepath/filename/split/sentences[].raw``).
- ``wds_classification``: CLIP_benchmark's webdataset layout: ``classnames.txt``,
  ``zeroshot_classification_templates.txt``, ``{split}/nshards.txt`` and ``{split}/{i}.tar`` with an image and a
  ``.cls`` (class index) per sample, streamed shard by shard.

Every missing file or key raises naming the path and the layout expected there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset, IterableDataset

from pipeline.data import decode_image, iter_shard

LAYOUTS = {
    "urban1k": "image/<stem>.jpg with caption/<stem>.txt (Long-CLIP's Urban1k.zip, unpacked)",
    "coco": "dataset_coco.json (Karpathy split) with the image files under images[].filepath/filename",
    "wds_classification": "classnames.txt, zeroshot_classification_templates.txt, <split>/nshards.txt and "
                          "<split>/0.tar ... (CLIP_benchmark's webdataset layout)",
}


class ImageFiles(Dataset):
    """Image files by index: ``(PIL RGB image, index)``."""

    def __init__(self, paths: list[Path]):
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        with Image.open(self.paths[index]) as img:
            return img.convert("RGB"), index


class ShardImages(IterableDataset):
    """Webdataset shards streamed in order: ``(PIL RGB image, int(sample.<target_ext>))``; an unreadable image
    raises naming the shard and key."""

    def __init__(self, shards: list[Path], target_ext: str = "cls"):
        self.shards, self.target_ext = shards, target_ext

    def __iter__(self) -> Iterator[tuple[Image.Image, int]]:
        for shard in self.shards:
            for sample in iter_shard(shard):
                image = decode_image(sample.image_bytes)
                if image is None:
                    raise ValueError(f"{shard}: sample {sample.key!r} has no readable image")
                yield image, int(sample.text(self.target_ext))


@dataclass
class RetrievalSet:
    """Images (a dataset of ``(image, index)``), captions, and for caption t the index of its image."""

    images: Dataset
    texts: list[str]
    text_to_image: list[int]


@dataclass
class ClassificationSet:
    """Images with their class index (a dataset of ``(image, label)``), the class names and the prompt templates
    (each containing ``{c}``)."""

    images: Dataset
    classnames: list[str]
    templates: list[str]


def _require(path: Path, what: str, layout: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing ({what}); expected layout: {LAYOUTS[layout]}")
    return path


def read_urban1k(root: Path) -> RetrievalSet:
    """Urban-1k layout: every ``image/*.jpg`` with the first line of its ``caption/<same stem>.txt``."""
    image_dir = _require(root / "image", "Urban-1k image/ folder", "urban1k")
    paths, texts = [], []
    for image_path in sorted(image_dir.glob("*.jpg"), key=lambda p: (len(p.stem), p.stem)):
        caption_path = _require(root / "caption" / f"{image_path.stem}.txt", f"caption of {image_path.name}",
                                "urban1k")
        lines = caption_path.read_text(encoding="utf-8").splitlines()
        if not lines or not lines[0].strip():
            raise ValueError(f"{caption_path}: empty first line (the caption)")
        paths.append(image_path)
        texts.append(lines[0].strip())
    if not paths:
        raise FileNotFoundError(f"{image_dir}: no .jpg images; expected layout: {LAYOUTS['urban1k']}")
    return RetrievalSet(ImageFiles(paths), texts, list(range(len(paths))))


def read_coco_karpathy(root: Path, split: str = "test") -> RetrievalSet:
    """COCO-Karpathy JSON: the images of ``split`` with all their sentences."""
    spec_path = _require(root / "dataset_coco.json", "Karpathy split file", "coco")
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    paths, texts, owner = [], [], []
    for entry in spec["images"]:
        if entry.get("split") != split:
            continue
        paths.append(_require(root / entry.get("filepath", "") / entry["filename"], "an image of the split", "coco"))
        for sentence in entry["sentences"]:
            texts.append(sentence["raw"].strip())
            owner.append(len(paths) - 1)
    if not paths:
        raise ValueError(f"{spec_path}: no image in split {split!r}")
    return RetrievalSet(ImageFiles(paths), texts, owner)


def read_wds_classification(root: Path, split: str = "test") -> ClassificationSet:
    """CLIP_benchmark webdataset classification set, its shards streamed."""
    layout = "wds_classification"
    classnames = _require(root / "classnames.txt", "class names", layout).read_text(encoding="utf-8").splitlines()
    templates = _require(root / "zeroshot_classification_templates.txt", "templates", layout).read_text(
        encoding="utf-8").splitlines()
    n_shards = int(_require(root / split / "nshards.txt", "shard count", layout).read_text().strip())
    shards = [_require(root / split / f"{i}.tar", "shard listed in nshards.txt", layout) for i in range(n_shards)]
    return ClassificationSet(ShardImages(shards), [c.strip() for c in classnames if c.strip()],
                             [t.strip() for t in templates if t.strip()])
