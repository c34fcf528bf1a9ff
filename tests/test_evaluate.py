import io
import json
import tarfile

import pytest
import torch
from PIL import Image

from pipeline.evaluate.readers import read_coco_karpathy, read_urban1k, read_wds_classification
from pipeline.evaluate.retrieval import recall_at_k
from pipeline.evaluate.zeroshot import classification_metrics
from pipeline.report import write_report


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
        (tmp_path / "u" / "caption" / f"{i}.txt").write_text(f"caption {i}\n")
    urban = read_urban1k(tmp_path / "u")
    assert urban.texts == ["caption 2", "caption 10"] and urban.text_to_image == [0, 1]

    (tmp_path / "c" / "images").mkdir(parents=True)
    (tmp_path / "c" / "images" / "a.jpg").write_bytes(_jpg((1, 2, 3)))
    spec = {"images": [{"filepath": "images", "filename": "a.jpg", "split": "test",
                        "sentences": [{"raw": f"s{i}"} for i in range(5)]},
                       {"filepath": "images", "filename": "missing.jpg", "split": "train", "sentences": []}]}
    (tmp_path / "c" / "dataset_coco.json").write_text(json.dumps(spec))
    coco = read_coco_karpathy(tmp_path / "c")
    assert len(coco.images) == 1 and coco.texts == [f"s{i}" for i in range(5)] and coco.text_to_image == [0] * 5

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
    assert zs.labels == [1, 0] and zs.classnames == ["star", "circle"] and zs.templates == ["a photo of a {c}."]


def test_missing_caption_names_the_file(tmp_path):
    (tmp_path / "image").mkdir()
    (tmp_path / "image" / "1.jpg").write_bytes(_jpg((0, 0, 0)))
    with pytest.raises(FileNotFoundError, match=r"caption/1.txt"):
        read_urban1k(tmp_path)


def test_report_puts_the_models_side_by_side(tmp_path):
    paths = []
    for kind, value in (("flame", 0.25), ("clip", 0.125)):
        result = {"dataset": "urban1k", "model": f"train/{kind}", "model_kind": kind, "task": "zeroshot_retrieval",
                  "metrics": {"image_retrieval_recall@1": value, "text_retrieval_recall@1": 2 * value}}
        paths.append(tmp_path / f"{kind}.json")
        paths[-1].write_text(json.dumps(result))
    report = write_report(paths, tmp_path / "rep", "T")
    text = report.read_text()
    assert "| dataset | task | metric | flame (%) | clip (%) |" in text
    assert "| urban1k | zeroshot_retrieval | image_retrieval_recall@1 | 25.0 | 12.5 |" in text
    assert "- clip: `train/clip`" in text
    assert (tmp_path / "rep" / "results.png").stat().st_size > 1000
    assert (tmp_path / "rep" / "results.csv").read_text().splitlines()[4] == \
        "clip,urban1k,zeroshot_retrieval,text_retrieval_recall@1,0.25"
