"""Loading the frozen LLM and its tokenizer: one code path for self-built tiny models, real hub models, local
Hugging Face directories and GGUF files (:mod:`pipeline.gguf`)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from pipeline.gguf import dense_location, gguf_file
from pipeline.io.content import file_sha256, folder_sha256
from pipeline.settings import allowed

#: The schema's dtypes (but ``auto``) as torch dtypes.
DTYPES = {name: getattr(torch, name) for name in allowed("dtype") if name != "auto"}


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` is bfloat16 on GPU and float32 on CPU."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be 'auto' or one of {sorted(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def from_pretrained(auto_class, path_or_id: str, what: str, **kwargs):
    """``auto_class.from_pretrained(path_or_id, **kwargs)``; a missing model raises naming ``what`` and the path."""
    try:
        return auto_class.from_pretrained(path_or_id, **kwargs)
    except OSError as err:
        where = "local directory" if Path(path_or_id).exists() else "path or hub id (no such local directory)"
        raise FileNotFoundError(f"cannot load the {what} from {where} {path_or_id!r}: {err}") from err


def load_llm(path_or_id: str, revision: str | None = None, dtype: str = "auto", device: str = "auto",
             trust_remote_code: bool = False) -> tuple[PreTrainedModel, object]:
    """``(model, tokenizer)`` from a local HF directory, a hub id or a ``.gguf`` file (dequantised to ``dtype``,
    through its dense copy in the user cache: :func:`pipeline.gguf.dense_location`), in eval mode, on ``device``.

    The tokenizer is used as the checkpoint brings it: prompts are plain text, tokenised with its own special-token
    rule (SmolLM2's adds no BOS), never through its chat template; without a pad token the embedder pads with EOS
    under an attention mask (:class:`pipeline.embed.fda.FacetEmbedder`), which no real token attends to.
    """
    dev = resolve_device(device)
    dtype = resolve_dtype(dtype, dev)
    file = gguf_file(path_or_id)
    name, location = dense_location(file, dtype) if file is not None else (path_or_id, {})
    tokenizer = from_pretrained(AutoTokenizer, name, "LLM", revision=revision,
                                trust_remote_code=trust_remote_code, **location)
    model = from_pretrained(AutoModelForCausalLM, name, "LLM", revision=revision,
                            dtype=dtype, trust_remote_code=trust_remote_code, **location)
    model.requires_grad_(False)
    return model.to(dev).eval(), tokenizer


def llm_identity(path_or_id: str, model: PreTrainedModel) -> str:
    """What an LLM is, by content: ``sha256:<hex>`` of a GGUF file (what ``sha256sum`` prints;
    :func:`pipeline.io.content.file_sha256`) or of a local directory's files (config, weights, tokenizer;
    :func:`pipeline.io.content.folder_sha256`), or ``hub:<id>@<commit>`` for a hub model (the commit that was
    loaded, itself a content hash). Recorded in every embeddings file and model directory and part of every cache
    key, so a different LLM behind the same path or hub id is never mixed up with the one before."""
    local = local_identity(path_or_id)
    if local is not None:
        return local
    commit = getattr(model.config, "_commit_hash", None)
    if commit is None:
        raise ValueError(f"LLM {path_or_id!r}: neither a local directory nor a hub model with a known commit, so "
                         "its content cannot be identified")
    return f"hub:{path_or_id}@{commit}"


def local_identity(path_or_id: str) -> str | None:
    """``sha256:<hex>`` of a GGUF file or of a local directory's model files (:func:`llm_identity`), known before
    loading; None for a hub id."""
    file = gguf_file(path_or_id)
    if file is not None:
        return f"sha256:{file_sha256(file)}"
    local = Path(path_or_id).expanduser()
    return f"sha256:{folder_sha256(local)}" if local.is_dir() else None
