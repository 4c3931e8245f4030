"""What the user sees when mlc itself fails: a short message, never a traceback on stderr."""

from __future__ import annotations

import os
import sys
import tempfile
import traceback

EXIT_INTERNAL_ERROR = 2


def report_internal_error(exc: BaseException) -> int:
    """Writes the traceback to a file, prints a two-line message and returns exit code 2."""
    text = "".join(traceback.format_exception(exc))
    if os.environ.get("MLC_DEBUG"):
        print(text, file=sys.stderr, end="")
    fd, path = tempfile.mkstemp(prefix="mlc-crash-", suffix=".txt")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    print(
        f"error: internal error in mlc ({type(exc).__name__}: {exc})\n"
        f"  = this is a bug in mlc, not in your spec; please report it with {path}",
        file=sys.stderr,
    )
    return EXIT_INTERNAL_ERROR
