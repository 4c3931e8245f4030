"""Secrets from the caller's environment, for backends without a secret store of their own.

A secret `name/key` is read from the environment variable `MLC_SECRET_<NAME>_<KEY>`, upper-cased,
with every character that is not a letter or digit written `_`. Values are handed to the step
and never written to a log, the cache key or lineage.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from mlc.ir.model import SecretRef, Step
from mlc.runtime.errors import PreflightError


def secret_variable(ref: SecretRef) -> str:
    """The environment variable a secret is read from.

    >>> secret_variable(SecretRef(name="wandb", key="api-key"))
    'MLC_SECRET_WANDB_API_KEY'
    """
    return re.sub(r"[^A-Z0-9]", "_", f"MLC_SECRET_{ref.name}_{ref.key}".upper())


def secret_env(step: Step, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment variables a step's secrets become (`{declared name: value}`)."""
    return {name: environ[secret_variable(ref)] for name, ref in step.secrets.items()}


def check_secrets(steps: Iterable[Step], environ: Mapping[str, str]) -> None:
    """Raises one `PreflightError` naming every secret missing from the environment."""
    missing = sorted(
        {
            f"`{ref.name}/{ref.key}` (step `{step.name}`): set {secret_variable(ref)}"
            for step in steps
            for ref in step.secrets.values()
            if secret_variable(ref) not in environ
        }
    )
    if missing:
        raise PreflightError("secrets are missing from the environment: " + "; ".join(missing))
