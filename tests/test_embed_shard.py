import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from pipeline.data import read_parquet_metadata
from pipeline.embed import FacetEmbedder
from pipeline.embed_shard import embed_captions_file, read_embeddings
from pipeline.prompts import prompts_hash


@pytest.fixture()
def captions_file(tmp_path):
    table = pa.table({"key": ["a", "b"], "raw": ["red star", ""],
                      "long": [["A red star falls.", "A star."], ["A blue circle rests."]],
                      "short": [["Red star."], []]})
    path = tmp_path / "captions.parquet"
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize("tiny_llm", ["mistral"], indirect=True)
def test_embeddings_file_rows_values_and_metadata(tmp_path, captions_file, tiny_llm, tokenizer):
    embedder = FacetEmbedder(tiny_llm, tokenizer, "long")
    out = tmp_path / "emb.parquet"
    counts = embed_captions_file(captions_file, out, embedder, ["raw", "short", "long"], llm_meta={"llm": "tiny"})
    keys, sources, emb = read_embeddings(out)
    assert list(zip(keys, sources)) == [("a", "raw"), ("a", "short_0"), ("a", "long_0"), ("a", "long_1"),
                                        ("b", "long_0")]
    assert counts["empty"] == 1 and counts["captions"] == 5
    assert emb.dtype == np.float16 and emb.shape == (5, 7, 64)
    expected = torch.nn.functional.normalize(embedder.encode(["A red star falls."]), dim=-1)[0]
    assert np.allclose(emb[2].astype(np.float32), expected.numpy(), atol=2e-3)
    assert np.allclose(np.linalg.norm(emb.astype(np.float32), axis=-1), 1, atol=2e-3)
    meta = read_parquet_metadata(out)
    assert meta["llm"] == "tiny" and meta["num_facets"] == 7 and meta["dim"] == 64 and meta["layer"] == -1
    assert meta["prompts_hash"] == prompts_hash("long") and len(meta["suffixes"]) == 7
    assert meta["counts"]["empty"] == 1


@pytest.mark.parametrize("tiny_llm", ["mistral"], indirect=True)
def test_failed_run_leaves_no_output(tmp_path, captions_file, tiny_llm, tokenizer, monkeypatch):
    embedder = FacetEmbedder(tiny_llm, tokenizer, "short")

    def boom(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(embedder, "encode", boom)
    with pytest.raises(RuntimeError):
        embed_captions_file(captions_file, tmp_path / "emb.parquet", embedder, ["long"])
    assert list(tmp_path.glob("emb*")) == [] and list(tmp_path.glob(".emb*")) == []
