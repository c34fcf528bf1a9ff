import io
import json
import tarfile

import pytest
import torch
from PIL import Image

from pipeline.cli import main
from pipeline.evaluate.benchmarks import FORMATS, Request
from pipeline.evaluate.readers import (
    LAYOUTS,
    SHAREGPT4V_FILE,
    read_dci,
    read_docci,
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
from pipeline.evaluate.retrieval import recall_at_k
from pipeline.evaluate.zeroshot import classification_metrics
from pipeline.report.stage import run as write_report


def test_recall_with_several_captions_per_image():
    images = torch.eye(3)
    # captions 0,1 belong to image 0; caption 2 to image 1; caption 3 to image 2
    texts = torch.tensor([[1.0, 0, 0], [0, 0.2, 1.0], [0, 1.0, 0], [0, 1.0, 0.1]])
    texts = torch.nn.functional.normalize(texts, dim=-1)
    m = recall_at_k(images, texts, [0, 0, 1, 2], ks=(1, 2))
    assert m["image_retrieval_recall@1"] == pytest.approx(2 / 4)  # captions 0 and 2 rank their image first
    assert m["image_retrieval_recall@2"] == pytest.approx(3 / 4)
    assert m["text_retrieval_recall@1"] == pytest.approx(2 / 3)  # image 2's best text is caption 2 (image 1's)
    assert m["text_retrieval_recall@2"] == pytest.approx(1.0)


def test_classification_metrics():
    logits = torch.tensor([[3.0, 1, 0, 0, 0, 0], [0, 2, 3, 0, 0, 0], [0, 0, 1, 0, 0, 0]])
    m = classification_metrics(logits, torch.tensor([0, 1, 2]))
    assert m["acc1"] == pytest.approx(2 / 3) and m["acc5"] == 1.0
    assert m["mean_per_class_recall"] == pytest.approx(2 / 3)


def _jpg(color):
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="JPEG")
    return buf.getvalue()


def test_readers_parse_the_real_layouts(tmp_path):
    (tmp_path / "u" / "image").mkdir(parents=True)
    (tmp_path / "u" / "caption").mkdir()
    for i in (2, 10):
        (tmp_path / "u" / "image" / f"{i}.jpg").write_bytes(_jpg((i, 0, 0)))
        (tmp_path / "u" / "caption" / f"{i}.txt").write_text(f"caption {i}\nsecond line, not read\n")
    urban = read_urban1k(tmp_path / "u")
    assert urban.texts == ["caption 2", "caption 10"] and urban.text_to_image == [0, 1]  # first lines only
    assert [index for _, index in urban.images] == [0, 1] and urban.images[1][0].getpixel((4, 4))[0] > 5

    (tmp_path / "c" / "images").mkdir(parents=True)
    (tmp_path / "c" / "images" / "a.jpg").write_bytes(_jpg((1, 2, 3)))
    spec = {"images": [{"filepath": "images", "filename": "a.jpg", "split": "test",
                        "sentences": [{"raw": f"s{i}"} for i in range(5)]},
                       {"filepath": "images", "filename": "missing.jpg", "split": "train", "sentences": []}]}
    (tmp_path / "c" / "dataset_coco.json").write_text(json.dumps(spec))
    coco = read_karpathy(tmp_path / "c")
    assert len(coco.images) == 1 and coco.texts == [f"s{i}" for i in range(5)] and coco.text_to_image == [0] * 5
    (tmp_path / "f").mkdir()  # Flickr30k: its own file name, images in the root
    (tmp_path / "f" / "1000.jpg").write_bytes(_jpg((1, 2, 3)))
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
            for ext, data in (("jpg", _jpg((9, 9, 9))), ("cls", str(cls).encode())):
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
            (root / image).write_bytes(_jpg((i % 256, 0, 0)))
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
        (root / "photos" / photo).write_bytes(_jpg((9, 9, 9)))
    dci = read_dci(root)
    assert dci.texts == ["A dog. It is brown. It sits. on grass", "Two cats"] and dci.text_to_image == [0, 1]

    # DOCCI: the test split of the jsonlines file, in file order
    root = tmp_path / "docci"
    (root / "images").mkdir(parents=True)
    lines = []
    for i, split in enumerate(["train", "test", "qual_dev", "test"]):
        lines.append(json.dumps({"example_id": f"{split}_{i}", "split": split, "image_file": f"{split}_{i}.jpg",
                                 "description": f"Picture {i}.\nMore."}))
        (root / "images" / f"{split}_{i}.jpg").write_bytes(_jpg((i, i, i)))
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
        if key != "bb02":  # a missing image is skipped, as CLIP_benchmark does
            (root / "images" / f"{key}.jpg").write_bytes(_jpg((i * 50, 0, 0)))
    (root / "captions.jsonl").write_text("\n".join(lines) + "\n")
    before = sorted(p.name for p in root.rglob("*"))
    german = read_xm3600(root, "de")
    assert german.texts == ["ein Foto 0", "ein Foto 2"] and german.text_to_image == [0, 1]
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
        (coco / "val2014" / name).write_bytes(_jpg((image_id * 30, 0, 0)))
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
        (flickr / name).write_bytes(_jpg((int(name[0]) * 80, 0, 0)))
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
            (root / "val2017" / name).write_bytes(_jpg((i * 60, 0, 0)))
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


