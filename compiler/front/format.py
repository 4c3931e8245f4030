"""Canonical formatting of `.mlspec` files, from the AST: what `mlc fmt` writes.

The formatter is pure: it takes a parsed module and the text it came from (for literals as
written and for comment placement) and returns the canonical text. It is idempotent, the
result parses to the same tree (spans aside), and every comment is kept, in order.

The rules:

- **Header.** `mlspec N` comes first (only comments may precede it), followed by a blank line.
- **Indentation.** Two spaces per level; no tabs; no trailing whitespace; one final newline.
- **Top level.** Exactly one blank line between top-level items, except that consecutive
  `import`s and consecutive `type` declarations keep the blank lines they had (at most one).
- **Blocks.** `[finally] kind [label[: type]] [extends base] [foreach v in items] {`, then one
  item per line without commas, then `}` on its own line. In a `pipeline` body every item
  (params, dataset, step, outputs) is separated from the previous one by a blank line.
  Elsewhere, a blank line the source had between two items is kept (runs collapse to one);
  there is never a blank line right after `{` or right before `}`.
- **One-line bodies.** A body written on one line stays on one line, as `{ a = 1, b: int }`,
  when it holds only attributes and typed fields (no nested block) and the line fits in
  100 columns; otherwise it is expanded to one item per line. A body written over several
  lines stays expanded. An empty body is `{}`. Object literals and record types follow the
  same rules.
- **Lists.** A list written on one line stays `[a, b]` if it fits in 100 columns, else it
  gets one element per line. A list written over several lines keeps its line breaks:
  elements that shared a source line share an output line (so a flag and its value can stay
  together), every line ends with a comma, and `]` goes on its own line.
- **Spacing.** `key = value`, `name: type = value`, a space around binary operators and
  after commas, none inside brackets or parentheses; `{ … }` has a space inside.
- **Literals.** Strings, numbers and units are re-emitted exactly as written (`StrLit.raw`,
  the source text of numbers); string keys too.
- **Parentheses.** Added where precedence needs them; kept where the author put them around
  an operator expression used as an operand (`not (a == b)`, `(a * b) + c`); dropped
  elsewhere (around a whole value, a name, a literal, or doubled).
- **Suppression comments.** A source line that ends in `# mlc: ignore…` is never split,
  because the comment covers only the diagnostics that start on its line: a body or list on
  it stays on it at any width (nested blocks included), and items that share it with the
  `{` or `}` around them stay on it too. An attribute's value written over several lines
  with a suppression comment inside or after it is kept as written (trailing spaces aside),
  since joining its lines would extend what the comment silences.
- **Comments.** Every comment is kept. A comment alone on its line stays on its own line,
  attached to the item (or list element, or closing bracket) that follows it, at that
  item's indentation; blank lines around it are kept as written (at most one). A comment
  after code stays at the end of that line, two spaces after the code. A comment inside an
  expression that is printed on one line moves to the end of that line; if that line gets
  more than one, the others go on lines of their own after it.
"""

from __future__ import annotations

import bisect
import re
from typing import Literal

from mlc.diagnostics.suppress import is_suppression
from mlc.front import ast
from mlc.source import Span

MAX_WIDTH = 100
INDENT = "  "

Separator = Literal["none", "keep", "force"]
"""What goes before an item: no blank line, the source's blank line if any, or a blank line."""

_BLANK_LINE = re.compile(r"\n[ \t\r,]*\n")
_TRAILING_GAP = re.compile(r"[ \t\r,]*")
_SPACE_AND_COMMENTS = re.compile(r"(?:\s|#[^\n]*)*")

# Binding strength of each expression form; higher binds tighter.
_OR, _AND, _NOT, _COMPARE, _OF, _SUM, _PRODUCT, _NEGATE, _POSTFIX, _ATOM = range(1, 11)
_BINARY_PRECEDENCE = {
    "or": _OR,
    "and": _AND,
    "==": _COMPARE,
    "!=": _COMPARE,
    "<": _COMPARE,
    "<=": _COMPARE,
    ">": _COMPARE,
    ">=": _COMPARE,
    "in": _COMPARE,
    "of": _OF,
    "+": _SUM,
    "-": _SUM,
    "*": _PRODUCT,
    "/": _PRODUCT,
    "%": _PRODUCT,
}
_NON_ASSOCIATIVE = {_COMPARE, _OF}


def format_module(module: ast.Module, text: str) -> str:
    """The canonical text of a parsed module; `text` is the source it was parsed from."""
    return _Printer(module, text).module(module)


