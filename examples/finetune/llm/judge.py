"""`python -m llm.judge --model DIR --prompts DIR --batch N --out FILE`: scores each prompt by
how many of its words the model knows, and writes the metrics the pipeline's gate reads."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--prompts", type=Path, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    bigrams = json.loads((args.model / "bigrams.json").read_text(encoding="utf-8"))
    known = {word for pair in bigrams for word in pair.split()}
    scores = []
    for path in sorted(args.prompts.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            words = json.loads(line)["prompt"].lower().split()
            scores.append(sum(word in known for word in words) / len(words))
    wins = sum(score >= 0.5 for score in scores)
    metrics = {"win_rate": wins / len(scores), "mean_score": sum(scores) / len(scores)}
    metrics["n"] = len(scores)
    args.out.write_text(json.dumps(metrics))
    print(f"judged {len(scores)} prompts: win rate {metrics['win_rate']:.2f}")


if __name__ == "__main__":
    main()