class FixedModel:
    """The evaluation interface over fixed vectors: images by index, texts by their string."""

    def __init__(self, images, texts):
        self.images, self.texts = images, texts

    def encode_images(self, dataset):
        order = torch.tensor([index for _, index in dataset]).flip(0)  # out of order, as several workers give
        return self.images[order], order

    def encode_text(self, texts, prompt=None):
        return torch.stack([self.texts[t] for t in texts])


def test_compositionality_scores_on_hand_made_features():
    from pipeline.evaluate.compositionality import evaluate_sugar_crepe, evaluate_winoground
    from pipeline.evaluate.readers import CaptionSelectionSet, WinogroundSet

    e = torch.eye(3)
    images = e[[0, 1, 2]]
    texts = {"p0": e[0], "n0": e[1], "p1": e[0], "n1": e[1], "p2": e[2], "n2": 0.5 * e[2]}
    data = CaptionSelectionSet([(None, i) for i in range(3)], ["p0", "p1", "p2"], ["n0", "n1", "n2"])
    got = evaluate_sugar_crepe(FixedModel(images, texts), {"swap_att": data})
    assert got == {"acc_swap_att": pytest.approx(2 / 3), "acc": pytest.approx(2 / 3)}  # image 1 prefers n1

    # example 0: both scores right; example 1: both captions are closest to image 0 and tie there, so both fail
    images = torch.stack([e[0], e[1], e[0], e[1]])
    texts = {"c00": e[0], "c10": e[1], "c01": e[0] + 0.1 * e[1], "c11": e[0] + 0.2 * e[1]}
    wino = WinogroundSet([(None, i) for i in range(4)], ["c00", "c01"], ["c10", "c11"])
    scores = evaluate_winoground(FixedModel(images, texts), wino)
    assert scores == {"text_acc": 0.5, "image_acc": 0.5, "acc": 0.5}


def test_linear_probe_picks_c_on_a_validation_split_and_scores_the_test_split():
    from pipeline.evaluate.linear_probe import C_GRID, choose_c, evaluate_linear_probe

    generator = torch.Generator().manual_seed(0)
    centres = 3 * torch.eye(4)[:3]  # 3 classes in 4-D

    def sample(n, noise):
        labels = torch.arange(n) % 3
        return centres[labels] + noise * torch.randn(n, 4, generator=generator), labels

    train_x, train_y = sample(90, 0.5)
    test_x, test_y = sample(30, 0.5)
    assert choose_c(train_x.numpy(), train_y.numpy()) in C_GRID

    class Features:
        def encode_images(self, dataset):
            return dataset

    metrics = evaluate_linear_probe(Features(), (train_x, train_y), (test_x, test_y), classes=5)
    assert metrics["acc1"] == 1.0 and metrics["mean_per_class_recall"] == 1.0 and metrics["acc5"] == 1.0
    shuffled = evaluate_linear_probe(Features(), (train_x, train_y[torch.randperm(90, generator=generator)]),
                                     (test_x, test_y), classes=3)
    assert shuffled["acc1"] < 0.7  # labels unrelated to the features: no better than chance (1/3) by much


