"""Tests for the synthetic demo data generator (``pipeline.demo``)."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import random
import re
import tarfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from pipeline.demo.captions import (
    LANGUAGES,
    LEXICONS,
    alt_text,
    class_name,
    long_caption,
    short_captions,
    translate_long,
    translate_short,
)
from pipeline.demo.scenes import ATMOSPHERES, PATTERNS, SHAPES, SIZES, Scene, SceneObject, render, sample_scene
from pipeline.demo.writers import FEWSHOT_PER_CLASS, write_demo_data

ARGS = {"seed": 7, "train_shards": 2, "samples_per_shard": 5, "eval_size": 13, "image_size": 32}
TINY_ARGS = {"seed": 1, "train_shards": 1, "samples_per_shard": 2, "eval_size": 2, "image_size": 16}
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
TRANSLATED = ("de", "fr", "es", "it")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo data set written once for the whole module."""
    out = tmp_path_factory.mktemp("demo") / "data"
    write_demo_data(out, overwrite=False, **ARGS)
    return out


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def tar_members(path: Path) -> tuple[list[tarfile.TarInfo], dict[str, bytes]]:
    """Headers and contents of a tar file."""
    with tarfile.open(path) as tar:
        infos = tar.getmembers()
        return infos, {info.name: tar.extractfile(info).read() for info in infos}


def train_records(demo: Path) -> list[dict]:
    """All training JSON records, in shard order."""
    records = []
    for shard in sorted((demo / "train").glob("*.tar")):
        _, members = tar_members(shard)
        records += [json.loads(data) for name, data in members.items() if name.endswith(".json")]
    return records


