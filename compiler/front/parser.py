"""Parsing: `.mlspec` text to an AST, or a curated syntax diagnostic.

The LALR parser is built once per process from `mlspec.lark` and cached on disk by lark, so
no file pays for grammar construction. Syntax errors never surface as raw parser dumps: they
are matched against known mistakes (lark's example matching plus a few lexical checks) and
reported with a catalog code, the smallest span that shows the problem, and a fix.
"""

from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from mlc.diagnostics import Diagnostic, Label
from mlc.diagnostics import catalog as codes
from mlc.front import ast, escapes
from mlc.front.lark_lean import (
    Lark,
    Token,
    Transformer,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    v_args,
)
from mlc.front.unclosed import Unclosed, guess_unclosed
from mlc.source import BYTE_ORDER_MARK, Span

LANGUAGE_VERSION = 1
GRAMMAR_PATH = Path(__file__).with_name("mlspec.lark")

_comments: contextvars.ContextVar[list[Token]] = contextvars.ContextVar("mlc_comments")


def _collect_comment(token: Token) -> Token:
    _comments.get().append(token)
    return token


@lru_cache(maxsize=1)
def _lark(*, strict: bool = False) -> Lark:
    """The parser, built once per process; lark caches its tables on disk across processes."""
    return Lark(
        GRAMMAR_PATH.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        strict=strict,
        propagate_positions=True,
        maybe_placeholders=True,
        lexer_callbacks={"COMMENT": _collect_comment},
        cache=True,
    )


@dataclass(frozen=True)
class ParseResult:
    """A module, or the syntax diagnostic that stopped the parse."""

    module: ast.Module | None
    diagnostics: tuple[Diagnostic, ...]


def parse(text: str, path: str) -> ParseResult:
    """Parses one file's text; `path` is used only for spans. A byte-order mark (which the
    loader drops before this) is read as a space, so that offsets stay those of `text`."""
    if text.startswith(BYTE_ORDER_MARK):
        text = " " + text[1:]
    comments: list[Token] = []
    reset = _comments.set(comments)
    try:
        tree = _lark().parse(text)
        builder = _AstBuilder(path)
        module: ast.Module = builder.transform(tree)
    except UnexpectedInput as error:
        return ParseResult(None, (_syntax_diagnostic(error, text, path),))
    except RecursionError:
        return ParseResult(None, (_too_deep(text, path),))
    finally:
        _comments.reset(reset)
    module = ast.Module(
        path=module.path,
        version=module.version,
        items=module.items,
        comments=tuple(
            ast.Comment(str(c), Span(path, c.start_pos or 0, c.end_pos or 0)) for c in comments
        ),
        span=Span(path, 0, len(text)),
    )
    diagnostics: tuple[Diagnostic, ...] = tuple(builder.diagnostics)
    if module.version.value != LANGUAGE_VERSION:
        diagnostics += (
            codes.UNSUPPORTED_VERSION.at(
                module.version.span,
                "this version of mlc reads `mlspec 1`",
                version=module.version.value,
                help="write `mlspec 1` as the first line",
            ),
        )
    return ParseResult(module, diagnostics)


# -- the tree to AST transformer --------------------------------------------------------------------