def test_multilingual_imagenet_takes_clip_benchmarks_class_names_and_templates(tmp_path):
    from pipeline.evaluate.readers import read_wds_multilingual

    _write_classification(tmp_path / "inet", 4, side=16)
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
    (tmp_path / "image" / "1.jpg").write_bytes(_jpg((0, 0, 0)))
    with pytest.raises(FileNotFoundError, match=r"caption/1.txt: missing .* expected layout: image/<stem>.jpg"):
        read_urban1k(tmp_path)


def test_report_puts_the_models_side_by_side_with_a_per_language_table(tmp_path):
    paths = []
    for kind, value in (("flame", 0.25), ("clip", 0.125)):
        for language in ("en", "de"):
            result = {"dataset": "xm3600", "model": f"train/{kind}", "model_kind": kind, "language": language,
                      "task": "zeroshot_retrieval",
                      "metrics": {"image_retrieval_recall@1": value, "text_retrieval_recall@1": 2 * value}}
            paths.append(tmp_path / f"{kind}-{language}.json")
            paths[-1].write_text(json.dumps(result))
    report = write_report(paths, tmp_path / "rep", "T")
    text = report.read_text()
    assert "| dataset | language | task | metric | flame (%) | clip (%) |" in text
    assert "| xm3600 | de | zeroshot_retrieval | image_retrieval_recall@1 | 25.0 | 12.5 |" in text
    assert "## Per language (image_retrieval_recall@1)" in text and "| xm3600 | de | 25.0 | 12.5 |" in text
    assert "- clip: `train/clip`" in text
    assert (tmp_path / "rep" / "results.png").stat().st_size > 1000
    assert (tmp_path / "rep" / "recall_curves.png").stat().st_size > 1000 and "![recall@k]" in text
    assert "clip,xm3600,de,zeroshot_retrieval,text_retrieval_recall@1,0.25" in \
        (tmp_path / "rep" / "results.csv").read_text().splitlines()


