"""Featurize: standardise every column of the raw table, and split off a validation set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 0
VALIDATION_FRACTION = 0.25


def standardize(raw: Path, table: Path) -> None:
    """Reads `raw/housing.csv`; writes `table/train.npz` and `table/validation.npz` with the
    features scaled to mean 0 and variance 1 and the target (price) in the last column."""
    data = np.loadtxt(raw / "housing.csv", delimiter=",", skiprows=1)
    features, target = data[:, :-1], data[:, -1]
    features = (features - features.mean(axis=0)) / features.std(axis=0)
    order = np.random.default_rng(SEED).permutation(len(target))
    cut = int(len(order) * (1 - VALIDATION_FRACTION))
    table.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", order[:cut]), ("validation", order[cut:])):
        np.savez(table / f"{name}.npz", x=features[rows], y=target[rows])
    print(f"featurized {len(order)} rows: {cut} to train, {len(order) - cut} to validate")
