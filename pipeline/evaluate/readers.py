"""Readers for the benchmarks' real on-disk formats. Images are never all decoded at once: a reader returns the
texts (small) and a torch ``Dataset`` of ``(PIL image, target)`` that the model streams through a DataLoader
(:meth:`pipeline.evaluate.models.EvalModel.encode_images`), keeping only features.

- ``urban1k``: ``image/{stem}.jpg`` + ``caption/{stem}.txt`` (Long-CLIP's Urban-1k release); the caption is the
  file's **first line**, as the official evaluation reads it; 1 caption per image (a caption without its image is
  counted as a missing image).
- ``sharegpt4v``: ShareGPT4V-1k: the first 1000 entries of ``share-captioner_coco_lcs_sam_1246k_1107.json`` (a JSON
  array; caption ``conversations[1].value`` with newlines as spaces, image ``<root>/<image>``), as the paper.
- ``dci``: DCI (``densely_captioned_images/``): every entry of every list in ``splits.json`` (all splits, in file
  order, as the official evaluation), ``annotations/<entry>`` giving ``image`` (under ``photos/``), ``short_caption``
  and ``extra_caption``; caption = short + newline + extra, split on newlines, ``</s>`` and ``.``, pieces stripped,
  empty ones dropped, joined with ``". "``.
- ``docci``: DOCCI test: the lines of ``docci_descriptions.jsonlines`` with ``split == "test"`` in file order,
  caption ``description`` with newlines as spaces, image ``images/<image_file>``.
- ``xm3600``: Crossmodal-3600 (``captions.jsonl`` + ``images/<image/key>.jpg``), one language per job, read by
  CLIP_benchmark's own builder (``build_dataset("crossmodal3600", language=...)``: the first caption of the language
  per image, images without a file skipped, and counted here). The builder writes an annotation file beside the
  data, so it runs on a private work directory that links to the data, which stays untouched; nothing is
  downloaded.
- ``sugar_crepe``: SugarCrepe (``val2017/`` images and ``<subset>.json`` per subset: ``filename``, ``caption``,
  ``negative_caption``), read by CLIP_benchmark's ``sugar_crepe/<subset>`` builder.
- ``winoground``: Winoground's released files: ``examples.jsonl`` (``caption_0``, ``caption_1``, ``image_0``,
  ``image_1``) and ``images/<image>.png``.
- ``wds_linear_probe``: the same webdataset layout with a ``train`` split besides ``test``, for the linear probe.
- ``wds_imagenet_multilingual``: an ImageNet-1k webdataset export scored per language with CLIP_benchmark's
  ImageNet class names and templates (en, ar, it, jp, cn).
- ``mscoco_captions``: COCO captions, Karpathy test split, read by CLIP_benchmark's ``mscoco_captions`` builder:
  ``val2014/<file_name>`` and ``coco_test_karpathy.json`` (COCO caption format: ``images[].id/file_name``,
  ``annotations[].image_id/caption``), all captions of each image.
- ``flickr30k``, ``flickr8k``: CLIP_benchmark's Flickr builders: the images in the root and
  ``<name>_test_karpathy.txt`` (a header line, then ``<image>.jpg,<caption>`` per caption).
- ``karpathy``: a Karpathy-split file, ``dataset_coco.json``, ``dataset_flickr30k.json`` or ``dataset_flickr8k.json``
  (``images[].filepath/filename/split/sentences[].raw``; the Flickr files have no ``filepath``: images lie in the
  root), for data kept in that form; the same images and captions as the builders' files.
- ``fewshot_miniimagenet``: the common MiniImageNet release (Ravi & Larochelle's split): ``images/<filename>`` and
  ``test.csv`` (header ``filename,label``, the label an ImageNet synset id such as ``n01930112``); the class names
  from ``classnames.json`` beside it (``{label: name}``) when there is one, else CLIP_benchmark's English ImageNet-1k
  names looked up by synset (its ``all_imagenet_wordnet_ids`` order). Every listed image must exist.
- ``wds_classification``: CLIP_benchmark's webdataset layout: ``classnames.txt``,
  ``zeroshot_classification_templates.txt``, ``{split}/nshards.txt`` and ``{split}/{i}.tar`` with an image and a
  ``.cls`` (class index) per sample, streamed shard by shard.

Every missing file or key raises naming the path and the layout expected there, but for the images that urban1k and
xm3600 list without a file: those are skipped and counted (``RetrievalSet.skipped``). An image that cannot be
decoded is logged naming it and read as None: the model leaves it out and counts it, the scorers leave out its texts.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset, IterableDataset

from pipeline.io.shards import decode_image, iter_shard
from pipeline.settings import allowed

LAYOUTS = {
    "urban1k": "image/<stem>.jpg with caption/<stem>.txt (Long-CLIP's Urban1k.zip, unpacked)",
    "sharegpt4v": "share-captioner_coco_lcs_sam_1246k_1107.json with the images under <image> relative to it",
    "dci": "splits.json, annotations/<entry> (JSON with image, short_caption, extra_caption) and photos/<image>",
    "docci": "docci_descriptions.jsonlines (example_id, split, image_file, description) and images/<image_file>",
    "xm3600": "captions.jsonl (one JSON object per image: image/key, <lang>: {caption: [...]}) and "
              "images/<image/key>.jpg (Crossmodal-3600)",
    "sugar_crepe": "val2017/<filename> and <subset>.json ({index: {filename, caption, negative_caption}}) per "
                   "subset (SugarCrepe's data/ files beside COCO val2017)",
    "winoground": "examples.jsonl (caption_0, caption_1, image_0, image_1) and images/<image>.png (the released "
                  "facebook/winoground data files)",
    "wds_linear_probe": "classnames.txt, zeroshot_classification_templates.txt, train/ and test/ with nshards.txt "
                        "and <i>.tar each (CLIP_benchmark's webdataset layout)",
    "wds_imagenet_multilingual": "test/nshards.txt and test/<i>.tar with .jpg and .cls (ImageNet-1k class indices, "
                                 "CLIP_benchmark's wds_imagenet1k export)",
    "mscoco_captions": "val2014/<file_name> and coco_test_karpathy.json (COCO caption format: images[].id/file_name, "
                       "annotations[].image_id/caption; CLIP_benchmark's retrieval annotations)",
    "flickr30k": "the images and flickr30k_test_karpathy.txt (a header line, then <image>.jpg,<caption> lines; "
                 "CLIP_benchmark's retrieval annotations) in one folder",
    "flickr8k": "the images and flickr8k_test_karpathy.txt (a header line, then <image>.jpg,<caption> lines; "
                "CLIP_benchmark's retrieval annotations) in one folder",
    "karpathy": "one Karpathy split file (dataset_coco.json, dataset_flickr30k.json or dataset_flickr8k.json) with the "
                "image files under images[].filepath/filename",
    "wds_classification": "classnames.txt, zeroshot_classification_templates.txt, <split>/nshards.txt and "
                          "<split>/0.tar ... (CLIP_benchmark's webdataset layout)",
    "fewshot_miniimagenet": "images/<filename> and test.csv (header filename,label; label: the ImageNet synset id, "
                            "e.g. n01930112), optionally classnames.json ({label: class name}; without it the "
                            "labels must be ImageNet synsets, named by CLIP_benchmark's English ImageNet names)",
}


def _unreadable(what: str, reason: str = "") -> None:
    """Log an image that cannot be decoded (the evaluation skips and counts it), naming ``what``."""
    print(f"{what}: unreadable image, skipped{f' ({reason})' if reason else ''}", file=sys.stderr)


class ImageFiles(Dataset):
    """Image files by index: ``(PIL RGB image, index)``, or ``(None, index)`` for a file that is no readable image
    (logged naming it)."""

    def __init__(self, paths: list[Path]):
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Image.Image | None, int]:
        image = decode_image(self.paths[index].read_bytes())
        if image is None:
            _unreadable(str(self.paths[index]))
        return image, index


def image_file(images: Dataset, index: int) -> str | None:
    """The file of image ``index`` of a reader's images: its path for :class:`ImageFiles`, None for the
    CLIP_benchmark builders' images (known by their index only)."""
    return str(images.paths[index]) if isinstance(images, ImageFiles) else None


