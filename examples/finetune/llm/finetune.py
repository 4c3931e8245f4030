"""`python -m llm.finetune --nproc-per-node N --data DIR --out DIR --epochs E`: a "model" that
counts which word follows which (a real one runs `torchrun` over the GPUs it was given)."""

from __future__ import annotations

import argparse
import itertools
import json
import os
from collections import Counter
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nproc-per-node", type=int, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    args = parser.parse_args()
    pairs: Counter[str] = Counter()
    for line in (args.data / "tokens.jsonl").read_text(encoding="utf-8").splitlines():
        tokens = json.loads(line)["tokens"]
        pairs.update(f"{a} {b}" for a, b in itertools.pairwise(tokens))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bigrams.json").write_text(json.dumps(dict(sorted(pairs.items()))))
    devices = os.environ.get("CUDA_VISIBLE_DEVICES", "none")
    print(f"{args.epochs} epochs on {args.nproc_per_node} GPU(s) (CUDA_VISIBLE_DEVICES={devices})")


if __name__ == "__main__":
    main()
