"""Exact Hamming range search in SQL by chunk count: where the time of a MIH query goes.

    python bench/hamming_chunks.py [FOLDER ...] [--rows 1000000] [--chunks 3,4,5] [--radii 1,...,8]

The same 1M hashes as bench/hamming.py (real pHashes of FOLDER, default ../shared/data/photos and
stamps, edited variants, then fill). For each chunk count the MIH indexes are rebuilt
(`ccvec.configure_mih`), and at each radius it times, in the same run:

* `ccvec.hamming_neighbours` (what `ccvec similar` and dedup call: one probe weight per chunk,
  `ccvec.mih_thresholds`);
* "uniform": the same candidates-and-verify query with every chunk probed at floor(r / chunks),
  the rule before migration 0021, run with a generic plan as hamming_neighbours is since 0032;
* the SQL scan and numpy's popcount scan over an in-memory array.

MIH, uniform and numpy times are the mean over queries of each query's best of `--passes` runs
(the machine is shared: the best of a few runs is the least disturbed); the scan runs each query
once. Every MIH answer is checked against numpy (exact).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import hamming as hb  # bench/hamming.py: the data set and the numpy scan

from ccvec import db, migrate, neardup
from ccvec.phash import to_signed

# the candidates-and-verify query of hamming_neighbours with one weight on every chunk (before 0021)
UNIFORM = (
    "SELECT c.identifier FROM ccvec.mih_candidates(%s, %s::integer[]) c "
    "WHERE ccvec.hamming(c.phash, %s) <= %s GROUP BY c.identifier, c.phash"
)


def best_ms(fn, queries, passes: int) -> float:
    """Mean over queries of each query's best time of `passes` runs, in ms."""
    best = [float("inf")] * len(queries)
    for _ in range(passes):
        for i, q in enumerate(queries):
            start = time.perf_counter()
            fn(q)
            best[i] = min(best[i], time.perf_counter() - start)
    return statistics.mean(best) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunks", default="3,4,5")
    parser.add_argument("--radii", default="1,2,3,4,5,6,7,8")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--brute-queries", type=int, default=10)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    for folder in args.folders:
        if not folder.is_dir():
            parser.error(f"{folder}: no such folder")
    folders = args.folders or [p for p in (hb.SHARED / "photos", hb.SHARED / "stamps") if p.is_dir()]
    if not folders:
        parser.error("give a folder of images")
    rng = np.random.default_rng(0)
    originals, edited = hb.real_hashes(folders)
    real = np.concatenate([originals, edited])
    if args.rows < len(real):
        parser.error(f"--rows {args.rows:,} is fewer than the {len(real):,} real hashes; give at least that")
    hashes = np.concatenate([real, hb.fill(real, args.rows - len(real), rng)])
    queries = [int(q) for q in rng.choice(real, args.queries, replace=False)]
    radii = [int(r) for r in args.radii.split(",")]
    work = Path(tempfile.mkdtemp(prefix="ccvec-bench-"))
    os.environ["CCVEC_HOME"] = str(work)
    rows = []
    try:
        url = db.start_embedded(work / "pgdata")
        migrate.upgrade(url)
        hb.load_table(url, hashes)
        conn = db.connect(url, autocommit=True)
        # the uniform query with a generic plan, as hamming_neighbours runs (sql/0032_mih_plan.up.sql)
        conn.execute("SET plan_cache_mode = force_generic_plan")
        for m in (int(c) for c in args.chunks.split(",")):
            conn.execute("SELECT ccvec.configure_mih(%s, %s)", [m, neardup.MAX_MASKS])
            conn.execute("VACUUM ANALYZE ccvec.image_feature")
            conn.execute("VACUUM ANALYZE ccvec.mih_mask_set")
            for r in radii:
                sql = "SELECT identifier FROM ccvec.hamming_neighbours(%s, %s)"
                exact = all(
                    {row[0].int - 1 for row in conn.execute(sql, [to_signed(q), r])}
                    == set(hb.exact(hashes, q, r).tolist())
                    for q in queries
                )
                mih = best_ms(
                    lambda q, r=r, sql=sql: conn.execute(sql, [to_signed(q), r]).fetchall(),
                    queries,
                    args.passes,
                )
                uniform = best_ms(
                    lambda q, r=r, m=m: conn.execute(
                        UNIFORM, [to_signed(q), [r // m] * m, to_signed(q), r], prepare=True
                    ).fetchall(),
                    queries,
                    args.passes,
                )
                scan = best_ms(
                    lambda q, r=r: conn.execute(
                        "SELECT identifier FROM ccvec.image_feature WHERE ccvec.hamming(phash, %s) <= %s",
                        [to_signed(q), r],
                    ).fetchall(),
                    queries[: args.brute_queries],
                    1,
                )
                numpy_ms = best_ms(lambda q, r=r: hb.exact(hashes, q, r), queries, args.passes)
                plan = neardup.plan(len(hashes), m, r)
                rows.append((m, r, plan.probes, plan.candidates, mih, uniform, scan, numpy_ms, exact))
                print(f"chunks {m} radius {r} done", flush=True)
        conn.close()
    finally:
        db.discard_embedded(work / "pgdata")
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{len(hashes):,} hashes, {len(queries)} queries (SQL scan: {args.brute_queries})")
    print(
        f"{'chunks':>6s} {'radius':>6s} {'probes':>7s} {'cand.*':>8s} {'MIH ms':>8s} {'uniform':>8s} "
        f"{'scan ms':>8s} {'numpy ms':>8s} {'vs scan':>8s} {'vs numpy':>9s} {'exact':>6s}"
    )
    for m, r, probes, cand, mih, uniform, scan, numpy_ms, exact in rows:
        print(
            f"{m:6d} {r:6d} {probes:7d} {cand:8.0f} {mih:8.2f} {uniform:8.2f} {scan:8.1f} {numpy_ms:8.2f} "
            f"{scan / mih:7.1f}x {mih / numpy_ms:8.2f}x {exact!s:>6s}"
        )
    print("* probes and expected candidates per query of ccvec.hamming_neighbours if hashes were uniform")
    print("  (real pHashes cluster: more candidates); uniform = every chunk probed at floor(r / chunks)")


if __name__ == "__main__":
    main()
