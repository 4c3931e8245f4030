"""Names, labels and annotations of the objects mlc creates, within Kubernetes' limits.

Job names are deterministic: the same attempt (run, invocation, cache key, attempt number)
always gets the same name, so creating it twice is a `409 AlreadyExists`, never a duplicate.
They stay within 52 characters, so that an Indexed Job's pod hostnames (`NAME-INDEX`) fit in
63. Label values stop at 63 characters: the whole invocation name and cache key go into
annotations.
"""

from __future__ import annotations

import base64
import hashlib
import re

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "mlc"
PART_OF = "app.kubernetes.io/part-of"
COMPONENT = "app.kubernetes.io/component"
RUN = "mlc.dev/run"
ATTEMPT = "mlc.dev/attempt"
JOB_NAME = "batch.kubernetes.io/job-name"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"

INVOCATION = "mlc.dev/invocation"
CACHE_KEY = "mlc.dev/cache-key"
INVOCATIONS = "mlc.dev/invocations"
"""An Indexed Job's invocations, in index order (JSON)."""
CACHE_KEYS = "mlc.dev/cache-keys"
"""An Indexed Job's cache keys, in index order (JSON)."""
SPEC_HASH = "mlc.dev/spec-hash"
PIPELINE = "mlc.dev/pipeline"

JOB_NAME_LIMIT = 52
LABEL_VALUE_LIMIT = 63
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")


def digest_text(*parts: str, length: int = 10) -> str:
    """A short, lowercase, DNS-safe digest of some text."""
    raw = hashlib.sha256("\x00".join(parts).encode("utf-8")).digest()
    return base64.b32encode(raw).decode("ascii").lower()[:length]


def dns_slug(text: str, limit: int) -> str:
    """`Train_Model[2]` → `train-model-2`: a DNS label fragment of at most `limit` chars."""
    slug = _NOT_DNS.sub("-", text.lower()).strip("-")[:limit].strip("-")
    return slug or "step"


def label_value(text: str) -> str:
    """A valid label value for `text` (shortened with a digest when it is too long)."""
    value = _NOT_LABEL.sub("-", text).strip("-_.")
    if len(value) > LABEL_VALUE_LIMIT:
        value = value[: LABEL_VALUE_LIMIT - 11].rstrip("-_.") + "-" + digest_text(text)
    return value


def job_name(run_id: str, invocation: str, cache_key: str | None, number: int) -> str:
    """The Job of one attempt: `mlc-<step>-<digest of run, invocation, key, attempt>`."""
    tail = digest_text(run_id, invocation, cache_key or "", str(number))
    return f"mlc-{dns_slug(invocation, JOB_NAME_LIMIT - len(tail) - 5)}-{tail}"


def run_config_map(run_id: str) -> str:
    """The per-run ConfigMap that owns the run's Jobs."""
    return f"mlc-run-{dns_slug(run_id, 40)}-{digest_text(run_id, length=6)}"
