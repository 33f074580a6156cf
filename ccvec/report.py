"""The HTML report: a static, self-contained site in OUT that a person opens from file://.

Data comes from one SQL function per section (`sql/0010_report.up.sql`: images, clusters, cluster
members, duplicates, neighbours, inferred tags, score details, errors), each limited to the images
of the sources; this module turns it into pages with the Jinja2 templates of `ccvec/templates/`
(autoescaped: catalog titles and URLs are data, never markup). Thumbnails are generated into OUT
and named by the image's content hash, so a rerun makes only those of new images. Long lists are
paginated so that a 100k-image report stays a set of small pages.

    index.html                overview: counts, score histograms, cluster sizes, largest clusters
    clusters-N.html           clusters by size (medoid first), singletons-N.html, duplicates-N.html
    errors-N.html             inputs that failed
    cluster/C-N.html          one cluster's members
    image/ab/<uuid>.html      one image: metadata, neighbours, duplicates, tags, scores and why
    thumbs/ab/<sha256>.webp   thumbnails
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from jinja2 import Environment, PackageLoader, select_autoescape
from PIL import Image, ImageOps
from psycopg.rows import dict_row

from ccvec.decode import for_display
from ccvec.errors import counted
from ccvec.fetch import FetchError, FetchPolicy, fetch
from ccvec.load import GONE
from ccvec.outdir import OutDir
from ccvec.sources import IMAGE_EXTENSIONS, NOTED, display_path, local_path, printable, readable_source

THUMB_SIZE = 256
THUMB_QUALITY = 78
CLUSTERS_PER_PAGE = 48
IMAGES_PER_PAGE = 120
GROUPS_PER_PAGE = 30
ERRORS_PER_PAGE = 500
PREVIEW_CLUSTERS = 12
NEIGHBOURS_SHOWN = 10
HISTOGRAM_BINS = 20
REPORT_FORMAT = 1  # part of the fingerprint, with the templates: a new layout rewrites every page
TEMPLATES = Path(__file__).resolve().parent / "templates"

Progress = Callable[[str, int, int], None]  # (stage, done, total)
Row = dict[str, Any]  # one row of a report function, by column name


# ---------------------------------------------------------------- data


@dataclass
class ReportData:
    """Everything the pages show, read with one SQL function per section."""

    sources: list[str]
    level: str
    images: dict[uuid.UUID, Row]
    clusters: list[Row]
    members: dict[int, list[uuid.UUID]]
    duplicates: list[list[Row]]
    neighbours: dict[uuid.UUID, list[Row]]
    tags: dict[uuid.UUID, list[Row]]
    details: dict[uuid.UUID, Row]
    errors: list[Row]
    histograms: list[Row] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)  # paths of the report's folders' files gone since
    # they were loaded: left out

    def fingerprint(self) -> str:
        """A hash of the data and the templates: an unchanged fingerprint means unchanged pages."""
        digest = hashlib.sha256(f"report {REPORT_FORMAT}".encode())
        for template in sorted(TEMPLATES.iterdir()):
            digest.update(template.name.encode() + template.read_bytes())
        for part in (
            self.sources,
            self.level,
            sorted(self.images.items()),
            self.clusters,
            self.duplicates,
            sorted(self.neighbours.items()),
            sorted(self.tags.items()),
            sorted(self.details.items()),
            # what the errors page shows: a rerun records the same failures and skipped files again
            # under a new load run, which changes no page
            [(e["source"], e["stage"], e["reason"]) for e in self.errors],
            self.gone,
        ):
            digest.update(json.dumps(part, default=str, sort_keys=True).encode())
        return digest.hexdigest()


def _rows(conn: psycopg.Connection, sql: str, args: Sequence[Any]) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, args).fetchall()


def read_images(conn: psycopg.Connection, ids: list[uuid.UUID] | None, level: str) -> dict[uuid.UUID, Row]:
    rows = _rows(conn, "SELECT * FROM ccvec.report_images(%s, %s)", [ids, level])
    return {r["identifier"]: r for r in rows}


def read_clusters(conn: psycopg.Connection, ids: list[uuid.UUID] | None, level: str) -> list[Row]:
    """Clusters by size; `label` falls back to "cluster N" until clusters are labelled."""
    rows = _rows(conn, "SELECT * FROM ccvec.report_clusters(%s, %s)", [ids, level])
    for r in rows:
        r["name"] = r.get("label") or f"cluster {r['cluster']}"
        # members loaded from sources outside this report (an image alone here is not a singleton)
        r["elsewhere"] = max(0, (r.get("catalog_size") or r["size"]) - r["size"])
    return rows


def read_members(
    conn: psycopg.Connection, ids: list[uuid.UUID] | None, level: str
) -> dict[int, list[uuid.UUID]]:
    members: dict[int, list[uuid.UUID]] = {}
    for r in _rows(conn, "SELECT * FROM ccvec.report_cluster_members(%s, %s)", [ids, level]):
        members.setdefault(r["cluster"], []).append(r["identifier"])
    return members


def read_duplicates(conn: psycopg.Connection, ids: list[uuid.UUID] | None) -> list[list[Row]]:
    groups: dict[uuid.UUID, list[Row]] = {}
    for r in _rows(conn, "SELECT * FROM ccvec.report_duplicates(%s)", [ids]):
        groups.setdefault(r["group_id"], []).append(r)
    return sorted(groups.values(), key=lambda g: (-len(g), str(g[0]["group_id"])))


def read_neighbours(conn: psycopg.Connection, ids: list[uuid.UUID] | None) -> dict[uuid.UUID, list[Row]]:
    out: dict[uuid.UUID, list[Row]] = {}
    for r in _rows(conn, "SELECT * FROM ccvec.report_neighbours(%s)", [ids]):
        out.setdefault(r["identifier"], []).append(r)
    return out


def read_tags(conn: psycopg.Connection, ids: list[uuid.UUID] | None) -> dict[uuid.UUID, list[Row]]:
    out: dict[uuid.UUID, list[Row]] = {}
    for r in _rows(conn, "SELECT * FROM ccvec.report_tags(%s)", [ids]):
        out.setdefault(r["identifier"], []).append(r)
    return out


def read_details(conn: psycopg.Connection, ids: list[uuid.UUID] | None) -> dict[uuid.UUID, Row]:
    return {r["identifier"]: r for r in _rows(conn, "SELECT * FROM ccvec.report_score_detail(%s)", [ids])}


def read_errors(conn: psycopg.Connection, sources: list[str]) -> list[Row]:
    return _rows(conn, "SELECT * FROM ccvec.report_errors(%s)", [sources])


def read(
    conn: psycopg.Connection,
    ids: list[uuid.UUID] | None,
    sources: list[str],
    level: str = "default",
    gone: Mapping[uuid.UUID, str] | None = None,
) -> ReportData:
    """The report's data for the images `ids` (None: every image) and the errors of `sources`;
    `gone`, images of the sources' folders whose files are gone since they were loaded (each with
    its path), are left out of the group and cluster sizes too (see leave_out)."""
    images = read_images(conn, ids, level)
    data = ReportData(
        sources=sources,
        level=level,
        images=images,
        clusters=read_clusters(conn, ids, level),
        members=read_members(conn, ids, level),
        duplicates=read_duplicates(conn, ids),
        neighbours=read_neighbours(conn, ids),
        tags=read_tags(conn, ids),
        details=read_details(conn, ids),
        errors=read_errors(conn, sources),
    )
    if gone:
        leave_out(data, _rows(conn, "SELECT * FROM ccvec.report_gone(%s, %s)", [list(gone), level]), gone)
    conn.commit()
    data.histograms = histograms(images.values())
    return data


def leave_out(data: ReportData, gone: list[Row], paths: Mapping[uuid.UUID, str]) -> None:
    """Take the gone images (rows of ccvec.report_gone) out of the sizes the pages show: a
    group's or a cluster's members elsewhere are then only those loaded from other sources, a
    group left with one member is no group, and an image whose cluster mates are all gone is a
    singleton. The pages, member lists and neighbours cover the images listed already. `paths`:
    the gone images' paths, as the load's notes name them."""
    data.gone = sorted(paths.values())
    in_group = Counter(r["group_id"] for r in gone if r["group_id"] is not None)
    kept_gone = {r["group_id"] for r in gone if r["canonical"]}
    in_cluster = Counter(r["cluster"] for r in gone if r["cluster"] is not None)
    groups = []
    for group in data.duplicates:
        size = group[0]["group_size"] - in_group[group[0]["group_id"]]
        if size > 1:
            for member in group:
                member["group_size"] = size
                member["canonical_gone"] = member["group_id"] in kept_gone
            groups.append(group)
    data.duplicates = groups  # in the order read (largest first, counted before the gone went)
    for cluster in data.clusters:
        if cluster.get("catalog_size") is not None:
            cluster["catalog_size"] -= in_cluster[cluster["cluster"]]
            cluster["elsewhere"] = max(0, cluster["catalog_size"] - cluster["size"])


def cluster_level(conn: psycopg.Connection) -> str:
    """'default' when there is such a level, else the first level of the current labels."""
    levels = [r[0] for r in conn.execute("SELECT * FROM ccvec.cluster_levels()")]
    conn.commit()
    return "default" if "default" in levels or not levels else levels[0]


# ---------------------------------------------------------------- charts


def histograms(images: Iterable[Row]) -> list[Row]:
    """Score histograms for every score column present (novelty too, once the catalog has it)."""
    rows = list(images)
    charts = []
    for name in ("popularity", "authority", "novelty"):
        values = [
            r[name]
            for r in rows
            if r.get(name) is not None and (name != "popularity" or r["popularity_provenance"] != "none")
        ]
        if values:
            charts.append(histogram_chart(name, values))
    return charts


def histogram_chart(name: str, values: list[float], bins: int = HISTOGRAM_BINS) -> Row:
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int(v * bins)))] += 1
    return {
        "title": name,
        "bars": [{"label": f"{i / bins:.2f}-{(i + 1) / bins:.2f}", "count": c} for i, c in enumerate(counts)],
        "axis": ("0", "0.5", "1"),
        "total": len(values),
        "mean": sum(values) / len(values),
    }


def size_chart(sizes: list[int]) -> Row:
    """Clusters per size bucket (1, 2, 3-4, 5-8, ...): how the photos split."""
    if not sizes:
        return {
            "title": "cluster sizes",
            "bars": [],
            "axis": ("", "", ""),
            "total": 0,
            "mean": 0,
            "empty": "No cluster yet: clusters need two or more similar images.",
        }
    top = max(sizes)
    buckets = [(1, 1), (2, 2)]
    while buckets[-1][1] < top:
        lo = buckets[-1][1] + 1
        buckets.append((lo, 2 * (lo - 1)))
    bars = []
    for lo, hi in buckets:
        label = str(lo) if lo == hi else f"{lo}-{hi}"
        # each bar is marked with its smallest size (1, 2, 3, 5, 9, ...); the tooltip gives the range
        bars.append(
            {"label": f"size {label}", "count": sum(1 for s in sizes if lo <= s <= hi), "tick": str(lo)}
        )
    return {
        "title": "cluster sizes",
        "bars": bars,
        "axis": ("", "", ""),
        "total": sum(1 for s in sizes if s > 1),
        "singletons": sum(1 for s in sizes if s == 1),
        "mean": sum(sizes) / len(sizes),
    }


# ---------------------------------------------------------------- thumbnails


def thumb_path(sha: str) -> str:
    return f"thumbs/{sha[:2]}/{sha}-{THUMB_SIZE}.webp"


def make_thumbnail(data: bytes) -> tuple[bytes, int, int]:
    """A WebP at most THUMB_SIZE on its longer side, upright per EXIF."""
    with Image.open(io.BytesIO(data)) as opened:
        opened.draft("RGB", (THUMB_SIZE * 2, THUMB_SIZE * 2))  # JPEG: decode at reduced scale
        image = for_display(ImageOps.exif_transpose(opened))
        image.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, "WEBP", quality=THUMB_QUALITY, method=4)
        return buffer.getvalue(), image.width, image.height


def write_thumbnails(
    images: dict[uuid.UUID, Row],
    out: OutDir,
    policy: FetchPolicy,
    on_progress: Callable[[int, int], None] | None = None,
    workers: int = 4,
) -> tuple[int, int]:
    """Thumbnails of images not cached in OUT yet; returns (made, failed). An image whose bytes
    cannot be read again gets no thumbnail (its pages show a placeholder), and so does a local file
    replaced under its name since it was loaded: its thumbnail, named by the content loaded, would
    show another picture than the one its pHash, embedding, group and cluster are of."""
    todo: dict[str, str] = {}
    for row in images.values():
        sha = row["content_sha256"]
        rel = thumb_path(sha)
        row["thumb"] = rel
        if out.exists(rel) or rel in out.files:
            out.keep(rel)
        elif out.reuse(rel):  # made by a refresh that was interrupted
            pass
        elif sha not in todo:
            todo[sha] = row["url"]
    made = failed = 0

    def one(item: tuple[str, str]) -> tuple[str, bytes | None]:
        sha, url = item
        try:
            data = fetch(url, policy)
            if local_file(url) is not None and hashlib.sha256(data).hexdigest() != sha:
                return sha, None  # changed since loaded (the load's note says so), as export refuses it
            return sha, make_thumbnail(data)[0]
        except (FetchError, OSError, ValueError, Image.DecompressionBombError):
            return sha, None

    with ThreadPoolExecutor(workers) as pool:
        for done, (sha, blob) in enumerate(pool.map(one, sorted(todo.items())), 1):
            if blob is None:
                failed += 1
            else:
                out.write_bytes(thumb_path(sha), blob)
                made += 1
            if on_progress:
                on_progress(done, len(todo))
    written = set(out.files)
    for row in images.values():
        if row["thumb"] not in written:
            row["thumb"] = None
    return made, failed


# ---------------------------------------------------------------- pages


def http_link(url: str | None) -> str | None:
    """The URL when it is http(s) (a link), else None (shown as text): never javascript: or data:."""
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None


def local_file(url: str | None) -> Path | None:
    """The local file a catalog URL names: a file URI without a host (or localhost), else None. A
    `file://host/...` URL is not local: linking it would fetch from that host (an SMB share)."""
    path = local_path(url) if url else None
    if path is None or urlsplit(url or "").netloc.lower() not in ("", "localhost"):
        return None
    return path


def file_path(url: str | None) -> str | None:
    """A local file's path, readable (percent-escapes decoded), for the page to show: control
    characters and bidirectional overrides as escapes, so that "a<U+202E>gpj.exe" is not shown
    as "aexe.jpg" and a newline in a name is seen."""
    path = local_file(url)
    return printable(display_path(path)) if path is not None else None


def readable(source: str) -> str:
    """An error's source (a manifest row, a path or URL) as the page shows it: printable."""
    return printable(readable_source(source))


