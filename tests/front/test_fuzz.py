"""No traceback, ever: the front end turns any text into diagnostics, never an exception.

Random text and random edits of real specs (lines deleted, duplicated or swapped, the file
cut short, garbage characters inserted, identifiers swapped) go through `check_paths` and,
when they check clean, through lowering; every diagnostic must point inside its file. A few
go through the real `mlc lint` command, which must exit 0 or 1 and never print a traceback.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlc.cli import backends
from mlc.compile import CheckResult, Options, check_paths
from mlc.diagnostics import has_errors

from tests.front.test_messages import problems

REPO = Path(__file__).resolve().parents[2]
SEEDS = sorted(
    [*(REPO / "examples").rglob("*.mlspec"), *(REPO / "specs/corpus/valid").glob("*.mlspec")]
)
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
GARBAGE = '{}[]()"=:.,#@$\\\n\t -+*/%<>!0123456789aZ_\x00é\u2028"""'

# Modest by default, to keep the suite fast; `MLC_FUZZ_EXAMPLES=5000` runs a long session.
EXAMPLES = int(os.environ.get("MLC_FUZZ_EXAMPLES", "150"))
FAST = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CLI = settings(
    max_examples=max(6, EXAMPLES // 100),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Seed:
    """A real spec and its text."""

    path: Path
    text: str


SEED_TEXTS = [Seed(p, p.read_text(encoding="utf-8")) for p in SEEDS]


# -- edits -------------------------------------------------------------------------------------


def _delete_line(lines: list[str], data: st.DataObject) -> list[str]:
    if lines:
        del lines[data.draw(st.integers(0, len(lines) - 1))]
    return lines


def _duplicate_line(lines: list[str], data: st.DataObject) -> list[str]:
    if lines:
        index = data.draw(st.integers(0, len(lines) - 1))
        lines.insert(index, lines[index])
    return lines


def _swap_lines(lines: list[str], data: st.DataObject) -> list[str]:
    if len(lines) > 1:
        a = data.draw(st.integers(0, len(lines) - 1))
        b = data.draw(st.integers(0, len(lines) - 1))
        lines[a], lines[b] = lines[b], lines[a]
    return lines


LINE_EDITS = (_delete_line, _duplicate_line, _swap_lines)


def _truncate(text: str, data: st.DataObject) -> str:
    return text[: data.draw(st.integers(0, len(text)))]


def _insert_garbage(text: str, data: st.DataObject) -> str:
    at = data.draw(st.integers(0, len(text)))
    junk = data.draw(st.text(alphabet=GARBAGE, min_size=1, max_size=4))
    return text[:at] + junk + text[at:]


def _swap_identifiers(text: str, data: st.DataObject) -> str:
    words = list(IDENTIFIER.finditer(text))
    if len(words) < 2:
        return text
    target = data.draw(st.sampled_from(words))
    replacement = data.draw(st.sampled_from(words)).group()
    return text[: target.start()] + replacement + text[target.end() :]


def _misspell_identifier(text: str, data: st.DataObject) -> str:
    """A keyword, kind or name with a letter too many, too few or swapped, as users type."""
    words = list(IDENTIFIER.finditer(text))
    if not words:
        return text
    word = data.draw(st.sampled_from(words))
    name = word.group()
    at = data.draw(st.integers(0, len(name) - 1))
    slip = data.draw(st.sampled_from(["add", "drop", "swap"]))
    if slip == "add":
        name = name[:at] + name[at] + name[at:]
    elif slip == "drop" and len(name) > 1:
        name = name[:at] + name[at + 1 :]
    elif at + 1 < len(name):
        name = name[:at] + name[at + 1] + name[at] + name[at + 2 :]
    return text[: word.start()] + name + text[word.end() :]


TEXT_EDITS = (_truncate, _insert_garbage, _swap_identifiers, _misspell_identifier)


def mutate(text: str, data: st.DataObject) -> str:
    """One to four random edits of a spec's text."""
    for _ in range(data.draw(st.integers(1, 4))):
        edit = data.draw(st.sampled_from(LINE_EDITS + TEXT_EDITS))
        if edit in LINE_EDITS:
            lines = text.split("\n")
            text = "\n".join(edit(lines, data))  # type: ignore[operator]
        else:
            text = edit(text, data)  # type: ignore[operator]
    return text


# -- the properties ----------------------------------------------------------------------------


def options(target: str | None = None) -> Options:
    return Options(
        target=target, describe_backend=backends.describe, known_backends=backends.installed
    )


def assert_spans_inside_their_files(result: CheckResult) -> None:
    for diagnostic in result.diagnostics:
        for label in (diagnostic.primary, *diagnostic.secondary):
            source = result.sources.get(label.span.path)
            assert source is not None, f"{diagnostic.code} points at unknown file {label.span}"
            assert 0 <= label.span.start <= label.span.end <= len(source.text), (
                f"{diagnostic.code} {diagnostic.message!r}: {label.span} outside "
                f"{len(source.text)} characters"
            )
            source.position(label.span.start)  # the renderers need a line and a column
        assert problems(diagnostic) == [], "a message shows a repr or an empty label"


def check_text(path: Path, text: str, target: str | None = None) -> CheckResult:
    """Checks `text` as if it were the file at `path`, then lowers it when it checks clean."""
    result = check_paths([path], options(target), texts={path: text})
    assert_spans_inside_their_files(result)
    if not has_errors(result.diagnostics):
        from mlc.lower import lower

        for program in result.programs:
            lower(program, result.sources, target if target in program.targets else None)
    return result


@FAST
@given(st.text(max_size=300))
def test_random_text_never_raises(text: str) -> None:
    check_text(REPO / "fuzz.mlspec", text)


@FAST
@given(st.text(alphabet=GARBAGE + "mlspecpipelinestep", max_size=300))
def test_random_text_after_a_header_never_raises(text: str) -> None:
    check_text(REPO / "fuzz.mlspec", "mlspec 1\n" + text)


@FAST
@given(seed=st.sampled_from(SEED_TEXTS), data=st.data())
def test_edited_specs_never_raise(seed: Seed, data: st.DataObject) -> None:
    target = data.draw(st.sampled_from([None, "dev", "prod", "laptop", "workstation"]))
    check_text(seed.path, mutate(seed.text, data), target)


# -- generated expressions ---------------------------------------------------------------------

# Floats stay below 1e300, nesting stays shallow, names denote values (not a profile, an
# import or `latest`) and `code` is left out: the crashes those cause are listed in
# KNOWN_CRASHES below, and the generator avoids them so that it can find new ones.
ATOMS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(-1e300, 1e300, allow_nan=False).map(repr),
    st.sampled_from(["0", "1", "0.5", "500m", "4Gi", "1.5Ti", "30s", "2h", "7d", "100ms", "3K"]),
    st.sampled_from(['""', '"t4"', '"a100-80gb/3g.40gb"', '"sha256:00"', '"x/y"', '"m:f"']),
    st.sampled_from(["true", "false", "params.n", "params.tags", "evaluate.scores.accuracy"]),
    st.sampled_from(["nope", "nope.x", "params.nope", "evaluate.nope", "tag(1)"]),
)


def _compound(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(st.tuples(st.sampled_from(["a", "b", "cpu"]), inner), max_size=2).map(
            lambda pairs: "{ " + ", ".join(f"{k} = {v}" for k, v in pairs) + " }"
        ),
        st.tuples(
            inner,
            st.sampled_from(["+", "-", "*", "/", "%", "of", "in", "and", "or", "==", "<", ">="]),
            inner,
        ).map(" ".join),
        st.tuples(st.sampled_from(["-", "not "]), inner).map("".join),
        st.tuples(st.sampled_from(["min", "max", "tag", "len"]), st.lists(inner, max_size=3)).map(
            lambda call: f"{call[0]}({', '.join(call[1])})"
        ),
        st.tuples(inner, inner).map(lambda pair: f"{pair[0]}[{pair[1]}]"),
        inner.map(lambda value: f"({value})"),
    )


EXPRESSIONS = st.recursive(ATOMS, _compound, max_leaves=8)
PLACES = (
    "resources {{ cpu = {} }}",
    "resources {{ memory = {} }}",
    "resources {{ gpu = {} }}",
    "resources {{ shm = {}, disk = {} }}",
    "resources = {}",
    "retries = {}",
    "timeout = {}",
    "backoff = {}",
    "cache = {}",
    "when = {}",
    "after = {}",
    "image = {}",
    "env {{ X = {} }}",
    "secrets {{ X = {} }}",
    "shell = {}",
    "parallelism = {}",
)


@FAST
@given(place=st.sampled_from(PLACES), value=EXPRESSIONS, foreach=st.booleans(), data=st.data())
def test_generated_expressions_never_raise(
    place: str, value: str, foreach: bool, data: st.DataObject
) -> None:
    setting = place.format(value, data.draw(EXPRESSIONS))
    head = f"train foreach item in {data.draw(EXPRESSIONS)}" if foreach else "train"
    text = (
        "mlspec 1\n\nresources small { cpu = 1, memory = 1Gi }\n\npipeline p {\n"
        '  params {\n    n: int = 3\n    tags: list[str] = ["a"]\n  }\n'
        '  step evaluate {\n    call = "steps:evaluate"\n'
        "    outputs { scores: metrics { accuracy: float } }\n  }\n"
        f'  step {head} {{\n    call = "steps:train"\n    args {{ x = {value} }}\n'
        f"    {setting}\n  }}\n}}\n"
    )
    check_text(REPO / "fuzz.mlspec", text)


# -- through the real command ------------------------------------------------------------------


@CLI
@given(seed=st.sampled_from(SEED_TEXTS), data=st.data())
def test_mlc_lint_exits_0_or_1_without_a_traceback(seed: Seed, data: st.DataObject) -> None:
    mlc = Path(sys.executable).with_name("mlc")
    with tempfile.TemporaryDirectory() as folder:
        # Keep the seed's place relative to the files it imports.
        relative = seed.path.relative_to(REPO)
        root = Path(folder)
        shutil.copytree(REPO / "examples", root / "examples")
        shutil.copytree(REPO / "specs", root / "specs")
        spec = root / relative
        spec.write_text(mutate(seed.text, data), encoding="utf-8")
        done = subprocess.run(
            [str(mlc), "lint", str(relative), "--format", "json"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr


# -- inputs that once crashed, or still do -----------------------------------------------------


def _step(body: str) -> str:
    return (
        "mlspec 1\n\npipeline p {\n"
        '  step evaluate {\n    call = "steps:evaluate"\n'
        "    outputs { scores: metrics { accuracy: float } }\n  }\n"
        f'  step train {{\n    run = "python train.py"\n    {body}\n  }}\n}}\n'
    )


REGRESSIONS = {
    "max of two maps": _step("resources { cpu = max({ a = 1 }, { b = 2 }), memory = 1Gi }"),
    "max of two metrics": _step(
        "when = max(evaluate.scores.accuracy, evaluate.scores.accuracy) > 1"
    ),
    "a list looked up in a map": _step("when = [1] in { a = 1 }"),
    "an infinite cpu": _step("resources { cpu = 1e400, memory = 1Gi }"),
    "an infinite memory": _step("resources { cpu = 1, memory = 1e300 * 1e300 * 1Gi }"),
    "an infinite cache expiry": _step("cache = 1e400 * 1s"),
    "retries set to a resource profile": _step("retries = small").replace(
        "mlspec 1\n", "mlspec 1\nresources small { cpu = 1 }\n"
    ),
    "parallelism set to latest": _step("retries = 1")
    .replace("step train {", "step train foreach i in [1] {")
    .replace("retries = 1", "parallelism = latest"),
    "code as a list of mixed types": _step('code = [0, "src/"]'),
    "code set to latest": _step("code = latest"),
    "expressions nested 1000 deep": _step("retries = " + "-" * 1000 + "1"),
}


@pytest.mark.parametrize("text", list(REGRESSIONS.values()), ids=list(REGRESSIONS))
def test_inputs_that_once_crashed_are_diagnostics(text: str) -> None:
    result = check_text(REPO / "fuzz.mlspec", text)
    assert has_errors(result.diagnostics)


def test_mlc_lint_of_a_file_that_is_not_utf8_is_a_diagnostic(tmp_path: Path) -> None:
    spec = tmp_path / "latin1.mlspec"
    spec.write_bytes(
        'mlspec 1\n# caf\xe9\npipeline p {\n  step s { run = "x" }\n}\n'.encode("latin-1")
    )
    done = subprocess.run(
        [str(Path(sys.executable).with_name("mlc")), "lint", str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr


# -- any text a spec can hold, through every command and output format -------------------------

FORMATS = ("human", "json", "github", "sarif")
# What a string literal may hold between its quotes: any character but a quote, a newline or
# a surrogate (a file is UTF-8), and escapes, good and bad, with their pieces shuffled.
_PLAIN = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters='"\n\\'),
    max_size=6,
)
_ESCAPES = st.sampled_from(
    [
        "\\ud83d\\ude80",
        "\\ud800",
        "\\udfff",
        "\\U00110000",
        "\\U0001F680",
        "\\u0000",
        "\\x41",
        "\\N{ROCKET}",
        "\\q",
        "\\n",
        "\\\\",
        '\\"',
    ]
)
_PIECES = st.sampled_from(["\\u", "\\U", "d83d", "de80", "0000", "\x00", "\x1b[2J", "\u2028"])
STRING_BODIES = st.lists(st.one_of(_PLAIN, _ESCAPES, _PIECES), max_size=6).map("".join)
STRING_PLACES = (
    'run = "{}"',
    'run = ["python", "{}"]',
    'env {{ X = "{}" }}',
    'call = "{}"',
    'image = "{}"',
    'resources {{ gpu = 1 of "{}" }}',
    'secrets {{ TOKEN = "{}" }}',
    'cache = "{}"',
    'timeout = "{}"',
    '# {}\n    run = "x"',
)


def run_main(argv: list[str]) -> tuple[int, bytes]:
    """Runs `mlc` in this process with strict UTF-8 streams, as a terminal or a CI log has:
    text a stream cannot encode is an internal error, not a string in a buffer."""
    import io

    from mlc.cli.main import main

    out, err = io.BytesIO(), io.BytesIO()
    streams = (sys.stdout, sys.stderr)
    stdout = io.TextIOWrapper(out, encoding="utf-8", errors="strict")
    stderr = io.TextIOWrapper(err, encoding="utf-8", errors="strict")
    sys.stdout, sys.stderr = stdout, stderr
    try:
        code = main(argv)
        stdout.flush()
        stderr.flush()
    finally:
        sys.stdout, sys.stderr = streams
        stdout.detach()
        stderr.detach()
    return code, out.getvalue() + err.getvalue()


@FAST
@given(place=st.sampled_from(STRING_PLACES), body=STRING_BODIES, data=st.data())
def test_lint_and_compile_never_fail_internally_on_any_string(
    place: str, body: str, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    spec = tmp_path_factory.mktemp("spec") / "spec.mlspec"
    setting = place.format(body)
    if "run" not in setting and "call" not in setting:
        setting += '\n    run = "x"'
    spec.write_text(
        f"mlspec 1\n\npipeline p {{\n  step s {{\n    {setting}\n  }}\n}}\n", encoding="utf-8"
    )
    command = data.draw(st.sampled_from(["lint", "compile"]))
    output_format = data.draw(st.sampled_from(FORMATS))
    code, output = run_main([command, str(spec), "--format", output_format])
    assert code in (0, 1), output.decode("utf-8", "replace")
    assert b"\x1b" not in output, "a control character reached the output"


@FAST
@given(seed=st.sampled_from(SEED_TEXTS), data=st.data())
def test_lint_and_compile_of_edited_specs_never_fail_internally_in_any_format(
    seed: Seed, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # In this process, against strict UTF-8 streams (imports of the seed are not found there,
    # which is one more way for a spec to be broken).
    spec = tmp_path_factory.mktemp("edited") / "spec.mlspec"
    spec.write_text(mutate(seed.text, data), encoding="utf-8")
    command = data.draw(st.sampled_from(["lint", "compile"]))
    output_format = data.draw(st.sampled_from(FORMATS))
    code, output = run_main([command, str(spec), "--format", output_format])
    assert code in (0, 1), output.decode("utf-8", "replace")