def test_report_checks_the_claims_per_model_directory(tmp_path, capsys):
    """Three models (two of kind flame, told apart by their directory), claims averaged over benchmarks and
    languages; one held, one did not, one names a model without results; the CLI refuses a claim missing a key."""
    values = {("flame", "urban1k", "en"): 0.5, ("flame", "dci", "en"): 0.3, ("flame_single", "urban1k", "en"): 0.2,
              ("flame_single", "dci", "en"): 0.2, ("clip", "urban1k", "en"): 0.6, ("clip", "dci", "en"): 0.4,
              ("flame", "xm3600", "de"): 0.1, ("clip", "xm3600", "de"): 0.05, ("flame", "xm3600", "en"): 0.9,
              ("clip", "xm3600", "en"): 0.0}
    paths = []
    for (model, dataset, language), value in values.items():
        result = {"dataset": dataset, "model": f"results/demo/train/{model}", "language": language,
                  "model_kind": "clip" if model == "clip" else "flame", "task": "zeroshot_retrieval",
                  "metrics": {"image_retrieval_recall@5": value}}
        paths.append(tmp_path / f"{model}-{dataset}-{language}.json")
        paths[-1].write_text(json.dumps(result))
    long = {"metric": "image_retrieval_recall@5", "benchmarks": ["urban1k", "dci"], "chance": 0.05}
    claims = [
        {"claim": "multifacet", "model": "flame", "baseline": "flame_single", **long},
        {"claim": "long", "model": "flame", "baseline": "clip", **long},
        {"claim": "multilingual", "model": "flame", "baseline": "clip", "metric": "image_retrieval_recall@5",
         "benchmarks": ["xm3600"], "languages": ["de"]},
        {"claim": "missing", "model": "flame", "baseline": "siglip", **long},
    ]
    claims_file = tmp_path / "claims.json"
    claims_file.write_text(json.dumps(claims))
    assert main(["report", *map(str, paths), "--out-dir", str(tmp_path / "rep"), "--claims", str(claims_file)]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "flame (%) | flame_single (%) | clip (%)" in text
    assert "| multifacet | image_retrieval_recall@5 (urban1k, dci) | flame 40.0 | flame_single 20.0 | +20.0 | 2.0× " \
           "| 8.0× | held |" in text
    assert "| long | image_retrieval_recall@5 (urban1k, dci) | flame 40.0 | clip 50.0 | -10.0 | 0.8× | 8.0× " \
           "| did not hold |" in text
    assert "| multilingual | image_retrieval_recall@5 (xm3600 [de]) | flame 10.0 | clip 5.0 | +5.0 | 2.0× | – " \
           "| held |" in text
    assert "not measured" in text and "2 of 4 claims held." in text
    assert "*long*: did not hold, flame 40.0 % vs clip 50.0 % (-10.0 points), 8.0× chance (5.0 %)." in text
    claims_file.write_text(json.dumps([{"claim": "x", "metric": "acc1", "benchmarks": ["z"], "model": "flame"}]))
    assert main(["report", *map(str, paths), "--out-dir", str(tmp_path / "rep"), "--claims", str(claims_file)]) == 1
    assert "--claims item 0: key (top level): 'baseline' is a required property" in capsys.readouterr().err


def _tiny_clip(out):
    from fixtures.training import TINY_VISION
    from pipeline.io.model_dir import save_model
    from pipeline.train.clip_baseline import build_clip, clip_config

    text = {"width": 16, "heads": 2, "layers": 1, "context_length": 77}
    torch.manual_seed(0)
    save_model(build_clip(TINY_VISION, 16, text), clip_config(TINY_VISION, 16, text, {"sources": ["raw"]}), out)
    return out


def _write_classification(root, count, side=256):
    (root / "test").mkdir(parents=True)
    (root / "classnames.txt").write_text("red\ngreen\n")
    (root / "zeroshot_classification_templates.txt").write_text("a {c} square.\n")
    (root / "test" / "nshards.txt").write_text("1\n")
    with tarfile.open(root / "test" / "0.tar", "w") as tar:
        for i in range(count):
            buf = io.BytesIO()
            Image.new("RGB", (side, side), ((i * 7) % 256, 200 * (i % 2), 30)).save(buf, format="JPEG")
            for ext, data in (("jpg", buf.getvalue()), ("cls", str(i % 2).encode())):
                info = tarfile.TarInfo(f"{i:05d}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_zero_shot_streams_images_so_peak_memory_stays_flat(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    model = _tiny_clip(tmp_path / "clip")
    peaks = {}
    for count in (200, 2000):  # 2000 decoded 256-px images would hold 375 MiB
        _write_classification(tmp_path / f"zs{count}", count)
        proc = subprocess.run([sys.executable, str(Path(__file__).parent / "peak_rss.py"), "evaluate",
                               "--model-dir", str(model), "--name", "zs", "--format", "wds_classification",
                               "--data", str(tmp_path / f"zs{count}"), "--out", str(tmp_path / f"{count}.json"),
                               "--device", "cpu"], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        peaks[count] = float(proc.stdout.rsplit("peak_rss_mib=", 1)[1])
        assert json.loads((tmp_path / f"{count}.json").read_text())["metrics"]["acc1"] >= 0
    print(f"peak RSS: {peaks}")
    assert peaks[2000] - peaks[200] < 60, peaks


@pytest.mark.parametrize("tiny_llm", ["mistral"], indirect=True)
def test_flame_text_embeddings_are_cached_per_text_side_and_texts(tmp_path, tiny_llm, tokenizer):
    from fixtures.training import TINY_VISION
    from pipeline.embed.prompts import text_layout
    from pipeline.evaluate.models import FlameModel
    from pipeline.train.model import FlameVisionModel

    vision = FlameVisionModel(TINY_VISION, 64)
    key = {"llm": "tiny", "revision": None, "layer": -1, "dtype": "torch.float32"}
    model = FlameModel(vision, tiny_llm, tokenizer, key, text_layout("paper"), cache_dir=tmp_path / "cache")
    first = model.encode_text(["a red star", "a blue circle"], prompt="long")
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    model._embedders.clear()
    model.llm = None  # a cache hit must not need the LLM
    assert torch.equal(model.encode_text(["a red star", "a blue circle"], prompt="long"), first)
    with pytest.raises(TypeError, match="NoneType"):  # another template is not cached: it needs the LLM
        model.encode_text(["a red star", "a blue circle"], prompt="short")


def test_evaluation_json_is_read_by_clip_benchmark_build(tmp_path):
    import csv
    import subprocess
    import sys


    model = _tiny_clip(tmp_path / "clip")
    root = tmp_path / "u"
    (root / "image").mkdir(parents=True)
    (root / "caption").mkdir()
    for i in range(4):
        (root / "image" / f"{i}.jpg").write_bytes(_jpg((60 * i, 0, 0)))
        (root / "caption" / f"{i}.txt").write_text(f"a square of shade {i}\n")
    assert main(["evaluate", "--model-dir", str(model), "--name", "urban1k", "--format", "urban1k", "--data",
                 str(root), "--out", str(tmp_path / "r.json"), "--device", "cpu"]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert {"dataset", "model", "pretrained", "task", "metrics", "language"} <= set(result)
    proc = subprocess.run([sys.executable, "-m", "clip_benchmark.cli", "build", str(tmp_path / "r.json"),
                           "--output", str(tmp_path / "b.csv")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with (tmp_path / "b.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["dataset"] == "urban1k" and row["model_fullname"] == f"{model} clip" and row["language"] == "en"
    assert float(row["image_retrieval_recall@1"]) == result["metrics"]["image_retrieval_recall@1"]


@pytest.mark.parametrize("tiny_llm", ["mistral"], indirect=True)
def test_vocabulary_map_names_the_word_whose_output_embedding_each_patch_projects_to(tiny_llm, tokenizer, tmp_path):
    from fixtures.training import TINY_VISION
    from pipeline.evaluate.vocabulary import draw_words, patch_words
    from pipeline.train.model import FlameVisionModel

    vision = FlameVisionModel(TINY_VISION, 64).eval()  # 32 px, patch 8: a 4 x 4 grid
    vocabulary = tiny_llm.get_output_embeddings().weight.detach()
    words = [tokenizer.decode([i]).strip() for i in range(vocabulary.shape[0])]
    chosen = [i for i, w in enumerate(words) if w.isalpha() and len(w) > 2 and words.index(w) == i][:16]
    assert len(chosen) == 16

    class Fixed(torch.nn.Module):  # patch t projects to 3 x the output embedding of word chosen[t]
        def forward(self, tokens):
            return 3 * vocabulary[chosen].unsqueeze(0).expand(tokens.shape[0], -1, -1)

    vision.projector = Fixed()
    grid = patch_words(vision, tiny_llm, tokenizer, Image.new("RGB", (50, 50), (10, 200, 30)))
    assert grid == [[words[chosen[4 * r + c]] for c in range(4)] for r in range(4)]
    drawn = draw_words(Image.new("RGB", (50, 50)), grid)
    assert drawn.size == (4 * 64, 4 * 64)


def test_vocabulary_map_of_a_clip_model_is_refused(tmp_path, capsys):

    model = _tiny_clip(tmp_path / "clip")
    (tmp_path / "a.jpg").write_bytes(_jpg((1, 2, 3)))
    assert main(["vocab-map", "--model-dir", str(model), "--images", str(tmp_path / "a.jpg"), "--out",
                 str(tmp_path / "v.png"), "--device", "cpu"]) == 1
    assert "needs a FLAME model" in capsys.readouterr().err and not (tmp_path / "v.png").exists()
