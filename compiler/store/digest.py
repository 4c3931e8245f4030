"""Digests: algorithm-tagged content hashes written `sha256:<64 lowercase hex>`."""

from __future__ import annotations

import hashlib
import re
from typing import NewType

from mlc.store.errors import InvalidDigestError

Digest = NewType("Digest", str)
"""A validated content digest such as `sha256:9f86d0…` (see `parse_digest`)."""

ALGORITHM = "sha256"
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_ANY_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}(?![0-9a-f])")


def parse_digest(text: str) -> Digest:
    """Returns `text` as a `Digest`, or raises `InvalidDigestError` explaining what is wrong.

    >>> parse_digest("sha256:" + "0" * 64) == "sha256:" + "0" * 64
    True
    """
    if _DIGEST_RE.fullmatch(text):
        return Digest(text)
    algorithm, sep, hexpart = text.partition(":")
    if not sep:
        raise InvalidDigestError(
            f"`{text}` is not a digest: expected `sha256:` followed by 64 hex characters"
        )
    if algorithm != ALGORITHM:
        raise InvalidDigestError(
            f"`{text}` uses the hash algorithm `{algorithm}`; only `sha256` is supported"
        )
    if len(hexpart) != 64:
        raise InvalidDigestError(
            f"`{text}` is not a digest: a sha256 digest has 64 hex characters, "
            f"this one has {len(hexpart)}"
        )
    raise InvalidDigestError(
        f"`{text}` is not a digest: only lowercase hex characters 0-9 and a-f may follow `sha256:`"
    )


def is_digest(text: str) -> bool:
    """True when `text` is a well-formed digest."""
    return _DIGEST_RE.fullmatch(text) is not None


def find_digests(text: str) -> list[Digest]:
    """Every digest written anywhere in `text`, in order of appearance (for lock files)."""
    return [Digest(m.group(0)) for m in _ANY_DIGEST_RE.finditer(text)]


def digest_from_hex(hexdigest: str) -> Digest:
    """Tags a sha256 hex digest with its algorithm."""
    return parse_digest(f"{ALGORITHM}:{hexdigest}")


def digest_bytes(data: bytes | bytearray | memoryview) -> Digest:
    """The digest of a byte string."""
    return Digest(f"{ALGORITHM}:{hashlib.sha256(data).hexdigest()}")


def hex_of(digest: Digest) -> str:
    """The hex part of a digest (without the `sha256:` tag)."""
    return digest.partition(":")[2]
