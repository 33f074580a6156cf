"""The generated references in docs/ match the code and the schema (regenerate them when these fail)."""

from __future__ import annotations

from pathlib import Path

import psycopg

from tools.reference import cli_markdown, sql_markdown, sql_objects

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_cli_reference_is_current() -> None:
    from ccvec.cli import app

    expected = cli_markdown(app)
    assert (DOCS / "cli.md").read_text() == expected, "docs/cli.md is stale: python -m tools.reference cli"


def test_cli_reference_lists_every_command() -> None:
    import typer

    from ccvec.cli import app

    text = (DOCS / "cli.md").read_text()
    root = typer.main.get_command(app)
    for name, command in root.commands.items():
        assert f"## `ccvec {name}`" in text
        for sub in getattr(command, "commands", {}):
            assert f"## `ccvec {name} {sub}`" in text


def test_sql_reference_is_current(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        expected = sql_markdown(conn)
    assert (DOCS / "sql-reference.md").read_text() == expected, (
        "docs/sql-reference.md is stale: DATABASE_URL=… python -m tools.reference sql"
    )


def test_every_sql_function_and_view_is_commented(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        missing = [
            f"{kind} {name}"
            for kind, name, _, _, comment in sql_objects(conn)
            if kind != "table" and not comment.strip()
        ]
    assert missing == []