def _precedence(expr: ast.Expr) -> int:
    if isinstance(expr, ast.Binary):
        return _BINARY_PRECEDENCE[expr.op]
    if isinstance(expr, ast.Unary):
        return _NOT if expr.op == "not" else _NEGATE
    if isinstance(expr, ast.Member | ast.Index | ast.Call):
        return _POSTFIX
    return _ATOM


def _operand_bounds(expr: ast.Binary) -> tuple[int, int]:
    """The least precedence each operand may have without parentheses."""
    own = _BINARY_PRECEDENCE[expr.op]
    if own in _NON_ASSOCIATIVE:
        return own + 1, own + 1
    return own, own + 1


class _Printer:
    """Builds the output line by line, placing comments by their offsets in the source."""

    def __init__(self, module: ast.Module, text: str) -> None:
        self.text = text
        self.comments = sorted(module.comments, key=lambda c: c.span.start)
        self.next_comment = 0
        self.out: list[str] = []
        self.line: str | None = None  # the line being built; None at the start of a line
        self.depth = 0
        self.last_end = 0  # source offset of the end of what was printed last
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        # Source lines that end in `# mlc: ignore…`: what is on them stays on one line.
        self.suppressed_lines = {
            self._line_of(c.span.start) for c in self.comments if is_suppression(c.text)
        }

    # -- lines, blank lines and comments ----------------------------------------------------

    def _indent(self) -> str:
        return INDENT * self.depth

    def write(self, piece: str) -> None:
        if self.line is None:
            self.line = self._indent()
        self.line += piece

    def column(self) -> int:
        return len(self.line) if self.line is not None else len(self._indent())

    def _pending(self) -> ast.Comment | None:
        if self.next_comment < len(self.comments):
            return self.comments[self.next_comment]
        return None

    def end_line(self, anchor: int) -> None:
        """Finishes the current line, whose last token ends at source offset `anchor`.

        The first comment that started inside the line's source goes at the end of the line;
        without one, so does a comment that follows `anchor` on its source line. Any other
        comment stays pending and is printed on its own line before what comes next.
        """
        comment = self._pending()
        taken = comment is not None and (
            comment.span.start < anchor
            or _TRAILING_GAP.fullmatch(self.text, anchor, comment.span.start) is not None
        )
        line = (self.line or self._indent()).rstrip()
        if taken and comment is not None:
            line += "  " + _comment_text(comment)
            self.next_comment += 1
            self.last_end = max(self.last_end, comment.span.end)
        self.out.append(line)
        self.last_end = max(self.last_end, anchor)
        self.line = None

    def _separate(self, start: int, separator: Separator) -> None:
        if separator == "none" or not self.out or self.out[-1] == "":
            return
        if separator == "force" or _BLANK_LINE.search(
            self.text, self.last_end, max(start, self.last_end)
        ):
            self.out.append("")

    def comments_before(self, start: int, separator: Separator) -> Separator:
        """Prints the comments before `start` on their own lines; returns the separator left
        for what comes at `start`."""
        while (comment := self._pending()) is not None and comment.span.start < start:
            self._separate(comment.span.start, separator)
            self.out.append(self._indent() + _comment_text(comment))
            self.last_end = max(self.last_end, comment.span.end)
            self.next_comment += 1
            separator = "keep"
        return separator

    def open_element(self, start: int, separator: Separator) -> None:
        """Starts a line for the element at source offset `start`, after its comments."""
        self._separate(start, self.comments_before(start, separator))

    def _line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.line_starts, offset)

    def _keeps_line(self, before: int, after: int) -> bool:
        """Whether what starts at `after` stays on the output line of what ends at `before`:
        both are on one source line that a suppression comment covers, which would no longer
        cover what moved to another line."""
        line = self._line_of(before)
        return line == self._line_of(after) and line in self.suppressed_lines

    def _one_source_line(self, start: int, end: int) -> bool:
        return "\n" not in self.text[start:end]

    def _source(self, span: Span) -> str:
        return self.text[span.start : span.end]

    def _open_brace(self, after: int) -> int:
        """Offset of the `{` that opens a body, the first one at or after `after` that is not
        inside a comment."""
        index = after
        while index < len(self.text):
            char = self.text[index]
            if char == "#":
                newline = self.text.find("\n", index)
                index = len(self.text) if newline == -1 else newline
            elif char == "{":
                return index
            else:
                index += 1
        raise ValueError("a body without `{`")

    # -- module and items ---------------------------------------------------------------------

    def module(self, module: ast.Module) -> str:
        self.open_element(module.version.span.start, "none")
        self.write("mlspec " + self._source(module.version.span))
        self.end_line(module.version.span.end)
        previous: ast.TopItem | None = None
        for item in module.items:
            if previous is not None and self._keeps_line(previous.span.end, item.span.start):
                self.write(" ")
            else:
                if previous is not None:
                    self.end_line(previous.span.end)
                separator: Separator = "force"
                if (isinstance(item, ast.Import) and isinstance(previous, ast.Import)) or (
                    isinstance(item, ast.TypeDecl) and isinstance(previous, ast.TypeDecl)
                ):
                    separator = "keep"
                self.open_element(item.span.start, separator)
            self.item_content(item)
            previous = item
        if previous is not None:
            self.end_line(previous.span.end)
        self.comments_before(len(self.text) + 1, "keep")
        return "\n".join(self.out) + "\n"

    def item(self, item: ast.TopItem | ast.Item) -> None:
        self.item_content(item)
        self.end_line(item.span.end)

    def item_content(self, item: ast.TopItem | ast.Item) -> None:
        """Writes an item from the current column; the caller ends the line."""
        if isinstance(item, ast.Import):
            self.write("import " + item.path.raw)
            if item.alias is not None:
                self.write(" as " + item.alias.name)
        elif isinstance(item, ast.TypeDecl):
            self.write(f"type {item.name.name}: {item.base.name}")
        elif isinstance(item, ast.Attribute):
            self.write(self._key(item) + " = ")
            self.value(item.value)
        elif isinstance(item, ast.Field):
            self.write(item.name.name + ": ")
            self.type_expr(item.type)
            if item.value is not None:
                self.write(" = ")
                self.value(item.value)
        else:
            self.block(item)

    def value(self, expr: ast.Expr) -> None:
        """An attribute's value. One that the printer would put on one line although it spans
        several source lines, with a suppression comment inside, is kept as written (trailing
        spaces aside): joining its lines would extend what the comment silences."""
        if isinstance(expr, ast.ListLit | ast.ObjectLit) or self._one_source_line(
            expr.span.start, expr.span.end
        ):
            self.expr(expr)
            return
        line_end = self.text.find("\n", expr.span.end)
        line_end = len(self.text) if line_end == -1 else line_end
        # The comments inside the value and the one ending its last line.
        inside = [
            index
            for index in range(self.next_comment, len(self.comments))
            if expr.span.start <= self.comments[index].span.start < line_end
        ]
        if not any(is_suppression(self.comments[index].text) for index in inside):
            self.expr(expr)
            return
        inner = [index for index in inside if self.comments[index].span.start < expr.span.end]
        written = "\n".join(line.rstrip() for line in self._source(expr.span).split("\n"))
        self.write(written)
        # The comment after the value, if any, is left for `end_line` to put after it.
        if inner:
            self.next_comment = inner[-1] + 1
        self.last_end = max(self.last_end, expr.span.end)

    def _key(self, attribute: ast.Attribute) -> str:
        if attribute.key_is_string:
            return self._source(attribute.name.span)
        return attribute.name.name

    def block(self, block: ast.Block) -> None:
        if block.is_finally:
            self.write("finally ")
        self.write(block.kind.name)
        head_end = block.kind.span.end
        if block.label is not None:
            self.write(" " + block.label.name)
            head_end = block.label.span.end
        if block.type is not None:
            self.write(": " + block.type.name)
            head_end = block.type.span.end
        if block.extends is not None:
            self.write(" extends " + block.extends.name)
            head_end = block.extends.span.end
        if block.foreach is not None:
            self.write(f" foreach {block.foreach.var.name} in ")
            self.expr(block.foreach.items)
            head_end = block.foreach.span.end
        self.write(" ")
        self.body(
            block.body,
            self._open_brace(head_end),
            block.span.end - 1,
            spaced=block.kind.name == "pipeline",
        )

    def body(self, body: ast.Body, open_brace: int, close_brace: int, *, spaced: bool) -> None:
        """Writes `{ … }` from the current column; the caller ends the line after `}`."""
        if not body.items and not self._has_comment(open_brace, close_brace):
            self.write("{}")
            return
        if self._one_source_line(open_brace, close_brace) and not self._keeps_line(
            open_brace, close_brace
        ):
            flat = self._flat_body(body)
            if flat is not None and self.column() + len(flat) <= MAX_WIDTH:
                self.write(flat)
                return
        self.write("{")
        self.depth += 1
        previous_end = open_brace + 1
        for index, item in enumerate(body.items):
            if self._keeps_line(previous_end, item.span.start):
                self.write(" " if index == 0 else ", ")
            else:
                if self.line is not None:
                    self.end_line(previous_end)
                separator: Separator = "none" if index == 0 else "force" if spaced else "keep"
                self.open_element(item.span.start, separator)
            self.item_content(item)
            previous_end = item.span.end
        if body.items and self._keeps_line(previous_end, close_brace):
            self.depth -= 1
            self.write(" }")
            return
        if self.line is not None:
            self.end_line(previous_end)
        self.comments_before(close_brace, "keep" if body.items else "none")
        self.depth -= 1
        self.write("}")

    def _has_comment(self, start: int, end: int) -> bool:
        return any(
            start <= comment.span.start < end for comment in self.comments[self.next_comment :]
        )

    # -- types and expressions ----------------------------------------------------------------

    def type_expr(self, type_expr: ast.TypeExpr) -> None:
        self.write(self._flat_type_head(type_expr))
        if type_expr.record is not None:
            self.write(" ")
            head_end = type_expr.name.span.end
            if type_expr.args:
                head_end = type_expr.args[-1].span.end
            if type_expr.constraint is not None:
                head_end = type_expr.constraint.span.end
            self.body(
                type_expr.record,
                self._open_brace(head_end),
                type_expr.span.end - 1,
                spaced=False,
            )

    def expr(self, expr: ast.Expr) -> None:
        if isinstance(expr, ast.ListLit):
            self.list_lit(expr)
        elif isinstance(expr, ast.ObjectLit):
            self.body(expr.body, expr.span.start, expr.span.end - 1, spaced=False)
        elif isinstance(expr, ast.Binary):
            left_bound, right_bound = _operand_bounds(expr)
            self._operand(expr.left, left_bound)
            self.write(f" {expr.op} ")
            self._operand(expr.right, right_bound)
        elif isinstance(expr, ast.Unary):
            self.write("not " if expr.op == "not" else expr.op)
            self._operand(expr.value, _precedence(expr))
        elif isinstance(expr, ast.Member):
            self._operand(expr.value, _POSTFIX)
            self.write("." + expr.name.name)
        elif isinstance(expr, ast.Index):
            self._operand(expr.value, _POSTFIX)
            self.write("[")
            self.expr(expr.index)
            self.write("]")
        elif isinstance(expr, ast.Call):
            self.write(expr.function.name + "(")
            for index, arg in enumerate(expr.args):
                if index:
                    self.write(", ")
                self.expr(arg)
            self.write(")")
        else:
            self.write(self._flat_atom(expr))

    def _needs_parentheses(self, expr: ast.Expr, bound: int) -> bool:
        """Whether an operand is printed in parentheses: when precedence needs them, and
        around an operator expression the author parenthesised, as in `not (a == b)`."""
        if _precedence(expr) < bound:
            return True
        if not isinstance(expr, ast.Binary | ast.Unary):
            return False
        before = expr.span.start - 1
        while before >= 0 and self.text[before] in " \t\r\n":
            before -= 1
        if before < 0 or self.text[before] != "(":
            return False
        after = _SPACE_AND_COMMENTS.match(self.text, expr.span.end)
        end = after.end() if after else expr.span.end
        return self.text.startswith(")", end)

    def _operand(self, expr: ast.Expr, bound: int) -> None:
        if self._needs_parentheses(expr, bound):
            self.write("(")
            self.expr(expr)
            self.write(")")
        else:
            self.expr(expr)

    def list_lit(self, expr: ast.ListLit) -> None:
        open_bracket, close_bracket = expr.span.start, expr.span.end - 1
        if not expr.items and not self._has_comment(open_bracket, close_bracket):
            self.write("[]")
            return
        one_line = self._one_source_line(open_bracket, close_bracket)
        kept = self._keeps_line(open_bracket, close_bracket)
        if one_line and not kept:
            flat = self._flat(expr)
            if flat is not None and self.column() + len(flat) <= MAX_WIDTH:
                self.write(flat)
                return
        self.write("[")
        self.depth += 1
        if not (expr.items and self._keeps_line(open_bracket, expr.items[0].span.start)):
            self.end_line(open_bracket + 1)
        previous: ast.Expr | None = None
        for item in expr.items:
            if previous is None:
                if self.line is None:
                    self.open_element(item.span.start, "none")
            elif (
                (not one_line or kept)
                and self.line is not None
                and self._line_of(item.span.start) == self._line_of(previous.span.start)
            ):
                self.write(", ")
            else:
                if self.line is not None:
                    self.write(",")
                    self.end_line(previous.span.end)
                self.open_element(item.span.start, "keep")
            lines_before = len(self.out)
            self.expr(item)
            if len(self.out) != lines_before:
                # An element printed over several lines ends its output line.
                self.write(",")
                self.end_line(item.span.end)
            previous = item
        if (
            previous is not None
            and self.line is not None
            and self._keeps_line(previous.span.end, close_bracket)
        ):
            self.depth -= 1
            self.write("]")
            return
        if previous is not None and self.line is not None:
            self.write(",")
            self.end_line(previous.span.end)
        self.comments_before(close_bracket, "keep" if expr.items else "none")
        self.depth -= 1
        self.write("]")

    # -- one-line renderings ------------------------------------------------------------------

    def _flat(self, expr: ast.Expr) -> str | None:
        """`expr` on one line, or None when it holds a block (which never fits on one line)."""
        if isinstance(expr, ast.ListLit):
            items = [self._flat(item) for item in expr.items]
            return None if None in items else "[" + ", ".join(map(str, items)) + "]"
        if isinstance(expr, ast.ObjectLit):
            return self._flat_body(expr.body)
        if isinstance(expr, ast.Binary):
            left_bound, right_bound = _operand_bounds(expr)
            left = self._flat_operand(expr.left, left_bound)
            right = self._flat_operand(expr.right, right_bound)
            return None if left is None or right is None else f"{left} {expr.op} {right}"
        if isinstance(expr, ast.Unary):
            value = self._flat_operand(expr.value, _precedence(expr))
            if value is None:
                return None
            return ("not " if expr.op == "not" else expr.op) + value
        if isinstance(expr, ast.Member):
            value = self._flat_operand(expr.value, _POSTFIX)
            return None if value is None else f"{value}.{expr.name.name}"
        if isinstance(expr, ast.Index):
            value = self._flat_operand(expr.value, _POSTFIX)
            index = self._flat(expr.index)
            return None if value is None or index is None else f"{value}[{index}]"
        if isinstance(expr, ast.Call):
            args = [self._flat(arg) for arg in expr.args]
            if None in args:
                return None
            return f"{expr.function.name}({', '.join(map(str, args))})"
        return self._flat_atom(expr)

    def _flat_or_source(self, expr: ast.Expr) -> str:
        flat = self._flat(expr)
        return flat if flat is not None else self._source(expr.span)

    def _flat_operand(self, expr: ast.Expr, bound: int) -> str | None:
        flat = self._flat(expr)
        if flat is not None and self._needs_parentheses(expr, bound):
            return f"({flat})"
        return flat

    def _flat_atom(self, expr: ast.Expr) -> str:
        if isinstance(expr, ast.StrLit):
            return expr.raw
        if isinstance(expr, ast.BoolLit):
            return "true" if expr.value else "false"
        if isinstance(expr, ast.Name):
            return expr.name
        if isinstance(expr, ast.UnitLit):
            return expr.number + expr.unit
        return self._source(expr.span)  # numbers, exactly as written

    def _flat_body(self, body: ast.Body) -> str | None:
        items: list[str] = []
        for item in body.items:
            if isinstance(item, ast.Block):
                return None
            value = None if item.value is None else self._flat(item.value)
            if item.value is not None and value is None:
                return None
            if isinstance(item, ast.Attribute):
                items.append(f"{self._key(item)} = {value}")
            else:
                type_text = self._flat_type(item.type)
                if type_text is None:
                    return None
                items.append(f"{item.name.name}: {type_text}")
                if value is not None:
                    items[-1] += f" = {value}"
        return "{ " + ", ".join(items) + " }" if items else "{}"

    def _flat_type(self, type_expr: ast.TypeExpr) -> str | None:
        head = self._flat_type_head(type_expr)
        if type_expr.record is None:
            return head
        record = self._flat_body(type_expr.record)
        return None if record is None else f"{head} {record}"

    def _flat_type_head(self, type_expr: ast.TypeExpr) -> str:
        """The type without its record: `name[args](constraint)`; arguments are one-line."""
        text = type_expr.name.name
        if type_expr.args:
            args = [self._flat_type(arg) or self._source(arg.span) for arg in type_expr.args]
            text += "[" + ", ".join(args) + "]"
        constraint = type_expr.constraint
        if isinstance(constraint, ast.RangeConstraint):
            low = "" if constraint.low is None else self._flat_or_source(constraint.low)
            high = "" if constraint.high is None else self._flat_or_source(constraint.high)
            text += f"({low}..{high})"
        elif isinstance(constraint, ast.ChoiceConstraint):
            choices = [self._flat_or_source(choice) for choice in constraint.choices]
            text += "(" + ", ".join(choices) + ")"
        return text


def _comment_text(comment: ast.Comment) -> str:
    return comment.text.rstrip()
