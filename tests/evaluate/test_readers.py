"""The benchmark readers on hand-written files in each benchmark's released layout."""

import io
import json
import tarfile

import pytest
from PIL import Image

from fixtures.benchmarks import jpeg, write_classification
from pipeline.evaluate.benchmarks import FORMATS, Request
from pipeline.evaluate.readers import (
    LAYOUTS,
    SHAREGPT4V_FILE,
    read_dci,
    read_docci,
    read_fewshot_miniimagenet,
    read_flickr,
    read_karpathy,
    read_mscoco_captions,
    read_sharegpt4v,
    read_sugar_crepe,
    read_urban1k,
    read_wds_classification,
    read_winoground,
    read_xm3600,
)


def test_readers_parse_the_real_layouts(tmp_path):
    (tmp_path / "u" / "image").mkdir(parents=True)
    (tmp_path / "u" / "caption").mkdir()
    for i in (2, 10):
        (tmp_path / "u" / "image" / f"{i}.jpg").write_bytes(jpeg((i, 0, 0)))
        (tmp_path / "u" / "caption" / f"{i}.txt").write_text(f"caption {i}\nsecond line, not read\n")
    urban = read_urban1k(tmp_path / "u")
    assert urban.texts == ["caption 2", "caption 10"] and urban.text_to_image == [0, 1]  # first lines only
    assert [index for _, index in urban.images] == [0, 1] and urban.images[1][0].getpixel((4, 4))[0] > 5

    (tmp_path / "c" / "images").mkdir(parents=True)
    (tmp_path / "c" / "images" / "a.jpg").write_bytes(jpeg((1, 2, 3)))
    spec = {"images": [{"filepath": "images", "filename": "a.jpg", "split": "test",
                        "sentences": [{"raw": f"s{i}"} for i in range(5)]},
                       {"filepath": "images", "filename": "missing.jpg", "split": "train", "sentences": []}]}
    (tmp_path / "c" / "dataset_coco.json").write_text(json.dumps(spec))
    coco = read_karpathy(tmp_path / "c")
    assert len(coco.images) == 1 and coco.texts == [f"s{i}" for i in range(5)] and coco.text_to_image == [0] * 5
    (tmp_path / "f").mkdir()  # Flickr30k: its own file name, images in the root
    (tmp_path / "f" / "1000.jpg").write_bytes(jpeg((1, 2, 3)))
    flickr = {"images": [{"filename": "1000.jpg", "split": "test", "sentences": [{"raw": "A dog runs ."}]}],
              "dataset": "flickr30k"}
    (tmp_path / "f" / "dataset_flickr30k.json").write_text(json.dumps(flickr))
    assert read_karpathy(tmp_path / "f").texts == ["A dog runs ."]
    (tmp_path / "f" / "dataset_coco.json").write_text(json.dumps(spec))
    with pytest.raises(FileNotFoundError, match="expected exactly one of"):
        read_karpathy(tmp_path / "f")

    root = tmp_path / "z"
    (root / "test").mkdir(parents=True)
    (root / "classnames.txt").write_text("star\ncircle\n")
    (root / "zeroshot_classification_templates.txt").write_text("a photo of a {c}.\n")
    (root / "test" / "nshards.txt").write_text("1\n")
    with tarfile.open(root / "test" / "0.tar", "w") as tar:
        for key, cls in (("s0", 1), ("s1", 0)):
            for ext, data in (("jpg", jpeg((9, 9, 9))), ("cls", str(cls).encode())):
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    zs = read_wds_classification(root)
    assert [label for _, label in zs.images] == [1, 0]
    assert zs.classnames == ["star", "circle"] and zs.templates == ["a photo of a {c}."]