class _AstBuilder(Transformer[Token, Any]):
    """Turns lark's parse tree into `mlc.front.ast` nodes with spans."""

    def __init__(self, path: str) -> None:
        super().__init__(visit_tokens=False)
        self.path = path
        self.diagnostics: list[Diagnostic] = []

    def _unescape(self, token: Token) -> str:
        """The value of a string literal; its escapes that are not in the language are
        reported, each at its own column."""
        decoded = escapes.decode(str(token))
        start = token.start_pos or 0
        for problem in decoded.problems:
            self.diagnostics.append(
                codes.INVALID_ESCAPE.at(
                    Span(self.path, start + problem.start, start + problem.end),
                    problem.label,
                    escape=problem.escape,
                    help=problem.help,
                )
            )
        return decoded.value

    def _span(self, meta: Any) -> Span:
        return Span(self.path, meta.start_pos, meta.end_pos)

    def _tok(self, token: Token) -> Span:
        return Span(self.path, token.start_pos or 0, token.end_pos or 0)

    def _ident(self, token: Token) -> ast.Ident:
        return ast.Ident(str(token), self._tok(token))

    @v_args(meta=True)
    def start(self, meta: Any, children: list[Any]) -> ast.Module:
        header, *items = children
        return ast.Module(self.path, header, tuple(items), (), self._span(meta))

    def header(self, children: list[Token]) -> ast.IntLit:
        (token,) = children
        return ast.IntLit(int(token), self._tok(token))

    @v_args(meta=True)
    def import_decl(self, meta: Any, children: list[Any]) -> ast.Import:
        path, alias = children
        return ast.Import(
            self.str_lit([path]), self._ident(alias) if alias else None, self._span(meta)
        )

    @v_args(meta=True)
    def type_decl(self, meta: Any, children: list[Token]) -> ast.TypeDecl:
        name, base = children
        return ast.TypeDecl(self._ident(name), self._ident(base), self._span(meta))

    @v_args(meta=True)
    def block(self, meta: Any, children: list[Any]) -> ast.Block:
        is_finally, kind, label, type_name, extends, foreach, body = children
        head_end = body.span.start
        return ast.Block(
            kind=self._ident(kind),
            label=self._ident(label) if label else None,
            type=self._ident(type_name) if type_name else None,
            extends=extends,
            foreach=foreach,
            is_finally=is_finally is not None,
            body=body,
            span=self._span(meta),
            head_span=Span(self.path, meta.start_pos, head_end),
        )

    def extends(self, children: list[Token | None]) -> ast.Ident:
        first, second = children
        assert first is not None
        if second is None:
            return self._ident(first)
        span = Span(self.path, first.start_pos or 0, second.end_pos or 0)
        return ast.Ident(f"{first}.{second}", span)

    @v_args(meta=True)
    def foreach(self, meta: Any, children: list[Any]) -> ast.Foreach:
        var, items = children
        return ast.Foreach(self._ident(var), items, self._span(meta))

    @v_args(meta=True)
    def body(self, meta: Any, children: list[Any]) -> ast.Body:
        span = self._span(meta) if not meta.empty else Span(self.path, 0, 0)
        return ast.Body(tuple(children), span)

    @v_args(meta=True)
    def attribute(self, meta: Any, children: list[Any]) -> ast.Attribute:
        key, value = children
        is_string = key.type == "STRING"
        name = ast.Ident(self._unescape(key) if is_string else str(key), self._tok(key))
        return ast.Attribute(name, value, is_string, self._span(meta))

    @v_args(meta=True)
    def field(self, meta: Any, children: list[Any]) -> ast.Field:
        name, type_expr, value = children
        return ast.Field(self._ident(name), type_expr, value, self._span(meta))

    @v_args(meta=True)
    def type_expr(self, meta: Any, children: list[Any]) -> ast.TypeExpr:
        name, args, constraint, record = children
        return ast.TypeExpr(
            self._ident(name), tuple(args or ()), constraint, record, self._span(meta)
        )

    def type_args(self, children: list[Any]) -> list[Any]:
        return children

    @v_args(meta=True)
    def range_constraint(self, meta: Any, children: list[Any]) -> ast.RangeConstraint:
        low, high = children[0]
        return ast.RangeConstraint(low, high, self._span(meta))

    def range(self, children: list[Any]) -> tuple[Any, Any]:
        low, high = children
        return (low, high)

    @v_args(meta=True)
    def choice_constraint(self, meta: Any, children: list[Any]) -> ast.ChoiceConstraint:
        return ast.ChoiceConstraint(tuple(children), self._span(meta))

    def record(self, children: list[Any]) -> ast.Body:
        body: ast.Body = children[0]
        return body

    # expressions

    @v_args(meta=True)
    def or_op(self, meta: Any, children: list[Any]) -> ast.Binary:
        left, right = children
        return self._binary("or", left, right, meta)

    @v_args(meta=True)
    def and_op(self, meta: Any, children: list[Any]) -> ast.Binary:
        left, right = children
        return self._binary("and", left, right, meta)

    @v_args(meta=True)
    def not_op(self, meta: Any, children: list[Any]) -> ast.Unary:
        return ast.Unary("not", children[0], self._span(meta))

    @v_args(meta=True)
    def compare(self, meta: Any, children: list[Any]) -> ast.Binary:
        left, op, right = children
        return ast.Binary(str(op), left, right, self._span(meta), self._tok(op))

    @v_args(meta=True)
    def membership(self, meta: Any, children: list[Any]) -> ast.Binary:
        left, right = children
        return self._binary("in", left, right, meta)

    @v_args(meta=True)
    def gpu_of(self, meta: Any, children: list[Any]) -> ast.Binary:
        left, right = children
        return self._binary("of", left, right, meta)

    @v_args(meta=True)
    def binary(self, meta: Any, children: list[Any]) -> ast.Binary:
        left, op, right = children
        return ast.Binary(str(op), left, right, self._span(meta), self._tok(op))

    def _binary(self, op: str, left: Any, right: Any, meta: Any) -> ast.Binary:
        # The operator keyword is not kept by the grammar; it lies between the operands.
        op_span = Span(self.path, left.span.end, right.span.start)
        return ast.Binary(op, left, right, self._span(meta), op_span)

    @v_args(meta=True)
    def negate(self, meta: Any, children: list[Any]) -> ast.Unary:
        return ast.Unary("-", children[0], self._span(meta))

    @v_args(meta=True)
    def member(self, meta: Any, children: list[Any]) -> ast.Member:
        value, name = children
        return ast.Member(value, self._ident(name), self._span(meta))

    @v_args(meta=True)
    def index(self, meta: Any, children: list[Any]) -> ast.Index:
        value, index = children
        return ast.Index(value, index, self._span(meta))

    @v_args(meta=True)
    def call(self, meta: Any, children: list[Any]) -> ast.Call:
        function, *args = children
        return ast.Call(
            self._ident(function), tuple(a for a in args if a is not None), self._span(meta)
        )

    def int_lit(self, children: list[Token]) -> ast.IntLit:
        (token,) = children
        return ast.IntLit(int(token), self._tok(token))

    def float_lit(self, children: list[Token]) -> ast.FloatLit:
        (token,) = children
        return ast.FloatLit(float(token), self._tok(token))

    def unit_lit(self, children: list[Token]) -> ast.UnitLit:
        (token,) = children
        text = str(token)
        digits = len(text) - len(text.lstrip("0123456789."))
        return ast.UnitLit(text[:digits], text[digits:], self._tok(token))

    def str_lit(self, children: list[Token]) -> ast.StrLit:
        (token,) = children
        return ast.StrLit(self._unescape(token), str(token), self._tok(token))

    def true_lit(self, children: list[Token]) -> ast.BoolLit:
        return ast.BoolLit(True, self._tok(children[0]))

    def false_lit(self, children: list[Token]) -> ast.BoolLit:
        return ast.BoolLit(False, self._tok(children[0]))

    def name(self, children: list[Token]) -> ast.Name:
        (token,) = children
        return ast.Name(str(token), self._tok(token))

    @v_args(meta=True)
    def list_lit(self, meta: Any, children: list[Any]) -> ast.ListLit:
        return ast.ListLit(tuple(c for c in children if c is not None), self._span(meta))

    @v_args(meta=True)
    def object_lit(self, meta: Any, children: list[Any]) -> ast.ObjectLit:
        return ast.ObjectLit(children[0], self._span(meta))


