"""`ccvec run`: the whole job for some sources, rerunnable.

Each step does only what is new: loading skips embedded images, dedup runs only when an image has
no group, the graph is extended (not rebuilt) when its settings match, clustering and the score
refresh run only when their input changed. The outputs (report and cluster folders in OUT) cover
the images of the given sources only, and OUT is refreshed in place (see ccvec.outdir).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from ccvec import db, defaults, migrate, scores
from ccvec.errors import CcvecError, counted
from ccvec.export import ClusterFiles, Prefixed, loaded_file, write_layout
from ccvec.load import LoadOptions, LoadSummary, gone_files, load
from ccvec.outdir import OutDir
from ccvec.sources import SKIPPED, BadRow, SourceItem, local_path, open_source

if TYPE_CHECKING:
    from ccvec.report import ReportData

Progress = Callable[[str, int, int], None]  # (stage, done, total)
Say = Callable[[str], None]
Entries = Sequence[SourceItem | BadRow]  # a source's listing, read once
Loader = Callable[[str, LoadOptions, Entries], LoadSummary]

METHOD_NAMES = {"mutual": "mutual-knn-components", "knn": "knn-components", "average": "average-linkage-rac"}


@dataclass(frozen=True)
class RunOptions:
    model: str = defaults.MODEL
    k: int = defaults.GRAPH_K
    sim: float | None = None  # None: Louvain (the default); else imagecluster's similarity index
    method: str = defaults.CLUSTER_METHOD  # with a sim
    load: LoadOptions = field(default_factory=LoadOptions)
    copy: bool = False  # cluster folders hold copies instead of symlinks


@dataclass
class RunSummary:
    sources: list[str]
    images: int = 0  # loaded images of the sources
    loads: list[LoadSummary] = field(default_factory=list)
    steps: dict[str, str] = field(default_factory=dict)  # step -> what it did
    out_written: int = 0
    out_removed: int = 0

    @property
    def loaded(self) -> int:
        return sum(s.loaded for s in self.loads)

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.loads)


def normalise_sources(sources: list[str]) -> list[str]:
    """Absolute paths (the identity of a source in load_run); refuses sources that do not exist."""
    if not sources:
        raise CcvecError("give at least one SOURCE: a folder, an image file or a CSV/JSONL manifest")
    out = []
    for source in sources:
        path = Path(source).expanduser()
        if not path.exists():
            raise CcvecError(f"{source}: no such folder or file")
        resolved = str(path.resolve())
        if resolved not in out:
            out.append(resolved)
    return out


def source_identifiers(source: str) -> tuple[list[uuid.UUID], int]:
    """(identifiers of the source's items, number of bad manifest rows)."""
    return identifiers_of(list(open_source(source)))


def identifiers_of(entries: Entries) -> tuple[list[uuid.UUID], int]:
    """(identifiers of the listed items, number of bad rows; a folder's other files are not bad)."""
    ids = [entry.identifier for entry in entries if not isinstance(entry, BadRow)]
    bad = sum(isinstance(entry, BadRow) and entry.stage != SKIPPED for entry in entries)
    return ids, bad


def load_listed(source: str, options: LoadOptions, entries: Entries) -> LoadSummary:
    """`ccvec.load.load` of a source whose listing was read already."""
    return load(source, options, entries=entries)


def run(
    sources: list[str],
    out: Path | None = None,
    options: RunOptions = RunOptions(),
    loader: Loader = load_listed,
    on_progress: Progress | None = None,
    say: Say | None = None,
) -> RunSummary:
    """Everything for `sources`, then the report and cluster folders in `out` (when given)."""
    say = say or (lambda text: None)
    sources = normalise_sources(sources)
    outdir = OutDir.open(out) if out is not None else None  # refuse a foreign OUT before any work
    try:
        return _run(sources, outdir, options, loader, on_progress, say)
    finally:
        if outdir is not None:  # a failed run lets the next command write OUT at once
            outdir.release()


def _run(
    sources: list[str],
    outdir: OutDir | None,
    options: RunOptions,
    loader: Loader,
    on_progress: Progress | None,
    say: Say,
) -> RunSummary:
    """`run` once OUT is open (and locked)."""
    summary = RunSummary(sources)
    scope: list[uuid.UUID] = []
    empty = []
    # Each source is listed once (a folder walk or a manifest parse costs ~0.1 ms per image), for
    # the scope of the outputs here and for the load below.
    remote_only = options.load.fetch_policy.remote_only
    listings = {source: list(open_source(source, remote_only)) for source in sources}
    for source, entries in listings.items():
        ids, bad = identifiers_of(entries)
        if not ids and not bad:
            empty.append(source)
        scope.extend(ids)
    if len(empty) == len(sources):
        raise CcvecError(
            f"no images in {', '.join(sources)}: ccvec looks for image files (.jpg, .png, .webp, ...) "
            "in folders and their subfolders, or reads a CSV/JSONL manifest"
        )
    for source in empty:
        say(f"{source}: no images here (files ending in .jpg, .png, .webp, ...)")
    upgraded = migrate.upgrade(db.resolve_url(), on_step=_schema_stage(on_progress))
    if upgraded.start is not None and upgraded.steps:  # an older ccvec's catalog: say what changed
        say(upgraded.describe())
    if options.sim is not None:  # a bad --sim fails now, not after the load
        from ccvec import graph

        with db.connection() as conn:
            graph.check_sim(conn, options.sim)
    for source in sources:
        summary.loads.append(loader(source, options.load, listings.pop(source)))
    with db.connection() as conn:
        changed = summary.loaded > 0
        changed |= dedup_step(conn, options, summary, on_progress)
        changed |= graph_step(conn, options, summary, on_progress)
        clustered = cluster_step(conn, options, summary)
        changed |= clustered
        scores_step(conn, changed, summary, on_progress)
        for line in scores.unmetered(conn):  # metrics in the catalog that popularity ignores
            say(line)
        label_step(conn, summary, clustered)
        if outdir is not None:
            write_outputs(conn, outdir, scope, sources, options, summary, on_progress)
        summary.images = _one(conn, "SELECT ccvec.scope_size(%s)", [list(dict.fromkeys(scope))])
    return summary


# ---------------------------------------------------------------- steps


def _one(conn: psycopg.Connection, sql: str, args: list[Any] | None = None) -> Any:
    """The single value of a query that always returns one row."""
    return db.fetch_row(conn.execute(sql, args), sql)[0]


def _schema_stage(on_progress: Progress | None) -> migrate.StepReport | None:
    """The progress of the migrations as a stage named after the one running."""
    if on_progress is None:
        return None
    return lambda revision, number, total: on_progress(f"schema: {revision}", number - 1, total)


def _stage(on_progress: Progress | None, name: str) -> Callable[[int, int], None] | None:
    return (lambda done, total: on_progress(name, done, total)) if on_progress else None


def dedup_step(
    conn: psycopg.Connection, options: RunOptions, summary: RunSummary, on_progress: Progress | None
) -> bool:
    """Group images that have no duplicate group yet; nothing when every image has one."""
    from ccvec import neardup

    ungrouped = _one(conn, "SELECT ccvec.ungrouped_images()")
    conn.commit()
    if ungrouped == 0:
        summary.steps["dedup"] = "up to date"
        return False
    neardup.dedup(conn, model=options.model, on_progress=_stage(on_progress, "grouping duplicates"))
    report = neardup.report(conn)
    summary.steps["dedup"] = (
        f"{counted(report.groups, 'near-duplicate group')} in the database "
        f"({counted(report.duplicates, 'duplicate')})"
    )
    return True


def graph_step(
    conn: psycopg.Connection, options: RunOptions, summary: RunSummary, on_progress: Progress | None
) -> bool:
    """Extend the current graph when its k and model match, else build one; needs two images."""
    from ccvec import graph

    embedded = _one(conn, "SELECT ccvec.embedding_count(%s)", [options.model])
    conn.commit()
    if embedded < 2:
        summary.steps["graph"] = f"skipped: {embedded} image(s) embedded, neighbours need two"
        return False
    current = graph.current(conn)
    if current is not None and current.k == options.k and current.model == options.model:
        added = graph.add_new(conn, _stage(on_progress, "graph: adding"))
        summary.steps["graph"] = (
            f"{counted(added, 'image')} added to graph run {current.id}" if added else "up to date"
        )
        return added > 0
    built = graph.build(conn, options.k, options.model, on_progress=_stage(on_progress, "graph"))
    recall = f"{built.recall:.3f}" if built.recall is not None else "n/a"
    resumed = "" if built.resumed_with is None else f" (resumed: {built.resumed_with:,} had their edges)"
    summary.steps["graph"] = (
        f"run {built.id}, {counted(built.images, 'image')}, ef_search {built.ef_search}, "
        f"recall@{options.k} {recall}{resumed}"
    )
    return True


def cluster_step(conn: psycopg.Connection, options: RunOptions, summary: RunSummary) -> bool:
    """Cluster unless the newest default-level run is on the current graph, with these settings,
    and labels every image of it."""
    from ccvec import clusters, graph

    current = graph.current(conn)
    if current is None:
        summary.steps["cluster"] = "skipped: no graph"
        return False
    row = conn.execute("SELECT * FROM ccvec.default_cluster_run(%s)", [current.id]).fetchone()
    conn.commit()
    wanted = "louvain" if options.sim is None else METHOD_NAMES.get(options.method, options.method)
    same_sim = options.sim is None or (row is not None and abs(row[1] - options.sim) < 1e-6)
    if row and same_sim and row[2] == wanted and row[3] == current.images:
        summary.steps["cluster"] = f"up to date (run {row[0]})"
        return False
    if options.sim is None:
        run_id = clusters.cluster_louvain(conn)
        how = "Louvain"
    else:
        run_id = graph.cluster(conn, options.sim, options.method)
        how = f"sim {options.sim:g}"
    summary.steps["cluster"] = f"{clusters.shape(conn, run_id).describe()}, {how}"
    return True


def label_step(conn: psycopg.Connection, summary: RunSummary, clustered: bool) -> None:
    """Name the clusters of the current default run (after the refresh: labels read inferred tags);
    `clustered`: this run made that clustering (its names are new, not up to date)."""
    from ccvec import clusters

    run_id = _one(conn, "SELECT ccvec.newest_cluster_run(%s)", ["default"])
    if run_id is None:
        return
    if _one(conn, "SELECT ccvec.cluster_run_labelled(%s)", [run_id]):
        conn.commit()
        # named when clustered, renamed by the refresh when tags change
        summary.steps["labels"] = "every cluster named" if clustered else "up to date"
        return
    labelled = clusters.label(conn, run_id)
    summary.steps["labels"] = f"{counted(labelled, 'cluster')} named"


def scores_step(
    conn: psycopg.Connection, changed: bool, summary: RunSummary, on_progress: Progress | None
) -> bool:
    """Refresh when anything upstream changed or the scores were never computed."""
    populated = _one(conn, "SELECT ccvec.view_populated('image_score')")
    stale = _one(conn, "SELECT ccvec.popularity_metrics_stale()")  # a metric set since the refresh
    # the graph, a clustering, catalog rows... changed since the last refresh started: a run
    # interrupted before its refresh finished, or the separate commands
    stale = stale or _one(conn, "SELECT ccvec.scores_stale()")
    # images without scores: a run interrupted during its refresh, or the separate commands
    stale = stale or (populated and _one(conn, "SELECT ccvec.unscored_images()") > 0)
    conn.commit()
    if not changed and populated and not stale:
        summary.steps["scores"] = "up to date"
        return False
    stages = scores.refresh_stage_count(conn)
    done = 0

    def stage(name: str, seconds: float) -> None:
        nonlocal done
        done += 1
        if on_progress:
            on_progress(f"scores: {name}", done, stages)

    scores.refresh(conn, on_stage=stage)
    summary.steps["scores"] = "refreshed"
    return True


# ---------------------------------------------------------------- outputs


def write_outputs(
    conn: psycopg.Connection,
    outdir: OutDir,
    scope: list[uuid.UUID] | None,
    sources: list[str],
    options: RunOptions,
    summary: RunSummary,
    on_progress: Progress | None,
) -> None:
    """The report and the cluster folders, refreshed in place; unchanged data rewrites nothing."""
    from ccvec import report

    level = report.cluster_level(conn)
    ids = list(dict.fromkeys(scope)) if scope is not None else None
    gone = gone_images(conn, sources, ids) if ids is not None else None
    data = report.read(conn, ids, sources, level, gone)
    fingerprint = f"{data.fingerprint()} copy={options.copy}"
    if outdir.previous.get("fingerprint") == fingerprint and all(
        outdir.exists(rel) for rel in outdir.previous.get("files", [])
    ):
        for rel in outdir.previous["files"]:
            outdir.keep(rel)
        summary.steps["report"] = f"up to date ({outdir.root / 'index.html'})"
    else:
        result = report.write(data, outdir, options.load.fetch_policy, on_progress)
        folders = write_folders(data, outdir, options.copy)
        summary.steps["report"] = (
            f"{outdir.root / 'index.html'}: {counted(result.images, 'image')}, "
            f"{counted(result.clusters, 'cluster')}, {counted(result.singletons, 'singleton')}, "
            f"{counted(result.groups, 'duplicate group')}; {counted(result.thumbnails_made, 'new thumbnail')}"
            f"; {counted(folders, 'file')} in cluster folders"
        )
    meta = {"sources": sources if scope is not None else None, "fingerprint": fingerprint}
    summary.out_written, summary.out_removed = outdir.commit(meta)


def gone_images(conn: psycopg.Connection, sources: list[str], ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Images loaded before from the folders among `sources` whose files are gone since (what the
    load notes), with the path the note names: the report of those folders leaves them out. A
    manifest or a file has none."""
    listed = set(ids)
    gone: dict[uuid.UUID, str] = {}
    for source in sources:
        gone.update(gone_files(conn, source, listed))
    return gone


def write_folders(data: ReportData, outdir: OutDir, copy: bool) -> int:
    """The clusters under clusters/ as `ccvec export-clusters` lays them out (export.write_layout):
    symlinks, or copies (--copy) of files whose bytes are still the image loaded. Returns how many
    files."""
    found = _loaded_files(data, check_bytes=copy)
    groups = [
        ClusterFiles(
            c["cluster"],
            c["name"],
            [found[i] for i in data.members.get(c["cluster"], []) if i in found],
            found.get(c["medoid"]),
            c.get("label_source"),
        )
        for c in data.clusters
    ]
    alone = [found[i] for i, r in data.images.items() if r["cluster"] is None and i in found]
    return write_layout(groups, alone, Prefixed(outdir, "clusters"), copy)


def _loaded_files(data: ReportData, check_bytes: bool) -> dict[uuid.UUID, Path]:
    """Each image's local file, resolved; with `check_bytes`, only files still holding the image
    that was loaded (a copy must not take whatever a catalog URL names now)."""
    found: dict[uuid.UUID, Path] = {}
    for identifier, row in data.images.items():
        if check_bytes:
            path = loaded_file(row["url"], bytes.fromhex(row["content_sha256"]))
        else:
            local = local_path(row["url"] or "")
            path = local.resolve() if local is not None and local.exists() else None
        if path is not None:
            found[identifier] = path
    return found


def report_only(
    out: Path, sources: list[str] | None = None, on_progress: Progress | None = None
) -> RunSummary:
    """`ccvec report OUT`: rewrite the report from the database, for the sources OUT was made
    from (or those given; the whole database for a new OUT without sources)."""
    outdir = OutDir.open(out, "OUT")
    try:
        sources = normalise_sources(sources) if sources else outdir.previous.get("sources")
        summary = RunSummary(sources or [])
        with db.connection() as conn:
            migrate.require_current(conn)
            scope: list[uuid.UUID] | None = None
            if sources:
                ids: list[uuid.UUID] = []
                for source in sources:
                    if not Path(source).exists():
                        raise CcvecError(f"{source} (a source of {out}) is gone: give the sources again")
                    ids.extend(source_identifiers(source)[0])
                scope = ids
            else:
                sources = [r[0] for r in conn.execute("SELECT * FROM ccvec.loaded_sources()")]
            write_outputs(conn, outdir, scope, sources, RunOptions(), summary, on_progress)
    finally:
        outdir.release()  # a failure lets the next command write OUT at once (and leaves no new OUT)
    return summary
