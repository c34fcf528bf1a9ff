"""Caption stage: one row per readable image of a shard (:mod:`pipeline.io.captions`): ``key``, ``raw``, ``long``,
``short``.

``raw`` is the shard's alt-text (``{key}.txt``); ``long`` and ``short`` are lists of synthetic captions, as many per
image as the settings' ``long.count`` / ``short.count``. The backend (``settings["backend"]``) is ``dataset`` (keep
the lists under ``"long"`` and ``"short"`` of the shard's ``{key}.json``; no model) or a vision-language model
(:mod:`pipeline.caption.backends`).

Resumable: every finished batch is appended to a partial file (:mod:`pipeline.caption.partial`) in the state
directory; a rerun with the same settings and shard skips the keys already there, and the final Parquet file
(written atomically, metadata: backend, model, revision, prompts, sampling, seed, counts, skipped keys) has every
key exactly once, in shard order. A bad sample (unreadable, truncated or empty image, alt-text not UTF-8, malformed
JSON) or a repeated key is skipped, logged, counted by reason and listed (metadata ``skipped``: key -> reason); it
never stops the shard. A shard without any usable sample gives a file of 0 rows and a warning (training skips it); a
truncated tar is an error naming the shard.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from pipeline.caption.partial import PartialCaptions, batch_seed, fingerprint
from pipeline.io import captions
from pipeline.io.captions import KINDS
from pipeline.io.locks import single_writer
from pipeline.io.provenance import provenance
from pipeline.io.shards import BadSample, decode_image, iter_shard, shard_identity
from pipeline.settings import as_json


def check_settings(settings: dict) -> None:
    """What the schema cannot say: a model for model backends, none for ``dataset``, sampling for several captions."""
    backend = settings["backend"]
    if backend == "dataset":
        if settings["model"] is not None:
            raise ValueError("caption.model is set but backend is dataset (which keeps the shard's captions and "
                             "loads no model): choose backend hf, minicpmv_legacy or vllm, or drop the model")
        return
    if settings["model"] is None:
        raise ValueError(f"caption backend {backend} needs caption.model (a directory or hub id)")
    for kind in KINDS:
        if settings[kind]["count"] > 1 and not settings["sampling"]["do_sample"]:
            raise ValueError(f"caption.{kind}.count is {settings[kind]['count']} but greedy decoding gives the same "
                             "caption every time: set caption.sampling.do_sample: true")


def _string_list(meta: dict, name: str, key: str) -> list[str]:
    value = meta.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadSample("malformed json", f"{key}.json key {name!r}: expected a list of strings, got {value!r:.80}")
    return value


def _sample_record(sample, model_backend: bool) -> tuple[dict, object]:
    """``(record, image)`` of one sample: the record holds key and alt-text, and for the dataset backend the shard's
    captions (image None, nothing left to generate). Raises :class:`BadSample` naming what is wrong."""
    image = decode_image(sample.image_bytes)
    if image is None:
        raise BadSample("unreadable image", f"{sample.key}: no readable image (missing, empty, truncated or corrupt)")
    record = {"key": sample.key, "raw": sample.text("txt")}
    if model_backend:
        return record, image
    meta = sample.json()
    return record | {kind: _string_list(meta, kind, sample.key) for kind in KINDS}, None


def caption_shard(shard: Path, out: Path, settings: dict, state_dir: Path | None = None, batch_size: int = 8,
                  device: str = "auto", captioner=None) -> Counter:
    """Caption every image of ``shard`` into the Parquet file ``out`` (atomic); returns the counts.

    ``settings``: a validated ``caption_settings`` document. ``state_dir`` holds the partial file (default: beside
    ``out``). ``captioner``: the model backend's captioner (:mod:`pipeline.caption.backends`); by default the backend
    loads ``settings["model"]`` on ``device``.
    """
    check_settings(settings)
    partial = PartialCaptions((state_dir or out.parent) / f"{out.name}.partial.jsonl", fingerprint(settings, shard))
    done = partial.load()
    counts: Counter[str] = Counter(resumed=len(done))
    model_backend = settings["backend"] != "dataset"
    if model_backend and captioner is None:
        captioner = load_captioner(settings, device)
    order: list[str] = []  # the shard's keys, first occurrence
    seen: set[str] = set()
    ignored: Counter[str] = Counter()  # tar members that are no file (links ...)
    pending: list[tuple[dict, object]] = []

    def flush() -> None:
        rows = [(record, image) for record, image in pending if image is not None]
        if rows:
            seed = batch_seed(settings["seed"], rows[0][0]["key"])
            images = [image for _, image in rows]
            for kind in KINDS:
                request = settings[kind]
                generated = (captioner.caption(images, request, settings["sampling"], seed) if request["count"]
                             else [[] for _ in rows])
                for (record, _), captions in zip(rows, generated):
                    record[kind] = captions
        partial.append([record for record, _ in pending])
        done.update((record["key"], record) for record, _ in pending)
        pending.clear()

    for sample in tqdm(iter_shard(shard, ignored), desc=f"caption {shard.name}", unit="img", file=sys.stderr):
        counts["samples"] += 1
        if sample.key in seen:
            print(f"{shard}: key {sample.key!r} repeats; the first sample is kept", file=sys.stderr)
            counts["repeated_key"] += 1
            continue
        order.append(sample.key)
        seen.add(sample.key)
        if sample.key in done:
            continue
        try:
            record, image = _sample_record(sample, model_backend)
        except BadSample as err:
            print(f"{shard}: {err}; skipped", file=sys.stderr)
            record, image = {"key": sample.key, "skipped": err.reason}, None
        pending.append((record, image))
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()

    records = [done[key] for key in order if key in done]
    skipped = {r["key"]: r["skipped"] for r in records if "skipped" in r}
    rows = [r for r in records if "skipped" not in r]
    counts["captioned"] = len(rows)
    counts.update(f"skipped: {reason}" for reason in skipped.values())
    counts.update({f"ignored member: {kind}": n for kind, n in ignored.items()})
    if ignored:
        print(f"{shard}: {dict(ignored)} tar members are no regular file and were ignored", file=sys.stderr)
    if not rows:
        print(f"warning: {shard}: no usable sample ({dict(counts)}); training skips this shard", file=sys.stderr)
    prompts = {kind: settings[kind] for kind in KINDS} if model_backend else None
    metadata = {"stage": "caption", "backend": settings["backend"], "model": settings["model"],
                "revision": settings["revision"], "commit": getattr(captioner, "commit", None), "prompts": prompts,
                "sampling": settings["sampling"] if model_backend else None, "seed": settings["seed"],
                "shard": shard_identity(shard), "counts": dict(counts), "skipped": skipped,
                "provenance": provenance(captions.VERSION, as_json(settings))}
    captions.write_captions(rows, out, metadata)
    partial.path.unlink(missing_ok=True)
    return counts


def load_captioner(settings: dict, device: str = "auto"):
    """The captioner of a model backend's settings, on ``device``."""
    from pipeline.caption.backends import CAPTIONERS

    return CAPTIONERS[settings["backend"]].load(settings["model"], revision=settings["revision"],
                                                dtype=settings["dtype"], device=device,
                                                trust_remote_code=settings["trust_remote_code"])


def run(shard: Path, out: Path, settings: dict, batch_size: int, state_dir: Path | None = None,
        device: str = "auto") -> Counter:
    """The caption stage: caption ``shard`` into ``out`` with one writer at a time. ``settings``: a validated
    ``caption_settings`` document; ``batch_size``: images per generate call (speed only). Returns the counts."""
    if not shard.exists():
        raise FileNotFoundError(f"{shard}: shard not found")
    with single_writer(out):
        return caption_shard(shard, out, settings, state_dir=state_dir, batch_size=batch_size, device=device)