# -- curated syntax errors ----------------------------------------------------------------------------

_TERMINAL_NAMES = {
    "NAME": "a name",
    "STRING": "a string",
    "LONG_STRING": "a string",
    "INT": "a number",
    "FLOAT": "a number",
    "UNIT_NUMBER": "a number with a unit",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "EQUAL": "`=`",
    "COLON": "`:`",
    "COMMA": "`,`",
    "DOT": "`.`",
    "$END": "the end of the file",
    "COMPARE": "a comparison",
    "ADD": "`+` or `-`",
    "MUL": "`*` or `/`",
    "MINUS": "`-`",
    "TRUE": "`true`",
    "FALSE": "`false`",
    "FINALLY": "`finally`",
}

# Mistakes users make, as lark example matching wants them: each list holds snippets that fail
# in the same parser state. The first matching label wins.
_EXAMPLES: dict[str, list[str]] = {
    "missing_equals": [
        "mlspec 1\nx { a 1 }",
        'mlspec 1\nx { a "s" }',
        "mlspec 1\nx { a 1.5 }",
        "mlspec 1\nx { a 2Gi }",
        "mlspec 1\nx { a [1] }",
        "mlspec 1\nx y { a 1 }",
    ],
    "colon_for_equals": [
        "mlspec 1\nx { a: 1 }",
        'mlspec 1\nx { a: "s" }',
        "mlspec 1\nx y { a: 2Gi }",
    ],
}


