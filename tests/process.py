"""The real `ccvec` command in a child process, as a user runs it (the `cli` fixture in conftest.py
runs it in-process; these are for what needs a process of its own: exit codes, signals, kills)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

COMMAND = [sys.executable, "-m", "ccvec.cli"]


def environment(database_url: str | None = None, env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment, with DATABASE_URL and any extra variables set."""
    return {**os.environ, **({"DATABASE_URL": database_url} if database_url else {}), **(env or {})}


def run_ccvec(
    *args: str, database_url: str | None = None, env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run `ccvec ARGS` to completion (stdin closed, five-minute cap) and capture its output."""
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        text=True,
        env=environment(database_url, env),
        stdin=subprocess.DEVNULL,
        timeout=300,
        **kwargs,
    )


def start_ccvec(*args: str, database_url: str) -> subprocess.Popen[str]:
    """Start `ccvec ARGS` in its own session (so a test can signal or kill its whole group), with
    Ctrl-C at its default even when the tests themselves run in the background of a script (a shell
    starts background jobs with SIGINT ignored, children inherit that, and Python then installs no
    KeyboardInterrupt handler: the Ctrl-C tests would test nothing)."""
    return subprocess.Popen(
        [*COMMAND, *args],
        env=environment(database_url),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