class ShardImages(IterableDataset):
    """Webdataset shards streamed in order: ``(PIL RGB image, int(sample.<target_ext>))``, the image None for a
    sample whose image cannot be decoded (logged naming the shard and key)."""

    def __init__(self, shards: list[Path], target_ext: str = "cls"):
        self.shards, self.target_ext = shards, target_ext

    def __iter__(self) -> Iterator[tuple[Image.Image | None, int]]:
        for shard in self.shards:
            for sample in iter_shard(shard):
                image = decode_image(sample.image_bytes)
                if image is None:
                    _unreadable(f"{shard}: sample {sample.key!r}")
                yield image, int(sample.text(self.target_ext))


@dataclass
class RetrievalSet:
    """Images (a dataset of ``(image, index)``), captions, for caption t the index of its image, and what the reader
    skipped (``missing_image``: listed without a file, ``text_of_skipped_image``: their captions)."""

    images: Dataset
    texts: list[str]
    text_to_image: list[int]
    skipped: dict[str, int] = field(default_factory=dict)


def missing_images(count: int) -> dict[str, int]:
    """``RetrievalSet.skipped`` for ``count`` images listed without a file, one caption each."""
    return {"missing_image": count, "text_of_skipped_image": count} if count else {}


@dataclass
class ClassificationSet:
    """Images with their class index (a dataset of ``(image, label)``), the class names and the prompt templates
    (each containing ``{c}``)."""

    images: Dataset
    classnames: list[str]
    templates: list[str]


