"""The one exception type the CLI turns into a one-line message and a non-zero exit."""

from __future__ import annotations

# ccvec's SQL raises its own errors with SQLSTATEs of this class (sql/0013_comments.up.sql lists
# them; docs/sql-reference.md documents them). Anything else from the database is not ours.
SQLSTATE_CLASS = "VC"


class CcvecError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""


def first_line(exc: BaseException) -> str:
    """The first non-blank line of an exception's text (database errors add DETAIL/HINT lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """A count with its noun in the right number ("1 cluster", "2 clusters", "1,024 images"), for every
    line ccvec prints (errors and summaries alike)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def from_database(exc: BaseException) -> CcvecError | None:
    """The CcvecError for an error raised by ccvec's SQL (SQLSTATE class VC), else None."""
    sqlstate = getattr(exc, "sqlstate", None)
    if not isinstance(sqlstate, str) or not sqlstate.startswith(SQLSTATE_CLASS):
        return None
    diag = getattr(exc, "diag", None)
    message = getattr(diag, "message_primary", None) or str(exc).splitlines()[0]
    return CcvecError(message)
