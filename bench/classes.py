"""Reading embeddings to classify (cluster labels' class predictions): one pass against the batch
query it replaced (migration 0041), which scanned past every image already classified for each
new batch.

    python bench/classes.py [--sizes 100000,300000] [--batch 5000]

Per size, a fresh database on the embedded server gets that many random non-negative unit
embeddings (halfvec(1280), as ccvec stores them). Each way then reads every embedding in batches,
as `clusters.predict_classes` does, and writes a class row per image (fixed classes: the numpy head
costs the same either way and is left out), so that the next batch moves on; image_class is
emptied between the two. Printed: seconds per way, the ratio, and rows per second.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from refresh import MODEL, write_embeddings  # bench/refresh.py

from ccvec import db, migrate

BEFORE = "SELECT identifier FROM pg_temp.unclassified_embeddings_0014(%s, %s)"  # (model, limit)
NOW = "SELECT identifier FROM ccvec.unclassified_embeddings(%s, %s, %s)"  # (model, after, limit), 0041


def former_query(conn) -> None:
    """The batch query as migration 0014 defined it (0041 dropped it), as a temporary function."""
    text = (Path(__file__).resolve().parent.parent / "sql" / "0014_cluster_functions.up.sql").read_text()
    start = text.index("CREATE FUNCTION ccvec.unclassified_embeddings(p_model text, p_limit bigint)")
    body = text[start : text.index("$$;", start) + 3]
    conn.execute(body.replace("ccvec.unclassified_embeddings", "pg_temp.unclassified_embeddings_0014"))


def classify_all(conn, batch: int, resume: bool) -> float:
    """Read every unclassified embedding in batches and write a class row for each; seconds."""
    start, after = time.perf_counter(), None
    while True:
        sql, params = (NOW, [MODEL, after, batch]) if resume else (BEFORE, [MODEL, batch])
        ids = [r[0] for r in conn.cursor(binary=True).execute(sql, params)]
        if not ids:
            break
        after = ids[-1]
        with conn.cursor().copy(
            "COPY ccvec.image_class (model, identifier, classes, probs) FROM STDIN"
        ) as copy:
            for ident in ids:
                copy.write_row([MODEL, ident, [1, 2, 3, 4, 5], [0.5, 0.2, 0.1, 0.1, 0.1]])
        conn.commit()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,300000")
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ccvec-classes-"))
    os.environ["CCVEC_HOME"] = str(work / "home")
    server = db.start_embedded(work / "home" / "pgdata")
    rows = []
    try:
        import psycopg

        admin = server.replace("/ccvec?", "/postgres?")
        for n in (int(s) for s in args.sizes.split(",")):
            name = f"classes_{n}"
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{name}"')
            url = server.replace("/ccvec?", f"/{name}?")
            migrate.upgrade(url)
            with db.connection(url) as conn:
                conn.execute(
                    "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) "
                    "VALUES (%s, 'bench', 'bench', 1280, '{}')",
                    [MODEL],
                )
                write_embeddings(conn, 0, n, np.random.default_rng(n))
                conn.commit()
                conn.execute("ANALYZE ccvec.image_embedding")
                former_query(conn)
                conn.commit()
                before = classify_all(conn, args.batch, resume=False)
                conn.execute("TRUNCATE ccvec.image_class")
                conn.commit()
                now = classify_all(conn, args.batch, resume=True)
            print(f"  {n:,}: before {before:.1f}s, now {now:.1f}s", flush=True)
            rows.append((n, before, now))
    finally:
        db.discard_embedded(work / "home" / "pgdata")
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nreading every embedding to classify, batches of {args.batch:,}")
    print(f"{'images':>10s} {'before s':>9s} {'now s':>7s} {'before/now':>10s} {'now rows/s':>11s}")
    for n, before, now in rows:
        print(f"{n:10,d} {before:9.1f} {now:7.1f} {before / now:9.1f}x {n / now:11,.0f}")


if __name__ == "__main__":
    main()
