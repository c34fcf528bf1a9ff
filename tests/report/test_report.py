"""The report: models side by side, the per-language table, the claims checked over seeds, the data-efficiency
curves."""

import json

from pipeline.cli import main
from pipeline.replicates import Replica
from pipeline.report.claims import Claim
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
    """Three models (two of kind flame, told apart by their directory), one seed each: claims averaged over
    benchmarks and languages say which model is higher and that one seed measures no noise; a claim naming a model
    without results is not measured; the CLI refuses a claim missing a key."""
    values = {("flame", "urban1k", "en"): 0.5, ("flame", "dci", "en"): 0.3, ("flame_single", "urban1k", "en"): 0.2,
              ("flame_single", "dci", "en"): 0.2, ("clip", "urban1k", "en"): 0.6, ("clip", "dci", "en"): 0.4,
              ("flame", "xm3600", "de"): 0.1, ("clip", "xm3600", "de"): 0.05, ("flame", "xm3600", "en"): 0.9,
              ("clip", "xm3600", "en"): 0.0}
    paths = _write_results(tmp_path, values)
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
    assert "| multifacet | image_retrieval_recall@5 (urban1k, dci) | flame 40.0 | flame_single 20.0 | +20.0 | 1 | – " \
           "| 8.0× | higher, 1 seed: noise not measured |" in text
    assert "| long | image_retrieval_recall@5 (urban1k, dci) | flame 40.0 | clip 50.0 | -10.0 | 1 | – | 8.0× " \
           "| not higher, 1 seed: noise not measured |" in text
    assert "| multilingual | image_retrieval_recall@5 (xm3600 [de]) | flame 10.0 | clip 5.0 | +5.0 | 1 | – | – " \
           "| higher, 1 seed: noise not measured |" in text
    assert "| missing | image_retrieval_recall@5 (urban1k, dci) | flame – | siglip – | – | 0 | – | – | not measured |" \
        in text
    assert "0 of 4 claims held." in text and "Each model is trained with 1 seed " in text
    assert "*long*: flame 40.0 % vs clip 50.0 %, a difference of -10.0 points from one seed" in text
    claims_file.write_text(json.dumps([{"claim": "x", "metric": "acc1", "benchmarks": ["z"], "model": "flame"}]))
    assert main(["report", *map(str, paths), "--out-dir", str(tmp_path / "rep"), "--claims", str(claims_file)]) == 1
    assert "--claims item 0: key (top level): 'baseline' is a required property" in capsys.readouterr().err


def _write_results(root, values, metric="image_retrieval_recall@5"):
    """One result file per (model, dataset, language) -> value of ``metric``; model directories under
    ``root/train`` (with a train_summary.json when ``images`` maps the model to its training images)."""
    paths = []
    for (model, dataset, language), value in values.items():
        result = {"dataset": dataset, "model": str(root / "train" / model), "language": language,
                  "model_kind": "clip" if model.startswith("clip") else "flame", "task": "zeroshot_retrieval",
                  "metrics": {metric: value}}
        paths.append(root / f"{model}-{dataset}-{language}.json")
        paths[-1].write_text(json.dumps(result))
    return paths


def _replica(name, base, seed=0, fraction=1.0):
    return {"name": name, "base": base, "seed": seed, "fraction": fraction}


