"""A/B simulator: does the analysis keep its error rates, and does the calculator predict power?

    python bench/ab_sim.py [--experiments 1000] [--sessions 4000] [--latency-images 100000]

Each simulated experiment has S sessions with a 20-result page. A result at rank r is clicked with
probability 0.25 / r^0.8 (steep rank bias, as in search logs). Half the sessions are in treatment,
where 20 % of positions show a cluster-mate whose click probability is multiplied by (1 + effect).
ccvec's analysis (Mantel-Haenszel across ranks, CMH test, alpha = 0.05) runs on each experiment.
With effect 0 the rejection rate must be ~ alpha; with an effect it is the power, shown next to
`ccvec.abtest.power_of` for the same impressions. Finally the latency of `ccvec.substitute()` for a
20-result page is measured on a synthetic catalog in the embedded database.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ccvec import abtest, db, migrate, scores
from ccvec.abtest import Stratum, mantel_haenszel

RANKS = 20
CTR = 0.25 / np.arange(1, RANKS + 1) ** 0.8


def simulate(
    rng: np.random.Generator, sessions: int, effect: float, treatment=0.5, substitution=0.2
) -> list[Stratum]:
    treated = rng.random(sessions) < treatment
    substituted = (rng.random((sessions, RANKS)) < substitution) & treated[:, None]
    p = np.broadcast_to(CTR, (sessions, RANKS)) * np.where(substituted, 1 + effect, 1)
    clicks = rng.random((sessions, RANKS)) < p
    control = ~treated[:, None] & np.ones((1, RANKS), bool)
    return [
        Stratum(
            r + 1,
            int(substituted[:, r].sum()),
            int((clicks & substituted)[:, r].sum()),
            int(control[:, r].sum()),
            int((clicks & control)[:, r].sum()),
        )
        for r in range(RANKS)
    ]


def predicted_power(sessions: int, effect: float, treatment=0.5, substitution=0.2) -> float:
    n_sub = sessions * treatment * substitution * RANKS
    n_ctl = sessions * (1 - treatment) * RANKS
    return abtest.power_of(round(n_sub), float(CTR.mean()), effect, 0.05, round(n_ctl))


def latency(images: int, calls: int = 300) -> tuple[float, float, float]:
    """ms per substitute() call for a 20-result page: mean, p50, p95."""
    work = Path(tempfile.mkdtemp(prefix="ccvec-ab-"))
    os.environ["CCVEC_HOME"] = str(work)
    rng = np.random.default_rng(1)
    try:
        url = db.start_embedded(work / "pgdata")
        migrate.upgrade(url)
        with db.connection(url) as conn:
            conn.execute(
                "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) VALUES ('m','1','x',3,'{}')"
            )
            knn = conn.execute(
                "INSERT INTO ccvec.knn_run (model, k, ef_search, is_current) VALUES ('m', 1, 40, true) "
                "RETURNING id"
            ).fetchone()[0]
            run = conn.execute(
                "INSERT INTO ccvec.cluster_run (knn_run, method, sim, threshold) "
                "VALUES (%s, 'synthetic', 0.3, 0.5) RETURNING id",
                [knn],
            ).fetchone()[0]
            ids = [uuid.UUID(int=i + 1) for i in range(images)]
            cluster = rng.integers(0, images // 10, images)
            with conn.cursor().copy("COPY ccvec.image (identifier, url) FROM STDIN") as copy:
                for ident in ids:
                    copy.write_row([ident, f"https://x/{ident}"])
            with conn.cursor().copy(
                "COPY ccvec.cluster_member (run_id, identifier, cluster) FROM STDIN"
            ) as copy:
                for ident, c in zip(ids, cluster, strict=True):
                    copy.write_row([run, ident, int(c)])
            with conn.cursor().copy(
                "COPY ccvec.knn_edge (run_id, identifier, neighbour, rank, similarity) FROM STDIN"
            ) as copy:
                for i, ident in enumerate(ids):
                    copy.write_row([knn, ident, ids[(i + 1) % images], 1, 0.9])
            conn.commit()
            scores.refresh(conn)
            abtest.create(conn, "latency", treatment_share=1.0, substitution_share=0.2)
            times = []
            for i in range(calls):
                page = [ids[j] for j in rng.choice(images, RANKS, replace=False)]
                start = time.perf_counter()
                conn.execute(
                    "SELECT * FROM ccvec.substitute('latency', %s, 'q', %s)", [f"s{i}", page]
                ).fetchall()
                conn.commit()
                times.append((time.perf_counter() - start) * 1000)
    finally:
        db.discard_embedded(work / "pgdata")
        shutil.rmtree(work, ignore_errors=True)
    times.sort()
    return statistics.mean(times), times[len(times) // 2], times[int(0.95 * (len(times) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=4000)
    parser.add_argument("--latency-images", type=int, default=100_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(
        f"{args.experiments} simulated experiments per row, {args.sessions:,} sessions x {RANKS} results, "
        f"treatment 50 %, substitution 20 %, alpha 0.05"
    )
    print(
        f"{'effect on CTR':>13s} {'rejected':>9s} {'95% interval':>15s} "
        f"{'predicted power':>16s} {'mean RD':>9s}"
    )
    for effect in (0.0, -0.05, -0.10, -0.15, -0.20):
        rejections, rds = 0, []
        for _ in range(args.experiments):
            rd, _, _, _, p = mantel_haenszel(simulate(rng, args.sessions, effect))
            rejections += p < 0.05
            rds.append(rd)
        rate = rejections / args.experiments
        half = 1.96 * (rate * (1 - rate) / args.experiments) ** 0.5
        predicted = "(alpha)" if effect == 0 else f"{predicted_power(args.sessions, effect):.3f}"
        print(
            f"{effect:+13.2f} {rate:9.3f} {f'[{rate - half:.3f}, {rate + half:.3f}]':>15s} {predicted:>16s} "
            f"{statistics.mean(rds):+9.5f}"
        )
    mean, p50, p95 = latency(args.latency_images)
    print(
        f"\nccvec.substitute() for a 20-result page over {args.latency_images:,} images in "
        f"{args.latency_images // 10:,} clusters: mean {mean:.2f} ms, p50 {p50:.2f} ms, p95 {p95:.2f} ms"
    )


if __name__ == "__main__":
    main()
