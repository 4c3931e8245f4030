"""Pick the best model of the sweep: a fan-in step over every learning rate's outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def lowest_loss(models: list[Path], scores: list[Path], best: Path) -> None:
    """Copies the model with the lowest validation loss to `best` (`models` and `scores` are
    in the order of the learning rates)."""
    losses = [json.loads(path.read_text())["val_loss"] for path in scores]
    chosen = min(range(len(losses)), key=losses.__getitem__)
    shutil.copyfile(models[chosen], best)
    print(
        f"model {chosen + 1} of {len(models)} has the lowest validation loss, {losses[chosen]:.3f}"
    )
