"""Accelerators and feasibility: portable GPU names, MIG profiles, and whether any node of a
target can ever hold a step's request."""

from __future__ import annotations

from dataclasses import dataclass

from mlc.checks.program import NodePoolDecl, Program, ResourceRequest, StepDecl, TargetDecl
from mlc.checks.suggest import did_you_mean
from mlc.diagnostics import Diagnostic
from mlc.diagnostics import catalog as codes


@dataclass(frozen=True)
class Accelerator:
    """A GPU model known by its portable name."""

    name: str
    memory_gb: int
    mig_profiles: tuple[str, ...] = ()


_A100_40 = ("1g.5gb", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb")
_A100_80 = ("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb")
_H100 = ("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb")

ACCELERATORS: dict[str, Accelerator] = {
    a.name: a
    for a in (
        Accelerator("t4", 16),
        Accelerator("l4", 24),
        Accelerator("a10g", 24),
        Accelerator("l40s", 48),
        Accelerator("v100-16gb", 16),
        Accelerator("v100-32gb", 32),
        Accelerator("a100-40gb", 40, _A100_40),
        Accelerator("a100-80gb", 80, _A100_80),
        Accelerator("h100", 80, _H100),
        Accelerator(
            "h200", 141, ("1g.18gb", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb")
        ),
        Accelerator("b200", 192),
        Accelerator("mi300x", 192),
    )
}


def check_accelerators(program: Program) -> list[Diagnostic]:
    """Every accelerator type named in steps and node pools is known; MIG profiles exist."""
    found: list[Diagnostic] = []
    requests = [
        (step.resources, step.resources.spans.get("gpu")) for step in program.steps.values()
    ]
    for target in program.targets.values():
        for pool in target.nodes:
            if pool.gpu is not None:
                requests.append((ResourceRequest(gpu=pool.gpu), pool.span))
    for request, span in requests:
        gpu = request.gpu
        if gpu is None or gpu.accelerator is None or span is None:
            continue
        accelerator = ACCELERATORS.get(gpu.accelerator)
        if accelerator is None:
            found.append(
                codes.UNKNOWN_ACCELERATOR.at(
                    span,
                    "not a known GPU model",
                    name=gpu.accelerator,
                    help=did_you_mean(gpu.accelerator, ACCELERATORS)
                    or "known types: " + ", ".join(sorted(ACCELERATORS)),
                )
            )
        elif gpu.mig and gpu.mig not in accelerator.mig_profiles:
            found.append(
                codes.INVALID_MIG_PROFILE.at(
                    span,
                    "not a partition of this GPU",
                    profile=gpu.mig,
                    accelerator=gpu.accelerator,
                    help=("profiles: " + ", ".join(accelerator.mig_profiles))
                    if accelerator.mig_profiles
                    else f"`{gpu.accelerator}` has no MIG partitions",
                ),
            )
    return found


def shortfall(request: ResourceRequest, pool: NodePoolDecl) -> str | None:
    """What a node of the pool lacks to hold the request, or None if it fits."""
    if request.cpu_millis > pool.cpu_millis:
        return "CPU"
    if request.memory_bytes is not None and request.memory_bytes > pool.memory_bytes:
        return "memory"
    gpu = request.gpu
    if gpu is not None:
        if pool.gpu is None:
            return "GPUs"
        if gpu.accelerator and gpu.accelerator != pool.gpu.accelerator:
            return f"`{gpu.accelerator}` GPUs"
        if not gpu.mig and gpu.count > pool.gpu.count:
            return "GPUs"
    return None


def infeasible(step: StepDecl, target: TargetDecl) -> str | None:
    """The resource no pool of the target has enough of (None when one pool fits)."""
    if not target.nodes:
        return None
    lacks = [shortfall(step.resources, pool) for pool in target.nodes]
    if any(lack is None for lack in lacks):
        return None
    for preferred in ("GPUs",):
        if preferred in lacks:
            return preferred
    return next(lack for lack in lacks if lack is not None)


def check_feasible(program: Program, target: str | None) -> list[Diagnostic]:
    """Requests that no node can hold: on the chosen target, or on every declared inventory."""
    found: list[Diagnostic] = []
    chosen = [program.targets[target]] if target in program.targets else []
    # An inventory with a pool reported as wrong would only report its own mistake again.
    chosen = [t for t in chosen if not t.nodes_reported]
    with_inventory = [t for t in program.targets.values() if t.nodes and not t.nodes_reported]
    for step in program.steps.values():
        candidates = chosen if target else with_inventory
        if not candidates:
            continue
        problems = [(t, infeasible(step, t)) for t in candidates]
        if target is None and any(lack is None for _, lack in problems):
            continue
        for declared, lack in problems[:1] if target is None else problems:
            if lack is None:
                continue
            span = step.resources.spans.get(_span_key(lack)) or step.head_span
            largest = _largest(declared)
            found.append(
                codes.INFEASIBLE_REQUEST.at(
                    span,
                    "no node can hold this",
                    step=step.name,
                    resource=lack,
                    target=declared.name,
                    notes=[f"the largest nodes of `{declared.name}` have {largest}"]
                    if largest
                    else [],
                    help="lower the request, or add a node pool that can hold it",
                )
            )
    return found


def _span_key(lack: str) -> str:
    return {"CPU": "cpu", "memory": "memory"}.get(lack, "gpu")


def _largest(target: TargetDecl) -> str:
    parts = []
    for pool in target.nodes:
        gpu = f", {pool.gpu.count} x `{pool.gpu.accelerator}`" if pool.gpu else ""
        parts.append(
            f"{pool.cpu_millis / 1000:g} CPU, {pool.memory_bytes / 2**30:g}Gi{gpu} (`{pool.name}`)"
        )
    return "; ".join(parts)
