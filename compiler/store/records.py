"""Records: small JSON documents kept in a store under `records/<kind>/<key>.json`.

A record is created exactly once and never changed (a create-only write: `os.link` of a
complete temporary file locally, a conditional put remotely). Facts that evolve, such as a run
that starts and later ends, are written as separate records. Run records and lineage facts
travel this way between machines sharing a remote store.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlc.store.errors import StoreError, UnreadableRecordError


def encode_record(document: Mapping[str, Any]) -> bytes:
    """Canonical JSON bytes of a record (sorted keys, no insignificant whitespace)."""
    try:
        text = json.dumps(dict(document), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"a record must be plain JSON data: {exc}") from None
    return text.encode("utf-8")


def decode_record(data: bytes, name: str) -> dict[str, Any]:
    """Parses a record's bytes; a record is always a JSON object (`UnreadableRecordError`
    otherwise: empty or cut short by a power loss, or not written by mlc)."""
    if not data:
        raise UnreadableRecordError(f"record {name} is empty")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnreadableRecordError(f"record {name} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise UnreadableRecordError(f"record {name} is not a JSON object")
    return document