def sentences(text: str) -> list[str]:
    """Split a caption into sentences."""
    return SENTENCE_END.split(text.strip())


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute per-channel pixel difference of two images."""
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def changed_fraction(a: Image.Image, b: Image.Image, threshold: int = 25) -> float:
    """Fraction of pixels whose (luma of the) difference exceeds ``threshold``."""
    changed = ImageChops.difference(a, b).convert("L").point(lambda v: 255 if v > threshold else 0)
    return changed.histogram()[255] / (a.width * a.height)


def fixed_scene(**changes: object) -> Scene:
    """A hand-made scene: large red striped star left of a small blue dotted circle, falling at sunset."""
    scene = Scene(
        main=SceneObject("star", "red", "striped", "large"),
        minor=SceneObject("circle", "blue", "dotted", "small"),
        layout="left",
        atmosphere="sunset",
        action="falling",
        tilt=0.0,
        jitter=(0.0, 0.0),
        detail_seed=0,
    )
    return replace(scene, **changes)


# ------------------------------------------------------------- determinism --


def test_same_seed_gives_byte_identical_files(demo: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    write_demo_data(again, overwrite=False, **ARGS)
    first, second = tree(demo), tree(again)
    assert sorted(first) == sorted(second)
    assert [path for path in first if first[path] != second[path]] == []


def test_other_seed_gives_different_data(demo: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_demo_data(other, overwrite=False, **{**ARGS, "seed": ARGS["seed"] + 1})
    first, second = tree(demo), tree(other)
    assert len(first) == len(second)
    for path in ("train/shard-00000.tar", "corpus.txt", "eval/urban1k/caption/1.txt", "eval/coco/dataset_coco.json"):
        assert first[path] != second[path], path


# ---------------------------------------------------------------- formats --


def test_train_shards_follow_img2dataset_layout(demo: Path) -> None:
    shards = sorted(p.name for p in (demo / "train").iterdir())
    assert shards == ["shard-00000.tar", "shard-00001.tar"]
    keys = []
    for shard in shards:
        infos, members = tar_members(demo / "train" / shard)
        assert all(i.mtime == 0 and i.uid == 0 and i.gid == 0 and i.uname == "" and i.gname == "" for i in infos)
        shard_keys = sorted({name.split(".")[0] for name in members})
        assert len(shard_keys) == ARGS["samples_per_shard"]
        for key in shard_keys:
            assert {f"{key}.jpg", f"{key}.txt", f"{key}.json"} <= set(members)
            record = json.loads(members[f"{key}.json"])
            image = Image.open(io.BytesIO(members[f"{key}.jpg"]))
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (32, 32))
            assert record["key"] == key
            assert members[f"{key}.txt"].decode() == record["caption"]
            assert len(record["long"]) == 2 and len(set(record["long"])) == 2
            assert len(record["short"]) == 2 and len(set(record["short"])) == 2
            assert set(record["translations"]) == set(TRANSLATED)
            assert all(t["short"] and t["long"] for t in record["translations"].values())
            assert all(isinstance(v, str) for v in record["scene"].values())
            assert record["scene"]["main_shape"] in SHAPES
        keys += shard_keys
    total = ARGS["train_shards"] * ARGS["samples_per_shard"]
    assert keys == [f"{i:09d}" for i in range(total)]
    assert not list(demo.rglob("*.tmp"))


def test_urban1k_layout(demo: Path) -> None:
    root = demo / "eval" / "urban1k"
    stems = {p.stem for p in (root / "image").glob("*.jpg")}
    assert stems == {p.stem for p in (root / "caption").glob("*.txt")}
    assert stems == {str(i) for i in range(1, ARGS["eval_size"] + 1)}
    for stem in stems:
        assert len((root / "caption" / f"{stem}.txt").read_text(encoding="utf-8").split()) >= 60


def test_coco_karpathy_layout(demo: Path) -> None:
    root = demo / "eval" / "coco"
    data = json.loads((root / "dataset_coco.json").read_text(encoding="utf-8"))
    assert data["dataset"] == "coco"
    assert [image["imgid"] for image in data["images"]] == list(range(ARGS["eval_size"]))
    sentids = []
    for image in data["images"]:
        assert image["split"] == "test" and image["filepath"] == "val2014"
        assert (root / image["filepath"] / image["filename"]).is_file()
        raws = [s["raw"] for s in image["sentences"]]
        assert len(raws) == 5 and len(set(raws)) == 5
        for sentence in image["sentences"]:
            assert sentence["imgid"] == image["imgid"]
            assert sentence["tokens"] == re.findall(r"[a-z0-9]+", sentence["raw"].lower())
        assert image["sentids"] == [s["sentid"] for s in image["sentences"]]
        sentids += image["sentids"]
    assert len(sentids) == len(set(sentids)) == 5 * ARGS["eval_size"]


def test_zeroshot_clip_benchmark_layout(demo: Path) -> None:
    root = demo / "eval" / "zeroshot"
    classnames = (root / "classnames.txt").read_text(encoding="utf-8").splitlines()
    assert classnames == list(SHAPES)
    templates = (root / "zeroshot_classification_templates.txt").read_text(encoding="utf-8").splitlines()
    assert len(templates) >= 4 and all("{c}" in t for t in templates)
    assert (root / "dataset_type.txt").read_text(encoding="utf-8").strip() == "classification"
    shards = sorted((root / "test").glob("*.tar"))
    assert int((root / "test" / "nshards.txt").read_text()) == len(shards)
    assert shards[0].name == "0.tar"
    labels = {}
    for shard in shards:
        _, members = tar_members(shard)
        for name, data in members.items():
            key, ext = name.split(".")
            if ext == "cls":
                labels[key] = int(data.decode("ascii"))
                assert Image.open(io.BytesIO(members[f"{key}.jpg"])).size == (32, 32)
    assert len(labels) == ARGS["eval_size"]
    per_class = Counter(labels.values())
    assert set(per_class) == set(range(len(SHAPES)))
    assert max(per_class.values()) - min(per_class.values()) <= 1


def test_xm3600_layout(demo: Path) -> None:
    root = demo / "eval" / "xm3600"
    lines = (root / "captions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == ARGS["eval_size"]
    for line in lines:
        entry = json.loads(line)
        image_id = entry["image/key"]
        assert re.fullmatch(r"[0-9a-f]{16}", image_id)
        assert (root / "images" / f"{image_id}.jpg").is_file()
        assert set(entry) == {"image/key", *LANGUAGES}
        for lang in LANGUAGES:
            captions = entry[lang]["caption"]
            tokenized = entry[lang]["caption/tokenized"]
            assert len(captions) == len(tokenized) >= 1
            assert entry[lang]["caption/tokenized/lowercase"] == [t.lower() for t in tokenized]
            assert [t.replace(" ", "") for t in tokenized] == [c.replace(" ", "") for c in captions]
        assert all(not set(entry[lang]["caption"]) & set(entry["en"]["caption"]) for lang in TRANSLATED)


def test_mini_imagenet_layout_holds_every_shape_class_with_its_name(demo: Path) -> None:
    from pipeline.evaluate.readers import read_fewshot_miniimagenet

    data = read_fewshot_miniimagenet(demo / "eval" / "mini-imagenet")
    assert sorted(data.classnames.values()) == sorted(SHAPES)
    assert Counter(data.labels) == {label: FEWSHOT_PER_CLASS for label in data.classnames}
    assert all(image.size == (ARGS["image_size"],) * 2 for image, _ in data.images)
    rows = (demo / "eval" / "mini-imagenet" / "test.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert all(re.fullmatch(r"(d\d{8})\d{8}\.jpg,\1", row) for row in rows)  # MiniImageNet's file names


def test_corpus_holds_the_training_captions_and_no_evaluation_caption(demo: Path) -> None:
    lines = (demo / "corpus.txt").read_text(encoding="utf-8").splitlines()
    assert all(line.strip() for line in lines)
    corpus = set(lines)
    expected = set()
    for record in train_records(demo):
        expected |= {record["caption"], *record["long"], *record["short"]}
        expected |= {t[kind] for t in record["translations"].values() for kind in ("short", "long")}
    assert corpus == expected
    held_out = {p.read_text(encoding="utf-8") for p in (demo / "eval" / "urban1k" / "caption").glob("*.txt")}
    coco = json.loads((demo / "eval" / "coco" / "dataset_coco.json").read_text(encoding="utf-8"))
    held_out |= {s["raw"] for image in coco["images"] for s in image["sentences"]}
    for line in (demo / "eval" / "xm3600" / "captions.jsonl").read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        held_out |= {c for lang in LANGUAGES for c in entry[lang]["caption"]}
    assert len(held_out) > 100 and not held_out & corpus


def test_manifest_lists_every_file(demo: Path) -> None:
    manifest = json.loads((demo / "MANIFEST.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == ARGS["seed"]
    assert manifest["arguments"] == {k: v for k, v in ARGS.items() if k != "seed"}
    files = {f["path"]: f for f in manifest["files"]}
    on_disk = tree(demo)
    assert set(files) == set(on_disk) - {"MANIFEST.json"}
    for path, entry in files.items():
        assert entry["bytes"] == len(on_disk[path])
        assert entry["sha256"] == hashlib.sha256(on_disk[path]).hexdigest()
    counts = manifest["counts"]
    assert counts["train_samples"] == 10 and counts["coco_captions"] == 65
    assert counts["corpus_lines"] == len(on_disk["corpus.txt"].decode().splitlines())


def test_long_caption_sets_are_read_by_the_benchmark_readers(demo: Path) -> None:
    from pipeline.evaluate.readers import read_dci, read_docci, read_sharegpt4v

    long_captions = {p.read_text(encoding="utf-8") for p in (demo / "eval" / "urban1k" / "caption").glob("*.txt")}
    for name, read in (("sharegpt4v", read_sharegpt4v), ("dci", read_dci), ("docci", read_docci)):
        benchmark = read(demo / "eval" / name)
        assert len(benchmark.texts) == len(benchmark.images) == ARGS["eval_size"], name
        assert all(len(text.split()) > 15 for text in benchmark.texts), name  # long captions
        assert not set(benchmark.texts) & long_captions, name  # held-out scenes of their own
        image, index = benchmark.images[0]
        assert image.size == (ARGS["image_size"], ARGS["image_size"]) and index == 0


def _words(caption: str) -> list[str]:
    """The caption's words without punctuation and indefinite articles (which follow the next word's sound)."""
    return sorted(w.strip(".,").lower() for w in caption.split() if w.lower() not in ("a", "an"))


def test_compositionality_sets_are_read_by_the_benchmark_readers(demo: Path) -> None:
    from pipeline.demo.compositional import PERTURBATIONS
    from pipeline.evaluate.readers import read_sugar_crepe, read_winoground

    for subset in PERTURBATIONS:
        crepe = read_sugar_crepe(demo / "eval" / "sugar_crepe", subset)
        assert len(crepe.positives) == len(crepe.images) == ARGS["eval_size"]
        pairs = list(zip(crepe.positives, crepe.negatives))
        assert all(p != n for p, n in pairs), subset
        if subset.startswith("swap"):  # a swap keeps the words, in another order
            assert all(_words(p) == _words(n) for p, n in pairs), subset
    wino = read_winoground(demo / "eval" / "winoground")
    assert len(wino.captions_0) == ARGS["eval_size"] and len(wino.images) == 2 * ARGS["eval_size"]
    assert all(_words(a) == _words(b) and a != b for a, b in zip(wino.captions_0, wino.captions_1))
    assert wino.images[0][0].tobytes() != wino.images[1][0].tobytes()


def test_zeroshot_set_has_a_linear_probe_train_split_of_other_scenes(demo: Path) -> None:
    from pipeline.evaluate.readers import read_wds_linear_probe

    probe = read_wds_linear_probe(demo / "eval" / "zeroshot")
    train = [(image.tobytes(), label) for image, label in probe.train]
    test = [(image.tobytes(), label) for image, label in probe.test]
    assert len(train) == 2 * len(test) == 2 * ARGS["eval_size"]
    assert {label for _, label in train} == set(range(len(probe.classnames)))
    assert not {image for image, _ in train} & {image for image, _ in test}


def test_the_demo_coco_set_reads_the_same_through_clip_benchmark_and_the_karpathy_file(demo: Path) -> None:
    from pipeline.evaluate.readers import read_karpathy, read_mscoco_captions

    builder, karpathy = read_mscoco_captions(demo / "eval" / "coco"), read_karpathy(demo / "eval" / "coco")
    assert len(builder.images) == len(karpathy.images) == ARGS["eval_size"]
    assert builder.texts == karpathy.texts and builder.text_to_image == karpathy.text_to_image
    assert builder.images[3][0].tobytes() == karpathy.images[3][0].tobytes()


def test_clip_benchmarks_own_webdataset_builder_reads_the_demo_classification_set(demo: Path) -> None:
    from clip_benchmark.datasets.builder import build_dataset

    dataset = build_dataset("wds/demo", root=str(demo / "eval" / "zeroshot"), split="test", download=False)
    names = (demo / "eval" / "zeroshot" / "classnames.txt").read_text().split("\n")
    assert dataset.classes == [c.strip() for c in names if c.strip()]
    assert len(dataset.templates) > 0 and all("{c}" in t for t in dataset.templates)
    labels = [int(label) for _, label in dataset]
    assert len(labels) == ARGS["eval_size"] and max(labels) < len(dataset.classes)


def test_eval_images_are_held_out_from_training(demo: Path) -> None:
    train_images = set()
    for shard in (demo / "train").glob("*.tar"):
        _, members = tar_members(shard)
        train_images |= {data for name, data in members.items() if name.endswith(".jpg")}
    eval_images = {p.read_bytes() for p in (demo / "eval").rglob("*.jpg")}
    # urban1k, sharegpt4v, dci, docci, coco, xm3600, 5 SugarCrepe subsets (Winoground's are PNG) and the few-shot
    # set's per class: all distinct
    assert len(eval_images) == 11 * ARGS["eval_size"] + FEWSHOT_PER_CLASS * len(SHAPES)
    assert not train_images & eval_images


# ------------------------------------------------------------- output dir --


def test_refuses_non_empty_directory(tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=re.escape(str(out))):
        write_demo_data(out, overwrite=False, **TINY_ARGS)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_overwrite_replaces_contents(tmp_path: Path) -> None:
    out = tmp_path / "busy"
    (out / "old").mkdir(parents=True)
    (out / "old" / "stale.txt").write_text("stale")
    summary = write_demo_data(out, overwrite=True, **TINY_ARGS)
    assert not (out / "old").exists()
    assert (out / "MANIFEST.json").is_file()
    assert summary["counts"]["train_samples"] == 2
    assert summary["files"] == len(tree(out))


def test_empty_existing_directory_is_accepted(tmp_path: Path) -> None:
    write_demo_data(tmp_path, overwrite=False, **TINY_ARGS)
    assert (tmp_path / "train" / "shard-00000.tar").is_file()


# ---------------------------------------------------------------- captions --


def test_long_captions_cover_every_facet_within_bounds() -> None:
    first_words = set()
    for i in range(200):
        scene = sample_scene(random.Random(i))
        caption = long_caption(scene, random.Random(1000 + i))
        lower = caption.lower()
        assert 60 <= len(caption.split()) <= 250, caption
        assert 4 <= len(sentences(caption)) <= 8, caption
        for word in (scene.main.shape, scene.minor.shape, scene.atmosphere, scene.main.colour, scene.minor.colour):
            assert word in lower, (word, caption)
        assert scene.attributes()["dominant_colour"] in lower
        first_words.add(" ".join(caption.split()[:3]))
    assert len(first_words) >= 3


def test_captions_are_deterministic_given_the_rng() -> None:
    scene = sample_scene(random.Random(5))
    for make in (long_caption, short_captions, alt_text, lambda s, r: translate_long(s, "de", r)):
        assert make(scene, random.Random(9)) == make(scene, random.Random(9))
    assert long_caption(scene, random.Random(9)) != long_caption(scene, random.Random(10))


def test_short_captions_are_distinct_single_sentences() -> None:
    for i in range(200):
        scene = sample_scene(random.Random(i))
        captions = short_captions(scene, random.Random(i), n=5)
        assert len(set(captions)) == 5
        for caption in captions:
            assert len(sentences(caption)) == 1 and caption.endswith(".")
            assert scene.main.shape in caption.lower() and scene.minor.shape in caption.lower()


def test_alt_text_is_short_and_noisy() -> None:
    texts = [alt_text(sample_scene(random.Random(i)), random.Random(i)) for i in range(200)]
    assert all(0 < len(re.split(r"[ _-]", t)) <= 12 for t in texts)
    assert len(set(texts)) == len(texts)
    scenes = [sample_scene(random.Random(i)) for i in range(200)]
    assert any(s.main.shape not in t for s, t in zip(scenes, texts))  # facets are sometimes missing


def test_example_short_caption_reads_naturally() -> None:
    captions = short_captions(fixed_scene(), random.Random(0), n=20)
    assert any(re.search(r"star (falling|tumbling down|dropping) (to the left of|on the left-hand side of|just left of) a", c) for c in captions)


def test_class_name_is_the_main_shape() -> None:
    scene = sample_scene(random.Random(3), main_shape="heart")
    assert class_name(scene) == "heart" and scene.minor.shape != "heart"


# ------------------------------------------------------------ translations --


def test_translations_exist_and_differ_from_english() -> None:
    assert len(LEXICONS) >= 4 and set(LEXICONS) <= set(LANGUAGES)
    for i in range(50):
        scene = sample_scene(random.Random(i))
        english = {short_captions(scene, random.Random(i), 1)[0], long_caption(scene, random.Random(i))}
        for lang in TRANSLATED:
            short = translate_short(scene, lang, random.Random(i))
            long = translate_long(scene, lang, random.Random(i))
            assert short not in english and long not in english
            assert len(sentences(short)) == 1 and 4 <= len(sentences(long)) <= 8
            noun = LEXICONS[lang].nouns[scene.main.shape][0]
            assert noun.lower() in short.lower() and noun.lower() in long.lower()


@pytest.mark.parametrize(
    ("lang", "phrases"),
    [
        ("de", ("ein großer roter gestreifter Stern", "links von einem kleinen blauen Kreis", "Der Stern befindet sich links vom Kreis")),
        ("fr", ("une grande étoile rouge rayée", "à gauche d'un petit cercle bleu", "L'étoile se trouve à gauche du cercle")),
        ("es", ("una gran estrella roja rayada", "a la izquierda de un pequeño círculo azul", "La estrella se encuentra a la izquierda del círculo")),
        ("it", ("una grande stella rossa a righe", "a sinistra di un piccolo cerchio blu", "La stella si trova a sinistra del cerchio")),
    ],
)
def test_translations_agree_in_gender_and_case(lang: str, phrases: tuple[str, ...]) -> None:
    scene = fixed_scene()
    texts = " ".join(
        translate_short(scene, lang, random.Random(i)) + " " + translate_long(scene, lang, random.Random(i)) for i in range(20)
    ).lower()
    for phrase in phrases:
        assert phrase.lower() in texts, phrase


def test_unknown_language_is_rejected() -> None:
    with pytest.raises(ValueError, match="xx"):
        translate_short(fixed_scene(), "xx", random.Random(0))


# --------------------------------------------------------------- rendering --


def test_render_sizes_and_mode() -> None:
    scene = sample_scene(random.Random(0))
    for size in (64, 224):
        image = render(scene, size)
        assert (image.mode, image.size) == ("RGB", (size, size))
    assert render(scene, 64).tobytes() == render(scene, 64).tobytes()


def test_at_least_ten_shapes_render_distinctly() -> None:
    assert len(SHAPES) >= 10
    minor = SceneObject("circle", "blue", "solid", "tiny")
    images = {s: render(fixed_scene(main=SceneObject(s, "red", "solid", "large"), minor=minor), 64) for s in SHAPES}
    for a, b in itertools.combinations(SHAPES, 2):
        assert changed_fraction(images[a], images[b]) > 0.01, (a, b)


@pytest.mark.parametrize(("size", "min_changed"), [("large", 0.03), ("small", 0.01)])
def test_patterns_are_visible_at_64_px(size: str, min_changed: float) -> None:
    images = {p: render(fixed_scene(main=SceneObject("square", "red", p, size)), 64) for p in PATTERNS}
    for a, b in itertools.combinations(PATTERNS, 2):
        assert changed_fraction(images[a], images[b]) > min_changed, (a, b)


def test_atmospheres_set_the_background() -> None:
    brightness = {a: sum(ImageStat.Stat(render(fixed_scene(atmosphere=a), 64)).mean) / 3 for a in ATMOSPHERES}
    assert brightness["night"] < 60 < brightness["day"]
    images = [render(fixed_scene(atmosphere=a), 64) for a in ATMOSPHERES]
    assert all(mean_difference(a, b) > 10 for a, b in itertools.combinations(images, 2))


def test_minor_object_is_smaller_and_different() -> None:
    for i in range(200):
        scene = sample_scene(random.Random(i))
        assert scene.minor.shape != scene.main.shape and scene.minor.colour != scene.main.colour
        assert SIZES.index(scene.minor.size) < SIZES.index(scene.main.size)
