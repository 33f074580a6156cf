"""Schema migrations: alembic revisions that apply the SQL files in `sql/`."""

from __future__ import annotations

import re

import psycopg
from alembic import command, op
from alembic.config import Config
from alembic.script import ScriptDirectory

from ccvec import config, db


def run_sql_file(name: str) -> None:
    """Apply one file from `sql/` inside the running migration (called by alembic revisions)."""
    sql = (config.resource_dir("sql") / name).read_text()
    # Straight to psycopg without parameters: '%' in SQL (format(), modulo) stays literal.
    driver = op.get_bind().connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError(f"migrations run on a psycopg 3 connection, not {type(driver).__name__}")
    driver.execute(sql)


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(config.resource_dir("alembic")))
    cfg.attributes["database_url"] = url or db.resolve_url()
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def known_revision(revision: str) -> str:
    """`revision` when alembic knows it (or 'base'/'head'); else one clear line."""
    from alembic.util import CommandError

    from ccvec.errors import CcvecError

    if revision in ("base", "head"):
        return revision
    script = ScriptDirectory(str(config.resource_dir("alembic")))
    try:
        found = script.get_revision(revision)
    except CommandError:
        found = None
    if found is None:
        names = ", ".join(r.revision for r in reversed(list(script.walk_revisions())))
        raise CcvecError(f"unknown revision {revision!r}: use base, head or one of {names}")
    return found.revision


def head_revision() -> str:
    script = ScriptDirectory(str(config.resource_dir("alembic")))
    return script.get_current_head() or ""


def current_revision(conn: psycopg.Connection) -> str | None:
    """The revision applied to the database, or None before the first upgrade."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{config.SCHEMA}.alembic_version"]).fetchone()
    if row is None or not row[0]:
        return None
    found = conn.execute(f"SELECT version_num FROM {config.SCHEMA}.alembic_version").fetchone()
    return str(found[0]) if found else None


def require_current(conn: psycopg.Connection) -> None:
    """Stop with a clear message when the schema is missing or behind the code."""
    from ccvec.errors import CcvecError

    current, head = current_revision(conn), head_revision()
    if current is None:
        raise CcvecError("the database has no ccvec schema yet: run `ccvec db upgrade` (`ccvec run` does it)")
    if current != head:
        raise CcvecError(f"database schema is at {current}, ccvec needs {head}: run `ccvec db upgrade`")


# What a down file's own statements do to the rows of ccvec's tables: drop them, empty them, delete
# from them or drop a column (function bodies and comments are left out first: a DELETE inside a
# function that a down file restores runs only when the function is called).
_TABLE = r"ccvec\.\w+"
_LOSES_ROWS = re.compile(
    rf"\b(?:DROP\s+TABLE(?:\s+IF\s+EXISTS)?|TRUNCATE(?:\s+TABLE)?(?:\s+ONLY)?)\s+({_TABLE}(?:\s*,\s*{_TABLE})*)"
    rf"|\bDELETE\s+FROM\s+({_TABLE})"
    rf"|\bALTER\s+TABLE(?:\s+IF\s+EXISTS)?(?:\s+ONLY)?\s+({_TABLE})\s+DROP\s+COLUMN",
    re.IGNORECASE,
)
_NOT_STATEMENTS = re.compile(r"(\$\w*\$).*?\1|--[^\n]*|'(?:[^']|'')*'", re.DOTALL)


def statements_losing_rows(sql: str) -> set[str]:
    """ccvec's tables (names without the schema) whose rows a migration file's statements drop,
    empty, delete or cut a column of; dollar-quoted bodies, string literals and comments are skipped."""
    tables: set[str] = set()
    for match in _LOSES_ROWS.finditer(_NOT_STATEMENTS.sub(" ", sql)):
        named = next(group for group in match.groups() if group)
        tables.update(name.strip().split(".", 1)[1].lower() for name in named.split(","))
    return tables


def tables_losing_rows(current: str, target: str) -> set[str]:
    """ccvec's tables whose rows (or a column of them) the migrations undone from `current` down to
    `target` drop: read from their sql/*.down.sql files, so a downgrade that only replaces functions
    asks for no confirmation."""
    from alembic.script.revision import RevisionError

    from ccvec.errors import CcvecError

    script = ScriptDirectory(str(config.resource_dir("alembic")))
    stop = None if target == "base" else target
    tables: set[str] = set()
    try:
        revisions = list(script.iterate_revisions(current, stop))
    except RevisionError:
        raise CcvecError(f"cannot downgrade from {current} to {target}: it is not below {current}") from None
    for revision in revisions:
        if revision.revision == stop:
            continue
        path = config.resource_dir("sql") / f"{revision.revision}.down.sql"
        if path.is_file():
            tables.update(statements_losing_rows(path.read_text()))
    return tables
