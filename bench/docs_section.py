"""Writing a benchmark's results into its section of `docs/benchmarks.md`."""

from __future__ import annotations

from pathlib import Path


def write_section(docs: Path, heading: str, body: str) -> None:
    """Replaces the section that starts with `heading` (up to the next `## ` heading) with
    `heading` and `body`, or appends it when the page has no such section."""
    section = f"{heading}\n\n{body}"
    content = docs.read_text()
    if heading in content:
        start = content.index(heading)
        following = content.find("\n## ", start + len(heading))
        rest = content[following + 1 :] if following != -1 else ""
        content = content[:start] + section + ("\n" + rest if rest else "")
    else:
        content = content.rstrip("\n") + "\n\n" + section
    docs.write_text(content)
