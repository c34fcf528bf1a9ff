"""Every Parquet reader of the pipeline names the file it could not read."""

import pytest

from pipeline.io.captions import iter_captions
from pipeline.io.embeddings import EmbeddingRows, embedding_dim, read_embeddings
from pipeline.io.parquet import read_parquet_metadata


@pytest.mark.parametrize("read", [read_parquet_metadata, read_embeddings, embedding_dim,
                                  lambda path: EmbeddingRows(path, ["raw"]),
                                  lambda path: list(iter_captions(path, ["raw"], ("raw",)))],
                         ids=["metadata", "embeddings", "embedding_dim", "embedding_rows", "captions"])
@pytest.mark.parametrize("content", [b"", b"PAR1 cut off in the middle of a file", b"not parquet at all" * 10])
def test_a_corrupt_or_truncated_parquet_file_is_named_in_the_error(tmp_path, read, content):
    path = tmp_path / "shard-00007.parquet"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"shard-00007.parquet: not a readable Parquet file \("):
        read(path)


def test_a_corrupt_page_inside_an_embeddings_file_is_named_in_the_error(tmp_path):
    """The footer reads, a data page does not: the error comes when the rows are read, and names the file."""
    import numpy as np

    from pipeline.io.embeddings import write_embeddings

    path = tmp_path / "shard-00003.parquet"
    write_embeddings([(f"k{i}", "raw", "a") for i in range(50)], np.ones((50, 16), np.float16), path, {"dim": 16})
    data = bytearray(path.read_bytes())
    data[100:140] = b"\x99" * 40  # inside the first column chunk
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"shard-00003.parquet: not a readable Parquet file \("):
        read_embeddings(path)
    with pytest.raises(ValueError, match=r"shard-00003.parquet: not a readable Parquet file \("):
        EmbeddingRows(path, ["raw"]).vector(3)
