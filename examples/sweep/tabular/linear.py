"""Train: one linear model per learning rate, by full-batch gradient descent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as data:
        return data["x"], data["y"]


def _loss(x: np.ndarray, y: np.ndarray, weights: np.ndarray, objective: str) -> float:
    predictions = x @ weights[1:] + weights[0]
    if objective == "binary":  # above or below the median price, by logistic loss
        labels = (y > np.median(y)).astype(float)
        probabilities = 1 / (1 + np.exp(-np.clip(predictions, -30, 30)))
        eps = 1e-9
        return float(
            -np.mean(
                labels * np.log(probabilities + eps)
                + (1 - labels) * np.log(1 - probabilities + eps)
            )
        )
    return float(np.mean((predictions - y) ** 2))


def _gradient(x: np.ndarray, y: np.ndarray, weights: np.ndarray, objective: str) -> np.ndarray:
    predictions = x @ weights[1:] + weights[0]
    if objective == "binary":
        labels = (y > np.median(y)).astype(float)
        error = 1 / (1 + np.exp(-np.clip(predictions, -30, 30))) - labels
    else:
        error = 2 * (predictions - y)
    return np.concatenate([[error.mean()], x.T @ error / len(y)])


def fit(lr: float, epochs: int, objective: str, table: Path, model: Path) -> dict[str, float]:
    """Fits the model on `table/train.npz` with learning rate `lr` (the sweep's item); writes
    its weights to `model` and returns the training and validation losses (mlc writes them to
    the step's metrics output, `scores`)."""
    x, y = _load(table / "train.npz")
    x_val, y_val = _load(table / "validation.npz")
    weights = np.zeros(x.shape[1] + 1)
    for _ in range(epochs * 10):
        weights -= lr * _gradient(x, y, weights, objective)
    model.write_text(json.dumps({"weights": weights.tolist(), "objective": objective}))
    losses = {
        "train_loss": _loss(x, y, weights, objective),
        "val_loss": _loss(x_val, y_val, weights, objective),
    }
    print(f"learning rate {lr}: validation loss {losses['val_loss']:.3f}")
    return losses
