"""Evaluation models and the stage: streamed images, the text cache, the result JSON, the vocabulary map."""

import json

import pytest
import torch
from PIL import Image

from fixtures import HUNG_AFTER_S
from fixtures.benchmarks import jpeg, write_classification, write_urban1k
from fixtures.training import tiny_clip
from pipeline.cli import main


def test_zero_shot_streams_images_so_peak_memory_stays_flat(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    model = tiny_clip(tmp_path / "clip")
    peaks = {}
    for count in (200, 2000):  # 2000 decoded 256-px images would hold 375 MiB
        write_classification(tmp_path / f"zs{count}", count)
        proc = subprocess.run([sys.executable, str(Path(__file__).parent / "peak_rss.py"), "evaluate",
                               "--model-dir", str(model), "--name", "zs", "--format", "wds_classification",
                               "--data", str(tmp_path / f"zs{count}"), "--out", str(tmp_path / f"{count}.json"),
                               "--device", "cpu"], capture_output=True, text=True, timeout=HUNG_AFTER_S)
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
    key = {"llm": "tiny", "revision": None, "layer": -1, "dtype": "torch.float32", "max_caption_tokens": 512}
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


    model = tiny_clip(tmp_path / "clip")
    root = tmp_path / "u"
    (root / "image").mkdir(parents=True)
    (root / "caption").mkdir()
    for i in range(4):
        (root / "image" / f"{i}.jpg").write_bytes(jpeg((60 * i, 0, 0)))
        (root / "caption" / f"{i}.txt").write_text(f"a square of shade {i}\n")
    assert main(["evaluate", "--model-dir", str(model), "--name", "urban1k", "--format", "urban1k", "--data",
                 str(root), "--out", str(tmp_path / "r.json"), "--device", "cpu"]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert {"dataset", "model", "pretrained", "task", "metrics", "language"} <= set(result)
    proc = subprocess.run([sys.executable, "-m", "clip_benchmark.cli", "build", str(tmp_path / "r.json"),
                           "--output", str(tmp_path / "b.csv")],
                          capture_output=True, text=True, timeout=HUNG_AFTER_S)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with (tmp_path / "b.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["dataset"] == "urban1k" and row["model_fullname"] == f"{model} clip" and row["language"] == "en"
    assert float(row["image_retrieval_recall@1"]) == result["metrics"]["image_retrieval_recall@1"]


def _next_token_choice(vision, llm, pixels, pool, normed, k=1):
    """The reference: each pooled cell's k highest logits, computed by hand from the module weights (the mean of
    the cell's patches, RMSNorm's formula with the final norm's weight and eps, the lm_head matrix)."""
    from pipeline.train.model import patch_tokens

    side = vision.vision_config["image_size"] // vision.vision_config["patch_size"]
    tokens = vision.projector(patch_tokens(vision.tower, pixels))  # [B, side * side, D], row-major
    def cell(r, c):  # [B, D]: the mean of the cell's pool x pool patches
        return torch.stack([tokens[:, (pool * r + i) * side + pool * c + j]
                            for i in range(pool) for j in range(pool)]).mean(0)

    cells = torch.stack([torch.stack([cell(r, c) for c in range(side // pool)], dim=1)
                         for r in range(side // pool)], dim=1)  # [B, rows, cols, D]
    if normed:
        weight, eps = llm.model.norm.weight, llm.config.rms_norm_eps
        cells = weight * cells / torch.sqrt(cells.pow(2).mean(-1, keepdim=True) + eps)
    logits = cells @ llm.lm_head.weight.T
    return logits.topk(k, dim=-1).indices


@pytest.mark.parametrize("tiny_llm", ["mistral", "qwen2"], indirect=True)
def test_vocabulary_map_takes_the_llm_next_token_argmax_of_each_pooled_cell(tiny_llm):
    """The token of every cell is argmax(lm_head(norm(h))) computed by hand, h the mean of its 2 x 2 patches (or the
    patch itself without pooling); ``layer -1`` (the normed state already) skips the norm."""
    import copy

    from fixtures.training import TINY_VISION
    from pipeline.evaluate.vocabulary import cell_token_ids
    from pipeline.train.model import FlameVisionModel

    torch.manual_seed(0)
    llm = copy.deepcopy(tiny_llm)
    with torch.no_grad():  # a norm weight of ones would leave the argmax unchanged: make the norm matter
        llm.model.norm.weight.copy_(torch.rand(llm.config.hidden_size) * 2 + 0.05)
    vision = FlameVisionModel(TINY_VISION, llm.config.hidden_size).eval()  # 32 px, patch 8: a 4 x 4 grid
    pixels = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        for pool in (1, 2):
            for layer, normed in ((2, True), (-1, False)):
                expected = _next_token_choice(vision, llm, pixels, pool, normed, k=3)
                found = cell_token_ids(vision, llm, pixels, pool, layer, k=3)
                assert found.shape == (3, 4 // pool, 4 // pool, 3)
                assert torch.equal(found, expected), (pool, layer)
        assert not torch.equal(_next_token_choice(vision, llm, pixels, 1, True),
                               _next_token_choice(vision, llm, pixels, 1, False))  # the norm changes words


def test_pooling_a_grid_it_does_not_divide_averages_what_each_edge_cell_covers():
    from pipeline.evaluate.vocabulary import pool_grid

    tokens = torch.arange(5 * 5, dtype=torch.float32).reshape(1, 25, 1)  # patch (r, c) holds 5 r + c
    pooled = pool_grid(tokens, side=5, pool=2)[0, ..., 0]
    assert pooled.shape == (3, 3)
    assert pooled[0, 0] == (0 + 1 + 5 + 6) / 4 and pooled[0, 2] == (4 + 9) / 2 and pooled[2, 2] == 24
    assert pooled[2, 0] == (20 + 21) / 2


def test_the_final_norm_is_found_through_get_decoder_or_refused_naming_the_model(tiny_llm):
    from pipeline.evaluate.vocabulary import final_norm

    assert final_norm(tiny_llm) is tiny_llm.get_decoder().norm
    with pytest.raises(TypeError, match="Linear: no final norm at get_decoder"):
        final_norm(torch.nn.Linear(2, 2))


def test_the_figure_draws_each_cell_word_over_its_cell(tokenizer):
    from pipeline.evaluate.vocabulary import cell_words, draw_words

    grid = cell_words(tokenizer, torch.tensor([[5, 6], [7, 8]]))
    assert grid == [[tokenizer.decode([i]).strip() or repr(tokenizer.decode([i])) for i in row]
                    for row in ((5, 6), (7, 8))]
    assert draw_words(Image.new("RGB", (50, 50)), grid).size == (2 * 64, 2 * 64)


def test_vocabulary_map_of_a_clip_model_is_refused(tmp_path, capsys):

    model = tiny_clip(tmp_path / "clip")
    (tmp_path / "a.jpg").write_bytes(jpeg((1, 2, 3)))
    assert main(["vocab-map", "--model-dir", str(model), "--images", str(tmp_path / "a.jpg"), "--out",
                 str(tmp_path / "v.png"), "--device", "cpu"]) == 1
    assert "needs a FLAME model" in capsys.readouterr().err and not (tmp_path / "v.png").exists()


@pytest.mark.parametrize("tiny_llm", ["mistral"], indirect=True)
def test_a_single_facet_ablation_is_evaluated_with_the_facet_it_trained_on(tmp_path, tiny_llm, tokenizer):
    """A model trained with `facets: [b]` records its raw template with `b` alone; evaluation embeds texts with that
    one prompt (checked against a forward pass of the prompt alone) and refuses a source it did not train on."""
    import json

    import torch.nn.functional as F

    from fixtures.training import TINY_VISION, write_training_pairs
    from pipeline.evaluate.models import load_model
    from pipeline.llm import llm_identity
    from pipeline.train import stage

    tiny_llm.save_pretrained(tmp_path / "llm")
    tokenizer.save_pretrained(tmp_path / "llm")
    pairs = write_training_pairs(tmp_path / "data", text_side={"llm_identity": llm_identity(str(tmp_path / "llm"),
                                                                                            tiny_llm)})
    settings = {"vision": TINY_VISION, "sources": ["raw"], "facets": ["b"], "epochs": 1, "batch_size": 8}
    stage.run("flame", [t for t, _ in pairs], [e for _, e in pairs], tmp_path / "m", tmp_path / "state", settings,
              {"num_workers": 0, "checkpoint_every": 100})
    text = json.loads((tmp_path / "m" / "flame_config.json").read_text())["text"]
    assert text["templates"]["raw"]["names"] == ["a", "b"]  # what was embedded
    assert text["trained_templates"] == {"raw": {"prefix": "{caption}", "names": ["b"], "suffixes": [' b:"'],
                                                 "cleaning": "quotes"}}
    model = load_model(tmp_path / "m", llm=str(tmp_path / "llm"), device="cpu")
    got = model.encode_text(["A red star", "a blue circle"], prompt="raw")
    with torch.no_grad():
        expected = torch.stack([
            tiny_llm(**tokenizer(caption + ' b:"', return_tensors="pt"), output_hidden_states=True)
            .hidden_states[-1][0, -1] for caption in ("A red star", "a blue circle")])
    assert torch.allclose(got, F.normalize(expected, dim=-1), atol=1e-5)
    with pytest.raises(ValueError, match=r"trained on the facets of caption sources \['raw'\] only"):
        model.encode_text(["A red star"], prompt="long")


@pytest.mark.parametrize("tiny_llm", ["mistral"], indirect=True)
def test_another_llm_behind_the_same_path_never_reuses_cached_texts_and_old_models_are_refused(tmp_path, tokenizer,
                                                                                             tiny_llm):
    """The demo-LLM rerun: LLM v1 at a path, a model trained on its embeddings and evaluated (the text cache
    filled); then LLM v2 built at the same path and a model trained on its embeddings. Evaluating the new model
    embeds its texts with v2 (equal to a fresh computation without the cache: the cache is keyed by the LLM's
    content, it used to be keyed by the path), and the old model is refused, naming both identities."""
    import torch.nn.functional as F

    from fixtures.training import TINY_VISION, write_training_pairs
    from pipeline.demo.tiny_llm import build_tiny_llm
    from pipeline.evaluate.models import load_model
    from pipeline.llm import llm_identity
    from pipeline.train import stage

    path, cache = tmp_path / "llm", tmp_path / "cache"
    settings = {"vision": TINY_VISION, "sources": ["raw"], "epochs": 1, "batch_size": 8}
    texts = ["A red star", "a blue circle"]
    encoded = {}
    for version, seed in (("v1", 1), ("v2", 2)):
        llm = build_tiny_llm(tokenizer, arch="mistral", hidden_size=64, num_layers=3, num_heads=4, num_kv_heads=2,
                             seed=seed)
        llm.save_pretrained(path)
        tokenizer.save_pretrained(path)
        identity = llm_identity(str(path), llm)
        pairs = write_training_pairs(tmp_path / version, text_side={"llm": str(path), "llm_identity": identity})
        stage.run("flame", [t for t, _ in pairs], [e for _, e in pairs], tmp_path / version / "m",
                  tmp_path / version / "state", settings, {"num_workers": 0, "checkpoint_every": 100})
        encoded[version] = load_model(tmp_path / version / "m", device="cpu", cache_dir=cache).encode_text(texts, "raw")
        assert load_model(tmp_path / version / "m", device="cpu").encode_text(texts, "raw").allclose(
            encoded[version])  # no cache: a fresh computation
    assert llm_identity(str(path), llm) != json.loads((tmp_path / "v1" / "m" / "flame_config.json").read_text())[
        "text"]["llm_identity"]
    assert F.cosine_similarity(encoded["v1"], encoded["v2"]).max() < 0.99
    with pytest.raises(ValueError, match=r"v1/m: trained on the embeddings of LLM .* with content sha256:\w+, but "
                                         r"the LLM at .* now holds sha256:\w+"):
        load_model(tmp_path / "v1" / "m", device="cpu", cache_dir=cache)


def test_an_llm_is_identified_by_its_files_content_or_its_hub_commit(tmp_path, tiny_llm, tokenizer):
    import types

    from pipeline.llm import llm_identity

    tiny_llm.save_pretrained(tmp_path / "a")
    tokenizer.save_pretrained(tmp_path / "a")
    first = llm_identity(str(tmp_path / "a"), tiny_llm)
    assert first.startswith("sha256:") and llm_identity(str(tmp_path / "a"), tiny_llm) == first  # stable (cached)
    (tmp_path / "a" / ".cache").mkdir()
    (tmp_path / "a" / ".cache" / "x").write_text("hidden files are not the model")
    assert llm_identity(str(tmp_path / "a"), tiny_llm) == first
    tokenizer_file = tmp_path / "a" / "tokenizer.json"
    tokenizer_file.write_text(tokenizer_file.read_text().replace('"unk_token"', '"unk_token" ', 1))
    assert llm_identity(str(tmp_path / "a"), tiny_llm) != first  # the tokenizer is part of the text side
    hub = types.SimpleNamespace(config=types.SimpleNamespace(_commit_hash="0123abc"))
    assert llm_identity("org/model", hub) == "hub:org/model@0123abc"
    with pytest.raises(ValueError, match="neither a local directory nor a hub model with a known commit"):
        llm_identity("org/model", types.SimpleNamespace(config=types.SimpleNamespace()))


def _flame_model_dir(out, llm_dir, max_caption_tokens: int):
    """A FLAME model directory (random tiny vision tower) trained, as recorded, on long captions of the paper layout
    embedded by the LLM at ``llm_dir`` with ``max_caption_tokens``."""
    from fixtures.training import TINY_VISION
    from pipeline.embed.prompts import templates_hash, text_layout
    from pipeline.io.content import folder_sha256
    from pipeline.io.model_dir import save_model
    from pipeline.train.model import FlameVisionModel

    templates = text_layout("paper")
    text = {"llm": str(llm_dir), "llm_identity": f"sha256:{folder_sha256(llm_dir)}", "revision": None, "layer": -1,
            "mode": "fda",
            "max_caption_tokens": max_caption_tokens, "layout": "paper",
            "templates": {s: t.describe() for s, t in templates.items()}, "prompts_hash": templates_hash(templates),
            "dim": 64, "normalized": True, "sources": ["long"], "train_sources": ["long"],
            "trained_templates": {"long": templates["long"].describe()}}
    vision = FlameVisionModel(TINY_VISION, 64)
    save_model(vision, vision.config(text), out)
    return out


@pytest.mark.parametrize("tiny_llm", ["mistral"], indirect=True)
def test_flame_evaluation_cuts_texts_as_the_embed_stage_cut_captions_and_counts_them(tmp_path, tiny_llm, tokenizer):
    """A 6-token caption limit recorded with the model: a benchmark text is embedded as the embed stage embedded a
    training caption (cut by the same function), and the result says how many texts were cut."""
    import torch.nn.functional as F

    from pipeline.embed.fda import FacetEmbedder
    from pipeline.embed.prompts import text_layout
    from pipeline.evaluate import stage
    from pipeline.evaluate.benchmarks import Request
    from pipeline.evaluate.models import load_model

    tiny_llm.save_pretrained(tmp_path / "llm")
    tokenizer.save_pretrained(tmp_path / "llm")
    _flame_model_dir(tmp_path / "m", tmp_path / "llm", 6)
    templates = text_layout("paper")
    texts = ["A green hexagon with stripes rests in the fog at night.", "A red star."]
    root = write_urban1k(tmp_path / "u", dict(enumerate(texts)))
    result = stage.run(tmp_path / "m", stage.Benchmark("u", "urban1k", Request(root)), tmp_path / "r.json",
                       device="cpu")
    assert result["scored"] == {"images": 2, "texts": 2, "texts_truncated": 1} and result["skipped"] == {}

    trained = FacetEmbedder(tiny_llm, tokenizer, templates["long"], max_caption_tokens=6)  # as the embed stage
    expected = F.normalize(F.normalize(trained.encode(texts), dim=-1).mean(dim=1), dim=-1)
    assert trained.stats["truncated"] == 1
    got = load_model(tmp_path / "m", device="cpu").encode_text(texts, prompt="long")
    assert torch.allclose(got, expected, atol=1e-5)

    _flame_model_dir(tmp_path / "m2", tmp_path / "llm", 2040)  # the tiny LLM has 2048 positions
    with pytest.raises(ValueError, match=r"m2: embed.max_caption_tokens: 2040 caption tokens \+ \d+ tokens .* "
                                         r"max_position_embeddings 2048"):
        load_model(tmp_path / "m2", device="cpu")


def test_unreadable_and_missing_benchmark_images_are_skipped_and_counted(tmp_path):
    """One bad image costs that image (and its texts), not the benchmark; the result counts what was scored and
    what was skipped, by reason."""
    model = tiny_clip(tmp_path / "clip")

    def evaluate(fmt, root, *flags):
        out = tmp_path / f"{fmt}.json"
        assert main(["evaluate", "--model-dir", str(model), "--name", fmt, "--format", fmt, "--data", str(root),
                     "--out", str(out), "--device", "cpu", *flags]) == 0
        return json.loads(out.read_text())

    captions = {i: f"a square of shade {i}" for i in range(6)} | {0: "a very long caption " * 30}
    root = write_urban1k(tmp_path / "u", captions, unreadable=(4,), missing=(5,))
    result = evaluate("urban1k", root)
    assert result["scored"] == {"images": 4, "texts": 4, "texts_truncated": 1}  # CLIP's 77-token context
    assert result["skipped"] == {"unreadable_image": 1, "missing_image": 1, "text_of_skipped_image": 2}
    assert 0 <= result["metrics"]["image_retrieval_recall@1"] <= 1

    write_classification(tmp_path / "zs", 6, side=16, unreadable=(2,))
    result = evaluate("wds_classification", tmp_path / "zs")
    assert result["scored"]["images"] == 5 and result["skipped"] == {"unreadable_image": 1}

    root = tmp_path / "winoground"
    (root / "images").mkdir(parents=True)
    lines = []
    for i in range(2):
        lines.append(json.dumps({"caption_0": f"a {i}", "caption_1": f"b {i}", "image_0": f"ex_{i}_img_0",
                                 "image_1": f"ex_{i}_img_1"}))
        for j in range(2):
            Image.new("RGB", (8, 8), (i, j, 0)).save(root / "images" / f"ex_{i}_img_{j}.png")
    (root / "examples.jsonl").write_text("\n".join(lines) + "\n")
    (root / "images" / "ex_1_img_0.png").write_bytes(b"not a png")
    result = evaluate("winoground", root)
    assert result["scored"]["texts"] == 2 and result["scored"]["images"] == 3  # example 1 is left out
    assert result["skipped"] == {"unreadable_image": 1, "text_of_skipped_image": 2}

    root = tmp_path / "sugar_crepe"  # read by CLIP_benchmark's builder
    (root / "val2017").mkdir(parents=True)
    for i in range(3):
        (root / "val2017" / f"{i}.jpg").write_bytes(b"\xff\xd8 not a jpeg" if i == 1 else jpeg((80 * i, 0, 0)))
    (root / "swap_att.json").write_text(json.dumps({str(i): {"filename": f"{i}.jpg", "caption": f"right {i}",
                                                             "negative_caption": f"wrong {i}"} for i in range(3)}))
    result = evaluate("sugar_crepe", root, "--subsets", "swap_att")
    assert result["scored"]["texts"] == 4 and result["scored"]["images"] == 2  # image 1's two captions left out
    assert result["skipped"] == {"unreadable_image": 1, "text_of_skipped_image": 2}


PALETTE = [(0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255), (128, 128, 128), (255, 128, 0), (90, 40, 160)]


def test_recorded_rankings_are_the_top_images_by_file_and_the_figure_draws_those_files(tmp_path, capsys):
    """Image 1 unreadable, image 3 listed without a file: the rankings of the first 3 scored texts are the top 3
    of the score matrix computed here from the readable files, each image named by the reader's index and its file
    (not its feature row); a text whose image is unreadable is no query. The report's figure draws, in each cell,
    the file ranked there, framed green where it is the query's own image, red elsewhere. Rankings of a format
    that is no retrieval are refused."""
    from pathlib import Path

    from pipeline.evaluate.models import load_model
    from pipeline.report.retrieval_figure import RIGHT, WRONG, Grid

    model = tiny_clip(tmp_path / "clip")
    captions = {i: f"a square of colour number {i} " * (i + 1) for i in range(7)}
    root = write_urban1k(tmp_path / "u", captions, unreadable=(1,), missing=(3,), color=PALETTE.__getitem__)
    out = tmp_path / "r.json"
    assert main(["evaluate", "--model-dir", str(model), "--name", "u", "--format", "urban1k", "--data", str(root),
                 "--out", str(out), "--device", "cpu", "--rank-queries", "3", "--rank-top", "3"]) == 0
    rankings = json.loads(out.read_text())["rankings"]
    assert (rankings["format"], rankings["data"], rankings["top"]) == ("urban1k", str(root), 3)

    stems = [0, 1, 2, 4, 5, 6]  # the reader's images (3 has no file); 1 is unreadable
    readable = [0, 2, 4, 5, 6]
    clip = load_model(model, device="cpu")
    scores = clip.encode_text([captions[s] for s in readable[:3]]) @ clip.encode_image(
        [Image.open(root / "image" / f"{s}.jpg") for s in readable]).T  # [3 queries, 5 images]
    assert [q["text"] for q in rankings["queries"]] == [0, 2, 3]  # the reader's text indices: 1 left out
    for query, stem, row in zip(rankings["queries"], readable[:3], scores, strict=True):
        assert query["caption"] == captions[stem].strip()
        assert (query["image"], query["file"]) == (stems.index(stem), str(root / "image" / f"{stem}.jpg"))
        best = [readable[column] for column in row.argsort(descending=True)[:3].tolist()]
        assert query["top"] == [stems.index(s) for s in best]
        assert query["top_files"] == [str(root / "image" / f"{s}.jpg") for s in best]
        assert query["rank"] == int((row >= row[readable.index(stem)]).sum())

    assert main(["report", str(out), "--out-dir", str(tmp_path / "rep"), "--retrieval-figure", "u"]) == 0
    figure = Image.open(tmp_path / "rep" / "retrieval.png").convert("RGB")
    grid = Grid(models=1, queries=3, top=3)
    assert figure.size == grid.size
    frames = []
    for q, query in enumerate(rankings["queries"]):
        for rank, file in enumerate(query["top_files"]):
            x0, y0, x1, y1 = grid.frame_box(q, 0, rank)
            colour = PALETTE[int(Path(file).stem)]
            assert max(abs(a - b) for a, b in zip(figure.getpixel(((x0 + x1) // 2, (y0 + y1) // 2)), colour)) < 16
            frames.append(figure.getpixel((x0 + 1, y0 + 1)) == (RIGHT if file == query["file"] else WRONG))
    assert all(frames) and len(frames) == 9
    assert "![retrieval examples](retrieval.png)" in (tmp_path / "rep" / "report.md").read_text()

    write_classification(tmp_path / "zs", 4, side=16)
    assert main(["evaluate", "--model-dir", str(model), "--name", "zs", "--format", "wds_classification", "--data",
                 str(tmp_path / "zs"), "--out", str(tmp_path / "zs.json"), "--device", "cpu",
                 "--rank-queries", "2"]) == 1
    assert "--format wds_classification: rankings (--rank-queries) are recorded for retrieval formats only" in \
        capsys.readouterr().err


def test_evaluate_batch_writes_what_separate_evaluate_runs_write_and_stops_at_a_failing_run(tmp_path, capsys):
    """`flame evaluate-batch` (a replica's claims in one process): each item's result equals the one `flame evaluate`
    writes alone with the same arguments (metrics, inputs, model); a failing item stops the batch naming it."""
    model = tiny_clip(tmp_path / "clip")
    write_urban1k(tmp_path / "u", {i: f"a square of shade {i}" for i in range(4)})
    write_classification(tmp_path / "zs", 12)
    jobs = [["--name", "urban1k", "--format", "urban1k", "--data", str(tmp_path / "u"), "--prompt", "long"],
            ["--name", "zs", "--format", "wds_classification", "--data", str(tmp_path / "zs")]]
    shared = ["--model-dir", str(model), "--device", "cpu"]
    for i, job in enumerate(jobs):
        assert main(["evaluate", *shared, *job, "--out", str(tmp_path / f"alone{i}.json")]) == 0
    batch = [[*job, "--out", str(tmp_path / f"batch{i}.json")] for i, job in enumerate(jobs)]
    assert main(["evaluate-batch", "--jobs", json.dumps(batch), "--", *shared]) == 0
    for i in range(2):
        alone, together = (json.loads((tmp_path / f"{kind}{i}.json").read_text()) for kind in ("alone", "batch"))
        assert together["metrics"] == alone["metrics"] and together["model"] == alone["model"]
        assert together["provenance"]["settings_sha256"] == alone["provenance"]["settings_sha256"]
    broken = [batch[0], ["--name", "x", "--format", "urban1k", "--data", str(tmp_path / "nowhere"), "--out",
                         str(tmp_path / "x.json")], batch[1]]
    assert main(["evaluate-batch", "--jobs", json.dumps(broken), "--", *shared]) == 1
    assert "--jobs item 1 failed" in capsys.readouterr().err and not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("tiny_llm", ["mistral"], indirect=True)
def test_evaluate_batch_loads_a_flame_models_llm_once_and_scores_as_separate_runs(tmp_path, tiny_llm, tokenizer,
                                                                                  monkeypatch):
    """`flame evaluate-batch` of two FLAME evaluations (evaluate.jobs: per_model) loads the LLM once, and each result
    equals the one `flame evaluate` writes alone; other LLM content behind the same path is loaded anew."""
    from pipeline.demo.tiny_llm import build_tiny_llm
    from pipeline.evaluate import models

    loads = []
    real = models.load_llm
    monkeypatch.setattr(models, "load_llm", lambda *a, **k: loads.append(a[0]) or real(*a, **k))
    tiny_llm.save_pretrained(tmp_path / "llm")
    tokenizer.save_pretrained(tmp_path / "llm")
    _flame_model_dir(tmp_path / "m", tmp_path / "llm", 64)
    write_urban1k(tmp_path / "u", {i: f"a square of shade {i}" for i in range(4)})
    write_urban1k(tmp_path / "v", {i: f"a circle of shade {i}" for i in range(3)})
    jobs = [["--name", name, "--format", "urban1k", "--data", str(tmp_path / name)] for name in ("u", "v")]
    shared = ["--model-dir", str(tmp_path / "m"), "--device", "cpu"]
    for i, job in enumerate(jobs):
        assert main(["evaluate", *shared, *job, "--out", str(tmp_path / f"alone{i}.json")]) == 0
    assert len(loads) == 2
    batch = [[*job, "--out", str(tmp_path / f"batch{i}.json")] for i, job in enumerate(jobs)]
    assert main(["evaluate-batch", "--jobs", json.dumps(batch), "--", *shared]) == 0
    assert len(loads) == 3  # one load for the batch's two evaluations
    for i in range(2):
        alone, together = (json.loads((tmp_path / f"{kind}{i}.json").read_text()) for kind in ("alone", "batch"))
        assert together["metrics"] == alone["metrics"] and together["scored"] == alone["scored"]
        assert together["provenance"]["settings_sha256"] == alone["provenance"]["settings_sha256"]

    with models.reusing_llms():
        first = models._load_llm(str(tmp_path / "llm"), None, "auto", "cpu")
        assert models._load_llm(str(tmp_path / "llm"), None, "auto", "cpu") is first and len(loads) == 4
        build_tiny_llm(tokenizer, arch="mistral", hidden_size=64, num_layers=3, num_heads=4, num_kv_heads=2,
                       seed=2).save_pretrained(tmp_path / "llm")
        other = models._load_llm(str(tmp_path / "llm"), None, "auto", "cpu")
        assert other is not first and len(loads) == 5
        assert not torch.equal(other[0].model.embed_tokens.weight, first[0].model.embed_tokens.weight)
    models._load_llm(str(tmp_path / "llm"), None, "auto", "cpu")
    models._load_llm(str(tmp_path / "llm"), None, "auto", "cpu")
    assert len(loads) == 7  # outside it, every call loads
