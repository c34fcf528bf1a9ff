import io
import json
import sys
import types

import pyarrow.parquet as pq
import pytest
from PIL import Image

from fixtures.shards import write_shard
from pipeline.caption.backends import LegacyMiniCPMCaptioner, VLLMCaptioner
from pipeline.caption.partial import PartialCaptions, fingerprint
from pipeline.caption.stage import caption_shard
from pipeline.io.parquet import read_parquet_metadata
from pipeline.settings import validate_document


def settings(**overrides) -> dict:
    return validate_document("caption_settings", overrides, "test settings")


class ColourCaptioner:
    """A stand-in VLM: captions name the image's mean red value, the prompt, the caption index and the seed."""

    def __init__(self):
        self.calls = []

    def caption(self, images, request, sampling, seed):
        self.calls.append(len(images))
        return [[f"{request['prompt']} r{round(image.getpixel((4, 4))[0] / 10)} #{j}" for j in range(request["count"])]
                for image in images]


def _jpeg(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buf, format="JPEG")
    return buf.getvalue()


def test_dataset_backend_keeps_shard_captions_and_skips_unreadable(tmp_path):
    shard = write_shard(tmp_path / "s-000.tar", [
        {"key": "000", "txt": "red star hd", "json": {"long": ["A long one.", "Another."], "short": ["A star."]}},
        {"key": "001", "txt": "broken", "jpg": b"not an image"},
        {"key": "002", "txt": "alt only"},
    ])
    counts = caption_shard(shard, tmp_path / "out.parquet", settings())
    table = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["key"] for r in table] == ["000", "002"]
    assert table[0] == {"key": "000", "raw": "red star hd", "long": ["A long one.", "Another."], "short": ["A star."]}
    assert table[1]["long"] == [] and table[1]["raw"] == "alt only"
    assert counts["skipped: unreadable image"] == 1 and counts["captioned"] == 2
    meta = read_parquet_metadata(tmp_path / "out.parquet")
    assert meta["counts"]["skipped: unreadable image"] == 1 and meta["skipped"] == {"001": "unreadable image"}
    assert meta["model"] is None
    assert not list(tmp_path.glob("*.partial.jsonl"))


