"""The attempt going into a pod, and its result coming back, both as plain text.

In: the attempt's JSON, compressed and base64-encoded in the pod's environment (`MLC_ATTEMPT`),
or, when that would be too large for an environment variable, put into the store and named by
its digest (`MLC_ATTEMPT_REF`). Out: how the attempt ended, as JSON in the container's
termination message, which the kubelet caps at 4 KiB: a larger result goes into the store and
only its digest into the message. Neither side needs the Kubernetes client.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Mapping
from typing import Any

from mlc.store.base import Store
from mlc.store.digest import parse_digest

ATTEMPT = "MLC_ATTEMPT"
ATTEMPT_REF = "MLC_ATTEMPT_REF"
STORE = "MLC_STORE"
COMPLETION_INDEX = "JOB_COMPLETION_INDEX"
"""Set by Kubernetes in each pod of an Indexed Job."""
MESSAGE_LIMIT = 4096
"""The kubelet's cap on a container's termination message, in bytes."""
INLINE_ATTEMPT_LIMIT = 96 * 1024
"""The largest attempt carried in the environment (Linux caps one variable at 128 KiB)."""
STORED = "stored"


def attempt_environment(attempt_json: Any, store: Store) -> dict[str, str]:
    """The environment variables that carry an attempt (or, for an Indexed Job, the list of
    its indexes' attempts) into its pod."""
    data = json.dumps(attempt_json, separators=(",", ":"), sort_keys=True).encode("utf-8")
    packed = base64.b64encode(zlib.compress(data, 6)).decode("ascii")
    if len(packed) <= INLINE_ATTEMPT_LIMIT:
        return {ATTEMPT: packed}
    return {ATTEMPT_REF: str(store.put_bytes(data))}


def attempt_from_environment(environ: Mapping[str, str], store: Store) -> dict[str, Any]:
    """The attempt's JSON, from the variables `attempt_environment` made (in an Indexed Job,
    the one of this pod's index, `JOB_COMPLETION_INDEX`)."""
    if ATTEMPT in environ:
        data = zlib.decompress(base64.b64decode(environ[ATTEMPT]))
    else:
        data = store.read_bytes(parse_digest(environ[ATTEMPT_REF]))
    loaded = json.loads(data)
    if isinstance(loaded, list):
        loaded = loaded[int(environ[COMPLETION_INDEX])]
    attempt: dict[str, Any] = loaded
    return attempt


def encode_result(value: Mapping[str, Any], store: Store) -> str:
    """The termination message for a result: the JSON itself when it fits in the kubelet's
    limit, else `{"stored": DIGEST}` with the JSON in the store."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    if len(text.encode("utf-8")) <= MESSAGE_LIMIT:
        return text
    digest = store.put_bytes(text.encode("utf-8"))
    return json.dumps({STORED: str(digest)})


def decode_result(message: str | None, store: Store) -> dict[str, Any] | None:
    """The result a termination message carries, or None when it carries none (the runtime
    never ran, or crashed: the message is then the tail of the container's log)."""
    if not message:
        return None
    try:
        value = json.loads(message)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    if set(value) == {STORED}:
        stored: dict[str, Any] = json.loads(store.read_bytes(parse_digest(value[STORED])))
        return stored
    return value if "collected" in value else None
