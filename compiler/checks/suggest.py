""" "Did you mean" suggestions for name lookups."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to `name`, if any is close enough to be a likely typo."""
    pool = sorted(set(candidates))
    matches = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    if matches:
        return matches[0]
    lowered = {c.lower(): c for c in pool}
    return lowered.get(name.lower())


def did_you_mean(name: str, candidates: Iterable[str], *, wrap: str = "`{}`") -> str | None:
    """A `help:` text suggesting the closest candidate, or None."""
    match = closest(name, candidates)
    return f"did you mean {wrap.format(match)}?" if match else None


def did_you_mean_or_list(name: str, candidates: Iterable[str], what: str) -> str | None:
    """The closest candidate as a "did you mean", else the candidates themselves (a few of
    them), so that a lookup that failed always says what could have been written; None when
    there is no candidate at all."""
    suggestion = did_you_mean(name, candidates)
    if suggestion is not None:
        return suggestion
    pool = sorted(set(candidates))
    if not pool:
        return None
    shown = ", ".join(f"`{c}`" for c in pool[:6]) + (", …" if len(pool) > 6 else "")
    return f"{what}: {shown}"
