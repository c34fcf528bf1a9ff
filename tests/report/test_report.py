"""The report: models side by side, the per-language table, the claims checked."""

import json

from pipeline.cli import main
from pipeline.report.stage import run as write_report


def test_report_puts_the_models_side_by_side_with_a_per_language_table(tmp_path):
    paths = []
    for kind, value in (("flame", 0.25), ("clip", 0.125)):
        for language in ("en", "de"):
            result = {"dataset": "xm3600", "model": f"train/{kind}", "model_kind": kind, "language": language,
                      "task": "zeroshot_retrieval",
                      "metrics": {"image_retrieval_recall@1": value, "text_retrieval_recall@1": 2 * value},
                      "prompt": None if kind == "clip" else {"name": "description", "source": "raw",
                                                             "facets": ["description"], "long_mean": "normalized"}}
            paths.append(tmp_path / f"{kind}-{language}.json")
            paths[-1].write_text(json.dumps(result))
    report = write_report(paths, tmp_path / "rep", "T")
    text = report.read_text()
    assert "| dataset | language | task | metric | flame (%) | clip (%) |" in text
    assert "| xm3600 | de | zeroshot_retrieval | image_retrieval_recall@1 | 25.0 | 12.5 |" in text
    assert "## Per language (image_retrieval_recall@1)" in text and "| xm3600 | de | 25.0 | 12.5 |" in text
    assert "- clip: `train/clip`" in text
    assert ("## Prompts (FLAME's texts)\n\n| dataset | flame |\n|---|---|\n"
            "| xm3600 | description: raw template, 1 facet |") in text
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


def _ranked_result(root, model, queries, top_of):
    """A retrieval result of ``model`` on the Urban-1k folder ``root`` recording, per query text t (own image t),
    the images ``top_of[t]`` (reader indices = stems here)."""
    files = [str(root / "image" / f"{i}.jpg") for i in range(4)]
    ranked = [{"text": t, "caption": f"query {t} " * 40, "image": t, "file": files[t],
               "rank": top_of[t].index(t) + 1 if t in top_of[t] else 4, "top": top_of[t],
               "top_files": [files[i] for i in top_of[t]]} for t in queries]
    return {"dataset": "u", "model": f"train/{model}", "model_kind": "flame", "language": "en",
            "task": "zeroshot_retrieval", "metrics": {"image_retrieval_recall@1": 0.5},
            "rankings": {"format": "urban1k", "data": str(root), "top": 3, "queries": ranked}}


def test_retrieval_figure_has_a_row_per_model_and_query_and_frames_the_own_image_green(tmp_path):
    """Two models, two queries, three images each: the grid's size, the frames (own image green, others red), the
    images drawn re-read from the benchmark; a benchmark changed since (another file at a recorded index) and a
    benchmark without rankings are refused."""
    import pytest
    from PIL import Image, ImageFont

    from fixtures.benchmarks import write_urban1k
    from pipeline.report.retrieval_figure import FONT_SIZE, GAP, QUERY_LINES, RIGHT, WRONG, Grid, wrap

    colours = [(0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]
    root = write_urban1k(tmp_path / "u", {i: f"caption {i}" for i in range(4)}, color=colours.__getitem__)
    tops = {"flame": {0: [0, 1, 2], 1: [3, 2, 0]}, "clip": {0: [2, 3, 0], 1: [1, 0, 3]}}
    paths = []
    for model, top_of in tops.items():
        paths.append(tmp_path / f"{model}.json")
        paths[-1].write_text(json.dumps(_ranked_result(root, model, [0, 1], top_of)))
    report = write_report(paths, tmp_path / "rep", "T", retrieval_figure="u")
    assert "## Retrieval examples (u, en)" in report.read_text()
    figure = Image.open(tmp_path / "rep" / "retrieval.png").convert("RGB")
    grid = Grid(models=2, queries=2, top=3)
    assert figure.size == grid.size
    assert Grid(2, 2, 4).size[0] - grid.size[0] == grid.cell + GAP  # one column per image
    assert Grid(3, 2, 3).size[1] - grid.size[1] == 2 * (grid.cell + GAP)  # one row per model in each query
    for m, top_of in enumerate(tops.values()):
        for q, top in top_of.items():
            for rank, image in enumerate(top):
                x0, y0, x1, y1 = grid.frame_box(q, m, rank)
                assert figure.getpixel((x0, y1)) == (RIGHT if image == q else WRONG)
                inside = figure.getpixel(((x0 + x1) // 2, (y0 + y1) // 2))
                assert max(abs(a - b) for a, b in zip(inside, colours[image])) < 16

    font = ImageFont.load_default(size=FONT_SIZE)
    lines = wrap("word " * 500, font, 300)
    assert len(lines) == QUERY_LINES and lines[-1].endswith(" …") and all(font.getlength(x) <= 300 for x in lines)
    assert wrap("a short query", font, 300) == ["a short query"]

    moved = json.loads(paths[0].read_text())
    moved["rankings"]["queries"][0]["top_files"][1] = str(root / "image" / "9.jpg")
    paths[0].write_text(json.dumps(moved))
    with pytest.raises(ValueError, match=r"image 1 of .* is .*1\.jpg now, .*9\.jpg when it was evaluated"):
        write_report(paths, tmp_path / "rep", "T", retrieval_figure="u")
    with pytest.raises(ValueError, match="no result of benchmark 'xm3600' \\(en\\) records rankings"):
        write_report(paths, tmp_path / "rep", "T", retrieval_figure="xm3600")
