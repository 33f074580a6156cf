"""Two ccvec commands at once on one database (docs/reliability.md, "Two commands at once").

The overlap is made on purpose, never hoped for by a sleep: a test connection takes the lock a
command needs and holds it while the command starts, so the command must meet it; the test reads
the command's waiting line before letting go.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from PIL import Image

from ccvec import db
from ccvec.cli.common import _operational

from .process import COMMAND, environment, run_ccvec, start_ccvec


def images(folder: Path, n: int, seed: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)).save(folder / f"{i:04d}.png")
    return folder


def ccvec_ok(*args: str | Path, database_url: str) -> subprocess.CompletedProcess[str]:
    done = run_ccvec(*map(str, args), database_url=database_url)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture()
def graphed(conn: psycopg.Connection, tiny: str, database_url: str, tmp_path: Path) -> Path:
    """Twelve images loaded with the tiny model, a graph (k=2) and a clustering."""
    folder = images(tmp_path / "photos", 12, 1)
    ccvec_ok("load", folder, "--model", tiny, "--workers", "0", database_url=database_url)
    ccvec_ok("graph", "build", "--model", tiny, "--k", "2", "--recall-sample", "0", database_url=database_url)
    ccvec_ok("cluster", database_url=database_url)
    return folder


@pytest.fixture()
def holder(database_url: str) -> Iterator[psycopg.Connection]:
    """A session that looks like another ccvec command to the one under test."""
    with psycopg.connect(database_url, autocommit=True, application_name="ccvec other [4242]") as session:
        yield session


def one(conn: psycopg.Connection, sql: str, args: list[object] | None = None) -> object:
    conn.commit()
    row = conn.execute(sql, args).fetchone()
    assert row is not None
    return row[0]


def waits_then_runs(
    holder: psycopg.Connection, job: str, args: list[str], database_url: str, shared: bool = False
) -> subprocess.CompletedProcess[str]:
    """Hold job `job`'s lock (`shared`: as a load holds "catalog"), start `ccvec ARGS`: it must say in
    one line that it waits and for whom, and be waiting (its session named after it); then let go:
    it must finish, exit status 0."""
    assert holder.execute("SELECT ccvec.job_lock(%s, NULL, %s)", [job, shared]).fetchone() == (True,)
    process = start_ccvec(*args, database_url=database_url)
    try:
        line = process.stderr.readline() if process.stderr else ""  # blocks until it says something
        assert "waiting for `ccvec other` [pid 4242] (running since " in line, line
        assert process.poll() is None  # still waiting: the lock is held
        words = args[:2] if args[0] == "graph" else args[:1]  # a group's command, or a command
        name = f"ccvec {' '.join(words)} [{process.pid}]"
        waiting = holder.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [name]
        ).fetchone()
        assert waiting is not None and waiting[0] >= 1, name  # its own sessions say who they are
    finally:
        holder.execute("SELECT ccvec.job_unlock(%s, %s)", [job, shared])
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0 and "Traceback" not in err, err
    return subprocess.CompletedProcess(args, 0, out, line + err)


def test_refresh_waits_for_another_refresh(
    conn: psycopg.Connection, graphed: Path, holder: psycopg.Connection, database_url: str
) -> None:
    """Two `ccvec refresh` at once deadlocked (both read visual_rank, then both TRUNCATE it): one
    ended with `error: deadlock detected`. Now the second waits and then refreshes everything."""
    done = waits_then_runs(holder, "catalog", ["refresh"], database_url)
    assert "scored 12 images" in done.stdout
    assert one(conn, "SELECT ccvec.unscored_images()") == 0


def test_refresh_waits_for_loads_and_a_load_for_a_refresh(
    conn: psycopg.Connection,
    graphed: Path,
    tiny: str,
    holder: psycopg.Connection,
    database_url: str,
    tmp_path: Path,
) -> None:
    """A refresh during a load scored a catalog half loaded: its stages read the catalog at different
    moments, and images stored between two stages got a popularity but no authority (a report then
    crashed on them). Now a refresh waits for the loads running (they share the catalog) and a load
    for a running refresh; each then sees a catalog nobody is filling."""
    waits_then_runs(holder, "catalog", ["refresh"], database_url, shared=True)
    assert one(conn, "SELECT count(*) FROM ccvec.image_score WHERE authority IS NULL") == 0
    more = images(tmp_path / "more", 3, 2)
    done = waits_then_runs(
        holder, "catalog", ["load", str(more), "--model", tiny, "--workers", "0"], database_url
    )
    assert "loaded 3," in done.stdout and f"loading {more}: waiting for" in done.stderr


def test_loads_share_the_catalog(
    conn: psycopg.Connection, tiny: str, holder: psycopg.Connection, database_url: str, tmp_path: Path
) -> None:
    """Two loads of different folders at once both run (the operator's case: two manifests into one
    catalog): a load holding its share does not make another one wait."""
    assert holder.execute("SELECT ccvec.job_lock('catalog', NULL, true)").fetchone() == (True,)
    try:
        done = ccvec_ok(
            "load", images(tmp_path / "b", 4, 3), "--model", tiny, "--workers", "0", database_url=database_url
        )
    finally:
        holder.execute("SELECT ccvec.job_unlock('catalog', true)")
    assert "loaded 4," in done.stdout and "waiting" not in done.stderr


def test_a_second_load_of_one_folder_waits_for_the_first(
    conn: psycopg.Connection, tiny: str, holder: psycopg.Connection, database_url: str, tmp_path: Path
) -> None:
    """Two loads of one folder at once (cron and by hand) both embedded every image, then split the
    inserts between them ("loaded 155, skipped 58" and "loaded 58, skipped 155"). Now the second
    waits for the first, however the folder is named, then finds everything stored."""
    folder = images(tmp_path / "same", 5, 4)
    (tmp_path / "link").symlink_to(folder)
    args = ["load", str(tmp_path / "link"), "--model", tiny, "--workers", "0"]
    done = waits_then_runs(holder, f"load {folder.resolve()}", args, database_url)
    assert "loaded 5," in done.stdout
    again = ccvec_ok("load", folder, "--model", tiny, "--workers", "0", database_url=database_url)
    assert "loaded 0, skipped 5" in again.stdout and "waiting" not in again.stderr


def test_dedup_waits_for_another_dedup(
    conn: psycopg.Connection, graphed: Path, tiny: str, holder: psycopg.Connection, database_url: str
) -> None:
    """Two `ccvec dedup` at once on a new catalog: one crashed with a traceback (duplicate key in
    ccvec.mih_mask_set, both laying out the pHash index), exit status 1. Now the second waits."""
    waits_then_runs(holder, "dedup", ["dedup", "--model", tiny], database_url)
    assert one(conn, "SELECT count(*) FROM ccvec.duplicate_member") == 12


def test_similar_waits_for_the_phash_layout(
    conn: psycopg.Connection, graphed: Path, holder: psycopg.Connection, database_url: str
) -> None:
    """`ccvec similar` and `ccvec dedup` lay out the pHash index on first use; one at a time."""
    assert one(conn, "SELECT count(*) FROM ccvec.mih_config") == 0
    done = waits_then_runs(
        holder, "mih layout", ["similar", "--image", str(graphed / "0000.png")], database_url
    )
    assert "0000" in done.stdout  # the image itself, at distance 0
    assert one(conn, "SELECT count(*) FROM ccvec.mih_config") == 1


@pytest.mark.parametrize("command", ["build", "add"])
def test_graph_writers_wait_for_each_other(
    conn: psycopg.Connection,
    graphed: Path,
    tiny: str,
    holder: psycopg.Connection,
    database_url: str,
    tmp_path: Path,
    command: str,
) -> None:
    """`graph build` and `graph add` (also run by `ccvec run`) write the graph one at a time: two
    `graph add` at once would give the same new images their edges twice."""
    ccvec_ok(
        "load", images(tmp_path / "more", 3, 2), "--model", tiny, "--workers", "0", database_url=database_url
    )
    args = (
        ["graph", "build", "--model", tiny, "--k", "2", "--recall-sample", "0"]
        if command == "build"
        else ["graph", "add"]
    )
    waits_then_runs(holder, "graph", args, database_url)
    edges = one(
        conn,
        "SELECT count(*) FROM ccvec.knn_edge e JOIN ccvec.knn_run r ON r.id = e.run_id WHERE r.is_current",
    )
    assert edges == 15 * 2  # every image k=2 edges, once


def test_a_deadlock_or_lock_timeout_is_one_line_saying_what_to_do(database_url: str) -> None:
    """Whatever two sessions still meet (another client, a pair no job lock covers): a real deadlock
    and a real lock timeout give one line naming the cause and the fix, never the raw error alone."""
    a = psycopg.connect(database_url)
    b = psycopg.connect(database_url)
    try:
        for c in (a, b):
            c.execute("SET statement_timeout = '60s'")  # a mistake here fails, never hangs
        a.execute("SELECT pg_advisory_xact_lock(1)")
        b.execute("SELECT pg_advisory_xact_lock(2)")
        errors: list[psycopg.Error] = []
        started = threading.Event()

        def second() -> None:
            started.set()
            try:
                a.execute("SELECT pg_advisory_xact_lock(2)")  # waits for b
            except psycopg.Error as exc:
                errors.append(exc)
                a.rollback()  # lets b have lock 1

        thread = threading.Thread(target=second)
        thread.start()
        started.wait()
        with psycopg.connect(database_url, autocommit=True) as watcher:
            waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'advisory'"
            while watcher.execute(waiting).fetchone() != (1,):
                pass  # until a waits for b (each check is its own statement, no sleep)
        try:
            b.execute("SELECT pg_advisory_xact_lock(1)")  # b waits for a: a deadlock, one of them fails
        except psycopg.Error as exc:
            errors.append(exc)
        b.rollback()
        thread.join()
        a.rollback()
        assert len(errors) == 1 and errors[0].sqlstate == "40P01"
        line = _operational(errors[0])
        assert line.startswith("another session changed the same rows at the same moment (deadlock detected)")
        assert "rerun the command" in line and "\n" not in line
        a.execute("SELECT pg_advisory_lock(3)")
        a.commit()
        with pytest.raises(psycopg.errors.LockNotAvailable) as timeout:
            b.execute("SET lock_timeout = '10ms'")
            b.execute("SELECT pg_advisory_lock(3)")
        line = _operational(timeout.value)
        assert line.startswith("another session holds a table this command needs (canceling statement due")
        assert "rerun it when that one has finished" in line
    finally:
        a.close()
        b.close()


def test_server_start_and_db_stop_with_other_commands() -> None:
    """Two commands started at once on a new CCVEC_HOME: both ran initdb and pg_ctl, and the first
    one's restart (to apply its settings) cut the second off ("the database system is shutting
    down", exit status 2). Now one starts the server and the other waits, saying so.

    `ccvec db stop` while a cron load runs ended the load mid-way (`terminating connection due to
    administrator command`, exit status 2). Now it refuses in one line naming who is connected,
    unless --force."""
    parent = Path(tempfile.mkdtemp(prefix="ccvec-stop-"))  # short: the socket lives in it
    parent.chmod(0o755)  # as root, the server's account reaches it
    home = parent / "home"
    home.mkdir()
    env = {"CCVEC_HOME": str(home), "DATABASE_URL": ""}
    lock = os.open(home / db.SERVER_LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)  # as another command starting the server holds it
    starting = subprocess.Popen(
        [*COMMAND, "db", "start"],
        env=environment(env=env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = starting.stderr.readline() if starting.stderr else ""
        assert line == "ccvec: waiting for another ccvec command to start or stop the embedded server…\n", (
            line
        )
        assert starting.poll() is None and not (home / "pgdata").exists()  # nothing done meanwhile
    finally:
        os.close(lock)
    out, err = starting.communicate(timeout=120)
    assert starting.returncode == 0 and "Traceback" not in err, err
    url = out.split("embedded server running: ", 1)[1].strip()
    try:
        with psycopg.connect(url, application_name="ccvec load [4242]") as load:
            refused = run_ccvec("db", "stop", env=env)
            assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
            lines = refused.stderr.strip().splitlines()
            assert (
                len(lines) == 1
                and "1 other session uses the embedded server (`ccvec load` [pid 4242]" in lines[0]
            )
            assert "`ccvec db stop --force`" in lines[0]
            assert load.execute("SELECT 1").fetchone() == (1,)  # still served
            forced = run_ccvec("db", "stop", "--force", env=env)
            assert forced.returncode == 0 and "embedded server stopped" in forced.stdout, forced.stderr
            with pytest.raises(psycopg.OperationalError):
                load.execute("SELECT 1")
        assert "embedded server was not running" in run_ccvec("db", "stop", env=env).stdout
    finally:
        db.discard_embedded(home / "pgdata")
        shutil.rmtree(parent, ignore_errors=True)


def test_db_upgrade_says_it_waits_for_another_migration(
    conn: psycopg.Connection, holder: psycopg.Connection, database_url: str
) -> None:
    """Two migrations at once (a `ccvec db upgrade` by hand, a cron `ccvec run`): the second waited
    without a word for as long as the first took. Now it says so in one line, then finds the schema
    current."""
    holder.execute("SELECT pg_advisory_lock(hashtext('ccvec migrations'))")
    process = start_ccvec("db", "upgrade", database_url=database_url)
    try:
        line = process.stderr.readline() if process.stderr else ""
        assert line.startswith("ccvec: waiting for another command migrating this database"), line
        assert process.poll() is None
    finally:
        holder.execute("SELECT pg_advisory_unlock(hashtext('ccvec migrations'))")
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0 and "Traceback" not in err and "schema at " in out, err


def test_two_commands_on_a_new_home_make_the_default_model_once(tmp_path: Path) -> None:
    """Two loads started at once on a new home both converted the EfficientNet-Lite0 weights (and
    two int8 builds wrote one temporary file). Now the second waits, saying so, then uses the
    model the first made."""
    from ccvec.models import registry

    home = tmp_path / "home"
    models = home / "models"
    models.mkdir(parents=True)
    lock = os.open(models / "efficientnet-lite0.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)  # as another command making it holds it
    script = (
        "from ccvec.models import registry\n"
        "registry.conversion_notice = lambda line: print(line, flush=True)\n"
        "print(registry.build_default().sha256)\n"
    )
    making = subprocess.Popen(
        [sys.executable, "-c", script],
        env=environment(env={"CCVEC_HOME": str(home)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = making.stdout.readline() if making.stdout else ""
        assert line == "waiting for another ccvec command making efficientnet-lite0.onnx (first use)…\n", line
        assert making.poll() is None and not (models / "efficientnet-lite0.onnx").exists()
    finally:
        os.close(lock)
    out, err = making.communicate(timeout=300)
    assert making.returncode == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("first use: converting") and len(lines) == 2  # made once, after the wait
    assert lines[1] == registry.file_sha256(models / "efficientnet-lite0.onnx")


def test_a_session_is_named_after_its_command_after_global_options() -> None:
    """`ccvec -q load` (as cron runs it) named its sessions `ccvec [pid]`: a command waiting for it
    said "waiting for `ccvec` [pid N]", and `db stop` listed it so; global options come first."""
    from ccvec.cli.common import application_name

    pid = os.getpid()
    assert application_name(["-q", "load", "photos"]) == f"ccvec load [{pid}]"
    url = ["--database-url", "postgresql://u:secret@host/db"]
    assert application_name([*url, "--quiet", "graph", "build"]) == f"ccvec graph build [{pid}]"
    assert application_name(["--database-url=postgresql://host/db", "refresh"]) == f"ccvec refresh [{pid}]"
    assert application_name(["run", "/photos"]) == f"ccvec run [{pid}]"


def test_the_waiting_line_shows_a_folder_name_printable(
    conn: psycopg.Connection, tiny: str, holder: psycopg.Connection, database_url: str, tmp_path: Path
) -> None:
    """The waiting line names the source being loaded: a folder named with a terminal sequence went
    to the terminal as it was, where every other line of ccvec shows such a name escaped."""
    folder = images(tmp_path / "a\x1b[2Jb", 2, 5)
    args = ["load", str(folder), "--model", tiny, "--workers", "0"]
    done = waits_then_runs(holder, "catalog", args, database_url)
    assert "\x1b" not in done.stderr and "a\\x1b[2Jb: waiting for" in done.stderr, done.stderr