def test_bad_samples_are_skipped_by_reason_and_the_shard_goes_on(tmp_path, capsys):
    """Malformed JSON, a JSON list, wrong caption types and non-UTF-8 alt-text each cost one sample, named in the
    log."""
    import tarfile

    shard = write_shard(tmp_path / "s.tar", [
        {"key": "007", "json": {"long": "not a list"}}, {"key": "008", "json": ["a", "list"]},
        {"key": "009", "txt": "fine", "json": {"short": ["ok"]}}])
    with tarfile.open(shard, "a") as tar:  # members a writer of JSON or UTF-8 would not produce
        for name, data in (("010.jpg", _jpeg((1, 2, 3))), ("010.txt", b"caf\xe9 latin-1"),
                           ("011.jpg", _jpeg((9, 9, 9))), ("011.json", b'{"long": ["unterminated'),
                           ("sub/012.b.jpg", _jpeg((50, 0, 0))), ("other/012.jpg", _jpeg((0, 50, 0)))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    counts = caption_shard(shard, tmp_path / "out.parquet", settings())
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    # webdataset's keys: folders kept (sub/012 and other/012 are two samples), `012.b.jpg` is a jpg of key 012
    assert [r["key"] for r in rows] == ["009", "sub/012", "other/012"] and rows[0]["short"] == ["ok"]
    meta = read_parquet_metadata(tmp_path / "out.parquet")
    assert meta["skipped"] == {"007": "malformed json", "008": "malformed json", "010": "txt not UTF-8",
                               "011": "malformed json"}
    assert counts["skipped: malformed json"] == 3 and counts["skipped: txt not UTF-8"] == 1
    log = capsys.readouterr().err
    assert "s.tar: 007.json key 'long': expected a list of strings" in log and "010.txt is not UTF-8" in log


def test_a_shard_without_a_usable_sample_gives_an_empty_file_a_warning_and_its_identity(tmp_path, capsys):
    """All images unreadable, or a valid empty tar: 0 rows, counted, a warning that training skips the shard; the
    file records the shard it was made from (resolved path and size), which training checks."""
    import tarfile

    from pipeline.io.shards import shard_identity

    broken = write_shard(tmp_path / "broken.tar", [{"key": f"{i:03d}", "jpg": b"not an image"} for i in range(3)])
    with tarfile.open(tmp_path / "empty.tar", "w"):
        pass
    for shard in (broken, tmp_path / "empty.tar"):
        counts = caption_shard(shard, tmp_path / f"{shard.stem}.parquet", settings())
        assert counts["captioned"] == 0 and pq.read_table(tmp_path / f"{shard.stem}.parquet").num_rows == 0
        assert f"warning: {shard}: no usable sample" in capsys.readouterr().err
        meta = read_parquet_metadata(tmp_path / f"{shard.stem}.parquet")
        assert meta["shard"] == shard_identity(shard) == {"path": str(shard.resolve()), "size": shard.stat().st_size}
    assert counts["samples"] == 0 and read_parquet_metadata(tmp_path / "broken.parquet")["counts"][
        "skipped: unreadable image"] == 3


def test_a_truncated_shard_is_an_error_and_writes_nothing(tmp_path):
    from pipeline.io.shards import TruncatedShard

    shard = write_shard(tmp_path / "s.tar", [{"key": f"{i:03d}"} for i in range(8)])
    cut = tmp_path / "cut.tar"
    cut.write_bytes(shard.read_bytes()[:5 * 2 * 1024])  # tarfile alone reads it as a shorter shard
    with pytest.raises(TruncatedShard, match=r"cut\.tar: truncated at byte"):
        caption_shard(cut, tmp_path / "out.parquet", settings(), state_dir=tmp_path / "state")
    assert not (tmp_path / "out.parquet").exists()


def test_model_backend_batches_records_provenance_and_skips_bad_images(tmp_path):
    truncated = _jpeg((90, 0, 0))[:60]
    shard = write_shard(tmp_path / "s.tar", [
        {"key": "a", "color": (200, 0, 0), "txt": "alt a"}, {"key": "b", "jpg": b""},
        {"key": "c", "jpg": truncated}, {"key": "d", "color": (100, 0, 0)}, {"key": "a", "color": (0, 0, 0)},
        {"key": "e", "color": (30, 0, 0)}])
    doc = settings(backend="hf", model="some/vlm", revision="abc123", long={"prompt": "Long?", "count": 2},
                   short={"prompt": "Short?"}, sampling={"do_sample": True, "temperature": 0.5})
    fake = ColourCaptioner()
    counts = caption_shard(shard, tmp_path / "out.parquet", doc, batch_size=2, captioner=fake)
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["key"] for r in rows] == ["a", "d", "e"]
    assert rows[0] == {"key": "a", "raw": "alt a", "long": ["Long? r20 #0", "Long? r20 #1"], "short": ["Short? r20 #0"]}
    assert rows[1]["long"][0] == "Long? r10 #0" and rows[2]["short"] == ["Short? r3 #0"]
    # batches of 2 samples (bad images take their place in a batch but reach no model), long and short per batch
    assert fake.calls == [1, 1, 1, 1, 1, 1]
    assert counts["skipped: unreadable image"] == 2 and counts["repeated_key"] == 1 and counts["captioned"] == 3
    meta = read_parquet_metadata(tmp_path / "out.parquet")
    assert meta["model"] == "some/vlm" and meta["revision"] == "abc123"
    assert meta["skipped"] == {"b": "unreadable image", "c": "unreadable image"}
    assert meta["prompts"]["long"] == {"prompt": "Long?", "count": 2, "max_new_tokens": 256}
    assert meta["sampling"] == {"do_sample": True, "temperature": 0.5, "top_p": 0.8}


def test_a_kind_with_count_zero_reaches_no_model(tmp_path):
    shard = write_shard(tmp_path / "s.tar", [{"key": f"k{i}", "color": (i * 40, 0, 0)} for i in range(3)])
    fake = ColourCaptioner()
    caption_shard(shard, tmp_path / "out.parquet", settings(backend="hf", model="m", short={"prompt": "S", "count": 0}),
                  batch_size=2, captioner=fake)
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["short"] for r in rows] == [[], [], []] and all(len(r["long"]) == 1 for r in rows)
    assert fake.calls == [2, 1]  # long captions only


