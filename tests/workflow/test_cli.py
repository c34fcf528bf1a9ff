import subprocess
import sys

import pytest

from pipeline.cli import build_parser, main

STAGES = ["demo-data", "demo-llm", "tiny-llm", "caption", "embed", "train", "train-clip", "evaluate", "report",
          "vocab-map"]


def test_every_stage_has_a_subcommand_with_help(capsys):
    for stage in STAGES:
        with pytest.raises(SystemExit) as exit_:
            build_parser().parse_args([stage, "--help"])
        assert exit_.value.code == 0
        assert "usage: flame " + stage in capsys.readouterr().out


def test_console_script_runs():
    flame = subprocess.run([sys.executable, "-m", "pipeline.cli", "--help"], capture_output=True, text=True)
    assert flame.returncode == 0 and all(s in flame.stdout for s in STAGES)


def test_demo_data_refuses_a_non_empty_directory(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    assert main(["demo-data", str(tmp_path)]) == 1
    assert str(tmp_path) in capsys.readouterr().err
    assert (tmp_path / "keep.txt").exists()


def test_settings_document_inline_or_from_a_file(tmp_path, capsys):
    args = build_parser().parse_args(["embed", "a.parquet", "b.parquet", "--settings",
                                      '{"llm": "x", "facets": {"raw": ["colour", "a suffix, with a comma:\\""]}}'])
    assert args.settings == {"llm": "x", "facets": {"raw": ["colour", 'a suffix, with a comma:"']}}
    (tmp_path / "embed.yaml").write_text("llm: x\nlayer: 3\n")
    args = build_parser().parse_args(["embed", "a", "b", "--settings", str(tmp_path / "embed.yaml")])
    assert args.settings == {"llm": "x", "layer": 3}
    assert main(["embed", str(tmp_path / "missing.parquet"), "b.parquet", "--settings", '{"llm": "x"}']) == 1
    assert "missing.parquet" in capsys.readouterr().err
    assert main(["embed", "a.parquet", "b.parquet", "--settings", '{"llm": "x", "layr": 3}']) == 1
    assert "--settings: key (top level)" in capsys.readouterr().err
    assert main(["embed", "a.parquet", "b.parquet", "--settings", '{"llm": "x", "layout": "official", '
                 '"facets": "long"}']) == 1
    assert "--settings: key facets: 'long' is not of type 'null'" in capsys.readouterr().err


def test_a_settings_document_keeps_jsons_exponent_floats(tmp_path):
    """The rules pass canonical JSON, where 1e-8 is `1e-08`: a float, which YAML 1.1 alone would read as a string."""
    from pipeline.settings import as_json, read_document

    assert read_document(as_json({"eps": 1e-8, "lr": 5e-4})) == {"eps": 1e-8, "lr": 5e-4}
    (tmp_path / "s.yaml").write_text("eps: 1.0e-8\n")
    assert read_document(str(tmp_path / "s.yaml")) == {"eps": 1e-8}


def test_layer_zero_and_an_absurd_caption_limit_are_refused_naming_the_key(capsys):
    assert main(["embed", "a.parquet", "b.parquet", "--settings", '{"llm": "x", "layer": 0}']) == 1
    err = capsys.readouterr().err
    assert "--settings: key layer: 0 would be hidden_states[0], the token embeddings" in err and "use -1" in err
    assert main(["embed", "a", "b", "--settings", '{"llm": "x", "max_caption_tokens": 1000000000}']) == 1
    assert "--settings: key max_caption_tokens: 1000000000 is greater than the maximum" in capsys.readouterr().err
