"""GGUF checkpoints as LLMs: ``embed.llm`` may name a ``.gguf`` file (llama.cpp's single-file format: config,
tokenizer and weights in one file), loaded by transformers' GGUF support (the ``gguf`` package), which dequantises
the weights to dense tensors of the requested dtype.

Transformers parses a GGUF file's metadata and dequantises every tensor on each load (about a minute for
SmolLM2-135M on 2 cores, the file parsed once each for config, tokenizer and weights), so a job loads the dense
Hugging Face directory :func:`dense_location` converted once per file content and dtype instead.

Imports neither torch nor transformers at module level: the workflow's config checks (rules/common.smk) call
:func:`gguf_config` while Snakemake parses the DAG, and only a GGUF file named there pays transformers' import.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pipeline.io.content import file_key, file_sha256, read_cache, user_cache, write_cache

SUFFIX = ".gguf"
#: The user cache file of the configs transformers derives from GGUF files (:func:`gguf_config`).
CONFIG_CACHE = "gguf-configs.json"
#: The user cache folder of GGUF files converted to dense Hugging Face directories (:func:`dense_location`).
DENSE_CACHE = "gguf-dense"


def gguf_file(path_or_id: str) -> Path | None:
    """The GGUF file that ``path_or_id`` names (it ends in ``.gguf``; ``~`` expanded), else None (a directory or a
    hub id). A name ending in ``.gguf`` is always a local file: no hub id is read as one."""
    return Path(path_or_id).expanduser() if path_or_id.lower().endswith(SUFFIX) else None


def pretrained_location(path_or_id: str) -> tuple[str, dict]:
    """``(name, kwargs)`` that ``from_pretrained`` loads ``path_or_id`` from: a GGUF file's folder with
    ``gguf_file=<its name>``; a directory or hub id as given, without kwargs. A GGUF file that does not exist raises
    ``FileNotFoundError`` naming it."""
    file = gguf_file(path_or_id)
    if file is None:
        return path_or_id, {}
    if not file.is_file():
        raise FileNotFoundError(f"LLM {path_or_id!r}: no such GGUF file")
    return str(file.parent), {"gguf_file": file.name}


def gguf_config(path: Path) -> dict:
    """The model config transformers derives from the GGUF file ``path`` (``AutoConfig.from_pretrained(folder,
    gguf_file=name).to_dict()``: ``num_hidden_layers``, ``max_position_embeddings`` ...). Parsing the file's metadata
    reads its whole tokenizer vocabulary (~20 s for SmolLM2-135M on a loaded 2-core machine), so the result is
    cached per file content (:func:`pipeline.io.content.file_key`) in the user cache ``gguf-configs.json``."""
    key = file_key(path)
    cache = read_cache(CONFIG_CACHE)
    if key not in cache:
        from transformers import AutoConfig

        name, kwargs = pretrained_location(str(path))
        cache[key] = AutoConfig.from_pretrained(name, **kwargs).to_dict()
        write_cache(CONFIG_CACHE, cache)
    return cache[key]


def dense_location(path: Path, dtype) -> tuple[str, dict]:
    """``(name, kwargs)`` for ``from_pretrained`` of the GGUF file ``path`` dequantised to ``dtype`` (a torch
    dtype): a Hugging Face directory (config, tokenizer, safetensors weights) in the user cache,
    ``gguf-dense/<sha256>-<dtype>-transformers<version>/``, made on first use from transformers' own GGUF load and
    so holding exactly its weights; the file's content, the dtype and the transformers version (which dequantises)
    name it, so nothing stale is ever reused. It is written to a temporary folder and renamed: a killed or concurrent
    conversion never leaves a half-written directory in use. Disk: the model's size in ``dtype`` (SmolLM2-135M in
    float32: 540 MB). When the cache cannot be written, the GGUF file's own location (:func:`pretrained_location`):
    slower, the same weights."""
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name, kwargs = pretrained_location(str(path))  # a missing file raises here, naming it
    target = user_cache(DENSE_CACHE) / (f"{file_sha256(path)[:32]}-{str(dtype).removeprefix('torch.')}"
                                        f"-transformers{transformers.__version__}")
    if target.is_dir():  # made visible by the rename below only once complete
        return str(target), {}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=target.parent))
    except OSError:
        return name, kwargs
    try:
        model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, **kwargs)
        if getattr(model, "hf_quantizer", None) is not None:  # transformers refuses to save a model loaded from GGUF
            model.hf_quantizer.remove_quantization_config(model)
        model.save_pretrained(scratch)
        AutoTokenizer.from_pretrained(name, **kwargs).save_pretrained(scratch)
        try:
            os.rename(scratch, target)
        except OSError:  # another job renamed its conversion first: use that one
            if not target.is_dir():
                raise
    except OSError:
        return name, kwargs
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return str(target), {}
