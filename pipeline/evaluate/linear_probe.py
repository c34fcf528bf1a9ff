"""Linear probe on frozen image features: L2-regularised logistic regression (scikit-learn, L-BFGS, on CPU whatever
device computed the features), its inverse regularisation C chosen on a validation split of the train features
from a log grid, then refit on all train features and scored on the test split with the zero-shot metrics."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.evaluate.zeroshot import classification_metrics

C_GRID = tuple(10.0 ** k for k in range(-3, 4))  # 0.001 .. 1000
VALIDATION_FRACTION = 0.2


def _fit(features: np.ndarray, labels: np.ndarray, c: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=2000).fit(features, labels)


def choose_c(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """The C of :data:`C_GRID` with the best accuracy on a random validation part (:data:`VALIDATION_FRACTION`)
    of the train features; ties go to the smaller C (stronger regularisation)."""
    order = np.random.default_rng(seed).permutation(len(labels))
    held = max(1, int(len(labels) * VALIDATION_FRACTION))
    val, fit = order[:held], order[held:]
    scores = [(_fit(features[fit], labels[fit], c).score(features[val], labels[val]), -c) for c in C_GRID]
    return -max(scores)[1]


def evaluate_linear_probe(model, train, test, classes: int) -> dict[str, float]:
    """Probe ``model``'s image features: ``train``/``test`` are datasets of ``(image, label)``; ``classes`` the
    number of classes. Returns acc1, acc5, mean_per_class_recall on test."""
    train_x, train_y = (t.numpy() for t in model.encode_images(train))
    test_x, test_y = model.encode_images(test)
    c = choose_c(train_x, train_y)
    probe = _fit(train_x, train_y, c)
    scores = np.full((len(test_y), classes), -np.inf, dtype=np.float32)
    scores[:, probe.classes_] = probe.predict_log_proba(test_x.numpy())
    print(f"linear probe: C = {c:g} (of {C_GRID}), {len(train_y)} train and {len(test_y)} test images")
    return classification_metrics(torch.from_numpy(scores), test_y)
