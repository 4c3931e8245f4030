"""What `mlc apply` shows while it runs: a live table on a terminal, one line per change
elsewhere (logs, CI), nothing with `--format json` (the report is the output)."""

from __future__ import annotations

import itertools
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, TextIO

from mlc.store.display import plural

if TYPE_CHECKING:
    from mlc.runtime.report import UnitUpdate


def format_seconds(seconds: float | None) -> str:
    """`0.4s`, `12.3s`, `4m05s`, `1h02m`."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


_SYMBOLS = {
    "pending": "·",
    "waiting": "…",
    "running": "▸",
    "ran": "✓",
    "cached": "≡",
    "failed": "✗",
    "skipped": "-",
    "cancelled": "✗",
}
_COLOURS = {
    "ran": "32",
    "cached": "36",
    "failed": "31",
    "cancelled": "31",
    "running": "33",
    "skipped": "2",
    "pending": "2",
    "waiting": "2",
}


class PlainProgress:
    """One line per change, for logs and CI."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def run_started(self, run_id: str, pipeline: str, units: Sequence[str]) -> None:
        """Prints the run's id."""
        self._print(f"run {run_id}: pipeline {pipeline}, {plural(len(units), 'step')}")

    def unit_changed(self, update: UnitUpdate) -> None:
        """Prints the change (pending and waiting are shown only with a reason)."""
        status, detail = update.status, update.detail
        if status == "pending":
            return
        if status == "waiting":
            if update.waiting_for:
                self._print(f"{update.name}: {update.waiting_for}")
            elif update.retry_in_s is not None:
                self._print(f"{update.name}: {detail}")
            elif detail:
                self._print(f"{update.name}: will run because {detail}")
            return
        text = f"{update.name}: {status}"
        if status in ("ran", "failed", "cancelled") and update.elapsed_s is not None:
            text += f" in {format_seconds(update.elapsed_s)}"
        if detail:
            text += f" ({detail})"
        self._print(text)

    def warning(self, text: str) -> None:
        """Prints a warning."""
        self._print(f"warning: {text}")

    def tick(self) -> None:
        """Nothing to redraw."""

    def close(self) -> None:
        """Nothing to tidy."""

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class LiveProgress:
    """A table of the run's invocations, redrawn in place on a terminal (compact when there
    are more invocations than the terminal has lines), at most `REDRAW_SECONDS` apart: a
    `foreach` of thousands of items changes thousands of times a second. The counts of the
    compact line are kept as units change, never recounted."""

    REDRAW_SECONDS = 0.1

    def __init__(self, stream: TextIO, *, colour: bool) -> None:
        self.stream = stream
        self.colour = colour
        self.order: list[str] = []
        self.state: dict[str, UnitUpdate] = {}
        self.started: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.running: dict[str, None] = {}
        """The running invocations, in the order they started."""
        self.retry_at: dict[str, float] = {}
        """When the next attempt of a failed invocation may start (monotonic), for the
        countdown."""
        self.drawn = 0
        self.last_draw = 0.0
        self.header = ""

    def run_started(self, run_id: str, pipeline: str, units: Sequence[str]) -> None:
        """Shows every invocation as pending."""
        from mlc.runtime.report import UnitUpdate

        self.header = f"run {run_id}: pipeline {pipeline}"
        self.order = list(units)
        self.state = {name: UnitUpdate(name, "pending") for name in units}
        self.counts = {"pending": len(self.order)} if self.order else {}
        self._draw(force=True)

    def unit_changed(self, update: UnitUpdate) -> None:
        """Updates one row (drawn with the next redraw)."""
        name = update.name
        if update.status == "running" and name not in self.started:
            self.started[name] = time.monotonic() - (update.elapsed_s or 0.0)
        previous = self.state.get(name)
        if previous is not None:
            self.counts[previous.status] -= 1
        self.counts[update.status] = self.counts.get(update.status, 0) + 1
        if update.status == "running":
            self.running[name] = None
        else:
            self.running.pop(name, None)
        if update.retry_in_s is not None:
            self.retry_at[name] = time.monotonic() + update.retry_in_s
        elif update.status != "waiting":
            self.retry_at.pop(name, None)
        if update.status == "waiting" and not update.detail and name in self.state:
            # What it waits for now adds to why it waits (or its countdown); it replaces neither.
            earlier = self.state[name]
            update = replace(update, detail=earlier.detail, retry_in_s=earlier.retry_in_s)
        self.state[name] = update
        self._draw(force=False)

    def warning(self, text: str) -> None:
        """Prints a warning above the table."""
        self._erase()
        print(f"warning: {text}", file=self.stream)
        self._draw(force=True)

    def tick(self) -> None:
        """Refreshes elapsed times."""
        self._draw(force=False)

    def close(self) -> None:
        """Leaves the final table on screen."""
        self._draw(force=True)

    def _rows(self) -> list[str]:
        rows = [self.header]
        width = max((len(name) for name in self.order), default=4)
        try:
            height = os.get_terminal_size(self.stream.fileno()).lines
        except (OSError, ValueError):
            height = 40
        if len(self.order) + 3 > height:
            return [*rows, self._compact()]
        for name in self.order:
            update = self.state[name]
            rows.append(self._row(update, width))
        return rows

    def _row(self, update: UnitUpdate, width: int) -> str:
        status = update.status
        elapsed = update.elapsed_s
        if status == "running" and update.name in self.started:
            elapsed = time.monotonic() - self.started[update.name]
        text = f"  {_SYMBOLS.get(status, '?')} {update.name:<{width}}  {status:<9}"
        if status in ("running", "ran", "failed", "cancelled"):
            text += f" {format_seconds(elapsed):>7}"
        detail = self._detail(update)
        if detail and status not in ("pending", "ran", "cached"):
            text += f"  {detail}"
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError):
            columns = 120
        text = text[: max(20, columns - 1)]
        return f"\x1b[{_COLOURS.get(status, '0')}m{text}\x1b[0m" if self.colour else text

    def _detail(self, update: UnitUpdate) -> str:
        """A row's detail; a retry's `retrying in Ns` counts down, and what a waiting
        invocation waits for comes first."""
        detail = update.detail
        deadline = self.retry_at.get(update.name)
        if update.status == "waiting" and deadline is not None:
            left = max(0, math.ceil(deadline - time.monotonic()))
            head = detail.rsplit("; retrying in ", 1)[0]
            detail = f"{head}; retrying in {format_seconds(left) if left >= 60 else f'{left}s'}"
        if update.status == "waiting" and update.waiting_for:
            detail = f"{update.waiting_for}; {detail}" if detail else update.waiting_for
        return detail

    def _compact(self) -> str:
        counts = self.counts
        text = ", ".join(f"{counts[s]} {s}" for s in _SYMBOLS if counts.get(s))
        if self.running:
            first = list(itertools.islice(self.running, 4))
            more = " …" if len(self.running) > 4 else ""
            text += " — running: " + ", ".join(first) + more
        return f"  {text}"

    def _erase(self) -> None:
        if self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F\x1b[J")
            self.drawn = 0

    def _draw(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self.last_draw < self.REDRAW_SECONDS:
            return
        self.last_draw = now
        rows = self._rows()
        self._erase()
        self.stream.write("\n".join(rows) + "\n")
        self.stream.flush()
        self.drawn = len(rows)


class QuietProgress:
    """Shows nothing (for `--format json`); warnings still go to stderr."""

    def run_started(self, run_id: str, pipeline: str, units: Sequence[str]) -> None:
        """Nothing."""

    def unit_changed(self, update: UnitUpdate) -> None:
        """Nothing."""

    def warning(self, text: str) -> None:
        """Warnings go to stderr."""
        print(f"warning: {text}", file=sys.stderr)

    def tick(self) -> None:
        """Nothing."""

    def close(self) -> None:
        """Nothing."""


def make_progress(
    output_format: str, stream: TextIO
) -> PlainProgress | LiveProgress | QuietProgress:
    """The display for the format and the stream (live on a terminal)."""
    if output_format == "json":
        return QuietProgress()
    from mlc.cli.common import use_colour

    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty() and os.environ.get("TERM") != "dumb":
        return LiveProgress(stream, colour=use_colour(stream))
    return PlainProgress(stream)
