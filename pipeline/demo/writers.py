"""Write the synthetic demo data set in the on-disk formats of the real data.

:func:`write_demo_data` creates this tree under ``out`` (``N`` = ``eval_size``):

``train/shard-00000.tar`` ... ``train/shard-{train_shards-1:05d}.tar``
    Training shards in img2dataset's webdataset layout, ``samples_per_shard``
    samples each.  Every sample has three members:

    * ``{key}.jpg``: the RGB image (``image_size`` square, JPEG quality 90);
    * ``{key}.txt``: the raw alt-text (UTF-8);
    * ``{key}.json``: ``{"key", "caption" (the alt-text), "long": [2 different
      long captions], "short": [2 different short captions], "translations":
      {lang: {"short", "long"}} for de/fr/es/it, "scene": {attribute: str},
      "width", "height", "status": "success"}``.

    Keys are 9-digit zero-padded global sample indices (``"000000000"``,
    ``"000000001"``, ...), unique across shards.
``eval/urban1k/image/{i}.jpg`` and ``eval/urban1k/caption/{i}.txt``
    Urban-1k layout: ``i`` = 1..N, each caption file holds one long caption
    for the image with the same stem.
``eval/sharegpt4v/``, ``eval/dci/``, ``eval/docci/``
    The long-caption sets in their released layouts (see :func:`_write_sharegpt4v`, :func:`_write_dci`,
    :func:`_write_docci`), N held-out scenes each with one long caption.
``eval/sugar_crepe/`` and ``eval/winoground/``
    Compositionality sets in SugarCrepe's layout (5 of its 7 subsets, hard negatives from the scene grammar) and
    Winoground's released files (see :func:`_write_sugar_crepe`, :func:`_write_winoground`).
``eval/coco/val2014/COCO_val2014_{id:012d}.jpg``, ``coco_test_karpathy.json`` and ``dataset_coco.json``
    One short-caption retrieval set (5 captions per image) in both layouts it is distributed in: CLIP_benchmark's
    ``mscoco_captions`` annotations (COCO caption format: ``{"images": [{"id", "file_name"}], "annotations":
    [{"id", "image_id", "caption"}]}``) and Karpathy's split file (``{"images": [{"filepath": "val2014",
    "sentids", "filename", "imgid", "split": "test", "sentences": [{"tokens", "raw", "imgid", "sentid"}],
    "cocoid"}], "dataset": "coco"}``; tokens are the lower-cased alphanumeric words of ``raw``).
``eval/zeroshot/``
    CLIP_benchmark webdataset classification set: ``classnames.txt`` (one
    class per line, in class-index order), ``zeroshot_classification_templates.txt``
    (one ``{c}`` template per line), ``dataset_type.txt`` (``classification``),
    ``test/nshards.txt`` (shard count) and ``test/0.tar``, ... holding
    ``{key}.jpg`` and ``{key}.cls`` (class index as ASCII text) per sample,
    keys ``s0000000``, ...; the N samples cycle through the classes so they
    are balanced.
``eval/xm3600/images/{image_id}.jpg`` and ``eval/xm3600/captions.jsonl``
    Crossmodal-3600 layout: one JSON object per line, ``{"image/key":
    image_id (16 hex digits), lang: {"caption": [...], "caption/tokenized":
    [...], "caption/tokenized/lowercase": [...]}}`` for every language in
    ``LANGUAGES``, two short captions per language; the tokenized variants
    are the captions with words and punctuation separated by spaces.
``eval/mini-imagenet/``
    MiniImageNet's layout for few-shot image comprehension: ``images/{label}{j:08d}.jpg``, ``test.csv`` (header
    ``filename,label``) and ``classnames.json`` (``{label: shape}``): ``FEWSHOT_PER_CLASS`` held-out scenes per
    shape class, labelled ``d00000000``, ``d00000001``, ... in the shapes' order (synset-like ids).
``corpus.txt``
    Every caption of the training samples (alt-texts, long and short captions in
    all languages), one per line, for training a tokenizer (``flame tiny-llm``,
    ``flame tiny-vlm``); no evaluation caption is in it.
``MANIFEST.json``
    Seed, arguments, counts and every other file's path, size and SHA-256.

Determinism: training sample ``g`` is drawn from
``random.Random(f"{seed}-train-{g}")`` and item ``i`` of evaluation set
``name`` from ``random.Random(f"{seed}-eval-{name}-{i}")``, so evaluation
scenes are held out from training and the same seed gives byte-identical
files (tar headers carry no timestamps or owners; nothing records the
output path or the time).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
import re
import shutil
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from pipeline.io.atomic import atomic_path

from .captions import (
    LANGUAGES,
    alt_text,
    class_name,
    distinct,
    long_caption,
    short_captions,
    translate_long,
    translate_short,
)
from .compositional import PERTURBATIONS, caption_pair
from .scenes import SHAPES, Scene, render, sample_scene

JPEG_QUALITY = 90
TRANSLATION_LANGUAGES = LANGUAGES[1:]
LONG_PER_SAMPLE = 2
SHORT_PER_SAMPLE = 2
COCO_CAPTIONS_PER_IMAGE = 5
XM3600_CAPTIONS_PER_LANGUAGE = 2
ZEROSHOT_SHARD_SIZE = 256
FEWSHOT_PER_CLASS = 6  # images per class in eval/mini-imagenet: 3 shots + 1 query, and a choice among them
LINEAR_PROBE_TRAIN_FACTOR = 2  # train samples per test sample in eval/zeroshot (the linear probe's train split)
ZEROSHOT_TEMPLATES = (
    "a photo of a {c}.",
    "a drawing of a {c}.",
    "a cartoon {c}.",
    "an illustration of a {c}.",
    "a picture of a small {c}.",
    "a picture of a large {c}.",
    "a {c} shape.",
)


def _rng(seed: int, *parts: object) -> random.Random:
    """A random stream derived from the seed and a path of names/indices."""
    return random.Random("-".join(str(p) for p in (seed, *parts)))


def _jpeg(image: Image.Image) -> bytes:
    """Encode an image as JPEG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _json_bytes(obj: Any) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def write_tar(path: Path, members: Iterable[tuple[str, bytes]]) -> int:
    """Atomically write a reproducible tar (no timestamps/owners); returns the member count."""
    count = 0
    with atomic_path(path) as tmp, tarfile.open(tmp, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
            count += 1
    return count


def _prepare_output(out: Path, overwrite: bool) -> None:
    """Create ``out``, refusing (or with ``overwrite``, clearing) a non-empty one."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output path {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"output directory {out} exists and is not empty (use overwrite to replace it)")
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)


# ------------------------------------------------------------------ training --


def _train_record(seed: int, index: int, image_size: int) -> tuple[dict[str, Any], Image.Image]:
    """The JSON record and image of training sample ``index``."""
    rng = _rng(seed, "train", index)
    scene = sample_scene(rng)
    caption = alt_text(scene, rng)
    record = {
        "key": f"{index:09d}",
        "caption": caption,
        "long": distinct(lambda: long_caption(scene, rng), LONG_PER_SAMPLE),
        "short": short_captions(scene, rng, SHORT_PER_SAMPLE),
        "translations": {
            lang: {"short": translate_short(scene, lang, rng), "long": translate_long(scene, lang, rng)}
            for lang in TRANSLATION_LANGUAGES
        },
        "scene": scene.attributes(),
        "width": image_size,
        "height": image_size,
        "status": "success",
    }
    return record, render(scene, image_size)


def _record_captions(record: dict[str, Any]) -> list[str]:
    """Every caption string stored in a training record."""
    texts = [record["caption"], *record["long"], *record["short"]]
    for translation in record["translations"].values():
        texts += [translation["short"], translation["long"]]
    return texts


def _train_members(seed: int, indices: range, image_size: int, corpus: list[str]) -> Iterator[tuple[str, bytes]]:
    """Tar members of the training samples ``indices``; adds their captions to ``corpus``."""
    for index in indices:
        record, image = _train_record(seed, index, image_size)
        corpus.extend(_record_captions(record))
        key = record["key"]
        yield f"{key}.jpg", _jpeg(image)
        yield f"{key}.txt", record["caption"].encode("utf-8")
        yield f"{key}.json", _json_bytes(record)


def _write_train(root: Path, seed: int, shards: int, per_shard: int, image_size: int, corpus: list[str]) -> int:
    """Write the training shards; returns the number of samples."""
    root.mkdir(parents=True)
    for shard in range(shards):
        indices = range(shard * per_shard, (shard + 1) * per_shard)
        write_tar(root / f"shard-{shard:05d}.tar", _train_members(seed, indices, image_size, corpus))
    return shards * per_shard


# -------------------------------------------------------------- evaluation --


def _eval_scene(seed: int, name: str, index: int, main_shape: str | None = None) -> tuple[Scene, random.Random]:
    """Scene ``index`` of evaluation set ``name`` and the rng for its captions."""
    rng = _rng(seed, "eval", name, index)
    return sample_scene(rng, main_shape), rng


def _write_urban1k(root: Path, seed: int, count: int, image_size: int) -> int:
    """Urban-1k: ``image/{i}.jpg`` with one long caption in ``caption/{i}.txt``."""
    (root / "image").mkdir(parents=True)
    (root / "caption").mkdir()
    for i in range(1, count + 1):
        scene, rng = _eval_scene(seed, "urban1k", i)
        caption = long_caption(scene, rng)
        (root / "image" / f"{i}.jpg").write_bytes(_jpeg(render(scene, image_size)))
        (root / "caption" / f"{i}.txt").write_text(caption, encoding="utf-8")
    return count


def _long_items(seed: int, name: str, count: int, image_size: int) -> Iterator[tuple[bytes, str]]:
    """``count`` held-out scenes of evaluation set ``name``: (JPEG bytes, long caption)."""
    for i in range(count):
        scene, rng = _eval_scene(seed, name, i)
        caption = long_caption(scene, rng)
        yield _jpeg(render(scene, image_size)), caption


def _write_sharegpt4v(root: Path, seed: int, count: int, image_size: int) -> int:
    """ShareGPT4V: ``share-captioner_coco_lcs_sam_1246k_1107.json`` (a JSON array of ``{"id", "image",
    "conversations": [human, gpt]}``) with the images under ``coco/train2017/`` and ``sam/images/``."""
    entries = []
    for i, (jpeg, caption) in enumerate(_long_items(seed, "sharegpt4v", count, image_size)):
        image = f"{'coco/train2017' if i % 2 else 'sam/images'}/{i:012d}.jpg"
        (root / image).parent.mkdir(parents=True, exist_ok=True)
        (root / image).write_bytes(jpeg)
        entries.append({"id": f"{i:012d}", "image": image, "conversations": [
            {"from": "human", "value": "<image>\nAnalyze the image in a comprehensive and detailed manner."},
            {"from": "gpt", "value": caption}]})
    (root / "share-captioner_coco_lcs_sam_1246k_1107.json").write_text(json.dumps(entries), encoding="utf-8")
    return count


def _write_dci(root: Path, seed: int, count: int, image_size: int) -> int:
    """DCI: ``splits.json`` (train/valid/test lists of annotation files), ``annotations/{i}.json`` (``image``,
    ``short_caption``, ``extra_caption``) and ``photos/sa_{i}.jpg``; the long caption is split into a first
    sentence (short) and the rest (extra)."""
    (root / "annotations").mkdir(parents=True)
    (root / "photos").mkdir()
    names = []
    for i, (jpeg, caption) in enumerate(_long_items(seed, "dci", count, image_size)):
        first, _, rest = caption.partition(". ")
        (root / "photos" / f"sa_{i}.jpg").write_bytes(jpeg)
        annotation = {"image": f"sa_{i}.jpg", "short_caption": first, "extra_caption": rest, "mask_data": {}}
        (root / "annotations" / f"sa_{i}.json").write_text(json.dumps(annotation), encoding="utf-8")
        names.append(f"sa_{i}.json")
    third = len(names) // 3
    splits = {"train": names[:third], "valid": names[third:2 * third], "test": names[2 * third:]}
    (root / "splits.json").write_text(json.dumps(splits), encoding="utf-8")
    return count


def _write_docci(root: Path, seed: int, count: int, image_size: int) -> int:
    """DOCCI: ``docci_descriptions.jsonlines`` (``example_id``, ``split``, ``image_file``, ``description``; every
    item in split ``test``) and ``images/{example_id}.jpg``."""
    (root / "images").mkdir(parents=True)
    lines = []
    for i, (jpeg, caption) in enumerate(_long_items(seed, "docci", count, image_size)):
        example = f"test_{i:05d}"
        (root / "images" / f"{example}.jpg").write_bytes(jpeg)
        lines.append(json.dumps({"example_id": example, "split": "test", "image_file": f"{example}.jpg",
                                 "description": caption}))
    (root / "docci_descriptions.jsonlines").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return count


def _write_sugar_crepe(root: Path, seed: int, count: int, image_size: int) -> int:
    """SugarCrepe: ``val2017/{file}.jpg`` and per subset ``{subset}.json`` (``{"0": {"filename", "caption",
    "negative_caption"}, ...}``), ``count`` images per subset of :data:`PERTURBATIONS`."""
    (root / "val2017").mkdir(parents=True)
    for subset, perturb in PERTURBATIONS.items():
        entries = {}
        for i in range(count):
            scene, rng = _eval_scene(seed, f"sugar_crepe/{subset}", i)
            positive, negative = caption_pair(scene, perturb(scene, rng), rng.getrandbits(32))
            filename = f"{subset}_{i:012d}.jpg"
            (root / "val2017" / filename).write_bytes(_jpeg(render(scene, image_size)))
            entries[str(i)] = {"filename": filename, "caption": positive, "negative_caption": negative}
        (root / f"{subset}.json").write_text(json.dumps(entries, indent=1), encoding="utf-8")
    return count * len(PERTURBATIONS)


def _write_winoground(root: Path, seed: int, count: int, image_size: int) -> int:
    """Winoground: ``examples.jsonl`` (``id``, ``caption_0``, ``caption_1``, ``image_0``, ``image_1``, ``tag``) and
    ``images/{image}.png``; image 1 is image 0 with the two objects' colours swapped, and caption 1 the caption of
    that swap, so the two captions hold the same words in another order."""
    (root / "images").mkdir(parents=True)
    lines = []
    for i in range(count):
        scene, rng = _eval_scene(seed, "winoground", i)
        swapped = PERTURBATIONS["swap_att"](scene, rng)
        captions = caption_pair(scene, swapped, rng.getrandbits(32))
        names = (f"ex_{i}_img_0", f"ex_{i}_img_1")
        for name, drawn in zip(names, (scene, swapped)):
            render(drawn, image_size).save(root / "images" / f"{name}.png")
        lines.append(json.dumps({"id": i, "caption_0": captions[0], "caption_1": captions[1], "image_0": names[0],
                                 "image_1": names[1], "tag": "swap attribute"}))
    (root / "examples.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return count


def coco_tokens(caption: str) -> list[str]:
    """Karpathy-style tokens: lower-cased alphanumeric words."""
    return re.findall(r"[a-z0-9]+", caption.lower())


def _write_coco(root: Path, seed: int, count: int, image_size: int) -> int:
    """COCO retrieval set with five short captions per image, annotated in CLIP_benchmark's and Karpathy's files."""
    (root / "val2014").mkdir(parents=True)
    images, coco_images, coco_annotations = [], [], []
    for imgid in range(count):
        scene, rng = _eval_scene(seed, "coco", imgid)
        filename = f"COCO_val2014_{imgid:012d}.jpg"
        (root / "val2014" / filename).write_bytes(_jpeg(render(scene, image_size)))
        captions = short_captions(scene, rng, COCO_CAPTIONS_PER_IMAGE)
        sentids = [imgid * COCO_CAPTIONS_PER_IMAGE + k for k in range(COCO_CAPTIONS_PER_IMAGE)]
        images.append(
            {
                "filepath": "val2014",
                "sentids": sentids,
                "filename": filename,
                "imgid": imgid,
                "split": "test",
                "sentences": [
                    {"tokens": coco_tokens(raw), "raw": raw, "imgid": imgid, "sentid": sentid}
                    for raw, sentid in zip(captions, sentids)
                ],
                "cocoid": imgid,
            }
        )
        coco_images.append({"id": imgid, "file_name": filename})
        coco_annotations.extend({"id": sentid, "image_id": imgid, "caption": raw}
                                for raw, sentid in zip(captions, sentids))
    (root / "dataset_coco.json").write_bytes(_json_bytes({"images": images, "dataset": "coco"}))
    (root / "coco_test_karpathy.json").write_bytes(_json_bytes({"images": coco_images,
                                                                 "annotations": coco_annotations}))
    return count


def _zeroshot_members(seed: int, indices: range, image_size: int, split: str) -> Iterator[tuple[str, bytes]]:
    """Tar members of zero-shot samples; sample ``i`` belongs to class ``i % len(SHAPES)``."""
    name = "zeroshot" if split == "test" else f"zeroshot/{split}"
    for i in indices:
        scene, _ = _eval_scene(seed, name, i, SHAPES[i % len(SHAPES)])
        key = f"s{i:07d}"
        yield f"{key}.jpg", _jpeg(render(scene, image_size))
        yield f"{key}.cls", str(SHAPES.index(class_name(scene))).encode("ascii")


def _write_zeroshot(root: Path, seed: int, count: int, image_size: int) -> int:
    """CLIP_benchmark-style webdataset classification set over the shape classes: ``count`` test samples and
    ``LINEAR_PROBE_TRAIN_FACTOR`` x ``count`` train samples (other scenes, for the linear probe)."""
    root.mkdir(parents=True)
    (root / "classnames.txt").write_text("".join(f"{name}\n" for name in SHAPES), encoding="utf-8")
    templates = "".join(f"{t}\n" for t in ZEROSHOT_TEMPLATES)
    (root / "zeroshot_classification_templates.txt").write_text(templates, encoding="utf-8")
    (root / "dataset_type.txt").write_text("classification\n", encoding="utf-8")
    for split, size in (("test", count), ("train", LINEAR_PROBE_TRAIN_FACTOR * count)):
        (root / split).mkdir()
        shards = math.ceil(size / ZEROSHOT_SHARD_SIZE)
        (root / split / "nshards.txt").write_text(f"{shards}\n", encoding="utf-8")
        for shard in range(shards):
            indices = range(shard * ZEROSHOT_SHARD_SIZE, min(size, (shard + 1) * ZEROSHOT_SHARD_SIZE))
            write_tar(root / split / f"{shard}.tar", _zeroshot_members(seed, indices, image_size, split))
    return count


def _write_fewshot(root: Path, seed: int, image_size: int) -> int:
    """MiniImageNet-style few-shot set: ``FEWSHOT_PER_CLASS`` scenes of each shape class; returns the image count."""
    (root / "images").mkdir(parents=True)
    labels = {shape: f"d{k:08d}" for k, shape in enumerate(SHAPES)}
    rows = ["filename,label\n"]
    for i in range(FEWSHOT_PER_CLASS * len(SHAPES)):
        scene, _ = _eval_scene(seed, "mini-imagenet", i, SHAPES[i % len(SHAPES)])
        label = labels[class_name(scene)]
        filename = f"{label}{i // len(SHAPES):08d}.jpg"
        (root / "images" / filename).write_bytes(_jpeg(render(scene, image_size)))
        rows.append(f"{filename},{label}\n")
    (root / "test.csv").write_text("".join(rows), encoding="utf-8")
    (root / "classnames.json").write_bytes(_json_bytes({label: shape for shape, label in labels.items()}))
    return len(rows) - 1


def xm3600_tokenized(caption: str) -> str:
    """The caption with words and punctuation marks separated by single spaces."""
    return " ".join(re.findall(r"\w+|[^\w\s]", caption))


def _xm3600_entry(captions: list[str]) -> dict[str, list[str]]:
    """One language's captions with their tokenized variants."""
    tokenized = [xm3600_tokenized(c) for c in captions]
    return {
        "caption": captions,
        "caption/tokenized": tokenized,
        "caption/tokenized/lowercase": [t.lower() for t in tokenized],
    }


def _write_xm3600(root: Path, seed: int, count: int, image_size: int) -> int:
    """Crossmodal-3600-style multilingual set: images plus ``captions.jsonl``."""
    (root / "images").mkdir(parents=True)
    lines = []
    for i in range(count):
        scene, rng = _eval_scene(seed, "xm3600", i)
        image_id = hashlib.sha256(f"{seed}-xm3600-{i}".encode()).hexdigest()[:16]
        (root / "images" / f"{image_id}.jpg").write_bytes(_jpeg(render(scene, image_size)))
        entry: dict[str, Any] = {"image/key": image_id}
        for lang in LANGUAGES:
            # the lambda runs inside this iteration (distinct calls it at once), so it sees this lang
            captions = distinct(lambda: translate_short(scene, lang, rng), XM3600_CAPTIONS_PER_LANGUAGE)  # noqa: B023
            entry[lang] = _xm3600_entry(captions)
        lines.append(json.dumps(entry, ensure_ascii=False) + "\n")
    (root / "captions.jsonl").write_text("".join(lines), encoding="utf-8")
    return count


# ------------------------------------------------------------------- driver --


def _write_corpus(path: Path, captions: list[str]) -> int:
    """One caption per line (inner line breaks become spaces); returns the line count."""
    lines = [" ".join(caption.splitlines()) for caption in captions]
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return len(lines)


def _file_list(out: Path) -> list[dict[str, Any]]:
    """Relative path, size and SHA-256 of every file under ``out``, sorted by path."""
    files = []
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        data = path.read_bytes()
        relative = path.relative_to(out).as_posix()
        files.append({"path": relative, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    return files


def _check_positive(**values: int) -> None:
    """Raise ``ValueError`` unless every value is a positive integer."""
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def write_demo_data(
    out: Path,
    seed: int,
    train_shards: int,
    samples_per_shard: int,
    eval_size: int,
    image_size: int,
    overwrite: bool,
) -> dict[str, Any]:
    """Write the whole demo data set under ``out`` (see the module docstring); return a summary."""
    out = Path(out)
    _check_positive(train_shards=train_shards, samples_per_shard=samples_per_shard, eval_size=eval_size)
    if image_size < 16:
        raise ValueError(f"image_size must be at least 16, got {image_size}")
    _prepare_output(out, overwrite)
    corpus: list[str] = []
    paths = {
        "train": out / "train",
        "urban1k": out / "eval" / "urban1k",
        "sharegpt4v": out / "eval" / "sharegpt4v",
        "dci": out / "eval" / "dci",
        "docci": out / "eval" / "docci",
        "coco": out / "eval" / "coco",
        "sugar_crepe": out / "eval" / "sugar_crepe",
        "winoground": out / "eval" / "winoground",
        "zeroshot": out / "eval" / "zeroshot",
        "xm3600": out / "eval" / "xm3600",
        "mini-imagenet": out / "eval" / "mini-imagenet",
        "corpus": out / "corpus.txt",
        "manifest": out / "MANIFEST.json",
    }
    counts = {
        "train_shards": train_shards,
        "train_samples": _write_train(paths["train"], seed, train_shards, samples_per_shard, image_size, corpus),
        "urban1k": _write_urban1k(paths["urban1k"], seed, eval_size, image_size),
        "sharegpt4v": _write_sharegpt4v(paths["sharegpt4v"], seed, eval_size, image_size),
        "dci": _write_dci(paths["dci"], seed, eval_size, image_size),
        "docci": _write_docci(paths["docci"], seed, eval_size, image_size),
        "coco_images": _write_coco(paths["coco"], seed, eval_size, image_size),
        "coco_captions": eval_size * COCO_CAPTIONS_PER_IMAGE,
        "sugar_crepe": _write_sugar_crepe(paths["sugar_crepe"], seed, eval_size, image_size),
        "winoground": _write_winoground(paths["winoground"], seed, eval_size, image_size),
        "zeroshot": _write_zeroshot(paths["zeroshot"], seed, eval_size, image_size),
        "zeroshot_classes": len(SHAPES),
        "xm3600": _write_xm3600(paths["xm3600"], seed, eval_size, image_size),
        "xm3600_languages": len(LANGUAGES),
        "mini-imagenet": _write_fewshot(paths["mini-imagenet"], seed, image_size),
    }
    counts["corpus_lines"] = _write_corpus(paths["corpus"], corpus)
    files = _file_list(out)
    manifest = {
        "generator": "pipeline.demo",
        "seed": seed,
        "arguments": {
            "train_shards": train_shards,
            "samples_per_shard": samples_per_shard,
            "eval_size": eval_size,
            "image_size": image_size,
        },
        "counts": counts,
        "files": files,
    }
    paths["manifest"].write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return {
        "out": str(out),
        "seed": seed,
        "counts": counts,
        "paths": {name: str(path) for name, path in paths.items()},
        "files": len(files) + 1,  # the manifest itself included
    }
