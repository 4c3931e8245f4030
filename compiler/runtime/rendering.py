"""Turning an invocation into a `Task`: templates rendered, arguments built, environment set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlc.runtime.context import RunInfo, StepPaths, call_arguments, template_context
from mlc.runtime.errors import TemplateFailure
from mlc.runtime.invocation import Invocation
from mlc.runtime.task import Task
from mlc.runtime.templates import render_argv, render_template

SHELL = "/bin/sh"


def step_environment(
    base: Mapping[str, str],
    invocation: Invocation,
    secrets: Mapping[str, str],
    run: RunInfo,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a step: the caller's, then the step's `env`, its secrets, and
    `MLC_RUN_ID` / `MLC_STEP`, then anything the backend adds (`TMPDIR`, GPU visibility)."""
    env = dict(base)
    env.update(invocation.step.env)
    env.update(secrets)
    env["MLC_RUN_ID"] = run.id
    env["MLC_STEP"] = invocation.name
    env.update(extra or {})
    return env


def metrics_output_path(invocation: Invocation, paths: StepPaths) -> str | None:
    """The path a `call` function's returned dict goes to: its only `metrics` output, if any."""
    metrics = [port for port in invocation.step.outputs if port.type.kind == "metrics"]
    return paths.outputs[metrics[0].name] if len(metrics) == 1 else None


def render_task(
    invocation: Invocation,
    *,
    params: Mapping[str, Any],
    paths: StepPaths,
    run: RunInfo,
    env: Mapping[str, str],
    cwd: str,
    log_path: str,
    base_dir: str,
) -> Task:
    """The task of one attempt of an invocation."""
    command = invocation.step.command
    if command.kind == "call":
        return Task(
            kind="call",
            env=env,
            cwd=cwd,
            log_path=log_path,
            function=command.function,
            base_dir=base_dir,
            arguments=call_arguments(invocation, paths),
            metrics_path=metrics_output_path(invocation, paths),
        )
    context = template_context(invocation, params, paths, run)
    if command.kind == "shell":
        if len(command.argv) != 1:
            raise TemplateFailure("a shell command is one template")
        argv: list[str] = [SHELL, "-c", render_template(command.argv[0], context, shell=True)]
    else:
        argv = render_argv(command.argv, context)
        if not argv or not argv[0]:
            raise TemplateFailure("the command renders to an empty argv")
    return Task(kind=command.kind, env=env, cwd=cwd, log_path=log_path, argv=tuple(argv))
