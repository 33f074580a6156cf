"""`ccvec run SOURCE... --out OUT` end to end: rerunnable, scoped to its sources, refreshing OUT in place."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from ccvec.outdir import MANIFEST, OutDir
from ccvec.sources import file_location, identity

from .images import photo, write_photos
from .tiny_model import register_tiny

MODEL = "tiny-run"


def cli(*args: str, database_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "ccvec.cli", *args], capture_output=True, text=True, env=env)


def snapshot(root: Path) -> dict[str, str | bytes]:
    """Every file under root: its bytes, or a symlink's target."""
    out: dict[str, str | bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = os.readlink(path)
        elif path.is_file():
            out[rel] = path.read_bytes()
    return out


def counts(conn: psycopg.Connection) -> dict[str, int]:
    tables = ("knn_run", "cluster_run", "duplicate_run", "visualrank_run", "image_embedding")
    found = {t: conn.execute(f"SELECT count(*) FROM ccvec.{t}").fetchone()[0] for t in tables}
    conn.commit()
    return found


def image_pages(out: Path) -> set[str]:
    return {p.stem for p in (out / "image").rglob("*.html")}


@pytest.fixture()
def tiny(conn: psycopg.Connection, tmp_path: Path) -> str:
    register_tiny(conn, tmp_path, MODEL)
    return MODEL


def test_rerun_does_nothing_new_and_a_third_adds_exactly_the_new_images(
    conn: psycopg.Connection, database_url: str, tiny: str, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    write_photos(photos, ("chelsea", "coffee", "astronaut", "camera", "rocket", "horse"))
    other = write_photos(tmp_path / "other", ("moon",))[0]  # in the database, not in this run's sources
    assert cli("load", str(other.parent), "--model", tiny, database_url=database_url).returncode == 0
    out = tmp_path / "out"
    args = ("run", str(photos), "--out", str(out), "--model", tiny, "--k", "3")

    first = cli(*args, database_url=database_url)
    assert first.returncode == 0, first.stderr
    assert "load: 6 new" in first.stdout and "labels: every cluster named" in first.stdout
    assert (out / "index.html").is_file() and (out / MANIFEST).is_file()
    expected = {str(identity(file_location(p))) for p in photos.iterdir()}
    assert image_pages(out) == expected  # the other folder's image stays out
    assert str(identity(file_location(other))) not in (out / "index.html").read_text()
    links = [p for p in (out / "clusters").rglob("*") if p.is_symlink()]  # every photo once, alone or not
    assert sorted(p.name for p in links) == sorted(p.name for p in photos.iterdir())
    with open(out / "clusters" / "labels.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert {r["folder"] for r in table} == {p.parent.relative_to(out / "clusters").as_posix() for p in links}
    assert sum(int(r["size"]) for r in table) == 6 and all(r["label"] for r in table)
    for r in (r for r in table if int(r["size"]) > 1):
        assert (out / "clusters" / r["folder"] / "README").read_text().startswith(f"cluster {r['cluster']}: ")
    before, state = snapshot(out), counts(conn)

    second = cli(*args, database_url=database_url)
    assert second.returncode == 0, second.stderr
    assert "load: 0 new, 6 already loaded" in second.stdout
    for step in ("dedup", "graph", "cluster", "labels", "scores", "report"):
        assert f"{step}: up to date" in second.stdout, second.stdout
    last_load = conn.execute("SELECT loaded FROM ccvec.load_run ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert last_load == 0
    assert counts(conn) == state  # no new graph, cluster, dedup or VisualRank runs
    assert snapshot(out) == before

    added = [photos / "extra_coins.jpg", photos / "extra_page.jpg"]
    photo("coins").convert("RGB").save(added[0])
    photo("page").convert("RGB").save(added[1])
    third = cli(*args, database_url=database_url)
    assert third.returncode == 0, third.stderr
    assert "load: 2 new, 6 already loaded" in third.stdout
    assert image_pages(out) == expected | {str(identity(file_location(p))) for p in added}
    thumbs_before = {k for k in before if k.startswith("thumbs/")}
    thumbs_after = {k for k in snapshot(out) if k.startswith("thumbs/")}
    assert thumbs_before < thumbs_after and len(thumbs_after - thumbs_before) == 2
    assert counts(conn)["knn_run"] == state["knn_run"]  # extended, not rebuilt
    manifest = json.loads((out / MANIFEST).read_text())
    assert set(manifest["files"]) == set(snapshot(out)) - {MANIFEST}

    added[1].unlink()  # an image leaves the source: its pages leave OUT, nothing else is touched
    fourth = cli(*args, database_url=database_url)
    assert fourth.returncode == 0, fourth.stderr
    assert image_pages(out) == expected | {str(identity(file_location(added[0])))}

    again = cli("report", str(out), database_url=database_url)  # the sources come from OUT's manifest
    assert again.returncode == 0, again.stderr
    assert "report: up to date" in again.stdout
    everything = cli("report", str(tmp_path / "all"), database_url=database_url)  # a new OUT: every image
    assert everything.returncode == 0, everything.stderr
    assert str(identity(file_location(other))) in image_pages(tmp_path / "all")


def test_out_with_foreign_files_is_refused_and_left_alone(
    conn: psycopg.Connection, database_url: str, tiny: str, tmp_path: Path
) -> None:
    write_photos(tmp_path / "p", ("coins", "horse"))
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    result = cli("run", str(tmp_path / "p"), "--out", str(out), "--model", tiny, database_url=database_url)
    assert result.returncode == 2
    assert "holds files ccvec did not write (notes.txt)" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert conn.execute("SELECT count(*) FROM ccvec.load_run").fetchone()[0] == 0  # refused before work

    ours = tmp_path / "ours"
    assert (
        cli(
            "run", str(tmp_path / "p"), "--out", str(ours), "--model", tiny, database_url=database_url
        ).returncode
        == 0
    )
    (ours / "image" / "stray.html").write_text("not ccvec's")
    again = cli("run", str(tmp_path / "p"), "--out", str(ours), "--model", tiny, database_url=database_url)
    assert again.returncode == 2 and "image/stray.html" in again.stderr


def test_a_second_command_writing_the_same_out_is_refused_while_the_first_runs(
    conn: psycopg.Connection, database_url: str, tiny: str, tmp_path: Path
) -> None:
    """Two `ccvec run --out OUT` at once shared OUT's staging folder: the second one's open removed
    the first one's staged files, and one of them failed naming a source image ('File exists')."""
    photos = tmp_path / "p"
    write_photos(photos, ("coins", "horse", "camera"))
    out = tmp_path / "out"
    args = ("run", str(photos), "--out", str(out), "--model", tiny, "--k", "2")
    assert cli(*args, database_url=database_url).returncode == 0
    before = snapshot(out)

    first = OutDir.open(out)  # another command in the middle of writing OUT
    first.write_text("index.html", "staged by the first command")
    for second in (cli(*args, database_url=database_url), cli("report", str(out), database_url=database_url)):
        assert second.returncode == 2, second.stdout
        assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1
        assert "is being written by another ccvec command right now" in second.stderr
    assert (out / ".ccvec-staging" / "index.html").read_text() == "staged by the first command"
    assert snapshot(out) == {**before, ".ccvec-staging/index.html": b"staged by the first command"}
    first.release()

    after = cli(*args, database_url=database_url)  # the folder is free again: an ordinary rerun
    assert after.returncode == 0, after.stderr
    assert snapshot(out) == before


def test_images_left_without_scores_are_scored_by_the_next_run(
    conn: psycopg.Connection, database_url: str, tiny: str, tmp_path: Path
) -> None:
    """A run interrupted in its score refresh (its load, groups, graph and clusters committed), or
    the same steps done by the separate commands: the next run said "scores: up to date" while the
    new images had no scores, and so did every run after it."""
    photos = tmp_path / "p"
    write_photos(photos, ("coins", "horse", "camera", "astronaut"))
    out = tmp_path / "out"
    args = ("run", str(photos), "--out", str(out), "--model", tiny, "--k", "2")
    assert cli(*args, database_url=database_url).returncode == 0
    photo("rocket").convert("RGB").save(photos / "rocket.jpg")
    for step in (
        ("load", str(photos), "--model", tiny),
        ("dedup", "--model", tiny),
        ("graph", "add"),
        ("cluster",),
    ):
        done = cli(*step, database_url=database_url)
        assert done.returncode == 0, (step, done.stderr)

    rerun = cli(*args, database_url=database_url)
    assert rerun.returncode == 0, rerun.stderr
    assert "scores: refreshed" in rerun.stdout, rerun.stdout
    scored = "SELECT (SELECT count(*) FROM ccvec.image_score), (SELECT count(*) FROM ccvec.catalog)"
    assert conn.execute(scored).fetchone() == (5, 5)
    conn.commit()
    assert "scores: up to date" in cli(*args, database_url=database_url).stdout


def test_scores_follow_a_graph_rebuilt_and_catalog_rows_changed_since_the_refresh(
    conn: psycopg.Connection, database_url: str, tiny: str, tmp_path: Path
) -> None:
    """No new image, yet the scores' inputs changed since the last refresh: a graph rebuilt and
    clustered by the separate commands (or by a run killed before its refresh finished), and a
    manifest that gives the loaded files a provider and views. Each next run said "scores: up to
    date" and kept VisualRank of the old graph and no observed popularity (ccvec.scores_stale)."""
    photos = tmp_path / "p"
    write_photos(photos, ("coins", "horse", "camera", "astronaut"))
    args = ("run", str(photos), "--model", tiny, "--k", "2")
    assert cli(*args, database_url=database_url).returncode == 0
    for step in (("graph", "build", "--model", tiny, "--k", "2"), ("cluster",)):
        done = cli(*step, database_url=database_url)
        assert done.returncode == 0, (step, done.stderr)
    rerun = cli(*args, database_url=database_url)
    assert "graph: up to date" in rerun.stdout and "scores: refreshed" in rerun.stdout, rerun.stdout
    ranked = "SELECT knn_run FROM ccvec.visualrank_run ORDER BY id DESC LIMIT 1"
    current = "SELECT id FROM ccvec.knn_run WHERE is_current"
    assert conn.execute(ranked).fetchone() == conn.execute(current).fetchone()
    conn.commit()

    manifest = tmp_path / "m.jsonl"
    rows = [
        {"path": str(p), "provider": "flickr", "meta_data": {"views": 10 * (i + 1)}}
        for i, p in enumerate(sorted(photos.iterdir()))
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    by_manifest = ("run", str(manifest), "--model", tiny, "--k", "2")
    changed = cli(*by_manifest, database_url=database_url)
    assert "4 catalog row(s) updated" in changed.stdout, changed.stdout
    assert "scores: refreshed" in changed.stdout, changed.stdout
    observed = "SELECT count(*) FROM ccvec.image_score WHERE popularity_provenance = 'observed'"
    assert conn.execute(observed).fetchone() == (4,)
    conn.commit()
    assert "scores: up to date" in cli(*by_manifest, database_url=database_url).stdout


def test_other_files_of_a_folder_are_noted_not_errors(
    conn: psycopg.Connection, database_url: str, tiny: str, tmp_path: Path
) -> None:
    """A folder's notes and manifest are skipped by name: the run says so and exits 0, the report
    counts no error and lists them after "Every input loaded"."""
    folder = tmp_path / "photos"
    write_photos(folder, ("chelsea", "coffee"))
    (folder / "readme.txt").write_text("about these photos")
    result = cli(
        "run", str(folder), "--out", str(tmp_path / "out"), "--model", tiny, database_url=database_url
    )
    assert result.returncode == 0, result.stderr
    assert "1 file skipped, not images by their name" in result.stdout
    index = (tmp_path / "out" / "index.html").read_text()
    assert '<a class="stat" href="errors-1.html"><b>0</b><span>errors</span>' in index
    errors = (tmp_path / "out" / "errors-1.html").read_text()
    assert errors.index("Every input loaded.") < errors.index("readme.txt")
    assert "1 note, not failures" in errors
    assert "0 inputs could not be loaded" not in errors and "After them" not in errors  # nothing before
    before = snapshot(tmp_path / "out")  # a rerun notes readme.txt again, in a new load run: same pages
    again = cli(
        "run", str(folder), "--out", str(tmp_path / "out"), "--model", tiny, database_url=database_url
    )
    assert again.returncode == 0 and "report: up to date" in again.stdout, again.stdout
    assert snapshot(tmp_path / "out") == before


def test_an_image_alone_in_its_source_is_not_called_a_singleton(
    conn: psycopg.Connection, database_url: str, tiny: str, tmp_path: Path
) -> None:
    """A report covers its own sources; an image whose cluster mates were loaded from another source
    is "alone in this report", not a singleton, on its page and in the counts; the other report
    shows the cluster with one more member in other sources."""
    first = write_photos(tmp_path / "a", ("chelsea", "coffee", "rocket", "camera"))
    ok = cli(
        "run",
        str(tmp_path / "a"),
        "--out",
        str(tmp_path / "out_a"),
        "--model",
        tiny,
        database_url=database_url,
    )
    assert ok.returncode == 0, ok.stderr
    (tmp_path / "b").mkdir()
    copy = tmp_path / "b" / "chelsea copy.jpg"
    copy.write_bytes(first[0].read_bytes()[:-2] + b"\xff\xd9")  # another file, the same picture
    result = cli(
        "run",
        str(tmp_path / "b"),
        "--out",
        str(tmp_path / "out_b"),
        "--model",
        tiny,
        database_url=database_url,
    )
    assert result.returncode == 0, result.stderr
    mates = conn.execute(
        "SELECT count(*) FROM ccvec.image_cluster k JOIN ccvec.image_cluster c USING (cluster, level) "
        "WHERE k.identifier = %s AND c.identifier <> k.identifier AND k.level = 'default'",
        [identity(file_location(copy))],
    ).fetchone()[0]
    assert mates >= 1  # the copy's cluster holds images of folder a
    report_line = next(line for line in result.stdout.splitlines() if line.startswith("report: "))
    assert "0 singletons" in report_line, report_line
    page = next((tmp_path / "out_b" / "image").rglob("*.html")).read_text()
    assert "alone in this report" in page and "a singleton" not in page
    singles = (tmp_path / "out_b" / "singletons-1.html").read_text()
    assert "the rest in other sources" in singles and "1 image alone in this report only" in singles
    # the copy duplicates chelsea of folder a: its report shows the group, the kept copy elsewhere
    duplicates = (tmp_path / "out_b" / "duplicates-1.html").read_text()
    kept = "1 more member of this group, the kept copy (canonical) among them, is not in this report"
    assert kept in duplicates
    assert "1 duplicate group" in report_line
    assert "not in this report: loaded from other sources, or files since renamed" in page
    run = conn.execute("SELECT max(run_id) FROM ccvec.cluster_label").fetchone()[0]
    guessed = conn.execute(  # a cluster with two images of folder a, as if named from ImageNet classes
        "UPDATE ccvec.cluster_label SET source = 'classes' WHERE run_id = %s AND cluster = ("
        " SELECT cluster FROM ccvec.cluster_member WHERE run_id = %s AND identifier = ANY(%s)"
        " GROUP BY cluster HAVING count(*) >= 2 ORDER BY cluster LIMIT 1) RETURNING cluster",
        [run, run, [identity(file_location(p)) for p in first]],
    ).fetchall()
    conn.commit()
    assert len(guessed) == 1
    again = cli("report", str(tmp_path / "out_a"), database_url=database_url)
    assert again.returncode == 0, again.stderr
    cards = (tmp_path / "out_a" / "clusters-1.html").read_text()
    assert "more in other sources" in cards
    index = (tmp_path / "out_a" / "index.html").read_text()  # the size chart counts what the tile counts
    tile = re.search(r'href="clusters-1.html"><b>(\d+)</b><span>clusters', index)
    chart = re.search(r"· (\d+) clusters? of 2 or more", index)
    assert tile and chart and tile.group(1) == chart.group(1), (tile, chart)
    sources = dict(conn.execute("SELECT cluster, source FROM ccvec.cluster_label WHERE run_id = %s", [run]))
    shown = re.findall(r'<h3><a href="cluster/(\d+)-1.html">[^<]*</a>( <span class="guess")?', cards)
    assert shown and all(bool(guess) == (sources[int(c)] == "classes") for c, guess in shown), (
        shown,
        sources,
    )


def test_catalog_text_in_run_output_is_shown_not_interpreted(
    conn: psycopg.Connection, database_url: str, tiny: str, tmp_path: Path
) -> None:
    """A provider named like rich markup, and a broken file named with terminal escapes, print as
    text: the run neither crashes nor lets the name drive the terminal."""
    folder = tmp_path / "photos"
    write_photos(folder, ("chelsea", "coffee"))
    (folder / "\x1b]0;pwned\x07\x1b[2Jbad.jpg").write_bytes(b"not a jpeg")
    manifest = tmp_path / "m.jsonl"
    rows = [
        {"path": str(folder / f"{n}.jpeg"), "provider": "evil[/x]", "meta_data": {"views": 5}}
        for n in ("chelsea", "coffee")
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = cli(
        "run", str(manifest), "--out", str(tmp_path / "out"), "--model", tiny, database_url=database_url
    )
    assert result.returncode == 0, result.stderr
    assert "provider 'evil[/x]'" in result.stderr and (tmp_path / "out" / "index.html").is_file()
    broken = cli("load", str(folder), "--model", tiny, database_url=database_url)
    assert broken.returncode == 1 and "bad.jpg" in broken.stderr
    assert "\x1b" not in broken.stderr and "\x07" not in broken.stderr, broken.stderr


def test_cluster_folders_name_each_medoid_by_its_link(
    conn: psycopg.Connection, database_url: str, tiny: str, tmp_path: Path
) -> None:
    """Two files named alike in one cluster get distinct links, and labels.csv names the medoid's
    own; a file name that is not UTF-8 does not stop the folders (its name is text there)."""
    folder = tmp_path / "photos"
    write_photos(folder / "a", ("chelsea", "coffee", "rocket"))
    write_photos(folder / "b", ("chelsea", "astronaut"))  # b/chelsea.jpeg: a second file of that name
    os.rename(folder / "b" / "astronaut.jpeg", os.fsencode(folder / "b") + b"/caf\xe9.jpeg")
    result = cli(
        "run", str(folder), "--out", str(tmp_path / "out"), "--model", tiny, database_url=database_url
    )
    assert result.returncode == 0, result.stderr
    clusters = tmp_path / "out" / "clusters"
    with open(clusters / "labels.csv", newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    run = conn.execute("SELECT max(run_id) FROM ccvec.cluster_label").fetchone()[0]
    medoids = dict(conn.execute("SELECT cluster, medoid FROM ccvec.cluster_label WHERE run_id = %s", [run]))
    links = [p for p in clusters.rglob("*") if p.is_symlink()]
    assert len(links) == 5 and sum("chelsea" in p.name for p in links) == 2
    for row in table:
        if "\ufffd" in row["medoid"]:
            continue  # named as text; the link itself keeps the file's bytes
        link = clusters / row["folder"] / row["medoid"]
        assert identity(file_location(link.resolve())) == medoids[int(row["cluster"])], row


def test_empty_source_single_file_and_several_sources(
    conn: psycopg.Connection, database_url: str, tiny: str, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    result = cli("run", str(empty), "--model", tiny, database_url=database_url)
    assert result.returncode == 2
    assert "no images in" in result.stderr and str(empty) in result.stderr

    one = write_photos(tmp_path / "a", ("chelsea",))[0]
    single = cli("run", str(one), "--out", str(tmp_path / "o1"), "--model", tiny, database_url=database_url)
    assert single.returncode == 0, single.stderr
    assert "load: 1 new" in single.stdout and "graph: skipped" in single.stdout
    assert image_pages(tmp_path / "o1") == {str(identity(file_location(one)))}

    write_photos(tmp_path / "b", ("coffee", "rocket", "camera"))
    both = cli(
        "run",
        str(tmp_path / "a"),
        str(tmp_path / "b"),
        str(empty),
        "--out",
        str(tmp_path / "o2"),
        "--model",
        tiny,
        "--k",
        "2",
        database_url=database_url,
    )
    assert both.returncode == 0, both.stderr
    assert "load: 3 new, 1 already loaded" in both.stdout
    assert f"{empty}: no images here" in both.stderr
    assert len(image_pages(tmp_path / "o2")) == 4


def test_out_inside_the_source_is_not_loaded_as_images(
    conn: psycopg.Connection, database_url: str, tiny: str, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    write_photos(photos, ("coins", "horse", "camera"))
    args = ("run", str(photos), "--out", str(photos / "report"), "--model", tiny, "--k", "2")
    assert cli(*args, database_url=database_url).returncode == 0
    assert any((photos / "report" / "thumbs").rglob("*.webp"))
    again = cli(*args, database_url=database_url)
    assert again.returncode == 0, again.stderr
    assert "load: 0 new, 3 already loaded" in again.stdout  # not the report's thumbnails


def test_failed_inputs_exit_1_and_show_in_the_report(
    conn: psycopg.Connection, database_url: str, tiny: str, tmp_path: Path
) -> None:
    write_photos(tmp_path / "p", ("coins", "horse", "camera"))
    (tmp_path / "p" / "broken.jpg").write_bytes(b"not an image at all")
    out = tmp_path / "out"
    result = cli("run", str(tmp_path / "p"), "--out", str(out), "--model", tiny, database_url=database_url)
    assert result.returncode == 1
    assert "1 input failed" in result.stderr
    errors = (out / "errors-1.html").read_text()
    assert "broken.jpg" in errors and "not an image" in errors
    listed = cli("errors", "--format", "json", database_url=database_url)
    assert listed.returncode == 0
    rows = json.loads(listed.stdout)
    assert [Path(r["source"]).name for r in rows] == ["broken.jpg"]


def test_each_source_is_listed_once(
    conn: psycopg.Connection, tiny: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ccvec run` reads each source's listing once, for the load and for the outputs' scope (it
    walked a folder twice: ~6 s per pass over 50,000 files on the test machine)."""
    from ccvec import pipeline, sources
    from ccvec.load import LoadOptions

    listed: list[Path] = []
    walk = sources.scan_directory

    def counted(root: Path):  # the real walk, counted
        listed.append(root)
        yield from walk(root)

    monkeypatch.setattr(sources, "scan_directory", counted)
    write_photos(tmp_path / "photos", ("chelsea", "coffee", "rocket"))
    options = pipeline.RunOptions(model=tiny, k=2, load=LoadOptions(model=tiny, workers=0))
    summary = pipeline.run([str(tmp_path / "photos")], tmp_path / "out", options)
    assert summary.loaded == 3 and summary.images == 3
    assert len(image_pages(tmp_path / "out")) == 3  # the scope came from the same listing
    assert listed == [tmp_path / "photos"]


def test_max_pixels_is_honoured_by_run(
    conn: psycopg.Connection, database_url: str, tiny: str, tmp_path: Path
) -> None:
    """`ccvec run` takes the loader's --max-pixels (a 108-megapixel phone photo is over the default,
    and the refusal said to use `ccvec load`): images over it fail, one line each, the rest load."""
    write_photos(tmp_path / "p", ("coins", "horse"))  # 384x303 and 400x328: 116,352 and 131,200 pixels
    args = ("run", str(tmp_path / "p"), "--model", tiny)
    result = cli(*args, "--max-pixels", "120000", database_url=database_url)
    assert result.returncode == 1, result.stderr
    assert "load: 1 new, 0 already loaded, 1 failed" in result.stdout
    listed = json.loads(cli("errors", "--format", "json", database_url=database_url).stdout)
    assert [Path(r["source"]).name for r in listed] == ["horse.jpeg"]
    assert "> limit 120,000 (--max-pixels N reads larger images)" in listed[0]["reason"]
    again = cli(*args, database_url=database_url)  # the default limit: the refused image loads now
    assert again.returncode == 0, again.stderr
    assert "load: 1 new, 1 already loaded, 0 failed" in again.stdout