@dataclass
class CaptionSelectionSet:
    """Images (a dataset of ``(image, index)``) each with a positive and a negative caption (SugarCrepe)."""

    images: Dataset
    positives: list[str]
    negatives: list[str]


@dataclass
class WinogroundSet:
    """Winoground examples: ``images`` yields ``(image, 2 i + j)`` for image j of example i; two captions each."""

    images: Dataset
    captions_0: list[str]
    captions_1: list[str]


SUGAR_CREPE_SUBSETS = allowed("benchmark", "subsets")


def _require(path: Path, what: str, layout: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing ({what}); expected layout: {LAYOUTS[layout]}")
    return path


def read_urban1k(root: Path) -> RetrievalSet:
    """Urban-1k layout: every ``image/*.jpg`` with the first line of its ``caption/<same stem>.txt``; a caption
    without its image is counted (``missing_image``)."""
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
    missing = sorted({p.stem for p in (root / "caption").glob("*.txt")} - {p.stem for p in paths})
    for stem in missing:
        print(f"{root / 'caption' / stem}.txt: no image/{stem}.jpg; skipped", file=sys.stderr)
    return RetrievalSet(ImageFiles(paths), texts, list(range(len(paths))), missing_images(len(missing)))


SHAREGPT4V_FILE = "share-captioner_coco_lcs_sam_1246k_1107.json"
KARPATHY_FILES = ("dataset_coco.json", "dataset_flickr30k.json", "dataset_flickr8k.json")


def _retrieval(paths: list[Path], texts: list[str], where: Path, layout: str) -> RetrievalSet:
    """One caption per image, in order; every image file must exist."""
    if not paths:
        raise ValueError(f"{where}: no items; expected layout: {LAYOUTS[layout]}")
    for path in paths:
        _require(path, "an image of the benchmark", layout)
    return RetrievalSet(ImageFiles(paths), texts, list(range(len(paths))))


def _field(entry: dict, key: str, where: str):
    if key not in entry:
        raise KeyError(f"{where}: no key {key!r}")
    return entry[key]


def read_sharegpt4v(root: Path, count: int = 1000) -> RetrievalSet:
    """ShareGPT4V-1k: the first ``count`` entries of the share-captioner JSON, no filtering."""
    spec = _require(root / SHAREGPT4V_FILE, "share-captioner JSON", "sharegpt4v")
    entries = json.loads(spec.read_text(encoding="utf-8"))[:count]
    paths, texts = [], []
    for i, entry in enumerate(entries):
        where = f"{spec} entry {i}"
        paths.append(root / _field(entry, "image", where))
        texts.append(_field(entry, "conversations", where)[1]["value"].replace("\n", " ").strip())
    return _retrieval(paths, texts, spec, "sharegpt4v")


def dci_caption(short_caption: str, extra_caption: str) -> str:
    """DCI's "extended" caption as the official evaluation cleans it."""
    pieces = re.split(r"\n|</s>|\.", f"{short_caption}\n{extra_caption}")
    return ". ".join(p.strip() for p in pieces if p.strip())


def read_dci(root: Path) -> RetrievalSet:
    """DCI: the entries of all splits of ``splits.json``, each an annotation JSON naming its photo."""
    splits = json.loads(_require(root / "splits.json", "split lists", "dci").read_text(encoding="utf-8"))
    paths, texts = [], []
    for entries in splits.values():
        for name in entries:
            annotation_path = _require(root / "annotations" / name, "an annotation listed in splits.json", "dci")
            annotation = json.loads(annotation_path.read_text(encoding="utf-8"))
            where = str(annotation_path)
            paths.append(root / "photos" / _field(annotation, "image", where))
            texts.append(dci_caption(_field(annotation, "short_caption", where),
                                     annotation.get("extra_caption", "")))
    return _retrieval(paths, texts, root / "splits.json", "dci")


def read_docci(root: Path, split: str = "test") -> RetrievalSet:
    """DOCCI: the descriptions of ``split`` in file order."""
    spec = _require(root / "docci_descriptions.jsonlines", "descriptions", "docci")
    paths, texts = [], []
    for number, line in enumerate(spec.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        entry = json.loads(line)
        if _field(entry, "split", f"{spec} line {number}") != split:
            continue
        paths.append(root / "images" / _field(entry, "image_file", f"{spec} line {number}"))
        texts.append(_field(entry, "description", f"{spec} line {number}").replace("\n", " ").strip())
    return _retrieval(paths, texts, spec, "docci")


class BuilderImages(Dataset):
    """The images of a CLIP_benchmark dataset (items ``(PIL image, target)``) as ``(PIL image, index)``;
    ``keep`` holds whatever must live as long as the dataset (its work directory)."""

    def __init__(self, dataset, keep=None):
        self.dataset, self.keep = dataset, keep

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Image.Image | None, int]:
        try:
            return self.dataset[index][0], index
        except (OSError, ValueError, Image.DecompressionBombError) as err:  # PIL's errors, the file named in them
            _unreadable(f"{type(self.dataset).__name__} item {index}", str(err))
            return None, index


def read_xm3600(root: Path, language: str = "en") -> RetrievalSet:
    """Crossmodal-3600 retrieval in ``language`` through CLIP_benchmark's builder."""
    from clip_benchmark.datasets.builder import build_dataset
    from clip_benchmark.datasets.crossmodal3600 import SUPPORTED_LANGUAGES

    _require(root / "captions.jsonl", "captions", "xm3600")
    _require(root / "images", "image folder", "xm3600")
    if language not in SUPPORTED_LANGUAGES:
        raise ValueError(f"xm3600: language {language!r} is not one of Crossmodal-3600's {SUPPORTED_LANGUAGES}")
    work = tempfile.TemporaryDirectory(prefix="xm3600-")
    (Path(work.name) / "xm3600").symlink_to(root.resolve(), target_is_directory=True)
    with contextlib.redirect_stdout(sys.stderr):  # the builder prints its warnings
        dataset = build_dataset("crossmodal3600", root=work.name, language=language, download=False,
                                task="zeroshot_retrieval")
    if not dataset.data:
        raise ValueError(f"{root}: no image of captions.jsonl has a file in images/")
    listed = sum(1 for line in (root / "captions.jsonl").read_text(encoding="utf-8").splitlines() if line.strip())
    return _captioned_images(dataset, [[text] for _, text in dataset.data], keep=work,
                             skipped=missing_images(listed - len(dataset.data)))


def _captioned_images(dataset, captions: list[list[str]], keep=None, skipped: dict | None = None) -> RetrievalSet:
    """A CLIP_benchmark retrieval dataset whose image ``i`` has the captions ``captions[i]``, as a
    :class:`RetrievalSet` (captions flattened in order; ``skipped``: what the reader skipped)."""
    texts = [text.strip() for per_image in captions for text in per_image]
    owner = [i for i, per_image in enumerate(captions) for _ in per_image]
    return RetrievalSet(BuilderImages(dataset, keep=keep), texts, owner, skipped or {})


def read_mscoco_captions(root: Path) -> RetrievalSet:
    """COCO captions (Karpathy test split) through CLIP_benchmark's ``mscoco_captions`` builder; every image file is
    checked first (the builder would download what is missing)."""
    from clip_benchmark.datasets.builder import build_dataset

    _require(root / "val2014", "COCO val2014 images", "mscoco_captions")
    _require(root / "coco_test_karpathy.json", "Karpathy test annotations", "mscoco_captions")
    with contextlib.redirect_stdout(sys.stderr):  # pycocotools prints its progress
        dataset = build_dataset("mscoco_captions", root=str(root), split="test", download=False,
                                task="zeroshot_retrieval")
    coco = dataset.coco
    for info in coco.loadImgs(dataset.ids):
        _require(root / "val2014" / info["file_name"], "an image of coco_test_karpathy.json", "mscoco_captions")
    captions = [[a["caption"] for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id))] for image_id in dataset.ids]
    if not captions:
        raise ValueError(f"{root / 'coco_test_karpathy.json'}: no images")
    return _captioned_images(dataset, captions)


