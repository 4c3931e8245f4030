"""`python -m llm.publish --checkpoint DIR --receipt FILE`: where a real pipeline uploads the
model (with `HF_TOKEN`), the stand-in writes a receipt naming what it would have published."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--receipt", type=Path, required=True)
    args = parser.parse_args()
    digest = hashlib.sha256((args.checkpoint / "bigrams.json").read_bytes()).hexdigest()
    args.receipt.write_text(json.dumps({"published": f"sha256:{digest}", "dry_run": True}))
    print(f"would publish sha256:{digest[:12]}")


if __name__ == "__main__":
    main()