_VALUE_STARTS = {"STRING", "LONG_STRING", "INT", "FLOAT", "UNIT_NUMBER", "LSQB", "TRUE", "FALSE"}


def _common_mistake(error: UnexpectedToken, text: str, start: int) -> str | None:
    """`name value` (a missing `=`) or `name: value` (a `:` for `=`), at any depth."""
    if error.token.type not in _VALUE_STARTS:
        return None
    before = text[:start].rstrip()
    expected = set(error.accepts or error.expected)
    if before.endswith(":") and "NAME" in expected:
        return "colon_for_equals"
    if "EQUAL" in expected and re.search(r"[A-Za-z_]\w*$", before):
        return "missing_equals"
    return None


def _describe(token_type: str, value: str = "") -> str:
    if token_type == "__VALUE":
        return "a value"
    if token_type in ("NAME",) and value:
        return f"`{value}`"
    if token_type in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[token_type]
    if value:
        return f"`{value}`"
    return f"`{token_type.lower()}`"


def _expected(names: set[str]) -> str:
    if len(names & _EXPRESSION_STARTS) >= 3:
        names = (names - _EXPRESSION_STARTS) | {"__VALUE"}
    described = sorted({_describe(n) for n in names if n == "__VALUE" or not n.startswith("__")})
    if not described:
        return "something else"
    if len(described) > 4:
        described = [*described[:4], "…"]
    return " or ".join(described) if len(described) <= 2 else ", ".join(described)


def _mask(text: str) -> str:
    """The text with the insides of strings and comments blanked out, offsets unchanged."""
    out = list(text)
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char == "#":
            newline = text.find("\n", index)
            end = length if newline == -1 else newline
        elif char == '"':
            if text.startswith('"""', index):
                close = text.find('"""', index + 3)
                end = length if close == -1 else close + 3
            else:
                end = index + 1
                while end < length and text[end] not in '"\n':
                    end += 2 if text[end] == "\\" else 1
                end = min(end + 1, length)
        else:
            index += 1
            continue
        for position in range(index, end):
            if out[position] != "\n":
                out[position] = " "
        index = end
    return "".join(out)


def _open_brace_offset(text: str) -> int | None:
    """Offset of the last `{` never closed, ignoring strings and comments."""
    stack: list[int] = []
    for index, char in enumerate(_mask(text)):
        if char == "{":
            stack.append(index)
        elif char == "}" and stack:
            stack.pop()
    return stack[-1] if stack else None


