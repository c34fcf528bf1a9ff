from collections import Counter

import pyarrow as pa
import pytest

from fixtures.shards import write_shard
from pipeline.io.atomic import atomic_path
from pipeline.io.parquet import read_parquet_metadata, write_parquet
from pipeline.io.shards import TruncatedShard, decode_image, expand_shards, iter_shard, shard_names


def test_iter_shard_groups_members_by_key(tmp_path):
    shard = write_shard(tmp_path / "x.tar", [{"key": "a", "txt": "one", "json": {"k": 1}}, {"key": "b"}])
    samples = list(iter_shard(shard))
    assert [s.key for s in samples] == ["a", "b"]
    assert samples[0].text() == "one" and samples[0].json() == {"k": 1} and samples[1].json() == {}
    assert samples[0].image_bytes[:2] == b"\xff\xd8"


def test_expand_shards_braces_and_globs(tmp_path):
    for i in range(3):
        (tmp_path / f"{i:05d}.tar").write_bytes(b"")
    assert [p.name for p in expand_shards(f"{tmp_path}/{{00000..00001}}.tar")] == ["00000.tar", "00001.tar"]
    assert len(expand_shards(f"{tmp_path}/*.tar")) == 3
    with pytest.raises(FileNotFoundError, match="nothing"):
        expand_shards(f"{tmp_path}/nothing*.tar")


def test_distinct_shard_paths_get_distinct_names_and_a_collision_names_both(tmp_path):
    """Dotted names (`train.00000.tar`) and equal file names in two folders each keep their own name (the name was
    the file name up to its first dot: 332 dotted shards planned one job, two folders lost one shard of each pair)."""
    dotted = [tmp_path / f"train.{i:05d}.tar" for i in range(3)]
    assert shard_names(dotted) == {"train.00000": dotted[0], "train.00001": dotted[1], "train.00002": dotted[2]}
    folders = [tmp_path / "part1" / "00000.tar", tmp_path / "part2" / "00000.tar"]
    assert shard_names(folders) == {"part1/00000": folders[0], "part2/00000": folders[1]}
    assert shard_names([tmp_path / "shard-00003.tar"]) == {"shard-00003": tmp_path / "shard-00003.tar"}
    with pytest.raises(ValueError, match=r"shards .*/x\.tar and .*/x would both be named 'x'"):
        shard_names([tmp_path / "x.tar", tmp_path / "x"])


def _cut(shard, size, tmp_path):
    cut = tmp_path / f"cut-{size}.tar"
    cut.write_bytes(shard.read_bytes()[:size])
    return cut


def test_a_truncated_tar_is_an_error_naming_the_shard_and_the_offset(tmp_path):
    """Cut at a header, inside a header or inside a member's data: never a silently shorter shard (Python's tarfile
    reads a tar cut at a header as a complete archive of fewer members)."""
    import tarfile

    shard = write_shard(tmp_path / "x.tar", [{"key": f"{i:03d}"} for i in range(8)])
    with tarfile.open(shard) as tar:
        members = tar.getmembers()
    header_of_6th = members[10].offset  # sample 5's jpg header (2 members per sample)
    for size in (header_of_6th, header_of_6th + 100, members[10].offset_data + 50):
        with pytest.raises(TruncatedShard, match=rf"cut-{size}\.tar: truncated .*at byte \d+"):
            list(iter_shard(_cut(shard, size, tmp_path)))
    assert len(list(iter_shard(shard))) == 8  # the whole tar reads


def test_links_in_a_tar_are_counted_not_silently_dropped(tmp_path):
    import io
    import tarfile

    shard = write_shard(tmp_path / "x.tar", [{"key": "a"}])
    with tarfile.open(shard, "a") as tar:
        link = tarfile.TarInfo("b.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "a.jpg"
        tar.addfile(link)
        info = tarfile.TarInfo("c.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"c"))
    ignored = Counter()
    assert [s.key for s in iter_shard(shard, ignored)] == ["a", "c"]
    assert ignored == {"link": 1}


def test_a_brace_pattern_names_its_shards_without_the_data(tmp_path):
    (tmp_path / "00001.tar").write_bytes(b"")
    assert expand_shards(f"{tmp_path}/{{00000..00002}}.tar") == [tmp_path / f"{i:05d}.tar" for i in range(3)]


def test_atomic_path_keeps_nothing_on_failure(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "f.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError
    assert list(tmp_path.iterdir()) == []
    with atomic_path(tmp_path / "f.txt") as tmp:
        tmp.write_text("whole")
    assert (tmp_path / "f.txt").read_text() == "whole" and len(list(tmp_path.iterdir())) == 1


def test_parquet_metadata_round_trip(tmp_path):
    write_parquet(pa.table({"a": [1]}), tmp_path / "t.parquet", {"x": [1, 2]})
    assert read_parquet_metadata(tmp_path / "t.parquet") == {"x": [1, 2]}


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.array([[0, 32768], [65535, 1024]], dtype=np.uint16)).save(buf, format="PNG")
    assert Image.open(io.BytesIO(buf.getvalue())).mode.startswith("I")
    rgb = np.asarray(decode_image(buf.getvalue()))
    assert rgb[..., 0].tolist() == [[0, 128], [255, 4]] and (rgb[..., 0] == rgb[..., 2]).all()


def test_outputs_get_the_umask_mode_not_mkstemps_owner_only(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "out.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644