def file_href(url: str | None) -> str | None:
    """A local file's link, rebuilt from its path (never the catalog's text), or None. Only a file
    named as an image is linked: a manifest may name `page.html` that decodes as a GIF (a GIF/HTML
    polyglot), and a browser opening that link would run its script; such a path is shown as text."""
    path = local_file(url)
    if path is None or not path.is_absolute() or path.suffix.lower() not in IMAGE_EXTENSIONS:
        return None
    return path.as_uri()


SHORT_TITLE = 200  # characters of a title in a tile, its tooltip and alt text (the tile shows 2 lines)


def short(title: str | None, limit: int = SHORT_TITLE) -> str:
    """A title cut for the tiles that repeat it (caption, tooltip, alt): a 5,000-character title in
    120 tiles would make a 1.8 MB page; the image's own page shows it whole."""
    if not title:
        return ""
    return title if len(title) <= limit else title[: limit - 1] + "…"


def image_page(identifier: uuid.UUID) -> str:
    text = str(identifier)
    return f"image/{text[:2]}/{text}.html"


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("ccvec", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["http_link"] = http_link
    env.filters["file_path"] = file_path
    env.filters["file_href"] = file_href
    env.filters["readable"] = readable
    env.filters["printable"] = printable
    env.filters["short"] = short
    env.filters["pct"] = lambda v: "-" if v is None else f"{v:.3f}"
    env.filters["num"] = lambda v: "-" if v is None else f"{v:,}"
    env.filters["counted"] = counted  # {{ n | counted('image') }}: "1 image", "2 images"
    env.globals["image_page"] = image_page
    return env


def pages(total: int, per_page: int) -> int:
    return max(1, math.ceil(total / per_page))


def _pager(prefix: str, page: int, count: int) -> Row:
    return {"page": page, "count": count, "prefix": prefix}


@dataclass
class ReportSummary:
    pages: int
    thumbnails_made: int
    thumbnails_failed: int
    images: int
    clusters: int
    singletons: int
    groups: int
    errors: int


def write(
    data: ReportData,
    out: OutDir,
    policy: FetchPolicy | None = None,
    on_progress: Progress | None = None,
) -> ReportSummary:
    """Write every page and thumbnail of the report into `out` (committed by the caller)."""
    progress = on_progress or (lambda stage, done, total: None)
    made, failed = write_thumbnails(
        data.images, out, policy or FetchPolicy(), lambda d, t: progress("thumbnails", d, t)
    )
    env = environment()
    images = data.images
    clusters = [c for c in data.clusters if c["size"] > 1]
    # alone in this report: true singletons first, then images whose cluster is in other sources,
    # then images with no cluster yet (a graph needs two images), so that no image goes unlisted
    singles = sorted((c for c in data.clusters if c["size"] == 1), key=lambda c: c["elsewhere"] > 0)
    unclustered = [
        {"medoid": i, "elsewhere": 0, "unclustered": True}
        for i, r in sorted(images.items())
        if r["cluster"] is None
    ]
    by_cluster = {c["cluster"]: c for c in data.clusters}
    in_cluster = {i: by_cluster.get(r["cluster"]) for i, r in images.items()}
    group_of = {m["identifier"]: g for g in data.duplicates for m in g}
    listed = data.errors  # failures first, then notes (ccvec.report_errors orders them)
    failures = [e for e in listed if e["stage"] not in NOTED]
    summary = {
        "images": len(images),
        "clusters": len(clusters),
        "singletons": sum(1 for c in singles if not c["elsewhere"]),
        "alone_here": sum(1 for c in singles if c["elsewhere"]),
        "groups": len(data.duplicates),
        "duplicates": sum(1 for g in data.duplicates for m in g if not m["canonical"]),
        "errors": len(failures),
        "noted": len(listed) - len(failures),
        "unclustered": len(unclustered),
        "gone": len(data.gone),
        # the errors page lists them when the last load noted each (not after `ccvec report` alone:
        # files deleted since, or restored since, make its notes out of date)
        "gone_listed": set(data.gone) <= {e["source"] for e in listed if e["reason"] == GONE},
    }
    singles += unclustered
    nav = {
        "clusters": pages(len(clusters), CLUSTERS_PER_PAGE),
        "singletons": pages(len(singles), IMAGES_PER_PAGE),
        "duplicates": pages(len(data.duplicates), GROUPS_PER_PAGE),
        "errors": pages(len(listed), ERRORS_PER_PAGE),
    }
    common = {"summary": summary, "nav": nav, "images": images, "members": data.members, "level": data.level}
    written = 0

    def render(rel: str, template: str, **context: Any) -> None:
        nonlocal written
        root = "../" * rel.count("/")
        out.write_text(rel, env.get_template(template).render(root=root, **common, **context))
        written += 1

    out.write_text("style.css", env.get_template("style.css").render())
    render(
        "index.html",
        "index.html.j2",
        # sizes in this report; an image alone here whose cluster is elsewhere is not a singleton
        charts=[
            *data.histograms,
            size_chart([c["size"] for c in data.clusters if c["size"] > 1 or not c["elsewhere"]]),
        ],
        preview=clusters[:PREVIEW_CLUSTERS],
        errors=failures[:20],
        sources=data.sources,
    )
    for page in range(1, nav["clusters"] + 1):
        chunk = clusters[(page - 1) * CLUSTERS_PER_PAGE : page * CLUSTERS_PER_PAGE]
        render(
            f"clusters-{page}.html",
            "clusters.html.j2",
            clusters=chunk,
            paging=_pager("clusters", page, nav["clusters"]),
        )
    for page in range(1, nav["singletons"] + 1):
        chunk = singles[(page - 1) * IMAGES_PER_PAGE : page * IMAGES_PER_PAGE]
        render(
            f"singletons-{page}.html",
            "singletons.html.j2",
            singles=chunk,
            paging=_pager("singletons", page, nav["singletons"]),
        )
    for page in range(1, nav["duplicates"] + 1):
        render(
            f"duplicates-{page}.html",
            "duplicates.html.j2",
            groups=data.duplicates[(page - 1) * GROUPS_PER_PAGE : page * GROUPS_PER_PAGE],
            paging=_pager("duplicates", page, nav["duplicates"]),
        )
    for page in range(1, nav["errors"] + 1):
        chunk = listed[(page - 1) * ERRORS_PER_PAGE : page * ERRORS_PER_PAGE]
        render(
            f"errors-{page}.html",
            "errors.html.j2",
            errors=chunk,
            paging=_pager("errors", page, nav["errors"]),
        )
    for done, cluster in enumerate(clusters, 1):
        ids = data.members.get(cluster["cluster"], [])
        count = pages(len(ids), IMAGES_PER_PAGE)
        for page in range(1, count + 1):
            render(
                f"cluster/{cluster['cluster']}-{page}.html",
                "cluster.html.j2",
                cluster=cluster,
                ids=ids[(page - 1) * IMAGES_PER_PAGE : page * IMAGES_PER_PAGE],
                paging=_pager(f"cluster/{cluster['cluster']}", page, count),
            )
        progress("cluster pages", done, len(clusters))
    for done, (identifier, row) in enumerate(sorted(images.items()), 1):
        render(
            image_page(identifier),
            "image.html.j2",
            image=row,
            cluster=in_cluster.get(identifier),
            neighbours=data.neighbours.get(identifier, [])[:NEIGHBOURS_SHOWN],
            group=group_of.get(identifier),
            tags=data.tags.get(identifier, []),
            detail=data.details.get(identifier),
            catalog_tags=_tag_names(row.get("tags")),
        )
        if done % 100 == 0 or done == len(images):
            progress("image pages", done, len(images))
    return ReportSummary(
        written + 1,
        made,
        failed,
        len(images),
        len(clusters),
        summary["singletons"],
        len(data.duplicates),
        len(failures),
    )


def _tag_names(tags: object) -> list[str]:
    if not isinstance(tags, list):
        return []
    return [t["name"] for t in tags if isinstance(t, dict) and isinstance(t.get("name"), str)]
