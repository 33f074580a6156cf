"""What novelty costs in SQL at catalog scale: the spread distance (migration 0034) next to the kNN
scores it replaced, on synthetic embeddings.

    python bench/novelty_cost.py [--images 100000] [--dim 1280] [--reference 5000]

A fresh embedded server gets `--images` random non-negative unit embeddings of `--dim` dimensions
(halfvec, like ccvec's) and a kNN graph of 10 random neighbours per image (the graph's cost is not
measured here). Then, timed: within the collection, ccvec.novelty_centre_fit() and a refresh of
ccvec.image_novelty, next to the view it replaced (percentile of the mean kNN distance) refreshed
the same way; against a reference set of `--reference` images, what fitting it costs now (the
set's centre and spreads, its members' leave-one-out spread distances) and before (their exact
leave-one-out kNN distances, quadratic in the set's size); then 500 other images scored, the two
parts of that score (the kNN distance kept for the `distance` column, the spread distance) timed
on their own, and the same 500 scored again as a set fitted with novelty.k = 0 (no kNN distance).
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

from ccvec import db, migrate

OLD_VIEW = """CREATE MATERIALIZED VIEW bench_old_novelty AS
SELECT identifier, distance, (percent_rank() OVER (ORDER BY distance))::real AS novelty
FROM (SELECT identifier, (1 - avg(similarity))::real AS distance
      FROM ccvec.knn_current GROUP BY identifier) d WITH NO DATA"""


def timed(label: str, run) -> float:
    start = time.perf_counter()
    run()
    took = time.perf_counter() - start
    print(f"  {label:58s} {took:8.2f} s", flush=True)
    return took


def fill(conn, n: int, dim: int, k: int = 10) -> None:
    rng = np.random.default_rng(0)
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) "
        "VALUES ('bench', '1', 'x', %s, '{}')",
        [dim],
    )
    with conn.cursor().copy("COPY ccvec.image_embedding (model, identifier, embedding) FROM STDIN") as copy:
        for start in range(0, n, 2000):
            x = np.abs(rng.normal(0, 1, (min(2000, n - start), dim))) ** 2
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            copy.write(
                "".join(
                    f"bench\t{start + i:032x}\t[{','.join(f'{v:.4f}' for v in row)}]\n"
                    for i, row in enumerate(x.tolist())
                )
            )
    run = conn.execute(
        "INSERT INTO ccvec.knn_run (model, k, ef_search, is_current, images, finished_at) "
        "VALUES ('bench', %s, 64, true, %s, now()) RETURNING id",
        [k, n],
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO ccvec.knn_edge (run_id, identifier, neighbour, rank, similarity) "
        "SELECT %s, lpad(to_hex(i), 32, '0')::uuid, lpad(to_hex((i + 1 + r * 7919) %% %s), 32, '0')::uuid, "
        "r + 1, 0.5 + random() / 2 FROM generate_series(0, %s - 1) i, generate_series(0, %s - 1) r",
        [run, n, n, k],
    )
    conn.execute("ANALYZE ccvec.image_embedding")
    conn.execute("ANALYZE ccvec.knn_edge")
    conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--reference", type=int, default=5000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ccvec-novelty-cost-"))
    os.environ["CCVEC_HOME"] = str(work / "home")
    url = db.start_embedded(work / "home" / "pgdata")
    try:
        migrate.upgrade(url)
        with db.connection(url) as conn:
            print(f"{args.images:,} images of {args.dim} dimensions, reference set of {args.reference:,}")
            timed(
                "load embeddings and a 10-NN graph (not compared)", lambda: fill(conn, args.images, args.dim)
            )
            print("within the collection")
            fit = timed(
                "ccvec.novelty_centre_fit() (new)", lambda: conn.execute("SELECT ccvec.novelty_centre_fit()")
            )
            new = timed(
                "REFRESH ccvec.image_novelty (new: spread distance)",
                lambda: conn.execute("REFRESH MATERIALIZED VIEW ccvec.image_novelty"),
            )
            conn.execute(OLD_VIEW)
            old = timed(
                "REFRESH of the view it replaced (mean kNN distance)",
                lambda: conn.execute("REFRESH MATERIALIZED VIEW bench_old_novelty"),
            )
            print(
                f"  new / old: {(fit + new) / old:.2f}x with the fit, {new / old:.2f}x the view alone "
                "(the fit reads at most novelty.fit_sample images)"
            )
            conn.rollback()
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT identifier FROM ccvec.image_embedding ORDER BY identifier LIMIT %s",
                    [args.reference],
                )
            ]
            print("against a reference set")
            conn.execute("SELECT * FROM ccvec.novelty_reference_images('bench', 'bench', 'bench', %s)", [ids])
            batches = [ids[s : s + 500] for s in range(0, len(ids), 500)]
            knn = timed(
                "members' leave-one-out kNN distances (before 0034 only)",
                lambda: [
                    conn.execute("SELECT ccvec.novelty_reference_distances('bench', %s)", [b])
                    for b in batches
                ],
            )
            timed(
                "ccvec.novelty_reference_fit (new)",
                lambda: conn.execute("SELECT ccvec.novelty_reference_fit('bench')"),
            )
            loo = timed(
                "members' leave-one-out spread distances (new)",
                lambda: [
                    conn.execute("SELECT ccvec.novelty_reference_scores('bench', %s)", [b]) for b in batches
                ],
            )
            conn.execute("SELECT ccvec.novelty_reference_calibrate('bench')")
            conn.commit()
            print(f"  fit now / before: {loo / knn:.2f}x")
            others = [
                r[0]
                for r in conn.execute("SELECT * FROM ccvec.novelty_candidates('bench', 'bench') LIMIT 500")
            ]
            both = timed(
                "score 500 other images (ccvec.novelty_score_batch)",
                lambda: conn.execute("SELECT ccvec.novelty_score_batch('bench', %s)", [others]),
            )
            timed(
                "  of which the kNN distance (ccvec.reference_distance)",
                lambda: conn.execute("SELECT count(*) FROM ccvec.reference_distance('bench', %s)", [others]),
            )
            spread = timed(
                "  of which the spread distance (ccvec.spread_distance)",
                lambda: conn.execute(
                    "SELECT count(ccvec.spread_distance(e.embedding::vector, m.centre, m.weight)) "
                    "FROM ccvec.novelty_model m JOIN ccvec.image_embedding e ON e.model = m.model "
                    "WHERE m.name = 'bench' AND e.identifier = ANY(%s)",
                    [others],
                ),
            )
            print(f"  spread distance / whole scoring: {spread / both:.3f}")
            conn.execute("UPDATE ccvec.novelty_model SET k = 0 WHERE name = 'bench'")  # as fitted at k = 0
            linear = timed(
                "score the same 500 with novelty.k = 0 (no distance column)",
                lambda: conn.execute("SELECT ccvec.novelty_score_batch('bench', %s)", [others]),
            )
            print(f"  novelty.k = 0 / default: {linear / both:.3f}")
            conn.rollback()
    finally:
        db.stop_embedded(work / "home" / "pgdata")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
