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
