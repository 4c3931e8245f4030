"""Cache keys: a digest of everything that determines an invocation's outputs, kept in parts.

The key is the sha256 of a canonical JSON document (sorted keys, no spaces) of the parts:

- `command`: the kind, the argv *templates* (not the rendered paths) or the function, and the
  call's `args`
- `code`: digests of the function's module source, of the project's modules it imports
  (`mlc.runtime.local_imports`) and of every path the step declares in `code`
- `env`: the step's environment; `secrets`: the secret *references* (never their values)
- `image` and `image_digest` (where known)
- `inputs`: the digest of every input (a list of digests for a `fan_in` input)
- `params`: the params the step uses, with their values (not the list a `foreach` step's items
  come from: each invocation has its own item)
- `item`: the `foreach` variable and its value
- `outputs`: the names and kinds of the outputs
- `run`: the run id and status, only when a template reads `run` (such a step never hits)

Resources, retries and timeouts are never part of it: they change how a step runs, not what it
produces. `explain_change` compares the parts of two keys and says what changed, in words.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from mlc.runtime.context import RunInfo
from mlc.runtime.invocation import Invocation
from mlc.runtime.templates import referenced_names

CACHE_KEY_VERSION = 3
"""Bumped whenever the parts, their encoding or what they mean change, so old entries simply
stop matching (2: a `foreach` step's `params` leave out the list its items come from; a `call`
step's `code` includes the project's modules its module imports; 3: a list standing alone in
an argv template is one argument per element, no longer one argument of JSON text)."""

InputDigests = Mapping[str, "str | Sequence[str]"]


@dataclass(frozen=True, slots=True)
class CacheKeyParts:
    """The parts a cache key is made of (see the module docstring)."""

    command: dict[str, Any]
    code: dict[str, str]
    env: dict[str, str]
    secrets: dict[str, str]
    image: str | None
    image_digest: str | None
    inputs: dict[str, str | list[str]]
    params: dict[str, Any]
    item: dict[str, Any]
    outputs: dict[str, str]
    run: dict[str, str] | None

    def to_json(self) -> dict[str, Any]:
        """The parts as a plain dict, with the key format version (the values are shared,
        not copied: parts are never changed once made)."""
        return {"version": CACHE_KEY_VERSION, **{f.name: getattr(self, f.name) for f in _FIELDS}}

    @property
    def key(self) -> str:
        """`sha256:<hex>` of the canonical JSON of the parts."""
        return digest_of_parts(self.to_json())


_FIELDS = fields(CacheKeyParts)


def canonical_json(data: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: the same data always gives the same text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest_of_parts(parts: Mapping[str, Any]) -> str:
    """The cache key of a parts document (as stored with a cache entry)."""
    return "sha256:" + hashlib.sha256(canonical_json(parts).encode()).hexdigest()


def reads_run(invocation: Invocation) -> bool:
    """True when the step's command or `env` templates read `run` (id or status)."""
    step = invocation.step
    return "run" in referenced_names([*step.command.argv, *step.env.values()])


def cache_key_parts(
    invocation: Invocation,
    *,
    code: Mapping[str, str],
    input_digests: InputDigests,
    run: RunInfo,
    image_digest: str | None = None,
) -> CacheKeyParts:
    """The cache key parts of one invocation."""
    step = invocation.step
    command = step.command
    return CacheKeyParts(
        command={
            "kind": command.kind,
            "argv": list(command.argv),
            "function": command.function,
            "args": dict(command.args),
        },
        code=dict(code),
        env=dict(step.env),
        secrets={name: f"{ref.name}/{ref.key}" for name, ref in step.secrets.items()},
        image=step.image,
        image_digest=image_digest,
        inputs={
            name: value if isinstance(value, str) else list(value)
            for name, value in input_digests.items()
        },
        params=dict(step.params_used),
        item=invocation.foreach_binding,
        outputs={port.name: port.type.kind for port in step.outputs},
        run={"id": run.id, "status": run.status} if reads_run(invocation) else None,
    )


def short(value: Any) -> str:
    """A digest shortened to 12 hex digits; any other value as JSON.

    >>> short("sha256:" + "ab" * 32)
    'sha256:abababababab'
    """
    if isinstance(value, str) and value.startswith("sha256:") and len(value) == 71:
        return value[:19]
    return canonical_json(value)


def _changes(label: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    reasons: list[str] = []
    for name in sorted(set(old) | set(new)):
        if name not in old:
            reasons.append(f"{label} `{name}` is new ({short(new[name])})")
        elif name not in new:
            reasons.append(f"{label} `{name}` was removed (was {short(old[name])})")
        elif old[name] != new[name]:
            reasons.append(_changed(label, name, old[name], new[name]))
    return reasons


def _changed(label: str, name: str, old: Any, new: Any) -> str:
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return f"{label} `{name}` changed ({len(old)} items → {len(new)} items)"
        positions = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
        first = positions[0]
        return (
            f"{label} `{name}` changed (item {first}: {short(old[first])} → {short(new[first])}"
            + (f", and {len(positions) - 1} more" if len(positions) > 1 else "")
            + ")"
        )
    return f"{label} `{name}` changed ({short(old)} → {short(new)})"


def _pick(values: Mapping[str, Any], name: str) -> dict[str, Any]:
    return {name: values[name]} if name in values else {}


def explain_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two parts documents, most telling first; empty if nothing does.

    A call argument bound from a param that changed the same way is not repeated.
    """
    if old.get("version") != new.get("version"):
        return ["the cache key format changed (mlc was upgraded)"]
    reasons: list[str] = []
    reasons += _changes("input", old.get("inputs", {}), new.get("inputs", {}))
    reasons += _changes("param", old.get("params", {}), new.get("params", {}))
    reasons += _changes("code", old.get("code", {}), new.get("code", {}))
    old_command, new_command = old.get("command", {}), new.get("command", {})
    for field in ("kind", "function", "argv"):
        if old_command.get(field) != new_command.get(field):
            reasons.append(
                f"command {field} changed ({short(old_command.get(field))} → "
                f"{short(new_command.get(field))})"
            )
    old_params, new_params = old.get("params", {}), new.get("params", {})
    param_moves = [
        (old_params.get(name), new_params.get(name))
        for name in set(old_params) | set(new_params)
        if old_params.get(name) != new_params.get(name)
    ]
    old_args, new_args = old_command.get("args", {}), new_command.get("args", {})
    reasons += [
        reason
        for name in sorted(set(old_args) | set(new_args))
        if (old_args.get(name), new_args.get(name)) not in param_moves
        for reason in _changes("argument", _pick(old_args, name), _pick(new_args, name))
    ]
    reasons += _changes("env", old.get("env", {}), new.get("env", {}))
    reasons += _changes("secret reference", old.get("secrets", {}), new.get("secrets", {}))
    for field in ("image", "image_digest"):
        if old.get(field) != new.get(field):
            reasons.append(f"{field} changed ({short(old.get(field))} → {short(new.get(field))})")
    reasons += _changes("foreach item", old.get("item", {}), new.get("item", {}))
    reasons += _changes("output", old.get("outputs", {}), new.get("outputs", {}))
    if new.get("run") is not None and old.get("run") != new.get("run"):
        reasons.append("the command reads `run`, which is new in every run")
    return reasons
