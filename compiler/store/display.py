"""Human-readable formatting shared by the store's commands: sizes, times, durations, tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence


def format_bytes(size: int) -> str:
    """`1.5 MiB`-style sizes (binary units).

    >>> format_bytes(1536), format_bytes(12)
    ('1.5 KiB', '12 B')
    """
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_time(timestamp: float | None) -> str:
    """Local time `YYYY-MM-DD HH:MM:SS`, or `-` when unknown."""
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(start: float | None, end: float | None) -> str:
    """`1h02m`, `3m05s`, `4.2s`, or `-`.

    >>> format_duration(0, 3725), format_duration(0, 185), format_duration(0, 4.23)
    ('1h02m', '3m05s', '4.2s')
    """
    if start is None or end is None:
        return "-"
    seconds = max(0.0, end - start)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 file`, `2 files`: a count with its noun in the right number.

    >>> plural(1, "file"), plural(3, "file"), plural(2, "run", "runs")
    ('1 file', '3 files', '2 runs')
    """
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def short_digest(digest: str, length: int = 12) -> str:
    """`sha256:` plus the first `length` hex characters."""
    return digest[: len("sha256:") + length]


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns separated by two spaces, with a header line."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return lines
