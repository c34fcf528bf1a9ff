"""The model directory (train stage -> evaluate stage): ``model.safetensors`` (the weights) and
``flame_config.json`` (what the weights are: ``kind`` ``flame`` or ``clip``, the vision and projector or text
tower settings, the objective's logit parameters, and for FLAME the text side that produced its training targets:
LLM, layer, caption limit, layout, templates, as :data:`pipeline.io.embeddings.TEXT_SIDE_KEYS`, plus the training
sources and ``trained_templates``: per trained source, its template with only the facets trained on, which
evaluation uses). ``train_summary.json`` beside them records steps, losses, timing and provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.io.atomic import atomic_path, write_text

if TYPE_CHECKING:  # torch is imported where weights are read or written: the workflow plans with VERSION alone
    from torch import nn

#: Bump when the layout or meaning of the directory changes: a rule param, so the stage reruns after such a release.
VERSION = 4
CONFIG_NAME = "flame_config.json"
WEIGHTS_NAME = "model.safetensors"
SUMMARY_NAME = "train_summary.json"


def save_model(model: nn.Module, config: dict, out: Path) -> None:
    """Write ``model``'s weights and ``config`` into the directory ``out`` (each file atomically)."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / WEIGHTS_NAME) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", out / CONFIG_NAME)


def read_config(directory: Path) -> dict:
    """The ``flame_config.json`` of a model directory written by ``flame train`` or ``flame train-clip``."""
    path = directory / CONFIG_NAME
    if not path.exists():
        raise FileNotFoundError(f"{path}: not a model directory written by flame train (no {CONFIG_NAME})")
    return json.loads(path.read_text(encoding="utf-8"))


def read_summary(directory: Path) -> dict | None:
    """The ``train_summary.json`` of a model directory, or None when it has none."""
    path = directory / SUMMARY_NAME
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def load_weights(model: nn.Module, directory: Path) -> nn.Module:
    """``model`` with the weights of ``directory``, in eval mode."""
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(directory / WEIGHTS_NAME)))
    return model.eval()
