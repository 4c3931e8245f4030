"""`python -m llm.tokenize --model M --in DIR --out DIR`: one token list per instruction."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--in", dest="source", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    count = 0
    with (args.out / "tokens.jsonl").open("w", encoding="utf-8") as out:
        for path in sorted(args.source.glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                pair = json.loads(line)
                text = f"{pair['prompt']} {pair['response']}".lower()
                out.write(json.dumps({"tokens": text.split()}) + "\n")
                count += 1
    print(f"tokenized {count} instructions for {args.model}")


if __name__ == "__main__":
    main()
