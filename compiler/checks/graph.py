"""Checks over the step graph: cycles (with the cycle printed), unused params and outputs,
and steps that can never run."""

from __future__ import annotations

from mlc.checks import types as t
from mlc.checks.program import Program
from mlc.diagnostics import Diagnostic, Label
from mlc.diagnostics import catalog as codes
from mlc.source import Span


def dependencies(program: Program) -> dict[str, list[tuple[str, Span]]]:
    """For each step, the steps it must wait for, with the span that creates the dependency."""
    result: dict[str, list[tuple[str, Span]]] = {}
    for step in program.steps.values():
        edges: list[tuple[str, Span]] = []
        for port in step.inputs:
            if port.source_kind == "step":
                edges.append((port.node, port.source_span))
        edges.extend(step.after)
        if isinstance(step.when, t.Symbolic) and step.when_span is not None:
            edges.extend(
                (name, step.when_references.get(name, step.when_span)) for name in step.when.steps
            )
        result[step.name] = edges
    return result


def check_acyclic(program: Program) -> list[Diagnostic]:
    """Reports each dependency cycle once, naming every step on it."""
    graph = dependencies(program)
    state: dict[str, int] = {}
    stack: list[tuple[str, Span | None]] = []
    found: list[Diagnostic] = []
    reported: set[frozenset[str]] = set()

    def visit(node: str, via: Span | None) -> None:
        state[node] = 1
        stack.append((node, via))
        for successor, span in graph.get(node, []):
            if state.get(successor) == 1:
                names = [n for n, _ in stack]
                cycle = names[names.index(successor) :]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    shown = " -> ".join(f"`{n}`" for n in [*cycle, successor])
                    links = [s for n, s in stack[names.index(successor) + 1 :] if s is not None]
                    found.append(
                        codes.DEPENDENCY_CYCLE.at(
                            span,
                            f"`{node}` needs `{successor}` here",
                            cycle=shown,
                            secondary=[Label(s, "and here") for s in links],
                            help="remove one of these dependencies; a pipeline is a DAG",
                        )
                    )
            elif successor in graph and state.get(successor) is None:
                visit(successor, span)
        stack.pop()
        state[node] = 2

    for name in program.steps:
        if state.get(name) is None:
            visit(name, None)
    return found


def check_unused(program: Program) -> list[Diagnostic]:
    """Params nobody reads and outputs nobody consumes or exports."""
    found: list[Diagnostic] = []
    for param in program.params.values():
        if not param.used:
            found.append(
                codes.UNUSED_PARAM.at(
                    param.span,
                    "declared here",
                    name=param.name,
                    help=f"remove it, or use it as `params.{param.name}`",
                )
            )
    consumed: set[tuple[str, str]] = set()
    for step in program.steps.values():
        for port in step.inputs:
            if port.source_kind == "step" and port.output:
                consumed.add((port.node, port.output))
        if isinstance(step.when, t.Symbolic):
            _collect_metric_reads(step.when.condition, consumed)
    consumed |= {(o.step, o.output) for o in program.outputs}
    for step in program.steps.values():
        for output in step.outputs.values():
            if (step.name, output.name) not in consumed:
                found.append(
                    codes.UNUSED_OUTPUT.at(
                        output.span,
                        "nothing reads it",
                        name=output.name,
                        step=step.name,
                        help=f"export it in the pipeline's `outputs {{ {output.name} = {step.name}.{output.name} }}`",
                    )
                )
    return found


def _collect_metric_reads(condition: object, into: set[tuple[str, str]]) -> None:
    if isinstance(condition, dict):
        if condition.get("kind") == "metric":
            into.add((str(condition["step"]), str(condition["output"])))
        for arg in condition.get("args", []):
            _collect_metric_reads(arg, into)


def check_reachable(program: Program) -> list[Diagnostic]:
    """Steps whose `when` condition is always false with the params as bound."""
    found: list[Diagnostic] = []
    for step in program.steps.values():
        if step.when is False and step.when_span is not None:
            found.append(
                codes.UNREACHABLE_STEP.at(
                    step.when_span,
                    "always false",
                    step=step.name,
                    help="remove the step, or fix the condition",
                )
            )
    return found
