import pyarrow.parquet as pq
import pytest

from helpers import write_shard
from pipeline.caption import caption_shard
from pipeline.data import read_parquet_metadata


def test_dataset_backend_keeps_shard_captions_and_skips_unreadable(tmp_path):
    shard = write_shard(tmp_path / "s-000.tar", [
        {"key": "000", "txt": "red star hd", "json": {"long": ["A long one.", "Another."], "short": ["A star."]}},
        {"key": "001", "txt": "broken", "jpg": b"not an image"},
        {"key": "002", "txt": "alt only"},
    ])
    counts = caption_shard(shard, tmp_path / "out.parquet")
    table = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["key"] for r in table] == ["000", "002"]
    assert table[0] == {"key": "000", "raw": "red star hd", "long": ["A long one.", "Another."], "short": ["A star."]}
    assert table[1]["long"] == [] and table[1]["raw"] == "alt only"
    assert counts["unreadable"] == 1 and counts["captioned"] == 2
    assert read_parquet_metadata(tmp_path / "out.parquet")["counts"]["unreadable"] == 1


def test_malformed_caption_json_names_shard_and_key(tmp_path):
    shard = write_shard(tmp_path / "s.tar", [{"key": "007", "json": {"long": "not a list"}}])
    with pytest.raises(ValueError, match=r"s.tar:007.json key 'long'"):
        caption_shard(shard, tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()