def test_long_caption_readers_parse_the_released_layouts(tmp_path):
    # ShareGPT4V: a JSON array, the first 1000 entries, images under sub-trees of the root
    root = tmp_path / "sharegpt4v"
    entries = []
    for i in range(1003):
        image = f"{'coco/train2017' if i % 2 else 'sam/images'}/{i}.jpg"
        entries.append({"id": str(i), "image": image,
                        "conversations": [{"from": "human", "value": "<image>\nDescribe."},
                                          {"from": "gpt", "value": f"Line one of {i}.\nLine two."}]})
        if i < 1000 or i == 1002:
            (root / image).parent.mkdir(parents=True, exist_ok=True)
            (root / image).write_bytes(jpeg((i % 256, 0, 0)))
    (root / SHAREGPT4V_FILE).write_text(json.dumps(entries))
    share = read_sharegpt4v(root)
    assert len(share.texts) == len(share.images) == 1000 and share.texts[7] == "Line one of 7. Line two."
    assert share.images.paths[1] == root / "coco/train2017/1.jpg"

    # DCI: every split's entries, annotation JSONs naming the photo, the extended caption cleaned
    root = tmp_path / "densely_captioned_images"
    (root / "annotations").mkdir(parents=True)
    (root / "photos").mkdir()
    (root / "splits.json").write_text(json.dumps({"train": ["a.json"], "valid": [], "test": ["b.json"]}))
    for name, photo, short, extra in (("a.json", "sa_1.jpg", "A dog.", "It is brown.</s>It sits\non grass."),
                                      ("b.json", "sa_2.jpg", "Two cats", "")):
        (root / "annotations" / name).write_text(json.dumps({"image": photo, "short_caption": short,
                                                             "extra_caption": extra, "mask_data": {}}))
        (root / "photos" / photo).write_bytes(jpeg((9, 9, 9)))
    dci = read_dci(root)
    assert dci.texts == ["A dog. It is brown. It sits. on grass", "Two cats"] and dci.text_to_image == [0, 1]

    # DOCCI: the test split of the jsonlines file, in file order
    root = tmp_path / "docci"
    (root / "images").mkdir(parents=True)
    lines = []
    for i, split in enumerate(["train", "test", "qual_dev", "test"]):
        lines.append(json.dumps({"example_id": f"{split}_{i}", "split": split, "image_file": f"{split}_{i}.jpg",
                                 "description": f"Picture {i}.\nMore."}))
        (root / "images" / f"{split}_{i}.jpg").write_bytes(jpeg((i, i, i)))
    (root / "docci_descriptions.jsonlines").write_text("\n".join(lines) + "\n")
    docci = read_docci(root)
    assert docci.texts == ["Picture 1. More.", "Picture 3. More."]
    assert [p.name for p in docci.images.paths] == ["test_1.jpg", "test_3.jpg"]


def test_xm3600_is_read_per_language_by_clip_benchmarks_builder_without_touching_the_data(tmp_path):
    root = tmp_path / "xm3600"
    (root / "images").mkdir(parents=True)
    lines = []
    for i, key in enumerate(["aa01", "bb02", "cc03"]):
        lines.append(json.dumps({"image/key": key, "en": {"caption": [f"a photo {i}", "second"]},
                                 "de": {"caption": [f"ein Foto {i}"]}}, ensure_ascii=False))
        if key != "bb02":  # a missing image is skipped, as CLIP_benchmark does, and counted
            (root / "images" / f"{key}.jpg").write_bytes(jpeg((i * 50, 0, 0)))
    (root / "captions.jsonl").write_text("\n".join(lines) + "\n")
    before = sorted(p.name for p in root.rglob("*"))
    german = read_xm3600(root, "de")
    assert german.texts == ["ein Foto 0", "ein Foto 2"] and german.text_to_image == [0, 1]
    assert german.skipped == {"missing_image": 1, "text_of_skipped_image": 1}
    assert german.images[1][0].getpixel((4, 4))[0] > 80 and german.images[1][1] == 1
    assert read_xm3600(root, "en").texts == ["a photo 0", "a photo 2"]
    assert sorted(p.name for p in root.rglob("*")) == before  # the builder's annotation files went elsewhere
    with pytest.raises(ValueError, match="language 'xx'"):
        read_xm3600(root, "xx")
    with pytest.raises(FileNotFoundError, match=r"captions.jsonl: missing .* expected layout"):
        read_xm3600(tmp_path, "en")


