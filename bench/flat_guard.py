"""What the flat-pHash guard (migration 0068) changes on real collections, in one run.

    python bench/neardup.py --work DIR     # writes the edited copies and loads them (once)
    python bench/flat_guard.py DIR

For each database bench/neardup.py left in DIR (one per collection): how many pHashes have fewer
than 32 bits set (some DCT values tie at the median), how many 8 or fewer (ccvec.phash_has_detail
false: pictures without detail), and `ccvec dedup
--rebuild` twice on the same images and the same HNSW index, once with the rule before 0068 (a
pHash match between any two hashes) and once with the guard, with bench/neardup.py's group scores
and whether the groups are identical. A third run of the first rule shows the comparison is exact
(dedup on one index is deterministic).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.neardup import fetch, group_scores, true_sources
from ccvec import db, migrate, neardup

SQL = Path(__file__).resolve().parent.parent / "sql"


def rule(path: Path) -> str:
    """The migration file's ccvec.phash_has_detail (when it defines one) and
    ccvec.duplicate_edges_batch, as CREATE OR REPLACE: a database upgraded earlier gets exactly this
    file's rule."""
    text = path.read_text().replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
    parts = []
    for name in ("ccvec.phash_has_detail", "ccvec.duplicate_edges_batch"):
        if f"CREATE OR REPLACE FUNCTION {name}(" in text:
            start = text.index(f"CREATE OR REPLACE FUNCTION {name}(")
            parts.append(text[start : text.index("$$;", start) + 3])
    return "\n".join(parts)


def groups_under(conn, function: str) -> tuple[set[frozenset[object]], dict[str, float], int]:
    """Groups, their scores and the pHash edge count after a dedup rebuild with this edge rule."""
    conn.execute(function)
    conn.commit()
    neardup.dedup(conn, rebuild=True)
    data = fetch(conn)
    scores = group_scores(np.array([str(g) for g in data["group"]]), data, true_sources(data))
    members = conn.execute(
        "SELECT array_agg(identifier ORDER BY identifier) FROM ccvec.duplicate_member GROUP BY group_id"
    ).fetchall()
    by_hash = conn.execute("SELECT count(distance) FROM ccvec.duplicate_edge").fetchone()[0]
    return {frozenset(m[0]) for m in members}, scores, by_hash


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("work", type=Path, help="the --work folder of a bench/neardup.py run")
    args = parser.parse_args()
    os.environ["CCVEC_HOME"] = str(args.work / "home")
    pgdata = args.work / "home" / "pgdata"
    if not pgdata.is_dir():
        parser.error(f"{args.work}: no bench/neardup.py databases there (run it with --work {args.work})")
    before = rule(SQL / "0068_flat_phash.down.sql")
    guard = rule(SQL / "0068_flat_phash.up.sql")
    url = db.start_embedded(pgdata)
    rows = []
    try:
        for folder in sorted(p.name for p in args.work.iterdir() if p.is_dir() and p.name != "home"):
            target = url.replace("/ccvec?", f"/nd_{folder}?")
            migrate.upgrade(target)  # a database written by an earlier release of the script
            with psycopg.connect(target) as conn:
                register_vector(conn)
                bits = conn.execute("SELECT bit_count(phash::bit(64)) FROM ccvec.image_feature").fetchall()
                tied = sum(b != 32 for (b,) in bits)
                flat = sum(b <= 8 for (b,) in bits)
                old, old_scores, old_edges = groups_under(conn, before)
                new, new_scores, new_edges = groups_under(conn, guard)
                again, _, _ = groups_under(conn, before)
                conn.execute(guard)  # leave the database at its migration's rule
                conn.commit()
            rows.append(
                (
                    folder,
                    len(bits),
                    tied,
                    flat,
                    old_edges,
                    new_edges,
                    old_scores,
                    new_scores,
                    old == new,
                    old == again,
                )
            )
    finally:
        db.stop_embedded(pgdata)
    print("\nflat-pHash guard: the same images and index, dedup --rebuild under each rule (before / guard)")
    columns = ["set", "images", "hashes under 32 bits", "8 bits or fewer", "pHash edges", "precision"]
    columns += ["recall mild", "recall hard", "groups/orig.", "same groups", "rule before rerun: same"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for folder, n, tied, flat, old_edges, new_edges, old, new, same, rerun in rows:
        cells = [folder, str(n), str(tied), str(flat), f"{old_edges} / {new_edges}"]
        cells += [
            f"{old[k]:.3f} / {new[k]:.3f}" for k in ("precision", "mild", "hard", "groups_per_original")
        ]
        cells += [str(same), str(rerun)]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
