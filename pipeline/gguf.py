"""GGUF checkpoints as LLMs: ``embed.llm`` may name a ``.gguf`` file (llama.cpp's single-file format: config,
tokenizer and weights in one file), loaded by transformers' GGUF support (the ``gguf`` package), which dequantises
the weights to dense tensors of the requested dtype.

Imports neither torch nor transformers itself: the workflow's config checks (rules/common.smk) call
:func:`gguf_config` while Snakemake parses the DAG, and only a GGUF file named there pays transformers' import.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.io.content import file_key, read_cache, write_cache

SUFFIX = ".gguf"
#: The user cache file of the configs transformers derives from GGUF files (:func:`gguf_config`).
CONFIG_CACHE = "gguf-configs.json"


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