def test_partial_file_resumes_finished_keys_and_drops_a_cut_line(tmp_path):
    shard = write_shard(tmp_path / "s.tar", [{"key": f"k{i}", "color": (i * 20, 0, 0)} for i in range(6)])
    doc = settings(backend="hf", model="m")
    partial = PartialCaptions(tmp_path / "state" / "out.parquet.partial.jsonl", fingerprint(doc, shard))
    partial.append([{"key": "k0", "raw": "", "long": ["from before"], "short": ["s"]}])
    with open(partial.path, "ab") as f:
        f.write(b'{"key": "k1", "raw": "", "lo')  # a kill in the middle of a write
    fake = ColourCaptioner()
    counts = caption_shard(shard, tmp_path / "out.parquet", doc, state_dir=tmp_path / "state", batch_size=4,
                           captioner=fake)
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["key"] for r in rows] == [f"k{i}" for i in range(6)]  # every key once, in shard order
    assert rows[0]["long"] == ["from before"] and rows[1]["long"] == ["Describe this image in detail. r2 #0"]
    assert counts["resumed"] == 1 and fake.calls == [4, 4, 1, 1]
    assert not partial.path.exists()

    partial.append([{"key": "k0", "raw": "", "long": ["stale"], "short": []}])  # other settings: started over
    caption_shard(shard, tmp_path / "out.parquet", settings(backend="hf", model="m", seed=1),
                  state_dir=tmp_path / "state", captioner=ColourCaptioner())
    assert pq.read_table(tmp_path / "out.parquet").to_pylist()[0]["long"] != ["stale"]


@pytest.mark.parametrize("bad, message", [
    ({"backend": "hf"}, "needs caption.model"),
    ({"model": "x"}, "backend is dataset"),
    ({"backend": "hf", "model": "x", "long": {"prompt": "p", "count": 3}}, "set caption.sampling.do_sample"),
])
def test_inconsistent_settings_are_refused_naming_the_key(tmp_path, bad, message):
    shard = write_shard(tmp_path / "s.tar", [{"key": "a"}])
    with pytest.raises(ValueError, match=message):
        caption_shard(shard, tmp_path / "o.parquet", settings(**bad), captioner=ColourCaptioner())


class FakeLegacyModel:
    """MiniCPM-Llama3-V-2.5's remote-code ``chat`` signature, answering from its arguments."""

    def chat(self, image, msgs, tokenizer, processor=None, vision_hidden_states=None, max_new_tokens=1024,
             sampling=True, max_inp_length=2048, system_prompt="", stream=False, **kwargs):
        assert isinstance(image, Image.Image) and tokenizer == "tok" and not stream
        return f" {msgs[0]['role']}:{msgs[0]['content']} max={max_new_tokens} sampling={sampling} {sorted(kwargs)} "


def test_legacy_minicpm_adapter_calls_chat_per_image_and_caption():
    captioner = LegacyMiniCPMCaptioner(FakeLegacyModel(), "tok")
    image = Image.new("RGB", (8, 8))
    greedy = captioner.caption([image, image], {"prompt": "Describe.", "count": 1, "max_new_tokens": 9},
                               {"do_sample": False, "temperature": 0.7, "top_p": 0.8}, seed=0)
    assert greedy == [["user:Describe. max=9 sampling=False []"]] * 2
    sampled = captioner.caption([image], {"prompt": "P", "count": 2, "max_new_tokens": 5},
                                {"do_sample": True, "temperature": 0.3, "top_p": 0.9}, seed=0)
    assert sampled == [["user:P max=5 sampling=True ['temperature', 'top_p']"] * 2]


def test_legacy_backend_is_refused_without_trust_remote_code():
    with pytest.raises(ValueError, match="set caption.trust_remote_code: true"):
        LegacyMiniCPMCaptioner.load("openbmb/MiniCPM-Llama3-V-2_5")


def test_vllm_backend_without_vllm_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(RuntimeError, match="pip install vllm"):
        VLLMCaptioner.load("some/vlm")


def test_vllm_adapter_sends_the_chat_prompt_and_image_with_the_sampling_settings():
    class FakeProcessor:
        def apply_chat_template(self, messages, add_generation_prompt, tokenize):
            assert add_generation_prompt and not tokenize
            return "USER: " + json.dumps(messages[0]["content"]) + " ASSISTANT:"

    class FakeLLM:
        def generate(self, requests, params, use_tqdm):
            self.requests, self.params = requests, params
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f" cap{i}.{j} ")
                                                   for j in range(params.n)]) for i, _ in enumerate(requests)]

    llm, image = FakeLLM(), Image.new("RGB", (8, 8))
    captioner = VLLMCaptioner(llm, FakeProcessor(), lambda **kw: types.SimpleNamespace(**kw))
    out = captioner.caption([image, image], {"prompt": "Say.", "count": 2, "max_new_tokens": 7},
                            {"do_sample": False, "temperature": 0.7, "top_p": 0.8}, seed=3)
    assert out == [["cap0.0", "cap0.1"], ["cap1.0", "cap1.1"]]
    assert llm.requests[0]["multi_modal_data"]["image"] is image
    assert llm.requests[0]["prompt"] == 'USER: [{"type": "image"}, {"type": "text", "text": "Say."}] ASSISTANT:'
    assert vars(llm.params) == {"n": 2, "max_tokens": 7, "seed": 3, "temperature": 0.0, "top_p": 1.0}


