"""Backslash escapes in string literals: what each one means, and why the others are errors.

The escapes of the language are `\\"`, `\\'`, `\\\\`, `\\n`, `\\r`, `\\t`, `\\uXXXX` (four hex
digits) and `\\UXXXXXXXX` (eight). Any other escape (`\\x41`, `\\N{…}`, `\\q`, a backslash
at the end of a line) is an error at its column, never kept as written, and so is an escape
that does not name a Unicode scalar value: a UTF-16 surrogate (`\\ud83d\\ude80`, a lone
`\\ud800`) or a code point above U+10FFFF. A decoded string is therefore always valid
Unicode, which every output (a terminal, JSON, GitHub annotations, a process's arguments)
can carry.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_SIMPLE = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
_SIMPLE_ESCAPE = re.compile(r"\\([\"'\\nrt])")
# A backslash not followed by a simple escape's letter (with false alarms, such as the second
# backslash of `\\u`, which only send the text the slow way).
_OTHER_ESCAPE = re.compile(r"\\(?![\"'\\nrt])")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_NAMED = re.compile(r"N\{([^}\n]*)\}")
LISTED = '`\\"`, `\\\\`, `\\n`, `\\r`, `\\t`, `\\uXXXX` and `\\UXXXXXXXX`'
"""The escapes of the language, as a help line lists them."""


@dataclass(frozen=True, slots=True)
class EscapeProblem:
    """An escape that is not in the language, at `[start, end)` of the literal as written."""

    start: int
    end: int
    escape: str
    label: str
    help: str


@dataclass(frozen=True, slots=True)
class Decoded:
    """A literal's value, the escapes that are errors, and where its NUL characters are."""

    value: str
    problems: tuple[EscapeProblem, ...]
    nul_at: tuple[int, int] | None
    """`[start, end)` in the literal as written of its first NUL (raw or escaped), if any."""


def _code_point(value: int) -> str:
    return f"\\U{value:08X}" if value > 0xFFFF else f"\\u{value:04X}"


def _named(name: str) -> str | None:
    try:
        return unicodedata.lookup(name)
    except KeyError:
        return None


def _is_surrogate(value: int) -> bool:
    return 0xD800 <= value <= 0xDFFF


def decode(raw: str) -> Decoded:
    """Decodes a string literal as written, quotes included (`"…"` or `\"\"\"…\"\"\"`)."""
    quote = 3 if raw.startswith('"""') and len(raw) >= 6 else 1
    body_start, body_end = quote, len(raw) - quote
    body = raw[body_start:body_end]
    if "\\" not in body and "\x00" not in body:
        return Decoded(body, (), None)
    if "\x00" not in body and _OTHER_ESCAPE.search(body) is None:
        # Only `\n`, `\"` and their kind: one substitution, however many there are.
        return Decoded(_SIMPLE_ESCAPE.sub(lambda m: _SIMPLE[m.group(1)], body), (), None)
    return decode_each(raw)


def decode_each(raw: str) -> Decoded:
    """`decode`, escape by escape: what every literal with a `\\u`, a NUL or a bad escape
    takes (and what the fast path of `decode` must agree with)."""
    quote = 3 if raw.startswith('"""') and len(raw) >= 6 else 1
    body_start, body_end = quote, len(raw) - quote
    out: list[str] = []
    problems: list[EscapeProblem] = []
    nul_at: tuple[int, int] | None = None
    index = body_start
    while index < body_end:
        slash = raw.find("\\", index, body_end)
        chunk_end = body_end if slash == -1 else slash
        chunk = raw[index:chunk_end]
        if nul_at is None and "\x00" in chunk:
            at = index + chunk.index("\x00")
            nul_at = (at, at + 1)
        out.append(chunk)
        if slash == -1:
            break
        char, end, problem = _escape(raw, slash, body_end)
        if problem is not None:
            problems.append(problem)
        elif char == "\x00" and nul_at is None:
            nul_at = (slash, end)
        out.append(char)
        index = end
    return Decoded("".join(out), tuple(problems), nul_at)


