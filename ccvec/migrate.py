"""Schema migrations: alembic revisions that apply the SQL files in `sql/`."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class Upgrade:
    """What an upgrade applied: from which revision (None: an empty database) to which, how many
    migrations (0: the schema was already there) and how long they took."""

    start: str | None
    end: str
    steps: int
    seconds: float
    emptied: tuple[str, ...] = ()  # materialized views holding data before, rebuilt without it

    def describe(self) -> str:
        """One line for the user."""
        if not self.steps:
            return f"schema at {self.end} (up to date)"
        source = self.start or "an empty database"
        plural = "s" if self.steps != 1 else ""
        return f"schema at {self.end}: {self.steps} migration{plural} from {source} in {self.seconds:.1f} s"

    def refresh_note(self) -> str:
        """What the user must run after migrations that rebuilt score views without their data, or ''."""
        if not self.emptied:
            return ""
        views = ", ".join(f"{config.SCHEMA}.{name}" for name in self.emptied)
        return (
            f"the upgrade rebuilt {views} without data: run `ccvec refresh` to compute them again "
            "(until then, reading scores or tags says so; `ccvec run` refreshes by itself)"
        )


# Called as each migration starts: (revision, its number among those to apply, how many there are).
StepReport = Callable[[str, int, int], None]


def upgrade(url: str | None = None, revision: str = "head", on_step: StepReport | None = None) -> Upgrade:
    """Apply the migrations up to `revision`, one transaction each (an interrupted upgrade resumes).
    A database upgraded by a newer ccvec is refused in one line before anything runs."""
    url = url or db.resolve_url()
    with db.connection(url) as conn:
        before = current_revision(conn)
        populated = db.populated_views(conn)
    refuse_newer(before)
    pending = pending_revisions(before, revision)  # another upgrade may apply them meanwhile
    applied: list[tuple[str, str | None]] = []  # (revision, the one it was applied on)

    def after_each(ctx: object, step: Any, heads: object, run_args: object) -> None:
        down = step.down_revision_ids
        applied.append((str(step.up_revision_id), str(down[0]) if down else None))
        if on_step is not None and step.up_revision_id in pending:
            following = pending.index(step.up_revision_id) + 1
            if following < len(pending):
                on_step(pending[following], following + 1, len(pending))

    if on_step is not None and pending:
        on_step(pending[0], 1, len(pending))
    cfg = alembic_config(url)
    cfg.attributes["on_version_apply"] = after_each
    started = time.perf_counter()
    command.upgrade(cfg, revision)
    seconds = time.perf_counter() - started
    with db.connection(url) as conn:
        emptied = tuple(sorted(populated - db.populated_views(conn)))
    end = revision if revision != "head" else head_revision()
    return Upgrade(applied[0][1] if applied else before, end, len(applied), seconds, emptied)


def pending_revisions(current: str | None, target: str = "head") -> list[str]:
    """The revisions an upgrade from `current` (None: an empty database) to `target` applies, in
    order ([] when `target` is not above `current`)."""
    from alembic.script.revision import RevisionError

    script = scripts()
    try:
        revisions = [r.revision for r in script.iterate_revisions(target, current)]
    except RevisionError:
        return []
    return [r for r in reversed(revisions) if r != current]


def known(revision: str) -> bool:
    """Whether this ccvec has the migration `revision` (a newer ccvec's are unknown to it)."""
    from alembic.util import CommandError

    script = scripts()
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def refuse_newer(current: str | None) -> None:
    """One line when the database was upgraded by a newer ccvec than this one: this code would
    misread a schema it does not know, and its own upgrade cannot find the revision."""
    from ccvec.errors import CcvecError

    if current is not None and not known(current):
        head = head_revision()
        raise CcvecError(
            f"the database schema is at {current}, newer than this ccvec (it knows up to {head}): "
            f"use the newer ccvec that upgraded it, or with that one `ccvec db downgrade {head}`"
        )


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def known_revision(revision: str) -> str:
    """`revision` when alembic knows it (or 'base'/'head'); else one clear line."""
    from alembic.util import CommandError

    from ccvec.errors import CcvecError

    if revision in ("base", "head"):
        return revision
    script = scripts()
    try:
        found = script.get_revision(revision)
    except CommandError:
        found = None
    if found is None:
        names = ", ".join(r.revision for r in reversed(list(script.walk_revisions())))
        raise CcvecError(f"unknown revision {revision!r}: use base, head or one of {names}")
    return found.revision


@functools.cache
def scripts() -> ScriptDirectory:
    """ccvec's migration scripts, read once per process (every command asks for the head, an
    upgrade for the revisions between two, a downgrade for what it would drop)."""
    return ScriptDirectory(str(config.resource_dir("alembic")))


def head_revision() -> str:
    script = scripts()
    return script.get_current_head() or ""


def current_revision(conn: psycopg.Connection) -> str | None:
    """The revision applied to the database, or None before the first upgrade."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{config.SCHEMA}.alembic_version"]).fetchone()
    if row is None or not row[0]:
        return None
    found = conn.execute(f"SELECT version_num FROM {config.SCHEMA}.alembic_version").fetchone()
    return str(found[0]) if found else None


def require_current(conn: psycopg.Connection) -> None:
    """Stop with a clear message when the schema is missing, behind the code or ahead of it."""
    from ccvec.errors import CcvecError

    current, head = current_revision(conn), head_revision()
    if current == head:
        return
    if current is None:
        raise CcvecError("the database has no ccvec schema yet: run `ccvec db upgrade` (`ccvec run` does it)")
    refuse_newer(current)
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

    script = scripts()
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