def test_coco_and_flickr_are_read_by_clip_benchmarks_builders(tmp_path):
    """COCO and Flickr Karpathy test sets in CLIP_benchmark's annotation files, every caption of an image kept."""
    coco = tmp_path / "mscoco"
    (coco / "val2014").mkdir(parents=True)
    names = {7: "COCO_val2014_000000000007.jpg", 3: "COCO_val2014_000000000003.jpg"}
    for image_id, name in names.items():
        (coco / "val2014" / name).write_bytes(jpeg((image_id * 30, 0, 0)))
    annotations = [{"id": 1, "image_id": 7, "caption": " a red star. "}, {"id": 2, "image_id": 3, "caption": "a dot"},
                   {"id": 3, "image_id": 7, "caption": "a star"}]
    (coco / "coco_test_karpathy.json").write_text(json.dumps(
        {"images": [{"id": i, "file_name": n} for i, n in names.items()], "annotations": annotations}))
    data = read_mscoco_captions(coco)
    # CLIP_benchmark orders images by id; captions keep the file's order per image
    assert data.texts == ["a dot", "a red star.", "a star"] and data.text_to_image == [0, 1, 1]
    assert data.images[1][0].getpixel((4, 4))[0] > 150 and data.images[1][1] == 1
    (coco / "val2014" / names[3]).unlink()
    with pytest.raises(FileNotFoundError, match=r"COCO_val2014_000000000003.jpg: missing .* coco_test_karpathy"):
        read_mscoco_captions(coco)

    flickr = tmp_path / "flickr30k"
    flickr.mkdir()
    for name in ("1000.jpg", "2000.jpg"):
        (flickr / name).write_bytes(jpeg((int(name[0]) * 80, 0, 0)))
    (flickr / "flickr30k_test_karpathy.txt").write_text(
        "image,caption\n1000.jpg,A dog runs, fast .\n2000.jpg,Two birds .\n1000.jpg,A brown dog .\n")
    data = read_flickr(flickr, "flickr30k")
    assert data.texts == ["A dog runs, fast .", "A brown dog .", "Two birds ."] and data.text_to_image == [0, 0, 1]
    assert data.images[1][0].getpixel((4, 4))[0] > 120
    assert FORMATS["flickr30k"].read(Request(flickr)).texts == data.texts
    with pytest.raises(FileNotFoundError, match=r"flickr8k_test_karpathy.txt: missing .* flickr8k_test_karpathy"):
        FORMATS["flickr8k"].read(Request(flickr))
    (flickr / "2000.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"2000.jpg: missing \(an image of flickr30k_test_karpathy.txt\)"):
        read_flickr(flickr, "flickr30k")


def test_compositionality_readers_parse_the_released_layouts(tmp_path):
    root = tmp_path / "sugar_crepe"
    (root / "val2017").mkdir(parents=True)
    for subset in ("swap_att", "replace_rel"):
        entries = {}
        for i in (0, 3):  # indices may be non-contiguous
            name = f"{subset}{i}.jpg"
            (root / "val2017" / name).write_bytes(jpeg((i * 60, 0, 0)))
            entries[str(i)] = {"filename": name, "caption": f"{subset} right {i}", "negative_caption": f"wrong {i}"}
        (root / f"{subset}.json").write_text(json.dumps(entries))
    crepe = read_sugar_crepe(root, "swap_att")
    assert crepe.positives == ["swap_att right 0", "swap_att right 3"] and crepe.negatives == ["wrong 0", "wrong 3"]
    assert crepe.images[1][1] == 1 and crepe.images[1][0].getpixel((4, 4))[0] > 150
    with pytest.raises(FileNotFoundError, match=r"add_att.json: missing \(the add_att subset\); expected layout"):
        read_sugar_crepe(root, "add_att")

    root = tmp_path / "winoground"
    (root / "images").mkdir(parents=True)
    lines = []
    for i in range(2):
        lines.append(json.dumps({"id": i, "caption_0": f"a {i}", "caption_1": f"b {i}", "image_0": f"ex_{i}_img_0",
                                 "image_1": f"ex_{i}_img_1", "tag": "Object"}))
        for j in range(2):
            Image.new("RGB", (8, 8), (i, j, 0)).save(root / "images" / f"ex_{i}_img_{j}.png")
    (root / "examples.jsonl").write_text("\n".join(lines) + "\n")
    wino = read_winoground(root)
    assert wino.captions_0 == ["a 0", "a 1"] and wino.captions_1 == ["b 0", "b 1"]
    assert [index for _, index in wino.images] == [0, 1, 2, 3] and wino.images[3][0].getpixel((0, 0)) == (1, 1, 0)


def test_multilingual_imagenet_takes_clip_benchmarks_class_names_and_templates(tmp_path):
    from pipeline.evaluate.readers import read_wds_multilingual

    write_classification(tmp_path / "inet", 4, side=16)
    italian = read_wds_multilingual(tmp_path / "inet", "it")
    assert len(italian.classnames) == 1000 and len(italian.templates) == 49
    assert "una brutta foto di {c}" in italian.templates and all("{c}" in t for t in italian.templates)
    assert [label for _, label in italian.images] == [0, 1, 0, 1]
    assert read_wds_multilingual(tmp_path / "inet", "en").classnames[0] == "tench"
    with pytest.raises(ValueError, match="no classnames in language 'xx'"):
        read_wds_multilingual(tmp_path / "inet", "xx")


def test_the_schema_the_cli_and_the_format_table_list_the_same_formats():
    from pipeline.cli import build_parser
    from pipeline.settings import allowed

    formats = allowed("benchmark", "format")
    cli = next(a for a in build_parser()._subparsers._group_actions[0].choices["evaluate"]._actions
               if a.dest == "format")
    assert tuple(cli.choices) == formats
    assert set(FORMATS) == set(formats) == set(LAYOUTS)


def test_a_missing_image_or_key_names_the_file_and_the_layout(tmp_path):
    (tmp_path / "docci_descriptions.jsonlines").write_text(json.dumps({"split": "test", "image_file": "x.jpg",
                                                                       "description": "d"}) + "\n")
    with pytest.raises(FileNotFoundError, match=r"images/x.jpg: missing .* docci_descriptions.jsonlines \(example"):
        read_docci(tmp_path)
    (tmp_path / "docci_descriptions.jsonlines").write_text(json.dumps({"split": "test", "description": "d"}) + "\n")
    with pytest.raises(KeyError, match=r"docci_descriptions.jsonlines line 1: no key 'image_file'"):
        read_docci(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"splits.json: missing"):
        read_dci(tmp_path)


def test_missing_caption_names_the_file(tmp_path):
    (tmp_path / "image").mkdir()
    (tmp_path / "image" / "1.jpg").write_bytes(jpeg((0, 0, 0)))
    with pytest.raises(FileNotFoundError, match=r"caption/1.txt: missing .* expected layout: image/<stem>.jpg"):
        read_urban1k(tmp_path)


def test_mini_imagenet_is_read_with_its_class_names_or_clip_benchmark_imagenet_names(tmp_path):
    (tmp_path / "images").mkdir()
    for name in ("n0193011200000001.jpg", "n0211006300000002.jpg"):
        (tmp_path / "images" / name).write_bytes(jpeg((9, 9, 9)))
    (tmp_path / "test.csv").write_text("filename,label\nn0193011200000001.jpg,n01930112\n"
                                       "n0211006300000002.jpg,n02110063\n")
    data = read_fewshot_miniimagenet(tmp_path)  # no classnames.json: CLIP_benchmark's names by synset
    assert data.labels == ["n01930112", "n02110063"] and [index for _, index in data.images] == [0, 1]
    assert data.classnames == {"n01930112": "nematode", "n02110063": "Alaskan Malamute"}
    (tmp_path / "classnames.json").write_text(json.dumps({"n01930112": "worm", "n02110063": "malamute"}))
    assert read_fewshot_miniimagenet(tmp_path).classnames == {"n01930112": "worm", "n02110063": "malamute"}
    (tmp_path / "classnames.json").write_text(json.dumps({"n01930112": "dog", "n02110063": "dog"}))
    with pytest.raises(ValueError, match="classnames.json: two classes of .*test.csv share a name"):
        read_fewshot_miniimagenet(tmp_path)
    (tmp_path / "classnames.json").write_text(json.dumps({"n01930112": "worm"}))
    with pytest.raises(ValueError, match=r"labels \['n02110063'\] have no class name in .*classnames.json"):
        read_fewshot_miniimagenet(tmp_path)


def test_mini_imagenet_errors_name_the_file_and_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"test.csv: missing \(the test split\); expected layout: images/"):
        read_fewshot_miniimagenet(tmp_path)
    (tmp_path / "test.csv").write_text("image,class\na.jpg,n01930112\n")
    with pytest.raises(ValueError, match=r"test.csv: header \['image', 'class'\], expected filename,label"):
        read_fewshot_miniimagenet(tmp_path)
    (tmp_path / "test.csv").write_text("filename,label\na.jpg,n01930112\n")
    with pytest.raises(FileNotFoundError, match=r"images/a.jpg: missing \(an image of test.csv\)"):
        read_fewshot_miniimagenet(tmp_path)
    (tmp_path / "test.csv").write_text("filename,label\na.jpg,x99\n")
    with pytest.raises(ValueError, match=r"labels \['x99'\] have no class name in CLIP_benchmark's ImageNet"):
        read_fewshot_miniimagenet(tmp_path)