_GLUED_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?[A-Za-z_]\w*")
_UNIT_NUMBER = re.compile(r"(\d+\.\d+|\d+)(Ki|Mi|Gi|Ti|Pi|Ei|ms|k|K|M|G|T|P|E|m|s|h|d|w)")
_EXPRESSION_STARTS = {
    "NAME",
    "INT",
    "FLOAT",
    "UNIT_NUMBER",
    "STRING",
    "LONG_STRING",
    "LSQB",
    "LBRACE",
    "LPAR",
    "MINUS",
    "TRUE",
    "FALSE",
    "NOT",
}


def _bad_unit(text: str, before: int, path: str) -> Diagnostic | None:
    """A number glued to letters that are not a unit (`5min`), before the error offset."""
    masked = _mask(text[: before + 1])
    for match in _GLUED_NUMBER.finditer(masked):
        word = match.group()
        if _UNIT_NUMBER.fullmatch(word) or re.fullmatch(r"\d+[eE]\d+", word):
            continue
        digits = re.match(r"\d+(?:\.\d+)?", word)
        assert digits is not None
        return codes.UNKNOWN_UNIT.at(
            Span(path, match.start(), match.end()),
            "not a known unit",
            unit=word[digits.end() :],
            help="memory units are Ki, Mi, Gi, Ti (or K, M, G, T); durations ms, s, m, h, d, w; "
            "millicores m",
        )
    return None


def _syntax_diagnostic(error: UnexpectedInput, text: str, path: str) -> Diagnostic:
    offset = error.pos_in_stream if error.pos_in_stream is not None else len(text)

    if isinstance(error, UnexpectedCharacters):
        char = text[offset] if offset < len(text) else ""
        span = Span(path, offset, offset + 1)
        if char == '"':
            line_end = text.find("\n", offset)
            end = len(text) if line_end == -1 else line_end
            return codes.UNTERMINATED_STRING.at(
                Span(path, offset, end), "this string is never closed", help='add a closing `"`'
            )
        if offset == _first_code_offset(text):
            return _missing_header(text, path)
        return codes.UNEXPECTED_CHARACTER.at(
            span, "not valid here", char=char, help="remove it, or put it inside a string"
        )

    if isinstance(error, UnexpectedEOF) or (
        isinstance(error, UnexpectedToken) and error.token.type == "$END"
    ):
        opened = _open_brace_offset(text)
        if opened is not None:
            guess = guess_unclosed(_mask(text))
            if guess is not None:
                where = (
                    f"before line {guess.before_line}"
                    if guess.before_line is not None
                    else "where the block ends"
                )
                return codes.UNCLOSED_BLOCK.at(
                    Span(path, guess.brace, guess.brace + 1),
                    "this block was not closed",
                    help=f"add its `}}` {where}; the indentation says the block ends there",
                )
            return codes.UNCLOSED_BLOCK.at(
                Span(path, opened, opened + 1),
                "this `{` is never closed",
                help="add a `}` at the end of the block",
            )
        end = len(text.rstrip())
        expected = error.expected if isinstance(error, UnexpectedEOF) else error.accepts
        if _first_code_offset(text) >= len(text):
            return _missing_header(text, path)
        return codes.SYNTAX_ERROR.at(
            Span(path, max(end - 1, 0), end),
            "the file ends here",
            found="the end of the file",
            expected=_expected(set(expected)),
        )

    assert isinstance(error, UnexpectedToken)
    token = error.token
    start = token.start_pos if token.start_pos is not None else offset
    end = token.end_pos if token.end_pos is not None else start + 1
    span = Span(path, start, end)

    if start == _first_code_offset(text) and str(token) != "mlspec":
        return _missing_header(text, path)
    bad_unit = _bad_unit(text, start, path)
    if bad_unit is not None:
        return bad_unit
    if token.type == "RBRACE" and _open_brace_offset(text[:start]) is None:
        return codes.UNMATCHED_CLOSE.at(span, "nothing to close", close="}", help="remove it")

    label = _common_mistake(error, text, start) or error.match_examples(
        _lark().parse, _EXAMPLES, use_accepts=True
    )
    if label in ("missing_equals", "colon_for_equals"):
        name = _previous_name(text, start)
        if label == "colon_for_equals":
            return codes.MISSING_EQUALS.at(
                span,
                "a value needs `=`",
                name=name,
                help=f"write `{name} = …`; `:` declares a type, as in `{name}: int = 1`",
            )
        return codes.MISSING_EQUALS.at(
            Span(path, start, start), "insert `=` here", name=name, help=f"write `{name} = …`"
        )

    found = "the end of the file" if token.type == "$END" else _describe(token.type, str(token))
    unclosed = _unclosed_before(text, start, path)
    return codes.SYNTAX_ERROR.at(
        span,
        "unexpected here",
        found=found,
        expected=_expected(set(error.accepts or error.expected)),
        secondary=[unclosed[0]] if unclosed else [],
        help=unclosed[1] if unclosed else None,
    )


