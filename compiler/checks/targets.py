"""Target checks: the backend exists, and it can honour every feature the pipeline uses.

Backends describe themselves with a `BackendDescription` (their capabilities, what they
require, whether they need an accelerator mapping and which settings their namespaced block
accepts). The compiler receives descriptions as data; it never imports a backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from mlc.checks.program import Program, TargetDecl
from mlc.checks.suggest import closest, did_you_mean
from mlc.diagnostics import Diagnostic
from mlc.diagnostics import catalog as codes

FEATURES: Mapping[str, str] = {
    "image": "container images (`image`)",
    "secrets": "secrets (`secrets`)",
    "gpu": "GPU requests (`gpu`)",
    "accelerator": 'GPU model selection (`gpu = N of "…"`)',
    "mig": "MIG partitions",
    "shm": "shared-memory sizes (`shm`)",
    "disk": "ephemeral disk requests (`disk`)",
    "timeout": "timeouts (`timeout`)",
    "retries": "retries (`retries`)",
    "foreach": "fan-out (`foreach`)",
}


@dataclass(frozen=True)
class BackendDescription:
    """What a backend can honour, as the compiler needs to know it."""

    name: str
    capabilities: frozenset[str]
    requires: frozenset[str] = frozenset()
    needs_accelerator_mapping: bool = False
    settings: Mapping[str, str] = field(default_factory=dict)


DescribeBackend = Callable[[str], BackendDescription | None]


def check_backends(
    program: Program, describe: DescribeBackend, installed: Callable[[], Sequence[str]]
) -> list[Diagnostic]:
    """Every target names a backend that is installed, and its settings block is valid."""
    found: list[Diagnostic] = []
    for target in program.targets.values():
        description = describe(target.backend)
        if description is None:
            known = list(installed())
            found.append(
                codes.UNKNOWN_BACKEND.at(
                    target.backend_span,
                    "not an installed backend",
                    name=target.backend,
                    help=(
                        "the backend is installed but failed to load; see the warning above"
                        if target.backend in known
                        else did_you_mean(target.backend, known) or "installed: " + ", ".join(known)
                    ),
                )
            )
            continue
        for key, key_span in target.setting_spans.items():
            if key not in description.settings:
                found.append(
                    codes.INVALID_SETTING.at(
                        key_span,
                        f"not a setting of `{target.backend}`",
                        backend=target.backend,
                        reason=f"unknown setting `{key}`",
                        help=did_you_mean(key, description.settings)
                        or "settings: " + ", ".join(sorted(description.settings)),
                    )
                )
        for name in target.ignore_unsupported:
            if name not in FEATURES:
                found.append(
                    codes.INVALID_SETTING.at(
                        target.ignore_spans.get(name, target.span),
                        "not a feature",
                        backend=target.backend,
                        reason=f"unknown feature `{name}`",
                        help=did_you_mean(name, FEATURES) or "features: " + ", ".join(FEATURES),
                    )
                )
    return found


def check_capabilities(
    program: Program, target_name: str, describe: DescribeBackend
) -> list[Diagnostic]:
    """Features the chosen target cannot honour: errors, or warnings where explicitly ignored."""
    target = program.targets.get(target_name)
    if target is None:
        return []
    description = describe(target.backend)
    if description is None:
        return []
    found: list[Diagnostic] = []
    for step in program.steps.values():
        for feature, span in sorted(step.features.items(), key=lambda item: item[1].start):
            if feature in description.capabilities or feature not in FEATURES:
                continue
            found.append(_unsupported(target, feature, span))
        for feature in sorted(description.requires):
            # A setting of that name in the target's backend block is every step's default.
            if feature not in step.features and feature not in target.setting_spans:
                found.append(
                    codes.MISSING_ATTRIBUTE.at(
                        step.head_span,
                        f"required by target `{target.name}`",
                        context=f"step `{step.name}`",
                        name=feature,
                        help=f"backend `{target.backend}` runs every step in a container: "
                        f"set `{feature}` on the step or its template, or a default `{feature}` "
                        f"in {_block_of(target)}",
                    )
                )
        gpu = step.resources.gpu
        if (
            description.needs_accelerator_mapping
            and gpu is not None
            and gpu.accelerator
            and gpu.accelerator not in target.accelerators
        ):
            mapped = sorted(target.accelerators)
            listed = ", ".join(f"`{name}`" for name in mapped)
            near = closest(gpu.accelerator, mapped)
            found.append(
                codes.UNMAPPED_ACCELERATOR.at(
                    step.resources.spans.get("gpu", step.head_span),
                    "used here",
                    target=target.name,
                    name=gpu.accelerator,
                    notes=[
                        f"target `{target.name}` maps {listed}"
                        if mapped
                        else f"target `{target.name}` maps no accelerator types"
                    ],
                    help=(f"did you mean `{near}`? Otherwise " if near else "")
                    + f'add `"{gpu.accelerator}" = …` to the `accelerators` block of '
                    + _declared(target),
                )
            )
    return found


def _unsupported(target: TargetDecl, feature: str, span: object) -> Diagnostic:
    from mlc.source import Span

    assert isinstance(span, Span)
    if feature in target.ignore_unsupported:
        return codes.IGNORED_FEATURE.at(
            span, "ignored on this target", target=target.name, feature=FEATURES[feature]
        )
    return codes.UNSUPPORTED_FEATURE.at(
        span,
        "cannot be honoured",
        target=target.name,
        backend=target.backend,
        feature=FEATURES[feature],
        help=(
            f"remove it, or declare a target that runs without it: `target NAME {{ backend = "
            f'{target.backend}, ignore_unsupported = ["{feature}"] }}` and use `--target NAME`'
        )
        if target.implied
        else f'remove it, choose another target, or add `ignore_unsupported = ["{feature}"]` '
        f"to target `{target.name}` to run without it",
    )


def _declared(target: TargetDecl) -> str:
    """Where a target's settings go: the target, or for a backend named with `--target`, a
    target yet to be declared."""
    if target.implied:
        return f"a target `target NAME {{ backend = {target.backend} … }}` (and `--target NAME`)"
    return f"target `{target.name}`"


def _block_of(target: TargetDecl) -> str:
    if target.implied:
        return f"the `{target.backend}` block of {_declared(target)}"
    return f"the target's `{target.backend}` block"
