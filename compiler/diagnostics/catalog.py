"""The catalog of diagnostic codes: every code mlc can report, its message and explanation.

Codes are stable and never reused. `E` codes are errors, `W` codes warnings. The first
digit after the letter groups codes by phase: 0 syntax, 1 names and imports, 2 values and
types, 3 artifacts, templates and gates, 4 resources, 5 the graph, 6 targets.

A diagnostic is made from its entry: `UNKNOWN_NAME.at(span, name="x")`. The message is a
`str.format` template over the keyword arguments. `mlc explain CODE` prints the long
explanation with a bad and a good example; a test checks that every bad example produces
its code and every good example lints clean.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mlc.diagnostics.model import Diagnostic, Label, Severity
from mlc.source import Span


@dataclass(frozen=True, slots=True)
class Code:
    """One entry of the catalog."""

    code: str
    template: str
    explanation: str = ""
    bad: str = ""
    good: str = ""

    @property
    def severity(self) -> Severity:
        """Errors start with `E`, warnings with `W`."""
        return Severity.ERROR if self.code.startswith("E") else Severity.WARNING

    def at(
        self,
        span: Span,
        label: str = "",
        *,
        help: str | None = None,
        notes: Iterable[str] = (),
        secondary: Iterable[Label] = (),
        **fields: object,
    ) -> Diagnostic:
        """A diagnostic of this code at `span`, with its message filled in from `fields`."""
        return Diagnostic(
            code=self.code,
            severity=self.severity,
            message=self.template.format(**fields),
            primary=Label(span, label),
            secondary=tuple(secondary),
            notes=tuple(notes),
            help=help,
        )


CATALOG: dict[str, Code] = {}


def _code(code: str, template: str) -> Code:
    entry = Code(code, template)
    assert code not in CATALOG, f"duplicate diagnostic code {code}"
    CATALOG[code] = entry
    return entry


# -- 0: syntax ---------------------------------------------------------------------------------
SYNTAX_ERROR = _code("E0001", "expected {expected}, found {found}")
UNTERMINATED_STRING = _code("E0002", "unterminated string")
MISSING_HEADER = _code("E0003", "a spec must start with `mlspec 1`")
UNSUPPORTED_VERSION = _code("E0004", "unsupported language version `{version}`")
UNCLOSED_BLOCK = _code("E0005", "unclosed `{{`: the file ends inside a block")
MISSING_EQUALS = _code("E0006", "expected `=` after `{name}`")
UNKNOWN_UNIT = _code("E0007", "unknown unit `{unit}`")
UNEXPECTED_CHARACTER = _code("E0008", "unexpected character `{char}`")
UNMATCHED_CLOSE = _code("E0009", "unmatched `{close}`")
INVALID_ESCAPE = _code("E0010", "invalid escape `{escape}` in a string")

# -- 1: names, blocks and imports ----------------------------------------------------------------
IMPORT_NOT_FOUND = _code("E0101", "cannot find imported file `{path}`")
IMPORT_CYCLE = _code("E0102", "import cycle: {cycle}")
UNKNOWN_NAME = _code("E0103", "unknown name `{name}`")
DUPLICATE_DEFINITION = _code("E0104", "{kind} `{name}` is defined more than once")
UNKNOWN_ATTRIBUTE = _code("E0105", "unknown attribute `{name}` in {context}")
UNKNOWN_BLOCK = _code("E0106", "unknown block `{name}` in {context}")
MISSING_ATTRIBUTE = _code("E0107", "{context} is missing `{name}`")
CONFLICTING_ATTRIBUTES = _code("E0108", "{context} sets both `{first}` and `{second}`")
UNKNOWN_STEP = _code("E0109", "unknown step `{name}`")
UNKNOWN_OUTPUT = _code("E0110", "step `{step}` has no output `{name}`")
UNKNOWN_PARAM = _code("E0111", "unknown param `{name}`")
UNKNOWN_TEMPLATE = _code("E0112", "unknown step template `{name}`")
UNKNOWN_TYPE = _code("E0113", "unknown type `{name}`")
MISPLACED_BLOCK = _code("E0114", "{what} is not allowed here")
NO_PIPELINE = _code("E0115", "no pipeline in `{path}`")
UNKNOWN_PIPELINE = _code("E0116", "unknown pipeline `{name}`")
UNKNOWN_TARGET = _code("E0117", "unknown target `{name}`")
SELF_REFERENCE = _code("E0118", "step `{name}` refers to itself")
IMPORT_FAILED = _code("E0119", "cannot read `{path}`: {reason}")

# -- 2: values, types and units -------------------------------------------------------------------
TYPE_MISMATCH = _code("E0201", "expected {expected}, found {found}")
OUT_OF_RANGE = _code("E0202", "{value} is outside the range {range} of `{name}`")
NOT_A_CHOICE = _code("E0203", "{value} is not one of the choices of `{name}`")
MEMORY_WITHOUT_UNIT = _code(
    "E0204", "`{name}` needs a unit: `{value}` could mean bytes or gibibytes"
)
WRONG_UNIT = _code("E0205", "`{unit}` is not a unit of {kind}")
INVALID_CALL_TARGET = _code("E0206", "`call` must be `module:function`, found `{value}`")
INVALID_VERSION = _code("E0207", "invalid dataset version {value}")
INVALID_SECRET = _code("E0208", "a secret reference must be `name/key`, found `{value}`")
INVALID_OPERANDS = _code("E0209", "cannot apply `{op}` to {operands}")
MISSING_PARAM_VALUE = _code("E0210", "param `{name}` has no default and no value was given")
BAD_PARAM_VALUE = _code("E0211", "invalid value `{value}` for param `{name}`: {reason}")
INVALID_CONSTRAINT = _code("E0212", "invalid constraint on `{name}`: {reason}")
NOT_CONSTANT = _code("E0213", "`{name}` must be known at compile time")
INVALID_VALUE = _code("E0214", "invalid value for `{name}`: {reason}")
DIVISION_BY_ZERO = _code("E0215", "division by zero")

# -- 3: artifacts, templates and gates ------------------------------------------------------------
ARTIFACT_TYPE_MISMATCH = _code(
    "E0301", "input `{name}` of step `{step}` expects `{expected}`, got `{found}`"
)
FAN_IN_NEEDS_LIST = _code(
    "E0302",
    "input `{name}` of step `{step}` receives one `{item}` per item of `foreach` step `{source}`",
)
UNKNOWN_METRIC = _code("E0303", "metrics `{output}` of step `{step}` declare no key `{name}`")
UNDECLARED_METRICS = _code(
    "E0304", "output `{output}` of step `{step}` is a `{kind}`, not metrics with declared keys"
)
TEMPLATE_UNKNOWN_NAME = _code("E0305", "unknown name `{name}` in template")
TEMPLATE_SYNTAX = _code("E0306", "invalid template: {reason}")
FOREACH_NOT_LIST = _code("E0307", "`foreach` needs a list, found {found}")
GATE_NOT_BOOL = _code("E0308", "a `when` condition must be a `bool`, found {found}")
GATE_ON_FOREACH = _code("E0309", "`when` cannot use metrics of `foreach` step `{step}`")
UNKNOWN_RUN_FIELD = _code("E0310", "unknown run field `{name}`")
OUTPUT_NOT_PASSED = _code(
    "E0311", "output `{name}` of step `{step}` is never passed to its command"
)

# -- 4: resources ---------------------------------------------------------------------------------
UNKNOWN_ACCELERATOR = _code("E0401", "unknown accelerator type `{name}`")
INVALID_GPU_COUNT = _code("E0402", "GPU count must be a whole number of at least 1, found {value}")
INFEASIBLE_REQUEST = _code(
    "E0403", "step `{step}` requests more {resource} than any node of target `{target}` has"
)
INVALID_MIG_PROFILE = _code("E0404", "`{profile}` is not a MIG profile of `{accelerator}`")
NON_POSITIVE_RESOURCE = _code("E0405", "`{name}` must be {bound}")
UNMAPPED_ACCELERATOR = _code("E0406", "target `{target}` has no mapping for accelerator `{name}`")

# -- 5: the graph ---------------------------------------------------------------------------------
DEPENDENCY_CYCLE = _code("E0501", "steps depend on each other in a cycle: {cycle}")
FINALLY_AS_INPUT = _code("E0502", "step `{step}` depends on `finally` step `{source}`")
UNUSED_PARAM = _code("W0501", "param `{name}` is never used")
UNUSED_OUTPUT = _code("W0502", "output `{name}` of step `{step}` is never used")
UNREACHABLE_STEP = _code(
    "W0503", "step `{step}` can never run: its `when` condition is always false"
)
INPUT_NOT_PASSED = _code("W0504", "input `{name}` of step `{step}` is never passed to its command")

# -- 6: targets and backends ----------------------------------------------------------------------
UNKNOWN_BACKEND = _code("E0601", "unknown backend `{name}`")
UNSUPPORTED_FEATURE = _code(
    "E0602", "target `{target}` (backend `{backend}`) cannot honour {feature}"
)
INVALID_SETTING = _code("E0603", "invalid setting for backend `{backend}`: {reason}")
IGNORED_FEATURE = _code("W0601", "target `{target}` ignores {feature}")


def lookup(code: str) -> Code | None:
    """The catalog entry of a code, case-insensitively."""
    return CATALOG.get(code.upper())