@pytest.fixture(scope="module", params=["minicpmv4_6", "minicpmv4_7"])
def tiny_vlm(request, tmp_path_factory):
    """A tiny random MiniCPM-V directory (processor with a tokenizer trained here + model), as a checkpoint is."""
    from pipeline.demo.tiny_vlm import save_tiny_vlm

    root = tmp_path_factory.mktemp(request.param)
    corpus = root / "corpus.txt"
    corpus.write_text("Describe this image in detail.\nA red star beside a small blue circle at night.\n"
                      "Describe this image in one short sentence.\n")
    return save_tiny_vlm(root / "vlm", corpus, arch=request.param)


def _images() -> list[Image.Image]:
    """Four images of other sizes and contents; the 300x150 one is sliced into crops by the MiniCPM-V processor."""
    sizes = [(120, 90), (300, 150), (40, 40), (64, 200)]
    return [Image.effect_noise(size, 60 + 30 * i).convert("RGB") for i, size in enumerate(sizes)]


def test_hf_backend_greedy_batch_equals_one_image_at_a_time(tiny_vlm, tmp_path):
    """Even for a checkpoint whose tokenizer config asks for right padding (generation needs left padding)."""
    import shutil

    from pipeline.caption.backends import HFCaptioner

    checkpoint = shutil.copytree(tiny_vlm, tmp_path / "vlm")
    tokenizer_config = json.loads((checkpoint / "tokenizer_config.json").read_text())
    (checkpoint / "tokenizer_config.json").write_text(json.dumps({**tokenizer_config, "padding_side": "right"}))
    captioner = HFCaptioner.load(str(checkpoint), device="cpu")
    request, greedy = {"prompt": "Describe this image in detail.", "count": 1, "max_new_tokens": 10}, {
        "do_sample": False}
    images = _images()
    batched = captioner.caption(images, request, greedy, seed=0)
    alone = [captioner.caption([image], request, greedy, seed=0)[0] for image in images]
    assert batched == alone
    assert len({caption[0] for caption in alone}) > 1  # the captions depend on the image: the check has teeth
    assert all(len(caption[0]) > 0 for caption in alone)
    sampled = captioner.caption(images[:2], {**request, "count": 3}, {"do_sample": True, "temperature": 1.0,
                                                                       "top_p": 1.0}, seed=5)
    assert [len(c) for c in sampled] == [3, 3]
    assert sampled == captioner.caption(images[:2], {**request, "count": 3}, {"do_sample": True, "temperature": 1.0,
                                                                                "top_p": 1.0}, seed=5)


def test_caption_cli_resumes_after_sigkill_with_every_key_once(tiny_vlm, tmp_path):
    import os
    import signal
    import subprocess
    import time

    shard = write_shard(tmp_path / "s.tar", [{"key": f"k{i:02d}", "color": (i * 15, 200 - i * 10, 90),
                                              "txt": f"alt {i}"} for i in range(14)])
    doc = json.dumps({"backend": "hf", "model": str(tiny_vlm), "long": {"prompt": "Describe.", "max_new_tokens": 40},
                      "short": {"prompt": "Short.", "max_new_tokens": 8}})

    def command(out, state):
        return [sys.executable, "-m", "pipeline.cli", "caption", str(shard), str(out), "--settings", doc,
                "--batch-size", "1", "--state-dir", str(state), "--device", "cpu"]

    subprocess.run(command(tmp_path / "whole.parquet", tmp_path / "state0"), check=True, capture_output=True,
                   env=dict(os.environ, OMP_NUM_THREADS="1"))
    partial = tmp_path / "state" / "killed.parquet.partial.jsonl"
    proc = subprocess.Popen(command(tmp_path / "killed.parquet", tmp_path / "state"), stderr=subprocess.DEVNULL,
                            env=dict(os.environ, OMP_NUM_THREADS="1"), start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if partial.exists() and partial.read_bytes().count(b"\n") >= 4:  # header + 3 keys done
            break
        time.sleep(0.02)
    assert proc.poll() is None, "finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed.parquet").exists()
    done_before = partial.read_bytes().count(b"\n") - 1
    assert 3 <= done_before < 14
    rerun = subprocess.run(command(tmp_path / "killed.parquet", tmp_path / "state"), check=True,
                           capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert f"'resumed': {done_before}" in rerun.stdout
    whole, resumed = (pq.read_table(tmp_path / name).to_pylist() for name in ("whole.parquet", "killed.parquet"))
    assert [r["key"] for r in resumed] == [f"k{i:02d}" for i in range(14)]
    assert resumed == whole  # greedy captions: the resumed shard equals an uninterrupted run
    assert not partial.exists()