def _escape(raw: str, slash: int, body_end: int) -> tuple[str, int, EscapeProblem | None]:
    """The character an escape at `slash` stands for, where it ends, and its problem if any."""
    if slash + 1 >= body_end:
        return (
            "\\",
            slash + 1,
            _problem(slash, slash + 1, "\\", "a backslash with nothing after it"),
        )
    letter = raw[slash + 1]
    if letter in _SIMPLE:
        return _SIMPLE[letter], slash + 2, None
    if letter == "\n":
        return (
            "",
            slash + 2,
            _problem(
                slash,
                slash + 1,
                "\\",
                "a backslash at the end of a line",
                'a `"""` string spans lines as written; write `\\\\` to keep a backslash '
                "(a shell's line continuation)",
            ),
        )
    if letter in "uU":
        return _code_point_escape(raw, slash, body_end, 4 if letter == "u" else 8)
    if letter == "x":
        digits = _HEX.match(raw, slash + 2, min(slash + 4, body_end))
        end = digits.end() if digits else slash + 2
        fix = (
            f"write `{_code_point(int(digits.group(), 16))}`"
            if digits and len(digits.group()) == 2
            else "write a code point as `\\uXXXX`; write `\\\\x` for a backslash and `x`"
        )
        return (
            "",
            end,
            _problem(slash, end, raw[slash:end], "`\\x` is not an escape of mlspec", fix),
        )
    if letter == "N":
        named = _NAMED.match(raw, slash + 1, body_end)
        end = named.end() if named else slash + 2
        fix = "write the character itself, or its code point as `\\uXXXX`"
        character = _named(named.group(1)) if named else None
        if character is not None:
            fix = f"write `{_code_point(ord(character))}` or the character itself"
        return (
            "",
            end,
            _problem(slash, end, raw[slash:end], "named escapes are not part of mlspec", fix),
        )
    return (
        "",
        slash + 2,
        _problem(
            slash,
            slash + 2,
            "\\" + letter,
            "not an escape of mlspec",
            f"the escapes are {LISTED}; write `\\\\` for a backslash",
        ),
    )


def _code_point_escape(
    raw: str, slash: int, body_end: int, width: int
) -> tuple[str, int, EscapeProblem | None]:
    letter = raw[slash + 1]
    digits = _HEX.match(raw, slash + 2, min(slash + 2 + width, body_end))
    if digits is None or len(digits.group()) != width:
        end = digits.end() if digits else slash + 2
        return (
            "",
            end,
            _problem(
                slash,
                end,
                raw[slash:end],
                f"`\\{letter}` takes exactly {width} hex digits",
                f"write {width} hex digits, as in `\\{letter}{'0' * (width - 2)}E9`",
            ),
        )
    end = digits.end()
    value = int(digits.group(), 16)
    written = raw[slash:end]
    if value > 0x10FFFF:
        return (
            "",
            end,
            _problem(
                slash,
                end,
                written,
                "beyond U+10FFFF, the last Unicode code point",
                f"the escapes are {LISTED}",
            ),
        )
    if not _is_surrogate(value):
        return chr(value), end, None
    low = _HEX.fullmatch(raw[end + 2 : end + 6]) if raw.startswith("\\u", end) else None
    if 0xD800 <= value <= 0xDBFF and low is not None and 0xDC00 <= int(low.group(), 16) <= 0xDFFF:
        combined = 0x10000 + ((value - 0xD800) << 10) + (int(low.group(), 16) - 0xDC00)
        pair_end = end + 6
        return (
            "",
            pair_end,
            _problem(
                slash,
                pair_end,
                raw[slash:pair_end],
                "a UTF-16 surrogate pair, not a character",
                f"write `{_code_point(combined)}`, the character's code point",
            ),
        )
    return (
        "",
        end,
        _problem(
            slash,
            end,
            written,
            "a lone UTF-16 surrogate, not a character",
            "write the character's code point, as `\\UXXXXXXXX` above U+FFFF",
        ),
    )


def _problem(
    start: int, end: int, escape: str, label: str, help: str = f"the escapes are {LISTED}"
) -> EscapeProblem:
    return EscapeProblem(start, end, escape, label, help)
