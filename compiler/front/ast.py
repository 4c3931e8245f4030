"""The abstract syntax tree of a `.mlspec` file: close to the text, every node with a span.

Nodes compare by identity (`eq=False`): nothing compares trees, and generating equality for
every class costs `mlc lint` several milliseconds at start-up.

The tree is generic, like the grammar: blocks with a kind, an optional label, an optional
type, an optional `extends`, an optional `foreach` clause, and a body of attributes, typed
fields and nested blocks. The checker gives each kind of block its meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlc.source import Span


@dataclass(frozen=True, slots=True, eq=False)
class Ident:
    """A name as written, with its span."""

    name: str
    span: Span


# -- expressions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class IntLit:
    """An integer literal."""

    value: int
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class FloatLit:
    """A floating-point literal."""

    value: float
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class UnitLit:
    """A number with a unit suffix (`8Gi`, `500m`, `30s`); its meaning depends on context."""

    number: str
    unit: str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class StrLit:
    """A string literal, already unescaped. `raw` is the text as written, quotes included."""

    value: str
    raw: str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class BoolLit:
    """`true` or `false`."""

    value: bool
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Name:
    """A bare name in an expression: a param root, a step, a dataset, a loop variable…"""

    name: str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Member:
    """`value.name`."""

    value: Expr
    name: Ident
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Index:
    """`value[index]`."""

    value: Expr
    index: Expr
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Call:
    """`function(arg, …)`: built-in functions only (`tag`, `min`, `max`)."""

    function: Ident
    args: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Unary:
    """`-value` or `not value`."""

    op: str
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Binary:
    """`left op right` for arithmetic, comparison, `and`, `or`, `in` and `of`."""

    op: str
    left: Expr
    right: Expr
    span: Span
    op_span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ListLit:
    """`[a, b, …]`."""

    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ObjectLit:
    """`{ key = value, … }`: a body used as a value."""

    body: Body
    span: Span


Expr = (
    IntLit
    | FloatLit
    | UnitLit
    | StrLit
    | BoolLit
    | Name
    | Member
    | Index
    | Call
    | Unary
    | Binary
    | ListLit
    | ObjectLit
)


# -- types ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class RangeConstraint:
    """`(low..high)`, either end optional, both inclusive."""

    low: Expr | None
    high: Expr | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ChoiceConstraint:
    """`("a", "b")`, as in `enum("a", "b")`."""

    choices: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class TypeExpr:
    """A type as written: `int(1..10)`, `list[float]`, `metrics { accuracy: float }`."""

    name: Ident
    args: tuple[TypeExpr, ...]
    constraint: RangeConstraint | ChoiceConstraint | None
    record: Body | None
    span: Span


# -- declarations ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Attribute:
    """`name = value`; `key_is_string` when the name was written as a string."""

    name: Ident
    value: Expr
    key_is_string: bool
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Field:
    """`name: type` or `name: type = value`."""

    name: Ident
    type: TypeExpr
    value: Expr | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Foreach:
    """`foreach var in items`."""

    var: Ident
    items: Expr
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Block:
    """`[finally] kind [label[: type]] [extends base] [foreach v in items] { body }`."""

    kind: Ident
    label: Ident | None
    type: Ident | None
    extends: Ident | None
    foreach: Foreach | None
    is_finally: bool
    body: Body
    span: Span
    head_span: Span


Item = Attribute | Field | Block


@dataclass(frozen=True, slots=True, eq=False)
class Body:
    """The items between `{` and `}`, in order."""

    items: tuple[Item, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Import:
    """`import "path" [as alias]`."""

    path: StrLit
    alias: Ident | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class TypeDecl:
    """`type name: base`: a user-declared artifact subtype."""

    name: Ident
    base: Ident
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Comment:
    """A `#` comment, kept so that `mlc fmt` can put it back."""

    text: str
    span: Span


TopItem = Import | TypeDecl | Block


@dataclass(frozen=True, slots=True, eq=False)
class Module:
    """One parsed file: its header, its top-level items in order, and its comments."""

    path: str
    version: IntLit
    items: tuple[TopItem, ...]
    comments: tuple[Comment, ...]
    span: Span

    @property
    def imports(self) -> tuple[Import, ...]:
        """The `import` declarations, in order."""
        return tuple(i for i in self.items if isinstance(i, Import))

    @property
    def types(self) -> tuple[TypeDecl, ...]:
        """The `type` declarations, in order."""
        return tuple(i for i in self.items if isinstance(i, TypeDecl))

    @property
    def blocks(self) -> tuple[Block, ...]:
        """The top-level blocks, in order."""
        return tuple(i for i in self.items if isinstance(i, Block))
