"""How the HTML report scales: time and size of the pages for N images.

The data of a real report (a database that `ccvec run` filled) is replicated to N images: each copy
keeps the clusters, duplicate groups, neighbours, tags and scores of the original, under new
identifiers, and shares its thumbnails (made once, as the content-hash cache does). Times the
read of the real data (SQL), the page writing for N images, and the commit into OUT; prints the
size per page kind. Compared with the same pages for the original size, as a ratio per image.

    DATABASE_URL=... python bench/report.py --images 20000 --out /tmp/report-bench
"""

from __future__ import annotations

import argparse
import copy
import shutil
import time
import uuid
from pathlib import Path

from ccvec import db, report
from ccvec.outdir import OutDir


def replicate(data: report.ReportData, copies: int) -> report.ReportData:
    """`copies` disjoint copies of the data, identifiers re-mapped, cluster numbers shifted."""
    out = report.ReportData(data.sources, data.level, {}, [], {}, [], {}, {}, {}, data.errors)
    shift = max((c["cluster"] for c in data.clusters), default=0) + 1
    for n in range(copies):
        ids = {i: (i if n == 0 else uuid.uuid5(i, str(n))) for i in data.images}
        for i, row in data.images.items():
            new = dict(row, identifier=ids[i])
            if new["cluster"] is not None:
                new["cluster"] += n * shift
            out.images[ids[i]] = new
        for c in data.clusters:
            out.clusters.append(dict(c, cluster=c["cluster"] + n * shift, medoid=ids[c["medoid"]]))
        for cluster, members in data.members.items():
            out.members[cluster + n * shift] = [ids[i] for i in members]
        for group in data.duplicates:
            out.duplicates.append([dict(m, identifier=ids[m["identifier"]]) for m in group])
        for i, edges in data.neighbours.items():
            out.neighbours[ids[i]] = [
                dict(e, identifier=ids[i], neighbour=ids[e["neighbour"]]) for e in edges
            ]
        for i, tags in data.tags.items():
            out.tags[ids[i]] = copy.deepcopy(tags)
        for i, detail in data.details.items():
            out.details[ids[i]] = detail
    out.clusters.sort(key=lambda c: (-c["size"], c["cluster"]))
    out.duplicates.sort(key=lambda g: (-len(g), str(g[0]["group_id"])))
    out.histograms = report.histograms(out.images.values())
    return out


def build(data: report.ReportData, target: Path) -> tuple[float, float, int, dict[str, int]]:
    shutil.rmtree(target, ignore_errors=True)
    started = time.perf_counter()
    out = OutDir.open(target)
    summary = report.write(data, out)
    written = time.perf_counter() - started
    out.commit({})
    committed = time.perf_counter() - started - written
    sizes: dict[str, int] = {}
    for path in target.rglob("*"):
        if path.is_file():
            kind = path.relative_to(target).parts[0] if path.parent != target else "top-level pages"
            sizes[kind] = sizes.get(kind, 0) + path.stat().st_size
    return written, committed, summary.pages, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/ccvec-report-bench"))
    args = parser.parse_args()
    started = time.perf_counter()
    with db.connection() as conn:
        data = report.read(conn, None, [], report.cluster_level(conn))
    read = time.perf_counter() - started
    base = len(data.images)
    copies = max(1, round(args.images / base))
    print(f"read {base:,} images' report data from the database in {read:.2f} s")
    rows = []
    for label, payload in (("original", data), (f"x{copies}", replicate(data, copies))):
        written, committed, pages, sizes = build(payload, args.out)
        n = len(payload.images)
        total = sum(sizes.values())
        rows.append((label, n, pages, written, committed, total, sizes))
        shutil.rmtree(args.out, ignore_errors=True)
    print(
        f"{'data':>10} {'images':>8} {'pages':>8} {'write s':>8} {'commit s':>9} {'ms/image':>9} "
        f"{'MB':>8} {'KB/image':>9}"
    )
    for label, n, pages, written, committed, total, _ in rows:
        print(
            f"{label:>10} {n:>8,} {pages:>8,} {written:>8.1f} {committed:>9.1f} "
            f"{1000 * (written + committed) / n:>9.2f} {total / 1e6:>8.1f} {total / 1e3 / n:>9.1f}"
        )
    ratio = ((rows[1][3] + rows[1][4]) / rows[1][1]) / ((rows[0][3] + rows[0][4]) / rows[0][1])
    print(f"time per image at {rows[1][1]:,} vs {rows[0][1]:,} images: {ratio:.2f}x")
    extra = (rows[1][3] + rows[1][4] - rows[0][3] - rows[0][4]) / (rows[1][1] - rows[0][1] or 1)
    print(f"pages alone (the copies share the original's thumbnails): {1000 * extra:.2f} ms per image")
    print(
        "bytes by kind at the larger size: "
        + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(rows[1][6].items()))
    )


if __name__ == "__main__":
    main()
