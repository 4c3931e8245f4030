"""Digests as people type them: in full, or as the short form mlc prints (`sha256:6bd58593a1c4`,
with or without `sha256:`), which stands for the one stored object it starts."""

from __future__ import annotations

import re

from mlc.store import Digest, Store, StoreError, is_digest, parse_digest

MIN_PREFIX = 4
_PREFIX = re.compile(r"(?:sha256:)?([0-9a-f]{" + str(MIN_PREFIX) + ",63})")
_TOO_SHORT = re.compile(r"(?:sha256:)?[0-9a-f]{1," + str(MIN_PREFIX - 1) + "}")


def is_digest_prefix(text: str) -> bool:
    """Whether `text` reads as a (short) digest: `sha256:` and hex, or hex alone."""
    return is_digest(text) or _PREFIX.fullmatch(text) is not None


def resolve_digest(store: Store, text: str) -> Digest:
    """The digest `text` names: itself when complete, else the one object of the store that
    starts with it. Raises `StoreError` when none does or several do (naming some of them)."""
    if is_digest(text):
        return parse_digest(text)
    if _TOO_SHORT.fullmatch(text):
        raise StoreError(
            f"`{text}` is too short to name one object: give at least {MIN_PREFIX} hex digits"
        )
    match = _PREFIX.fullmatch(text)
    if match is None:
        return parse_digest(text)  # raises, saying what is wrong with it
    prefix = "sha256:" + match.group(1)
    found = sorted({o.digest for o in store.iter_objects() if o.digest.startswith(prefix)})
    if not found:
        raise StoreError(f"no object in the store {store.uri} has a digest starting `{prefix}`")
    if len(found) > 1:
        shown = ", ".join(f"`{d[:23]}…`" for d in found[:5])
        more = f" and {len(found) - 5} more" if len(found) > 5 else ""
        raise StoreError(
            f"`{text}` is ambiguous: {len(found)} objects start with it ({shown}{more}); "
            "give more digits"
        )
    return found[0]
