"""Linear probe on frozen image features: CLIP_benchmark's protocol (``clip_benchmark.metrics.linear_probe``, whose
``evaluate`` insists on CUDA) re-implemented to run on the features' device, CPU or GPU.

The features are the model's L2-normalised image features (CLIP_benchmark's default ``--normalize``). A
``torch.nn.Linear`` is trained on them with cross-entropy and AdamW, its learning rate on a cosine schedule from
``lr`` to 0 over every step (no warm-up), in batches of ``batch_size`` drawn by a shuffling DataLoader, for
``epochs``; the torch CPU generator is seeded with ``seed`` before each training, so the initial weights and the
batches are those CLIP_benchmark draws with that seed (the caller's random state is left as it was). On CUDA the
forward passes run under float16 autocast (CLIP_benchmark's default ``--amp``); on CPU in float32.

The weight decay: with ``val_proportion`` > 0, that share of the train features (``torch.utils.data.random_split``
seeded with ``seed``) is held out, and the weight decay is searched on the grid :data:`WEIGHT_DECAYS` coarse to fine
(:func:`search_weight_decay`); the probe is then retrained on train + validation with it and scored on the test
features. With ``val_proportion`` 0 (CLIP_benchmark without ``--val_proportion``) the weight decay is 0 and the probe
is trained on the train features alone. Metrics, CLIP_benchmark's names and definitions: ``lp_acc1``, ``lp_acc5``
(only when the test labels reach 5, i.e. more than 5 classes) and ``lp_mean_per_class_recall`` (the mean of the
recalls of the classes in the test set)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, random_split

from pipeline.evaluate.zeroshot import classification_metrics
from pipeline.settings import default

#: The fine grid: 97 weight decays, 12 per decade from 1e-6 to 1e2 (``np.logspace(-6, 2, 97)``).
WEIGHT_DECAYS = tuple(np.logspace(-6, 2, num=97).tolist())
#: Indices of the first search's 7 points (1e-6, 2.2e-5, ..., 1e2: every 16th of the grid).
COARSE = tuple(range(0, len(WEIGHT_DECAYS), 16))
#: Then three points, the peak and its neighbours this many indices away, for each span in turn.
SPANS = (8, 4, 2, 1)


@dataclass(frozen=True)
class ProbeSettings:
    """The probe's settings (``$defs/linear_probe`` of the schema): the defaults of ``clip_benchmark eval`` but
    ``val_proportion``, which it leaves unset (no weight-decay search)."""

    lr: float = default("linear_probe", "lr")
    epochs: int = default("linear_probe", "epochs")
    batch_size: int = default("linear_probe", "batch_size")
    seed: int = default("linear_probe", "seed")
    val_proportion: float = default("linear_probe", "val_proportion")


def train_probe(features: torch.Tensor, labels: torch.Tensor, classes: int, weight_decay: float,
                settings: ProbeSettings) -> torch.nn.Linear:
    """A ``Linear(D, classes)`` trained on ``features [N, D]`` (float32) and ``labels [N]`` (int64, on the same
    device), on that device, as the module's docstring says."""
    device = features.device
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(settings.seed)
        probe = torch.nn.Linear(features.shape[1], classes)
        batches = DataLoader(range(len(labels)), batch_size=settings.batch_size, shuffle=True)
        probe.to(device)
        optimizer = torch.optim.AdamW(probe.parameters(), lr=settings.lr, weight_decay=weight_decay)
        steps = settings.epochs * len(batches)
        for epoch in range(settings.epochs):
            for i, rows in enumerate(batches):
                step = epoch * len(batches) + i
                optimizer.param_groups[0]["lr"] = 0.5 * (1 + math.cos(math.pi * step / steps)) * settings.lr
                rows = rows.to(device)
                optimizer.zero_grad()
                with torch.autocast(device.type, enabled=device.type == "cuda"):
                    loss = F.cross_entropy(probe(features[rows]), labels[rows])
                loss.backward()
                optimizer.step()
    return probe


def probe_logits(probe: torch.nn.Linear, features: torch.Tensor) -> torch.Tensor:
    """The probe's logits ``[N, classes]`` (float32, on the features' device) of ``features [N, D]``."""
    device = features.device
    with torch.no_grad(), torch.autocast(device.type, enabled=device.type == "cuda"):
        return probe(features).float()


def probe_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """``lp_acc1``, ``lp_acc5`` (only when ``labels`` reach 5) and ``lp_mean_per_class_recall`` of ``logits [N, C]``
    against ``labels [N]``, as CLIP_benchmark's linear probe reports them."""
    found = classification_metrics(logits.cpu(), labels.cpu())
    metrics = {"lp_acc1": found["acc1"]}
    if labels.max().item() >= 5:
        metrics["lp_acc5"] = found["acc5"]
    metrics["lp_mean_per_class_recall"] = found["mean_per_class_recall"]
    return metrics


