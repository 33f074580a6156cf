"""Where ccvec keeps its files and which database it talks to.

Everything is read from the environment at call time (not import time) so tests and the CLI's
`--database-url` option can change it.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

SCHEMA = "ccvec"
DATABASE_NAME = "ccvec"


def home() -> Path:
    """ccvec's own directory: embedded server data, cached ONNX models."""
    configured = os.environ.get("CCVEC_HOME")
    path = Path(configured) if configured else platformdirs.user_data_path("ccvec")
    return path.expanduser().resolve()


def database_url() -> str | None:
    """An explicit server from `DATABASE_URL`, or None for the embedded server."""
    return os.environ.get("DATABASE_URL") or None


def resource_dir(name: str) -> Path:
    """Locate the top-level `sql/` or `alembic/` folder in a checkout or an installed wheel."""
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir / f"_{name}", package_dir.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"ccvec installation is incomplete: no {name}/ folder near {package_dir}")
