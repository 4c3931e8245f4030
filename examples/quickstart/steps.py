"""The quickstart's steps: a random forest on the wine data set that ships with scikit-learn.

Each function is a `call` step of `pipeline.mlspec`. mlc calls it with keyword arguments: the
step's `args`, each input as a `pathlib.Path` to read and each output as a `pathlib.Path` to
write. Nothing is downloaded: `load_wine` reads a file inside the scikit-learn package.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

SEED = 0


def _write_table(path: Path, features: np.ndarray, labels: np.ndarray, names: list[str]) -> None:
    """A CSV file: one column per feature, then the class label."""
    table = np.column_stack([features, labels])
    np.savetxt(
        path, table, delimiter=",", header=",".join([*names, "label"]), comments="", fmt="%.6g"
    )


def _read_table(path: Path) -> tuple[np.ndarray, np.ndarray]:
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    return table[:, :-1], table[:, -1].astype(int)


def prepare(test_fraction: float, train: Path, test: Path) -> None:
    """Splits the wine data set into a stratified training and test set."""
    wine = load_wine()
    x_train, x_test, y_train, y_test = train_test_split(
        wine.data, wine.target, test_size=test_fraction, random_state=SEED, stratify=wine.target
    )
    names = list(wine.feature_names)
    _write_table(train, x_train, y_train, names)
    _write_table(test, x_test, y_test, names)
    print(f"prepared {len(y_train)} training and {len(y_test)} test rows")


def train(n_estimators: int, max_depth: int, data: Path, model: Path) -> None:
    """Fits a random forest on the training set and saves it."""
    features, labels = _read_table(data)
    forest = RandomForestClassifier(
        n_estimators=n_estimators, max_depth=max_depth, random_state=SEED, n_jobs=2
    )
    forest.fit(features, labels)
    joblib.dump(forest, model)
    print(f"trained {n_estimators} trees (max depth {max_depth}) on {len(labels)} rows")


def evaluate(model: Path, data: Path) -> dict[str, float]:
    """Scores the model on the test set; the returned dict becomes the `metrics` output."""
    forest = joblib.load(model)
    features, labels = _read_table(data)
    predicted = forest.predict(features)
    scores = {
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1": float(f1_score(labels, predicted, average="macro")),
    }
    print(f"accuracy {scores['accuracy']:.3f}, macro f1 {scores['f1']:.3f}")
    return scores


def register(model: Path, metrics: Path, entry: Path) -> None:
    """Writes a registry entry: the model's digest with the scores that let it through."""
    scores = json.loads(metrics.read_text())
    digest = "sha256:" + hashlib.sha256(model.read_bytes()).hexdigest()
    record = {"name": "quickstart-wine-forest", "model": digest, "metrics": scores}
    entry.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"registered {record['name']} ({digest[:19]})")
