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
Last, what `ccvec novelty score` and `ccvec refresh` run since migration 0039: every other image
scored with the kNN distances searched in numpy over the members' vectors (against the SQL
scoring's rate, extrapolated from its 500), then `--new` (1 %) more images embedded and the
refresh's scoring of what changed, against a full rescore.
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

from ccvec import clusters, db, migrate

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
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) "
        "VALUES ('bench', '1', 'x', %s, '{}')",
        [dim],
    )
    embed(conn, 0, n, dim, np.random.default_rng(0))
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


def embed(conn, first: int, n: int, dim: int, rng: np.random.Generator) -> None:
    """Random non-negative unit embeddings for images first .. first + n - 1 (hex identifiers)."""
    with conn.cursor().copy("COPY ccvec.image_embedding (model, identifier, embedding) FROM STDIN") as copy:
        for start in range(first, first + n, 2000):
            x = np.abs(rng.normal(0, 1, (min(2000, first + n - start), dim))) ** 2
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            copy.write(
                "".join(
                    f"bench\t{start + i:032x}\t[{','.join(f'{v:.4f}' for v in row)}]\n"
                    for i, row in enumerate(x.tolist())
                )
            )


def scoring_since_0039(conn, args: argparse.Namespace, sql_per_image: float) -> None:
    """Every other image scored with numpy distances (`ccvec novelty score`), then a share more
    embedded and scored as `ccvec refresh` does (only what changed), against a full rescore."""
    others = args.images - args.reference
    print("scoring every other image, since migration 0039 (distances searched in numpy)")
    first = timed(
        f"ccvec novelty score: {others:,} images", lambda: clusters.novelty_score(conn, "bench")
    )
    sql = sql_per_image * others
    print(f"  SQL scoring (before), from its 500: {sql:.0f} s extrapolated; now {sql / first:.0f}x faster")
    added = int(args.images * args.new)
    embed(conn, args.images, added, args.dim, np.random.default_rng(1))
    conn.commit()
    print(f"  {added:,} new images embedded ({args.new:.0%})")
    changed = timed(
        "ccvec refresh's scoring: only what changed",
        lambda: clusters.novelty_score(conn, "bench", changed_only=True),
    )
    full = timed("a full rescore (ccvec novelty score)", lambda: clusters.novelty_score(conn, "bench"))
    before = sql_per_image * (others + added)
    print(f"  only what changed / full: {changed / full:.3f}", flush=True)
    print(f"  before 0039 a refresh rescored every image in SQL: {before:.0f} s extrapolated")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--reference", type=int, default=5000)
    parser.add_argument("--new", type=float, default=0.01, help="share of images added before the refresh")
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
            scoring_since_0039(conn, args, both / len(others))
    finally:
        db.discard_embedded(work / "home" / "pgdata")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
