"""Calling a step's Python function (`module:function`) in the current process.

The spec's directory comes first on `sys.path`, so `steps:train` finds `steps.py` next to the
spec. The function is called with keyword arguments: each of the command's `args`, each input
(a `pathlib.Path`, or a list of them for a `fan_in` input), each output (a `pathlib.Path` to
write), and the `foreach` variable. When the step has exactly one `metrics` output and the
function returns a dict, the dict is written as that output's JSON (and the function may then
leave that output out of its parameters).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlc.runtime.errors import StepFailure


def split_function_name(function: str) -> tuple[str, str]:
    """`pkg.mod:func` -> (`pkg.mod`, `func`); a malformed name is a `StepFailure`."""
    module, sep, name = function.partition(":")
    if not sep or not module or not name:
        raise StepFailure(f"`{function}` is not a function reference; write `module:function`")
    return module, name


def ensure_on_path(directory: str) -> None:
    """Puts `directory` first on `sys.path` (once)."""
    if sys.path[:1] != [directory]:
        if directory in sys.path:
            sys.path.remove(directory)
        sys.path.insert(0, directory)


def resolve_function(function: str, base_dir: str) -> Callable[..., Any]:
    """Imports `module:function` with `base_dir` first on `sys.path`."""
    module_name, attribute = split_function_name(function)
    ensure_on_path(base_dir)
    if module_name not in sys.modules:  # a module written since the last import is found
        importlib.invalidate_caches()
    module = importlib.import_module(module_name)
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise StepFailure(f"module `{module_name}` has no function `{attribute}`") from None
    if not callable(target):
        raise StepFailure(f"`{function}` is not callable")
    return target  # type: ignore[no-any-return]


def keyword_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Builds the call's keyword arguments from the JSON-safe shape of
    `mlc.runtime.context.call_arguments`: paths become `pathlib.Path` objects."""
    kwargs: dict[str, Any] = dict(arguments.get("args", {}))
    for name, value in arguments.get("paths", {}).items():
        kwargs[name] = [Path(v) for v in value] if isinstance(value, list) else Path(value)
    kwargs.update(arguments.get("foreach", {}))
    return kwargs


def bind_arguments(
    function: str, target: Callable[..., Any], kwargs: dict[str, Any], returned_metrics: str | None
) -> dict[str, Any]:
    """The keyword arguments the function accepts. The single `metrics` output may be left
    out of the signature (the function then returns the metrics as a dict); any other mismatch
    is a `StepFailure` that lists what mlc passes."""
    try:
        signature = _signature(target)
    except (TypeError, ValueError):  # a builtin or C function: call it as it is
        return kwargs
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    leaves_out_metrics = (
        returned_metrics is not None and returned_metrics not in signature.parameters
    )
    if leaves_out_metrics and not accepts_any:
        kwargs = {k: v for k, v in kwargs.items() if k != returned_metrics}
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        passed = ", ".join(f"`{name}`" for name in kwargs) or "nothing"
        raise StepFailure(
            f"`{function}{signature}` cannot be called with what the step passes ({passed}): {exc}"
        ) from None
    return kwargs


def _signature(target: Callable[..., Any]) -> inspect.Signature:
    """A function's signature, worked out once per function (a worker calls the same step
    functions again and again); a callable object that cannot be hashed, each time."""
    try:
        hash(target)
    except TypeError:
        return inspect.signature(target)
    return _cached_signature(target)


@functools.lru_cache(maxsize=256)
def _cached_signature(target: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(target)


def call_step_function(
    function: str,
    base_dir: str,
    arguments: Mapping[str, Any],
    metrics_path: str | None,
) -> None:
    """Imports and calls the function; writes a returned dict to `metrics_path` if given."""
    target = resolve_function(function, base_dir)
    kwargs = keyword_arguments(arguments)
    metrics_name = None
    if metrics_path is not None:
        metrics_name = next(
            (name for name, value in kwargs.items() if str(value) == metrics_path), None
        )
    result = target(**bind_arguments(function, target, kwargs, metrics_name))
    if metrics_path is not None and isinstance(result, Mapping):
        if Path(metrics_path).exists():
            raise StepFailure(
                f"`{function}` both wrote its metrics output and returned a dict; do one"
            )
        with open(metrics_path, "w", encoding="utf-8") as handle:
            json.dump(dict(result), handle, sort_keys=True, indent=2, default=_json_default)
            handle.write("\n")


def _json_default(value: Any) -> Any:
    # numpy scalars (np.float64, np.int64, np.bool_) know how to become Python numbers.
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
