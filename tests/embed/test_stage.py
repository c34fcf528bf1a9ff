"""The embed stage's Parquet: one row per (caption, facet), no padding to the largest K, provenance metadata; several
captions files with one load of the LLM."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from pipeline.cli import main
from pipeline.embed import stage
from pipeline.embed.fda import FacetEmbedder
from pipeline.embed.prompts import FACET_SETS, templates_hash, text_layout
from pipeline.embed.stage import embed_captions_file
from pipeline.io.embeddings import read_embeddings
from pipeline.io.parquet import read_parquet_metadata, write_parquet
from pipeline.llm import load_llm


@pytest.fixture()
def captions_file(tmp_path):
    table = pa.table({"key": ["a", "b"], "raw": ["red star", ""],
                      "long": [["A red star falls.", "A star."], ["A blue circle rests."]],
                      "short": [["Red star."], []]})
    path = tmp_path / "captions.parquet"
    pq.write_table(table, path)
    return path


def embedders_for(layout, model, tokenizer):
    return {source: FacetEmbedder(model, tokenizer, t) for source, t in text_layout(layout).items()}


@pytest.mark.parametrize("tiny_llm", ["mistral"], indirect=True)
def test_official_layout_rows_values_and_metadata(tmp_path, captions_file, tiny_llm, tokenizer):
    embedders = embedders_for("official", tiny_llm, tokenizer)
    out = tmp_path / "emb.parquet"
    counts = embed_captions_file(captions_file, out, embedders, ["long", "raw", "short"],
                                 metadata={"llm": "tiny", "layout": "official"})
    table, emb = read_embeddings(out)
    rows = list(zip(*(table[c].to_pylist() for c in ("key", "source", "facet"))))
    long7 = list(FACET_SETS["long"])
    # image a: raw (1) + short (3) + two long captions (7 each); image b: its one long caption (7)
    expected = ([("a", "raw", "description")] + [("a", "short_0", f) for f in long7[:3]]
                + [("a", "long_0", f) for f in long7] + [("a", "long_1", f) for f in long7]
                + [("b", "long_0", f) for f in long7])
    assert rows == expected
    assert counts["empty"] == 1 and counts["captions"] == 5 and counts["rows"] == len(expected) == 25
    assert emb.dtype == np.float16 and emb.shape == (25, 64)  # no padding to the largest K
    assert pq.read_schema(out).field("embedding").type.list_size == 64
    want_long = torch.nn.functional.normalize(embedders["long"].encode(["A red star falls."]), dim=-1)[0]
    assert np.allclose(emb[4:11].astype(np.float32), want_long.numpy(), atol=2e-3)
    want_short = torch.nn.functional.normalize(embedders["short"].encode(["Red star."]), dim=-1)[0]
    assert np.allclose(emb[1:4].astype(np.float32), want_short.numpy(), atol=2e-3)
    assert np.allclose(np.linalg.norm(emb.astype(np.float32), axis=-1), 1, atol=2e-3)
    meta = read_parquet_metadata(out)
    assert meta["llm"] == "tiny" and meta["layout"] == "official" and meta["dim"] == 64 and meta["layer"] == -1
    assert meta["sources"] == ["raw", "short", "long"] and meta["counts"]["rows"] == 25
    assert meta["prompts_hash"] == templates_hash(text_layout("official"))
    assert meta["templates"]["short"]["prefix"].startswith("Image description : ")


@pytest.mark.parametrize("tiny_llm", ["mistral"], indirect=True)
def test_paper_layout_gives_long_captions_seven_rows_and_the_others_one(tmp_path, captions_file, tiny_llm,
                                                                        tokenizer):
    out = tmp_path / "emb.parquet"
    embed_captions_file(captions_file, out, embedders_for("paper", tiny_llm, tokenizer), ["raw", "short", "long"])
    table, emb = read_embeddings(out)
    per_caption = {}
    for key, label in zip(table["key"].to_pylist(), table["source"].to_pylist()):
        per_caption[(key, label)] = per_caption.get((key, label), 0) + 1
    assert per_caption == {("a", "raw"): 1, ("a", "short_0"): 1, ("a", "long_0"): 7, ("a", "long_1"): 7,
                           ("b", "long_0"): 7}
    assert emb.shape == (23, 64)


@pytest.mark.parametrize("tiny_llm", ["mistral"], indirect=True)
def test_failed_run_leaves_no_output(tmp_path, captions_file, tiny_llm, tokenizer, monkeypatch):
    embedders = embedders_for("paper", tiny_llm, tokenizer)

    def boom(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(embedders["long"], "encode", boom)
    with pytest.raises(RuntimeError):
        embed_captions_file(captions_file, tmp_path / "emb.parquet", embedders, ["long"])
    assert list(tmp_path.glob("emb*")) == [] and list(tmp_path.glob(".emb*")) == []


@pytest.mark.parametrize("tiny_llm", ["mistral"], indirect=True)
def test_a_non_finite_embedding_costs_its_caption_only(tmp_path, captions_file, tiny_llm, tokenizer, monkeypatch):
    embedders = embedders_for("paper", tiny_llm, tokenizer)
    encode = embedders["long"].encode

    def second_caption_nan(texts, **kwargs):
        rows = list(encode(texts, **kwargs))
        rows[1] = torch.full_like(rows[1], float("nan"))
        return rows

    monkeypatch.setattr(embedders["long"], "encode", second_caption_nan)
    out = tmp_path / "emb.parquet"
    counts = embed_captions_file(captions_file, out, embedders, ["raw", "long"])
    table, vectors = read_embeddings(out)
    assert np.isfinite(vectors.astype(np.float32)).all()
    assert ("a", "long_1") not in set(zip(table.column("key").to_pylist(), table.column("source").to_pylist()))
    assert {"a long_0", "b long_0"} <= {f"{k} {s}" for k, s in zip(table.column("key").to_pylist(),
                                                                      table.column("source").to_pylist())}
    assert counts["non_finite"] == 1
    assert read_parquet_metadata(out)["skipped"] == {"a long_1": "non-finite embedding"}


@pytest.mark.parametrize("tiny_llm", ["mistral"], indirect=True)
def test_the_caption_limit_is_recorded_as_part_of_the_text_side(tmp_path, captions_file, tiny_llm, tokenizer):
    """Evaluation must cut benchmark texts where training captions were cut: the limit is part of what the vectors
    mean, so the file records it and training carries it into the model directory."""
    from pipeline.io.embeddings import TEXT_SIDE_KEYS, text_side

    embedders = {source: FacetEmbedder(tiny_llm, tokenizer, t, max_caption_tokens=3)
                 for source, t in text_layout("paper").items()}
    out = tmp_path / "emb.parquet"
    counts = embed_captions_file(captions_file, out, embedders, ["long"])
    assert "max_caption_tokens" in TEXT_SIDE_KEYS
    assert text_side(read_parquet_metadata(out))["max_caption_tokens"] == 3
    assert counts["truncated"] == 2  # "A red star falls." and "A blue circle rests." are longer than 3 tokens


@pytest.mark.parametrize("tiny_llm", ["mistral"], indirect=True)
def test_several_captions_files_in_one_call_load_the_llm_once_and_equal_one_call_each(tmp_path, captions_file,
                                                                                      tiny_llm, tokenizer,
                                                                                      monkeypatch):
    """`flame embed C1 O1 C2 O2` (a chunk of shards, embed.execution.shards_per_job): one load of the LLM, and each
    output equals `flame embed` of its captions file alone, its own shard recorded."""
    llm = tmp_path / "llm"
    tiny_llm.save_pretrained(llm)
    tokenizer.save_pretrained(llm)
    other = tmp_path / "other.parquet"
    write_parquet(pa.table({"key": ["c", "d", "e"], "raw": ["a green ring", "two stars", "fog"],
                            "long": [["A green ring in the fog."], [], ["Fog over a purple hexagon, at night."]],
                            "short": [[], ["Two stars."], []]}), other, {"stage": "caption", "shard": "shard-00007"})
    loads = []

    def counted(*args, **kwargs):
        loads.append(args[0])
        return load_llm(*args, **kwargs)

    monkeypatch.setattr(stage, "load_llm", counted)
    settings = ["--settings", json.dumps({"llm": str(llm), "layout": "paper"}), "--device", "cpu"]
    assert main(["embed", str(captions_file), str(tmp_path / "a.parquet"), str(other), str(tmp_path / "b.parquet"),
                 *settings]) == 0
    assert loads == [str(llm)]
    for captions, chunked, alone in ((captions_file, "a", "a1"), (other, "b", "b1")):
        assert main(["embed", str(captions), str(tmp_path / f"{alone}.parquet"), *settings]) == 0
        assert pq.read_table(tmp_path / f"{chunked}.parquet").equals(pq.read_table(tmp_path / f"{alone}.parquet"))
        meta, meta_alone = (read_parquet_metadata(tmp_path / f"{name}.parquet") for name in (chunked, alone))
        assert meta["captions_file"] == str(captions) and meta.pop("seconds") >= 0 and meta_alone.pop("seconds") >= 0
        assert meta == meta_alone
    assert read_parquet_metadata(tmp_path / "b.parquet")["shard"] == "shard-00007"
    assert read_parquet_metadata(tmp_path / "a.parquet")["shard"] is None  # a captions file not written by flame
    assert len(loads) == 3


def test_a_missing_captions_file_or_one_output_twice_fails_before_the_llm_loads(tmp_path, captions_file,
                                                                                monkeypatch, capsys):
    monkeypatch.setattr(stage, "load_llm", lambda *a, **k: pytest.fail("the LLM was loaded"))
    settings = ["--settings", '{"llm": "x"}']
    missing = tmp_path / "missing.parquet"
    assert main(["embed", str(captions_file), "a.parquet", str(missing), "b.parquet", *settings]) == 1
    assert f"captions file not found: {missing}" in capsys.readouterr().err
    assert main(["embed", str(captions_file), str(tmp_path / "a.parquet"), str(captions_file),
                 str(tmp_path / "a.parquet"), *settings]) == 1
    assert f"output given for more than one captions file: {tmp_path / 'a.parquet'}" in capsys.readouterr().err
