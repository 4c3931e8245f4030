"""The compiler driver. Its body is the phase list; read it to know the architecture.

    text --parse--> AST --resolve--> Program --checks--> Program --lower--> IR document

`check_paths` runs everything up to the checks (what `mlc lint` needs, and all it imports);
`compile_spec` also lowers to the IR, importing pydantic only then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlc.checks import graph, resources, targets
from mlc.checks.loader import Loader, whole_file
from mlc.checks.program import Program, TargetDecl
from mlc.checks.resolve import Resolver
from mlc.diagnostics import Diagnostic, has_errors
from mlc.diagnostics import catalog as codes
from mlc.diagnostics.model import sort_key
from mlc.source import SourceMap

if TYPE_CHECKING:
    from mlc.ir.model import IRDocument


@dataclass
class Options:
    """What a compilation is asked to do."""

    target: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    pipeline: str | None = None
    require_params: bool = False
    describe_backend: targets.DescribeBackend | None = None
    known_backends: Callable[[], Sequence[str]] = tuple
    """The installed backends' names, asked for only to explain an unknown one."""


@dataclass
class CheckResult:
    """The outcome of checking: programs (one per pipeline) and every diagnostic, sorted."""

    sources: SourceMap
    diagnostics: list[Diagnostic]
    programs: list[Program]
    files: int
    notes: list[str] = field(default_factory=list)
    """Plain remarks for the user (a backend name used as a target), each once."""


@dataclass
class CompileResult:
    """The IR document (None when there are errors), the diagnostics and the sources."""

    document: IRDocument | None
    diagnostics: list[Diagnostic]
    sources: SourceMap
    notes: list[str] = field(default_factory=list)


ProgramCheck = Callable[[Program, Options], list[Diagnostic]]

# The checks, in order. Each takes the resolved program and returns diagnostics.
CHECKS: tuple[ProgramCheck, ...] = (
    lambda program, _: resources.check_accelerators(program),
    lambda program, _: graph.check_acyclic(program),
    lambda program, options: resources.check_feasible(program, options.target),
    lambda program, options: (
        targets.check_backends(program, options.describe_backend, options.known_backends)
        if options.describe_backend
        else []
    ),
    lambda program, options: (
        targets.check_capabilities(program, options.target, options.describe_backend)
        if options.describe_backend and options.target
        else []
    ),
)

# Warnings that only make sense on a program without errors.
LINTS: tuple[ProgramCheck, ...] = (
    lambda program, _: graph.check_unused(program),
    lambda program, _: graph.check_reachable(program),
)


def check_paths(
    paths: Iterable[Path],
    options: Options | None = None,
    *,
    texts: Mapping[Path, str] | None = None,
) -> CheckResult:
    """Parses, resolves and checks each file (imports included); never raises on bad input."""
    options = options or Options()
    sources = SourceMap()
    diagnostics: list[Diagnostic] = []
    loader = Loader(sources, diagnostics)
    resolver = Resolver(diagnostics, params=options.params, require_params=options.require_params)
    programs: list[Program] = []
    notes: list[str] = []
    files = 0
    for path in paths:
        files += 1
        text = (texts or {}).get(path)
        loaded = loader.load_text(text, path) if text is not None else loader.load(path)
        if loaded is None:
            continue
        display = loader.display(loaded.path)
        scope = resolver.scope_of(loaded)
        chosen = scope.pipelines
        if options.pipeline is not None:
            if options.pipeline not in chosen:
                diagnostics.append(
                    codes.UNKNOWN_PIPELINE.at(
                        whole_file(display),
                        "this file",
                        name=options.pipeline,
                        help=_choices("pipelines", chosen),
                    )
                )
                continue
            chosen = {options.pipeline: chosen[options.pipeline]}
        for block in chosen.values():
            before = len(diagnostics)
            program = resolver.resolve_pipeline(loaded, block, display)
            if options.target is not None and options.target not in program.targets:
                implied = backend_target(program, options)
                if implied is None:
                    diagnostics.append(
                        codes.UNKNOWN_TARGET.at(
                            program.span,
                            f"pipeline `{program.name}` has no such target",
                            name=options.target,
                            help=_target_choices(program, options),
                        )
                    )
                else:
                    program.targets[implied.name] = implied
                    notes.append(
                        f"note: no target `{implied.name}` is declared; using backend "
                        f"`{implied.backend}` with its defaults"
                    )
            for check in CHECKS:
                diagnostics.extend(check(program, options))
            if not has_errors(diagnostics[before:]):
                for lint in LINTS:
                    diagnostics.extend(lint(program, options))
            programs.append(program)
    unique = list(dict.fromkeys(diagnostics))
    unique.sort(key=sort_key)
    return CheckResult(sources, unique, programs, files, list(dict.fromkeys(notes)))


def compile_spec(
    path: str | Path,
    *,
    params: Mapping[str, str] | None = None,
    target: str | None = None,
    pipeline: str | None = None,
    options: Options | None = None,
) -> CompileResult:
    """Checks one spec and lowers its pipeline to an IR document."""
    options = options or Options()
    options.params = dict(params or options.params)
    options.target = target or options.target
    options.pipeline = pipeline or options.pipeline
    options.require_params = True
    spec = Path(path)
    result = check_paths([spec], options)
    diagnostics = result.diagnostics
    if has_errors(diagnostics):
        return CompileResult(None, diagnostics, result.sources, result.notes)
    if not result.programs:
        diagnostics = [
            *diagnostics,
            codes.NO_PIPELINE.at(
                whole_file(spec.as_posix()),
                "this file",
                path=spec.as_posix(),
                help="a spec to compile declares one `pipeline name { … }`",
            ),
        ]
        return CompileResult(None, diagnostics, result.sources)
    if len(result.programs) > 1:
        names = ", ".join(f"`{p.name}`" for p in result.programs)
        diagnostics = [
            *diagnostics,
            codes.UNKNOWN_PIPELINE.at(
                result.programs[1].span,
                "a second pipeline",
                name="(ambiguous)",
                help=f"choose one with `--pipeline`: {names}",
            ),
        ]
        return CompileResult(None, diagnostics, result.sources)
    from mlc.lower import lower

    document = lower(result.programs[0], result.sources, options.target)
    return CompileResult(document, diagnostics, result.sources, result.notes)


def backend_target(program: Program, options: Options) -> TargetDecl | None:
    """A target named after an installed backend, with that backend's defaults: what
    `--target ray` means when the spec declares no target called `ray`."""
    name = options.target
    if name is None or options.describe_backend is None:
        return None
    if options.describe_backend(name) is None:
        return None
    return TargetDecl(
        name=name, backend=name, span=program.span, backend_span=program.span, implied=True
    )


def _target_choices(program: Program, options: Options) -> str:
    declared = ", ".join(f"`{n}`" for n in program.targets) or "none"
    backends = ", ".join(f"`{n}`" for n in options.known_backends())
    if not backends:
        return _choices("targets", program.targets)
    return f"declared targets: {declared}; or a backend with its defaults: {backends}"


def _choices(kind: str, names: Iterable[str]) -> str:
    listed = ", ".join(f"`{n}`" for n in names)
    return f"declared {kind}: {listed}" if listed else f"this spec declares no {kind}"