def read_flickr(root: Path, name: str) -> RetrievalSet:
    """Flickr30k or Flickr8k (``name``), Karpathy test split, through CLIP_benchmark's builder."""
    from clip_benchmark.datasets.builder import build_dataset

    annotations = _require(root / f"{name}_test_karpathy.txt", "Karpathy test captions", name)
    with contextlib.redirect_stdout(sys.stderr):
        dataset = build_dataset(name, root=str(root), split="test", download=False, task="zeroshot_retrieval")
    for image, _ in dataset.data:
        _require(root / image, f"an image of {annotations.name}", name)
    if not dataset.data:
        raise ValueError(f"{annotations}: no captions")
    return _captioned_images(dataset, [captions for _, captions in dataset.data])


def read_sugar_crepe(root: Path, subset: str) -> CaptionSelectionSet:
    """One SugarCrepe subset through CLIP_benchmark's builder (nothing is downloaded: the layout is checked first)."""
    from clip_benchmark.datasets.builder import build_dataset

    if subset not in SUGAR_CREPE_SUBSETS:
        raise ValueError(f"sugar_crepe: unknown subset {subset!r}; its subsets: {SUGAR_CREPE_SUBSETS}")
    _require(root / "val2017", "COCO val2017 images", "sugar_crepe")
    _require(root / f"{subset}.json", f"the {subset} subset", "sugar_crepe")
    with contextlib.redirect_stdout(sys.stderr):
        dataset = build_dataset(f"sugar_crepe/{subset}", root=str(root), download=False,
                                task="image_caption_selection")
    entries = [dataset.ann[key] for key in dataset.idx_strings]
    return CaptionSelectionSet(BuilderImages(dataset), [e["caption"] for e in entries],
                               [e["negative_caption"] for e in entries])


