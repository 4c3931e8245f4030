"""What a step sees: the template variables of a command and the keyword arguments of a call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlc.runtime.invocation import Invocation

InputPaths = Mapping[str, "str | list[str]"]
"""Input name -> path of the materialised input (a list of paths for a `fan_in` input)."""


class Namespace:
    """Names for templates: `inputs.values` must be the input called `values`, not a dict's
    `values` method, so this is deliberately not a dict (Jinja2 tries attributes first)."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Mapping[str, Any]) -> None:
        self._entries = dict(entries)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._entries[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._entries[name]

    def __iter__(self) -> Any:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return repr(self._entries)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """The `run` a step belongs to: its id and the pipeline status so far."""

    id: str
    status: str = "running"


@dataclass(frozen=True, slots=True)
class StepPaths:
    """Where an invocation reads its inputs and writes its outputs."""

    inputs: Mapping[str, str | list[str]] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict)


def template_context(
    invocation: Invocation,
    params: Mapping[str, Any],
    paths: StepPaths,
    run: RunInfo,
) -> dict[str, Any]:
    """The variables a command template sees.

    `params` (every pipeline param by name), `inputs` and `outputs` (paths), the `foreach`
    variable by its own name, `run` (`id`, `status`) and `step` (`name`).
    """
    context: dict[str, Any] = {
        "params": Namespace(params),
        "inputs": Namespace({name: _copy(value) for name, value in paths.inputs.items()}),
        "outputs": Namespace(paths.outputs),
        "run": Namespace({"id": run.id, "status": run.status}),
        "step": Namespace({"name": invocation.step.name}),
    }
    context.update(invocation.foreach_binding)
    return context


def _copy(value: str | list[str]) -> str | list[str]:
    return list(value) if isinstance(value, list) else value


def call_arguments(invocation: Invocation, paths: StepPaths) -> dict[str, Any]:
    """The JSON-safe keyword arguments of a `call` step; paths are plain strings here.

    The worker turns `paths` entries into `pathlib.Path` objects (see `mlc.runtime.calls`).
    Returned shape: `{"args": {...}, "paths": {name: str | [str]}, "foreach": {var: item}}`.
    """
    step = invocation.step
    path_args: dict[str, str | list[str]] = {
        name: _copy(value) for name, value in paths.inputs.items()
    }
    path_args.update(paths.outputs)
    return {
        "args": dict(step.command.args),
        "paths": path_args,
        "foreach": invocation.foreach_binding,
    }
