"""Refresh time of ccvec.inferred_tags before and after migration 0033, side by side on one server.

    python bench/tags_refresh.py [--size 200000] [--repeats 2]

Synthetic catalog (bench/refresh.py's: random kNN graph, k = 10, similarities in [0.5, 1]); half
of the images carry two tags (one of 64 fine, one of 8 coarse). The view as migration 0022 defined
it and as 0033 defines it are created side by side under other names and refreshed in turn,
`--repeats` times, each from scratch (REFRESH without CONCURRENTLY).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import refresh as catalog  # bench/refresh.py: the synthetic catalog

from ccvec import db, migrate

SQL = Path(__file__).resolve().parent.parent / "sql"
VIEWS = {"0022 (before)": "0022_tags_novelty.up.sql", "0033 (now)": "0033_inferred_tags.up.sql"}


def view_sql(migration: str, name: str) -> str:
    """The migration's CREATE MATERIALIZED VIEW ccvec.inferred_tags, renamed."""
    text = (SQL / migration).read_text()
    start = text.index("CREATE MATERIALIZED VIEW ccvec.inferred_tags AS")
    end = text.index("WITH NO DATA;", start)
    return text[start:end].replace("ccvec.inferred_tags AS", f"ccvec.{name} AS", 1) + "WITH NO DATA"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ccvec-tags-refresh-"))
    os.environ["CCVEC_HOME"] = str(work / "home")
    url = db.start_embedded(work / "home" / "pgdata")
    try:
        migrate.upgrade(url)
        with db.connection(url) as conn:
            catalog.make_catalog(conn, args.size, 10, np.random.default_rng(0))
            conn.execute(
                "UPDATE ccvec.image SET tags = jsonb_build_array("
                "jsonb_build_object('name', 'fine' || (hashtext(identifier::text) & 63)), "
                "jsonb_build_object('name', 'coarse' || (hashtext(identifier::text) & 7))) "
                "WHERE hashtext(url) & 1 = 0"
            )
            names = {label: f"inferred_tags_{n}" for n, label in enumerate(VIEWS)}
            for label, migration in VIEWS.items():
                conn.execute(view_sql(migration, names[label]))
            conn.commit()
            print(f"{'view':14s} {'refresh':>8s} {'rows':>8s}")
            for _ in range(args.repeats):
                for label, name in names.items():
                    start = time.perf_counter()
                    conn.execute(f"REFRESH MATERIALIZED VIEW ccvec.{name}")
                    conn.commit()
                    seconds = time.perf_counter() - start
                    rows = conn.execute(f"SELECT count(*) FROM ccvec.{name}").fetchone()[0]
                    print(f"{label:14s} {seconds:7.1f}s {rows:8d}", flush=True)
    finally:  # a failed run leaves no server behind
        db.stop_embedded(work / "home" / "pgdata")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
