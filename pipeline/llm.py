"""Loading the frozen LLM and its tokenizer: one code path for self-built tiny models and real hub models."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

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
    """``(model, tokenizer)`` from a local HF directory or a hub id, in eval mode, on ``device``."""
    dev = resolve_device(device)
    tokenizer = from_pretrained(AutoTokenizer, path_or_id, "LLM", revision=revision,
                                trust_remote_code=trust_remote_code)
    model = from_pretrained(AutoModelForCausalLM, path_or_id, "LLM", revision=revision,
                            dtype=resolve_dtype(dtype, dev), trust_remote_code=trust_remote_code)
    model.requires_grad_(False)
    return model.to(dev).eval(), tokenizer
