"""CLI conventions: --version, -h, readable metavars, exit codes in --help, single files, machine
formats, tables that are not cut when piped."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from ccvec.models import registry

from .images import photo
from .process import run_ccvec
from .tiny_model import build_tiny_model, tiny_spec

cli = run_ccvec


def test_version_help_and_metavars() -> None:
    from importlib.metadata import version

    assert cli("--version").stdout.strip() == f"ccvec {version('ccvec')}"
    top = cli("-h")
    assert top.returncode == 0
    assert "Exit status: 0 ok; 1 some inputs failed" in " ".join(top.stdout.split())
    for command in (["run"], ["load"], ["similar"], ["report"], ["graph", "build"], ["cluster"]):
        text = cli(*command, "-h").stdout
        assert "Usage: ccvec" in text
        assert not re.search(r"<[a-z\[\]]+( range)?>|\{[A-Z]", text), text  # no <int range>, {SOURCE}
    assert "Usage: ccvec run [OPTIONS] SOURCE..." in cli("run", "-h").stdout
    assert "--k N" in cli("run", "-h").stdout and "--out PATH" in cli("run", "-h").stdout
    assert "Usage: ccvec tags [OPTIONS] [IDENTIFIER]" in cli("tags", "-h").stdout  # as its error says


def test_parser_errors_are_one_line() -> None:
    """An unknown option or command, a missing argument or a value of the wrong type: one line on
    stderr naming the command's help, exit status 2, as the README promises for every usage error."""
    cases = {
        ("load", "--bogus", "x"): "error: No such option: --bogus (Possible options: --jobs) "
        "(help: ccvec load -h)",
        ("lod",): "error: No such command 'lod'. Did you mean 'load'? (help: ccvec -h)",
        ("load",): "error: Missing argument 'SOURCE' (help: ccvec load -h)",
        ("cluster", "--sim", "abc"): "error: Invalid value for '--sim'",
    }
    for args, expected in cases.items():
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.splitlines() == [result.stderr.strip()], (args, result.stderr)
        assert result.stderr.startswith(expected), (args, result.stderr)
    group = cli("db")  # a group without its command: the group's help, as before
    assert group.returncode == 2 and "Commands:" in group.stderr and "upgrade" in group.stderr


def test_single_file_formats_and_untruncated_tables(
    conn: psycopg.Connection, database_url: str, tmp_path: Path
) -> None:
    registry.add_model(conn, build_tiny_model(tmp_path / "t.onnx"), tiny_spec("tiny-cli"))
    conn.commit()
    name = "a_very_long_file_name_" + "x" * 120 + "_end"
    image = tmp_path / f"{name}.jpg"
    photo("coffee").convert("RGB").save(image)
    loaded = cli("load", str(image), "--model", "tiny-cli", database_url=database_url)
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 1," in loaded.stdout

    table = cli("similar", "--image", str(image), database_url=database_url)
    assert table.returncode == 0, table.stderr
    assert name in table.stdout  # piped: as wide as its content, never cut
    rows = list(
        csv.DictReader(
            io.StringIO(
                cli("similar", "--image", str(image), "--format", "csv", database_url=database_url).stdout
            )
        )
    )
    assert len(rows) == 1 and rows[0]["distance"] == "0" and rows[0]["title"] == name
    found = json.loads(
        cli("similar", "--image", str(image), "--format", "json", database_url=database_url).stdout
    )
    assert found[0]["title"] == name and found[0]["distance"] == 0
    errors = cli("errors", "--format", "json", database_url=database_url)
    assert errors.returncode == 0 and json.loads(errors.stdout) == []
    bad = cli("errors", "--format", "yaml", database_url=database_url)
    assert bad.returncode == 2


def test_tables_are_never_cut_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    """Every table ccvec prints (graph status, dedup, db status, ...) goes through print_table: off
    a terminal it is as wide as its content, one line per row."""
    from rich.table import Table

    from ccvec.cli.common import print_table

    table = Table("model", "built", box=None)
    table.add_row("efficientnet-lite0-" + "x" * 150, "2026-11-30 07:44:03.123456+00:00")
    print_table(table)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].rstrip().endswith("07:44:03.123456+00:00"), lines
    assert "x" * 150 in lines[1] and "…" not in lines[1]


def test_output_closed_early_is_quiet_and_not_a_failed_input() -> None:
    """`ccvec … | head`: the reader goes away; no traceback, and the status is a shell's for SIGPIPE
    (141), not 1, which says some inputs failed to load."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the first write meets a closed pipe
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ccvec.cli", "--version"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, "")