def _unclosed_before(text: str, start: int, path: str) -> tuple[Label, str] | None:
    """For a token at the start of a line, outside any block by its indentation but inside
    one by the braces: the block that was likely not closed, and where its `}` goes. Either
    the indentation points at a block (see `mlc.front.unclosed`), or the token is one that
    only stands outside blocks (`import`, `type`), and the innermost open block is it."""
    if start > 0 and text[start - 1] != "\n":
        return None
    if _open_brace_offset(text[:start]) is None:
        return None
    masked = _mask(text[:start])
    guess = guess_unclosed(masked)
    if guess is None and not text.startswith(("import", "type", "mlspec"), start):
        return None  # nothing says a block was left open: the error is the token's own
    if guess is None:
        innermost = _open_brace_offset(text[:start])
        assert innermost is not None
        line = text.count("\n", 0, start) + 1
        guess = Unclosed(innermost, line)
    where = f"before line {guess.before_line}" if guess.before_line else "where it ends"
    return (
        Label(Span(path, guess.brace, guess.brace + 1), "this block was not closed"),
        f"add its `}}` {where}",
    )


def _too_deep(text: str, path: str) -> Diagnostic:
    """Nesting deeper than the parser's tree builder can follow."""
    masked = _mask(text)
    depth, deepest, where = 0, 0, 0
    for index, char in enumerate(masked):
        if char in "([{-":
            depth += 1
            if depth > deepest:
                deepest, where = depth, index
        elif char in ")]}\n":
            depth = 0 if char == "\n" else max(depth - 1, 0)
    return codes.SYNTAX_ERROR.at(
        Span(path, where, min(where + 1, len(text))),
        "nested too deeply",
        found="an expression nested too deeply",
        expected="a simpler expression",
        help="split it into smaller parts",
    )


def _previous_name(text: str, offset: int) -> str:
    before = text[:offset].rstrip()
    if before.endswith(":"):
        before = before[:-1].rstrip()
    end = len(before)
    start = end
    while start > 0 and (before[start - 1].isalnum() or before[start - 1] == "_"):
        start -= 1
    return before[start:end] or "name"


def _first_code_offset(text: str) -> int:
    index = 0
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip()
        if stripped and not stripped.startswith("#"):
            return index + len(line) - len(stripped)
        index += len(line)
    return len(text)


def _missing_header(text: str, path: str) -> Diagnostic:
    start = _first_code_offset(text)
    if start >= len(text):
        # An empty file and one with only comments are the same mistake.
        return codes.MISSING_HEADER.at(
            Span(path, 0, 0),
            "the file holds only comments" if text.strip() else "the file is empty",
            help="add `mlspec 1` as the first line of the file",
        )
    line_end = text.find("\n", start)
    end = len(text) if line_end == -1 else line_end
    return codes.MISSING_HEADER.at(
        Span(path, start, max(end, start)),
        "expected `mlspec 1` before this",
        help="add `mlspec 1` as the first line of the file",
    )
