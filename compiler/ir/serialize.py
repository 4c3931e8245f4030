"""Canonical JSON for IR documents: sorted keys, fixed indentation, byte-identical output.

The same spec and params always give the same bytes, so the IR can be diffed, hashed and
committed. `load` validates a document against the models and its schema version.
"""

from __future__ import annotations

import json
from typing import Any

from mlc.ir.model import SCHEMA_VERSION, IRDocument


class IRVersionError(ValueError):
    """The document was written by a compiler with another IR schema version."""


def to_json(document: IRDocument) -> str:
    """The canonical JSON text of a document, ending with a newline."""
    data = document.model_dump(mode="json")
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def load(text: str) -> IRDocument:
    """Parses and validates an IR document."""
    data: Any = json.loads(text)
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != SCHEMA_VERSION:
        raise IRVersionError(
            f"IR schema version {version!r} is not supported (this mlc reads {SCHEMA_VERSION})"
        )
    return IRDocument.model_validate(data)


def json_schema() -> str:
    """The published JSON Schema of the IR document."""
    schema = IRDocument.model_json_schema()
    schema["$id"] = f"https://mlc.dev/schemas/ir-v{SCHEMA_VERSION}.json"
    return json.dumps(schema, sort_keys=True, indent=2) + "\n"