def test_claims_over_seeds_are_mean_and_sd_of_the_paired_differences_held_only_beyond_two_standard_errors(tmp_path):
    """Three seeds per model (the replicas flame-seed1 ...). Means, sample sd (n - 1), the seed-by-seed difference
    and 2 SE = 2 sd / sqrt(3) are typed out from the values below: flame vs clip differs by 10, 11, 9 points (held),
    flame vs flame_single by -5, +4, +3 (within noise), and clip vs flame is reversed. Replicas stay out of the
    side-by-side table and are all in results.csv."""
    per_seed = {"flame": (0.40, 0.42, 0.44), "clip": (0.30, 0.31, 0.35), "flame_single": (0.45, 0.38, 0.41)}
    names = {base: [base, f"{base}-seed1", f"{base}-seed2"] for base in per_seed}
    values = {(name, "urban1k", "en"): v for base, vs in per_seed.items() for name, v in zip(names[base], vs)}
    paths = _write_results(tmp_path, values)
    replicas = [_replica(name, base, seed) for base in names for seed, name in enumerate(names[base])]
    claim = {"metric": "image_retrieval_recall@5", "benchmarks": ["urban1k"]}
    claims = [{"claim": "long", "model": "flame", "baseline": "clip", **claim},
              {"claim": "multifacet", "model": "flame", "baseline": "flame_single", **claim},
              {"claim": "clip wins", "model": "clip", "baseline": "flame", **claim}]
    assert main(["report", *map(str, paths), "--out-dir", str(tmp_path / "rep"), "--claims", json.dumps(claims),
                 "--replicas", json.dumps(replicas)]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "| long | image_retrieval_recall@5 (urban1k) | flame 42.0 ± 2.0 | clip 32.0 ± 2.6 | +10.0 ± 1.0 | 3 | " \
           "1.2 | – | held |" in text
    assert "| multifacet | image_retrieval_recall@5 (urban1k) | flame 42.0 ± 2.0 | flame_single 41.3 ± 3.5 | " \
           "+0.7 ± 4.9 | 3 | 5.7 | – | within noise |" in text
    assert "| clip wins | image_retrieval_recall@5 (urban1k) | clip 32.0 ± 2.6 | flame 42.0 ± 2.0 | -10.0 ± 1.0 " \
           "| 3 | 1.2 | – | reversed |" in text
    assert "1 of 3 claims held." in text and "Each model is trained with 3 seeds" in text
    assert ("*multifacet*: within noise. flame 42.0 ± 2.0 % vs flame_single 41.3 ± 3.5 %; the difference, +0.7 ± 4.9 "
            "points over 3 seeds, is less than twice its standard error (2.8 points)") in text
    assert "flame (%) | clip (%) | flame_single (%) |" in text and "seed1 (%)" not in text
    rows = (tmp_path / "rep" / "results.csv").read_text()
    assert all(f"{name},urban1k,en," in rows for group in names.values() for name in group)


def test_data_efficiency_rows_and_curves_come_from_the_fraction_replicas_and_their_recorded_image_counts(tmp_path):
    """FLAME and CLIP at 25 %, 50 % and 100 % of the images, one seed: a row per fraction with the images each
    model's train_summary.json records, both values and the difference; the figure is written."""
    values = {("flame-data25", "urban1k", "en"): 0.20, ("flame-data50", "urban1k", "en"): 0.30,
              ("flame", "urban1k", "en"): 0.40, ("clip-data25", "urban1k", "en"): 0.05,
              ("clip-data50", "urban1k", "en"): 0.15, ("clip", "urban1k", "en"): 0.35}
    paths = _write_results(tmp_path, values)
    for name, images in (("flame-data25", 256), ("flame-data50", 512), ("flame", 1024), ("clip-data25", 256),
                         ("clip-data50", 512), ("clip", 1024)):
        (tmp_path / "train" / name).mkdir(parents=True)
        (tmp_path / "train" / name / "train_summary.json").write_text(json.dumps({"images_with_texts": images}))
    replicas = [_replica(f"{base}-data{p}", base, 0, p / 100) for base in ("flame", "clip") for p in (25, 50)]
    replicas += [_replica("flame", "flame"), _replica("clip", "clip")]
    claims = [{"claim": "long", "model": "flame", "baseline": "clip", "metric": "image_retrieval_recall@5",
               "benchmarks": ["urban1k"], "chance": 0.05}]
    report = write_report(paths, tmp_path / "rep", "T", [Claim(**c) for c in claims],
                          replicas=[Replica(**r) for r in replicas])
    text = report.read_text()
    assert "## Data efficiency" in text and "![data efficiency](data_efficiency.png)" in text
    assert "| long (image_retrieval_recall@5) | 256 (25 %) | flame 20.0 | clip 5.0 | +15.0 |" in text
    assert "| long (image_retrieval_recall@5) | 512 (50 %) | flame 30.0 | clip 15.0 | +15.0 |" in text
    assert "| long (image_retrieval_recall@5) | 1024 (100 %) | flame 40.0 | clip 35.0 | +5.0 |" in text
    assert (tmp_path / "rep" / "data_efficiency.png").stat().st_size > 1000
    assert "flame-data25 (%)" not in text


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