def read_winoground(root: Path) -> WinogroundSet:
    """Winoground from its released ``examples.jsonl`` and ``images/``."""
    spec = _require(root / "examples.jsonl", "examples", "winoground")
    paths, captions_0, captions_1 = [], [], []
    for number, line in enumerate(spec.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        entry, where = json.loads(line), f"{spec} line {number}"
        for key in ("image_0", "image_1"):
            paths.append(_require(root / "images" / f"{_field(entry, key, where)}.png", "an example's image",
                                  "winoground"))
        captions_0.append(_field(entry, "caption_0", where))
        captions_1.append(_field(entry, "caption_1", where))
    if not captions_0:
        raise ValueError(f"{spec}: no examples")
    return WinogroundSet(ImageFiles(paths), captions_0, captions_1)


def read_karpathy(root: Path, split: str = "test") -> RetrievalSet:
    """A Karpathy split file (COCO, Flickr30k or Flickr8k): the images of ``split`` with all their sentences."""
    found = [root / name for name in KARPATHY_FILES if (root / name).is_file()]
    if len(found) != 1:
        raise FileNotFoundError(f"{root}: expected exactly one of {', '.join(KARPATHY_FILES)}, found "
                                f"{[p.name for p in found]}; expected layout: {LAYOUTS['karpathy']}")
    spec_path = found[0]
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    paths, texts, owner = [], [], []
    for entry in spec["images"]:
        if entry.get("split") != split:
            continue
        paths.append(_require(root / entry.get("filepath", "") / entry["filename"], "an image of the split",
                              "karpathy"))
        for sentence in entry["sentences"]:
            texts.append(sentence["raw"].strip())
            owner.append(len(paths) - 1)
    if not paths:
        raise ValueError(f"{spec_path}: no image in split {split!r}")
    return RetrievalSet(ImageFiles(paths), texts, owner)


def read_wds_split(root: Path, split: str) -> ShardImages:
    """The ``(image, class index)`` samples of one split of a CLIP_benchmark webdataset set, streamed."""
    layout = "wds_classification"
    count_file = _require(root / split / "nshards.txt", f"shard count of split {split}", layout)
    n_shards = int(count_file.read_text().strip())
    return ShardImages([_require(root / split / f"{i}.tar", "shard listed in nshards.txt", layout)
                        for i in range(n_shards)])


def clip_benchmark_names(dataset: str, language: str) -> tuple[list[str], list[str]]:
    """``(class names, templates)`` of ``dataset`` in ``language`` from CLIP_benchmark's own files
    (``<language>_classnames.json``, ``<language>_zeroshot_classification_templates.json``; ImageNet-1k in en, ar,
    it, jp, cn)."""
    from importlib.resources import files

    package = files("clip_benchmark.datasets")
    found = []
    for kind in ("classnames", "zeroshot_classification_templates"):
        resource = package / f"{language}_{kind}.json"
        if not resource.is_file():
            raise ValueError(f"CLIP_benchmark has no {kind} in language {language!r}")
        table = json.loads(resource.read_text(encoding="utf-8"))
        if dataset not in table:
            raise ValueError(f"CLIP_benchmark's {language}_{kind}.json has no {dataset!r} (it has {sorted(table)})")
        found.append(list(table[dataset]))
    return found[0], found[1]


def read_wds_multilingual(root: Path, language: str, names_from: str = "imagenet1k") -> ClassificationSet:
    """A webdataset classification set scored with CLIP_benchmark's class names and templates of ``names_from`` in
    ``language`` (multilingual ImageNet); the set's own English files are not used."""
    classnames, templates = clip_benchmark_names(names_from, language)
    return ClassificationSet(read_wds_split(root, "test"), classnames, templates)


def read_wds_classification(root: Path, split: str = "test") -> ClassificationSet:
    """CLIP_benchmark webdataset classification set, its shards streamed."""
    layout = "wds_classification"
    classnames = _require(root / "classnames.txt", "class names", layout).read_text(encoding="utf-8").splitlines()
    templates = _require(root / "zeroshot_classification_templates.txt", "templates", layout).read_text(
        encoding="utf-8").splitlines()
    return ClassificationSet(read_wds_split(root, split), [c.strip() for c in classnames if c.strip()],
                             [t.strip() for t in templates if t.strip()])


@dataclass
class LinearProbeSet:
    """The train and test splits (datasets of ``(image, label)``) and the class names."""

    train: Dataset
    test: Dataset
    classnames: list[str]


def read_wds_linear_probe(root: Path) -> LinearProbeSet:
    """A CLIP_benchmark webdataset set with ``train`` and ``test`` splits."""
    classes = read_wds_classification(root, "test")
    return LinearProbeSet(read_wds_split(root, "train"), classes.images, classes.classnames)


@dataclass
class FewShotSet:
    """Labelled images for few-shot episodes: ``images`` yields ``(image, index)``, ``labels[index]`` is the image's
    class label, ``classnames[label]`` the class's name (distinct names)."""

    images: Dataset
    labels: list[str]
    classnames: dict[str, str]


def _imagenet_names() -> dict[str, str]:
    """ImageNet synset id -> CLIP_benchmark's English class name."""
    from clip_benchmark.datasets.builder import all_imagenet_wordnet_ids

    names, _ = clip_benchmark_names("imagenet1k", "en")
    return dict(zip(all_imagenet_wordnet_ids, names, strict=True))


def read_fewshot_miniimagenet(root: Path) -> FewShotSet:
    """MiniImageNet's test split: every row of ``test.csv`` with its image under ``images/`` and its class name."""
    layout = "fewshot_miniimagenet"
    spec = _require(root / "test.csv", "the test split", layout)
    with spec.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not {"filename", "label"} <= set(reader.fieldnames or ()):
            raise ValueError(f"{spec}: header {reader.fieldnames}, expected filename,label; expected layout: "
                             f"{LAYOUTS[layout]}")
        rows = [(row["filename"].strip(), row["label"].strip()) for row in reader]
    if not rows:
        raise ValueError(f"{spec}: no images")
    names_file = root / "classnames.json"
    names = json.loads(names_file.read_text(encoding="utf-8")) if names_file.is_file() else _imagenet_names()
    where = str(names_file) if names_file.is_file() else "CLIP_benchmark's ImageNet synsets (no classnames.json)"
    unnamed = sorted({label for _, label in rows} - set(names))
    if unnamed:
        raise ValueError(f"{spec}: labels {unnamed[:5]} have no class name in {where}; expected layout: "
                         f"{LAYOUTS[layout]}")
    classnames = {label: str(names[label]).strip() for label in dict.fromkeys(label for _, label in rows)}
    if len(set(classnames.values())) != len(classnames):
        raise ValueError(f"{where}: two classes of {spec} share a name, so an answer could not tell them apart")
    paths = [_require(root / "images" / filename, f"an image of {spec.name}", layout) for filename, _ in rows]
    return FewShotSet(ImageFiles(paths), [label for _, label in rows], classnames)
