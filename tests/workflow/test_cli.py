import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.training import TINY_VISION, write_training_pairs
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


def test_an_integer_setting_is_a_python_int_not_an_integral_float_nor_a_bool():
    from pipeline.settings import validate_document

    train = {"vision": TINY_VISION}
    assert validate_document("train_settings", {**train, "batch_size": 8}, "--settings")["batch_size"] == 8
    for key, value in (("batch_size", 8.0), ("positives", 6.0), ("epochs", True)):
        with pytest.raises(ValueError, match=f"--settings: key {key}: {value} is not of type 'integer'"):
            validate_document("train_settings", {**train, key: value}, "--settings")
    with pytest.raises(ValueError, match="--settings: key layer: 2.0 is not of type 'integer'"):
        validate_document("embed_settings", {"llm": "x", "layer": 2.0}, "--settings")


def test_a_whole_config_is_checked_with_python_ints_naming_the_key():
    import yaml

    from pipeline.settings import validate_config

    config = yaml.safe_load((Path(__file__).parents[2] / "config" / "demo.yaml").read_text())
    validate_config(config)
    config["train"]["batch_size"] = 8.0
    with pytest.raises(ValueError, match=r"^config key train\.batch_size: 8\.0 is not of type 'integer'$"):
        validate_config(config)


def test_a_repeated_key_in_a_settings_document_names_the_key_the_file_and_the_line(tmp_path, capsys):
    from pipeline.settings import read_document

    (tmp_path / "s.yaml").write_text("lr: 0.001\nvision:\n  model: a\n  image_size: 32\n  model: b\n")
    with pytest.raises(ValueError, match=f"{tmp_path / 's.yaml'}: line 5: key 'model' given twice"):
        read_document(str(tmp_path / "s.yaml"))
    (tmp_path / "s.json").write_text('{\n  "lr": 0.001,\n  "epochs": 2,\n  "lr": 0.01\n}\n')
    with pytest.raises(ValueError, match=f"{tmp_path / 's.json'}: line 4: key 'lr' given twice"):
        read_document(str(tmp_path / "s.json"))
    with pytest.raises(ValueError, match="line 1: key 'lr' given twice"):
        read_document('{"lr": 0.001, "lr": 0.01}')
    assert read_document("base: &b {lr: 1}\nover: {<<: *b, lr: 2}\n")["over"] == {"lr": 2}  # a merge is no repeat
    with pytest.raises(SystemExit):
        build_parser().parse_args(["embed", "a", "b", "--settings", str(tmp_path / "s.yaml")])
    assert "line 5: key 'model' given twice" in capsys.readouterr().err


# command -> (its arguments given the shard, the embeddings file and the folder; the input it would overwrite)
OVERWRITES = {
    "caption": (lambda tar, emb, d: ["caption", tar, tar], "tar"),
    "caption to a hard link": (lambda tar, emb, d: ["caption", tar, d / "hard.tar"], "tar"),
    "embed to a symlink": (lambda tar, emb, d: ["embed", emb, d / "link.parquet", "--settings", '{"llm": "x"}'],
                           "emb"),
    "train": (lambda tar, emb, d: ["train", "--shards", tar, "--embeddings", emb, "--out", emb, "--state-dir",
                                   d / "state", "--settings", json.dumps({"vision": TINY_VISION, "batch_size": 2})],
              "emb"),
    "train state dir": (lambda tar, emb, d: ["train-clip", "--shards", tar, "--captions", emb, "--out", d / "model",
                                             "--state-dir", tar, "--settings", json.dumps({"vision": TINY_VISION})],
                        "tar"),
    "vocab-map": (lambda tar, emb, d: ["vocab-map", "--model-dir", d, "--images", tar, "--out", d / "link.tar"],
                  "tar"),
    "import-official": (lambda tar, emb, d: ["import-official", tar, tar], "tar"),
}


@pytest.mark.parametrize("case", OVERWRITES)
def test_no_command_writes_over_its_input_not_even_through_a_link(tmp_path, capsys, case):
    ((tar, emb),) = write_training_pairs(tmp_path, sizes=(8,))
    os.link(tar, tmp_path / "hard.tar")
    (tmp_path / "link.parquet").symlink_to(emb)
    (tmp_path / "link.tar").symlink_to(tar)
    before = {tar: tar.read_bytes(), emb: emb.read_bytes()}
    argv, overwritten = OVERWRITES[case]
    assert main([str(arg) for arg in argv(tar, emb, tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"is the same file as its input {dict(tar=tar, emb=emb)[overwritten]}" in err, err
    assert {path: path.read_bytes() for path in before} == before
def test_layer_zero_and_an_absurd_caption_limit_are_refused_naming_the_key(capsys):
    assert main(["embed", "a.parquet", "b.parquet", "--settings", '{"llm": "x", "layer": 0}']) == 1
    err = capsys.readouterr().err
    assert "--settings: key layer: 0 would be hidden_states[0], the token embeddings" in err and "use -1" in err
    assert main(["embed", "a", "b", "--settings", '{"llm": "x", "max_caption_tokens": 1000000000}']) == 1
    assert "--settings: key max_caption_tokens: 1000000000 is greater than the maximum" in capsys.readouterr().err