def _validation_acc1(train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
                     classes: int, weight_decay: float, settings: ProbeSettings) -> float:
    logits = probe_logits(train_probe(*train, classes, weight_decay, settings), val[0])
    return (logits.argmax(dim=1) == val[1]).float().mean().item()


def search_weight_decay(train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
                        classes: int, settings: ProbeSettings) -> float:
    """The weight decay of :data:`WEIGHT_DECAYS` that CLIP_benchmark's ``find_peak`` search picks: ``train`` and
    ``val`` are ``(features [N, D], labels [N])``. The peak of the :data:`COARSE` points, then, for each span of
    :data:`SPANS`, the peak of (peak - span, peak, peak + span) clipped to the grid; a peak is the first point with
    the highest validation top-1 accuracy above 0 (the grid's first point if none is). Each weight decay is trained
    once (the same seed trains the same probe) and printed with its accuracy."""
    accuracies: dict[int, float] = {}

    def accuracy(index: int) -> float:
        if index not in accuracies:
            accuracies[index] = _validation_acc1(train, val, classes, WEIGHT_DECAYS[index], settings)
            print(f"linear probe: weight decay {WEIGHT_DECAYS[index]:.3g}: validation acc1 "
                  f"{accuracies[index]:.4f}", flush=True)
        return accuracies[index]

    def peak(indices) -> int:
        best, best_accuracy = 0, 0.0
        for index in indices:
            if accuracy(index) > best_accuracy:
                best, best_accuracy = index, accuracy(index)
        return best

    found = peak(COARSE)
    for span in SPANS:
        found = peak((max(found - span, 0), found, min(found + span, len(WEIGHT_DECAYS) - 1)))
    return WEIGHT_DECAYS[found]


def split_validation(count: int, settings: ProbeSettings) -> tuple[list[int], list[int]]:
    """``(train rows, validation rows)`` of ``count`` train features: ``random_split`` by the proportions
    ``1 - val_proportion``, ``val_proportion`` with a generator seeded with ``seed``; raises when either is empty."""
    proportions = [1 - settings.val_proportion, settings.val_proportion]
    fit, held = random_split(range(count), proportions, generator=torch.Generator().manual_seed(settings.seed))
    if not len(fit) or not len(held):
        raise ValueError(f"linear probe: val_proportion {settings.val_proportion} of {count} train images leaves "
                         f"{len(fit)} to train on and {len(held)} to validate on; both must be at least 1")
    return list(fit), list(held)


def fit_probe(train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor] | None,
              classes: int, settings: ProbeSettings) -> tuple[torch.nn.Linear, float]:
    """``(probe, weight decay)``: with ``val`` (``(features [M, D], labels [M])``), the weight decay searched on it
    and the probe retrained on ``train`` + ``val``; without, weight decay 0 and the probe trained on ``train``."""
    if val is None:
        return train_probe(*train, classes, 0.0, settings), 0.0
    weight_decay = search_weight_decay(train, val, classes, settings)
    joined = torch.cat([train[0], val[0]]), torch.cat([train[1], val[1]])
    return train_probe(*joined, classes, weight_decay, settings), weight_decay


def linear_probe(train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor], classes: int,
                 settings: ProbeSettings) -> tuple[dict[str, float], float]:
    """The protocol on features: ``train`` and ``test`` are ``(features [N, D] float32, labels [N] int64)`` on one
    device; returns the test metrics (:func:`probe_metrics`) and the weight decay chosen."""
    features, labels = train
    val = None
    if settings.val_proportion > 0:
        fit, held = split_validation(len(labels), settings)
        train, val = (features[fit], labels[fit]), (features[held], labels[held])
    probe, weight_decay = fit_probe(train, val, classes, settings)
    metrics = probe_metrics(probe_logits(probe, test[0]), test[1])
    print(f"linear probe: weight decay {weight_decay:.3g}, {len(labels)} train and {len(test[1])} test images, "
          f"test acc1 {metrics['lp_acc1']:.4f}", flush=True)
    return metrics, weight_decay


def evaluate_linear_probe(model, train, test, classes: int, settings: ProbeSettings) -> dict[str, float]:
    """Probe ``model``'s image features: ``train``/``test`` are datasets of ``(image, label)``; ``classes`` the
    number of classes. The probe runs on the model's device; returns the test metrics."""
    device = model.device
    train_x, train_y = (t.to(device) for t in model.encode_images(train))
    test_x, test_y = (t.to(device) for t in model.encode_images(test))
    return linear_probe((train_x, train_y), (test_x, test_y), classes, settings)[0]
