"""The HTML report in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright.

Set CCVEC_SCREENSHOT=docs/report.png to save the overview's screenshot there (the README's).
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ccvec.models import registry
from ccvec.report import environment, file_href, file_path, http_link
from ccvec.sources import file_location, identity

from .images import photo
from .process import run_ccvec
from .tiny_model import build_tiny_model, tiny_spec

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--no-first-run",
]
HOSTILE = {
    "script.jpg": "<script>alert(1)</script>",
    "img.jpg": '<img src=x onerror="alert(2)">',
}


cli = run_ccvec


def write_collection(folder: Path) -> Path:
    """Photos, two near-duplicates, hostile titles, a javascript: link, tags and a broken file."""
    folder.mkdir(parents=True)
    rows = []
    names = ("chelsea", "coffee", "astronaut", "rocket", "camera", "horse", "coins", "page", "moon")
    for name in names:
        photo(name).convert("RGB").save(folder / f"{name}.jpg", quality=90)
        rows.append({"path": f"{name}.jpg", "title": name.title(), "tags": "photo; " + name})
    small = photo("chelsea").convert("RGB")
    small.resize((small.width // 2, small.height // 2)).save(folder / "chelsea_small.jpg", quality=70)
    rows.append({"path": "chelsea_small.jpg", "title": "Chelsea, smaller", "tags": "photo; cat"})
    photo("coffee").convert("RGB").save(folder / "coffee_q30.jpg", quality=30)
    rows.append({"path": "coffee_q30.jpg", "title": "Coffee, recompressed", "tags": "photo"})
    for file, title in HOSTILE.items():
        photo("rocket").convert("RGB").rotate(90, expand=True).save(folder / file)
        rows.append(
            {"path": file, "title": title, "creator": "mallory", "creator_url": "javascript:alert(3)"}
        )
    (folder / "broken.jpg").write_bytes(b"<html>not an image</html>")
    rows.append({"path": "broken.jpg", "title": "broken"})
    manifest = folder / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, ["path", "title", "tags", "creator", "creator_url"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


@pytest.fixture()
def report_dir(conn: psycopg.Connection, database_url: str, tmp_path: Path) -> Path:
    registry.add_model(conn, build_tiny_model(tmp_path / "tiny.onnx"), tiny_spec("tiny-report"))
    conn.commit()
    manifest = write_collection(tmp_path / "photos")
    out = tmp_path / "report"
    result = cli(
        "run",
        str(manifest),
        "--out",
        str(out),
        "--model",
        "tiny-report",
        "--k",
        "4",
        "--sim",
        "0.5",
        database_url=database_url,
    )
    assert result.returncode == 1, result.stderr  # the broken file
    return out


@pytest.fixture()
def browser() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium: install Debian's with `apt-get install -y chromium` (CI's .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (in the test extra)")
    with sync_api.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield instance
        instance.close()


class Page:
    """A browser page that records console errors, page errors, failed requests and dialogs."""

    def __init__(self, browser) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.problems: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        # A lazy image made eager below may have its first request aborted (net::ERR_ABORTED) and
        # reissued; whether every image finally loads is checked on naturalWidth.
        self.page.on(
            "requestfailed",
            lambda r: (
                "ERR_ABORTED" not in (r.failure or "")
                and self.problems.append(f"request failed: {r.url} ({r.failure})")
            ),
        )
        self.page.on("dialog", lambda d: (self.problems.append(f"dialog: {d.message}"), d.dismiss()))

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.check_images()

    def check_images(self) -> None:
        """Every <img> loads: lazy ones are made eager, then all must have pixels."""
        self.page.wait_for_load_state("load")
        self.page.evaluate("document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
        # polled with evaluate(): wait_for_function evaluates a string in the page, which the
        # report's Content-Security-Policy (no script at all) refuses
        deadline = time.monotonic() + 15
        while not self.page.evaluate("Array.from(document.images).every(i => i.complete)"):
            assert time.monotonic() < deadline, f"{self.page.url}: images still loading after 15 s"
            time.sleep(0.05)
        broken = self.page.evaluate(
            "Array.from(document.images).filter(i => !(i.naturalWidth > 0)).map(i => i.getAttribute('src'))"
        )
        assert broken == [], f"{self.page.url}: images that did not load: {broken}"
        assert self.problems == [], self.problems


def test_report_in_a_real_browser(report_dir: Path, browser, tmp_path: Path) -> None:
    view = Page(browser)
    view.open((report_dir / "index.html").as_uri())
    page = view.page
    stats = page.locator(".stat b").all_inner_texts()
    assert stats[0] == "13"  # images: 14 inputs, one broken
    assert stats[-1] == "1"  # errors
    assert page.locator(".chart svg").count() >= 2  # authority histogram and cluster sizes at least
    screenshot = tmp_path / "report.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("CCVEC_SCREENSHOT"):
        page.screenshot(path=os.environ["CCVEC_SCREENSHOT"])

    # overview -> cluster -> image
    page.locator(".clusters .card h3 a").first.click()
    assert "/cluster/" in page.url
    view.check_images()
    medoid = page.locator(".grid .tile.medoid")
    assert medoid.count() == 1
    page.locator(".grid .tile").nth(1).click()
    assert "/image/" in page.url
    view.check_images()
    assert page.locator("h2", has_text="Nearest neighbours").count() == 1
    assert page.locator(".grid .tile .extra", has_text="similarity").count() >= 1
    assert page.locator("h2", has_text="Scores").count() == 1
    assert page.locator(".score.none", has_text="popularity: no data").count() == 1  # no metric anywhere
    novelty = page.locator("li", has_text="novelty").inner_text()  # explains the score it shows
    assert "farther from the collection's centre than" in novelty, novelty
    original = page.locator("table.meta a.path")  # the local file: a link, its path readable
    assert original.get_attribute("href").startswith("file:///")
    assert Path(original.inner_text()).is_file() and "%" not in original.inner_text()
    page.locator(".crumbs a").first.click()  # back up to the cluster
    assert "/cluster/" in page.url

    for listing in ("clusters-1.html", "singletons-1.html", "duplicates-1.html"):
        view.open((report_dir / listing).as_uri())
    groups = page.locator(".group")
    assert groups.count() >= 2  # chelsea + its smaller copy; the two rotated rockets (+ maybe coffee)
    assert groups.first.locator(".tile.canonical").count() == 1
    assert groups.first.locator(".tile .extra", has_text="distance").count() >= 1
    view.open((report_dir / "errors-1.html").as_uri())
    assert "broken.jpg" in page.locator("table.errors").inner_text()


def test_hostile_titles_show_as_text(report_dir: Path, browser) -> None:
    view = Page(browser)
    folder = report_dir.parent / "photos"
    for file, title in HOSTILE.items():
        identifier = str(identity(file_location(folder / file)))
        view.open((report_dir / "image" / identifier[:2] / f"{identifier}.html").as_uri())
        page = view.page
        assert page.locator("h1.title").inner_text() == title
        assert page.locator("script").count() == 0
        assert page.locator("img[src='x']").count() == 0
        assert page.locator("a[href^='javascript']").count() == 0
        assert "mallory" in page.locator("table.meta").inner_text()  # shown, but not as a link
        assert view.problems == []


def test_duplicate_members_say_how_they_matched() -> None:
    """An embedding match shows its cosine, not a pHash distance that matched nothing."""
    note = environment().get_template("macros.html.j2").module.match_note  # type: ignore[attr-defined]
    assert str(note({"matched_by": "embedding", "similarity": 0.854, "distance": 28})) == (
        "cosine 0.854 · by embedding"
    )
    assert str(note({"matched_by": "phash", "distance": 3, "similarity": None})) == "pHash distance 3"
    # a copy found under a flip or rotation says which, beside the distance it matched at
    mirrored = {"matched_by": "phash", "distance": 4, "similarity": None, "transform": "mirror"}
    assert str(note(mirrored)) == "mirrored · pHash distance 4"
    rotated = {"matched_by": "phash", "distance": 2, "similarity": None, "transform": "rot180"}
    assert str(note(rotated)) == "rotated 180° · pHash distance 2"
    same = {"matched_by": "phash", "distance": 0, "similarity": None, "transform": "identity"}
    assert str(note(same)) == "pHash distance 0"
    assert (
        str(note({"matched_by": "group", "distance": None, "similarity": 0.9}))
        == "through the group · cosine 0.900"
    )


def test_local_files_show_as_paths() -> None:
    assert file_path("file:///tmp/a%20b/%E6%97%A5.jpg") == "/tmp/a b/日.jpg"
    for other in (
        "https://example.org/a.jpg",
        "javascript:alert(1)",
        "file://[::1/x.jpg",
        "http://[x",
        "",
        None,
    ):
        assert file_path(other) is None and file_href(other) is None
    assert file_path("file://evil.example/share/x.jpg") is None  # another host: not a local file
    assert file_href("file://localhost/tmp/a%20b.jpg") == "file:///tmp/a%20b.jpg"  # rebuilt from the path
    # a file not named as an image is shown, not linked: opening `page.html` (a GIF/HTML polyglot
    # a manifest named) in a browser would run its script
    assert file_href("file:///tmp/page.html") is None
    assert file_path("file:///tmp/page.html") == "/tmp/page.html"
    assert file_href("file:///tmp/drawing.svg") is None and file_href("file:///tmp/a.JPG") == "file:///tmp/a.JPG"


def test_only_http_links_are_links() -> None:
    assert http_link("https://example.org/a?b=1") == "https://example.org/a?b=1"
    assert http_link("HTTP://example.org") == "HTTP://example.org"
    for bad in (
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "data:text/html,<b>",
        "file:///etc/passwd",
        "",
        None,
    ):
        assert http_link(bad) is None


def test_a_report_of_one_image_lists_it(
    conn: psycopg.Connection, database_url: str, tmp_path: Path, browser
) -> None:
    """One image makes no graph and no cluster: it is still reachable, listed with the singletons
    as not clustered yet, and no page says that every image is in a cluster."""
    registry.add_model(conn, build_tiny_model(tmp_path / "tiny.onnx"), tiny_spec("tiny-report"))
    conn.commit()
    folder = tmp_path / "one"
    folder.mkdir()
    photo("chelsea").convert("RGB").save(folder / "chelsea.jpg")
    out = tmp_path / "report"
    result = cli("run", str(folder), "--out", str(out), "--model", "tiny-report", database_url=database_url)
    assert result.returncode == 0, result.stderr
    identifier = str(identity(file_location(folder / "chelsea.jpg")))
    view = Page(browser)
    page = view.page
    view.open((out / "index.html").as_uri())
    assert page.locator("p.lead").first.inner_text().startswith("1 image from")
    assert "1 is not clustered yet" in page.locator("p.lead").first.inner_text()
    sizes = page.locator("figure.chart", has_text="cluster sizes")  # no empty axes: says why
    assert sizes.locator("svg").count() == 0 and "No cluster yet" in sizes.inner_text()
    view.open((out / "clusters-1.html").as_uri())
    assert "listed with the singletons" in page.locator("p.empty").inner_text()
    assert page.locator("p.lead").inner_text().startswith("0 clusters of similar images")
    assert "0 images are alone" in page.locator("p.lead").inner_text()
    view.open((out / "singletons-1.html").as_uri())
    lead = page.locator("p.lead").inner_text()
    assert lead.startswith("0 images that no other") and "Here, 1 image not clustered yet" in lead, lead
    tile = page.locator(f".grid a.tile[href$='{identifier}.html']")
    assert tile.count() == 1 and tile.locator(".extra").inner_text() == "not clustered yet"
    assert page.locator("p.empty").count() == 0  # not "Every image is in a cluster."
    tile.click()
    assert page.url.endswith(f"{identifier}.html")
    view.check_images()


def test_an_interrupted_report_keeps_the_thumbnails_it_made(tmp_path: Path) -> None:
    """A report stopped while making thumbnails (Ctrl-C, a kill) lost them, and the rerun made every
    one again: at 100k images, many minutes of decoding (or downloads). The rerun now takes back
    the ones already made (named by the image's SHA-256, so never stale) and makes only the rest;
    what it sets aside is gone once it commits, and nothing unlisted is left in OUT."""
    import hashlib
    import uuid

    from ccvec.fetch import FetchPolicy
    from ccvec.outdir import MANIFEST, OutDir, read_manifest
    from ccvec.report import thumb_path, write_thumbnails

    folder = tmp_path / "photos"
    folder.mkdir()
    images = {}
    for name in ("coins", "horse", "camera", "astronaut"):
        path = folder / f"{name}.png"
        photo(name).save(path)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        images[uuid.uuid4()] = {"content_sha256": sha, "url": path.as_uri()}
    out = tmp_path / "out"

    def stop_after_two(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    first = OutDir.open(out)
    with pytest.raises(KeyboardInterrupt):
        write_thumbnails(images, first, FetchPolicy(), stop_after_two, workers=1)
    first.release()
    made_before = {p.name for p in (out / ".ccvec-staging").rglob("*.webp")}
    assert len(made_before) == 2

    second = OutDir.open(out)
    assert write_thumbnails(images, second, FetchPolicy(), workers=1) == (2, 0)  # only the other two
    second.commit()
    wanted = {thumb_path(row["content_sha256"]) for row in images.values()}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {MANIFEST}
    assert on_disk == wanted == set(read_manifest(out)["files"])  # nothing set aside is left
    assert {p.rsplit("/", 1)[1] for p in wanted} >= made_before


def test_a_folder_report_leaves_out_files_deleted_since_they_were_loaded(
    conn: psycopg.Connection, database_url: str, tiny: str, browser, tmp_path: Path
) -> None:
    """A person deletes the extra copies of a photo, the original of another (two copies kept) and
    a photo of a cluster, then runs the same command again. The rows of the deleted files stay in
    the database, and the report counted them: the photo whose copies were deleted was still a
    duplicate group ("2 more members ... not in this report"), clusters had members "in other
    sources", an image whose cluster mates were deleted was "alone here", not a singleton."""
    from ccvec.load import GONE
    from ccvec.pipeline import gone_images

    folder = tmp_path / "phone"
    folder.mkdir()
    for name in ("chelsea", "coffee", "astronaut", "rocket", "camera", "horse", "coins", "page", "moon"):
        photo(name).convert("RGB").save(folder / f"{name}.jpg", quality=90)
    for name in ("chelsea", "coffee"):
        image = photo(name).convert("RGB")
        image.resize((image.width * 3 // 4, image.height * 3 // 4)).save(
            folder / f"{name}_small.jpg", quality=85
        )
        image.save(folder / f"{name}_q60.jpg", quality=60)
    out = tmp_path / "report"
    args = ("run", str(folder), "--out", str(out), "--model", tiny, "--k", "3")
    first = cli(*args, database_url=database_url)
    assert first.returncode == 0, first.stderr
    assert "report/index.html: 13 images" in first.stdout.replace(str(tmp_path) + "/", "")

    def name(url: str) -> str:
        return url.rsplit("/", 1)[-1]

    rows = conn.execute(
        "SELECT i.url, d.group_id, d.canonical, k.cluster FROM ccvec.image i"
        " LEFT JOIN ccvec.duplicate_member d USING (identifier)"
        " LEFT JOIN ccvec.image_cluster k ON k.identifier = i.identifier AND k.level = 'default'"
    ).fetchall()
    by_name = {name(url): (group, canonical, cluster) for url, group, canonical, cluster in rows}
    groups = {
        g: sorted(n for n, (g2, _, _) in by_name.items() if g2 == g) for _, (g, _, _) in by_name.items()
    }
    variants = {f"{p}{s}.jpg" for p in ("chelsea", "coffee") for s in ("", "_small", "_q60")}
    for photo_name in ("chelsea", "coffee"):  # the copies were found: each photo is a group of 3
        assert groups[by_name[f"{photo_name}.jpg"][0]] == sorted(
            f"{photo_name}{s}.jpg" for s in ("", "_small", "_q60")
        )
    deleted = [n for n in groups[by_name["chelsea.jpg"][0]] if n != "chelsea.jpg"]  # chelsea's copies
    deleted += [n for n in groups[by_name["coffee.jpg"][0]] if by_name[n][1]]  # coffee's kept copy
    sizes: dict[int, list[str]] = {}
    for n, (_, _, cluster) in by_name.items():
        sizes.setdefault(cluster, []).append(n)
    # a member of a cluster of the other photos: the smallest such cluster, so that one may be left alone
    others = sorted((m for m in sizes.values() if len(m) > 1 and not set(m) & variants), key=len)
    assert others, sizes
    deleted.append(sorted(others[0])[0])
    for n in deleted:
        (folder / n).unlink()
    present = 13 - len(deleted)
    left = {g: [n for n in members if n not in deleted] for g, members in groups.items() if g is not None}
    shown = sum(len(members) > 1 for members in left.values())  # other photos may be alike too
    coffee = sorted(n.removesuffix(".jpg") for n in left[by_name["coffee.jpg"][0]])
    assert len(coffee) == 2 and len(left[by_name["chelsea.jpg"][0]]) == 1

    def pages() -> dict[str, str]:
        return {
            str(p.relative_to(out)): p.read_text()
            for p in out.rglob("*.html")
            if not p.name.startswith("errors-")
        }

    def check(lists_them: bool) -> None:
        view = Page(browser)
        view.open((out / "index.html").as_uri())
        page = view.page
        stats = page.locator(".stat b").all_inner_texts()
        assert stats[0] == str(present) and stats[3] == str(shown), stats  # images, duplicate groups
        line = page.locator("p.gone").inner_text()
        assert line.startswith(f"{len(deleted)} images loaded before from this folder are no longer there"), (
            line
        )
        listed = "the errors page lists them" if lists_them else "the next ccvec run lists them"
        assert listed in line, line
        # every image is counted once: the members of the clusters shown and the singletons
        in_clusters = sum(
            len(page.locator(".grid .tile").all()) for _ in [view.open((out / "clusters-1.html").as_uri())]
        )
        assert in_clusters == 0  # the clusters page shows cards, not tiles
        members = sum(int(t.split()[0]) for t in page.locator(".card p.muted").all_inner_texts())
        view.open((out / "singletons-1.html").as_uri())
        singles = page.locator(".grid .tile").count()
        assert members + singles == present, (members, singles)
        assert stats[2] == str(singles), (stats, singles)  # each one a singleton, none "alone here"
        view.open((out / "duplicates-1.html").as_uri())
        assert page.locator(".group").count() == shown
        group = page.locator(".group", has_text=coffee[0])
        assert sorted(group.locator(".tile .cap").all_inner_texts()) == coffee  # its kept copy gone
        assert (
            "Its kept copy (canonical), which the distances below are measured to, is a file since gone"
            in (group.inner_text())
        )
        chelsea = str(identity(file_location(folder / "chelsea.jpg")))
        view.open((out / "image" / chelsea[:2] / f"{chelsea}.html").as_uri())
        assert page.locator("h2", has_text="Near-duplicates").count() == 0
        for rel, html in pages().items():
            for gone_name in deleted:
                assert f"/{gone_name}" not in html, (rel, gone_name)
            assert "other sources" not in html and "not in this report" not in html, rel

    report = cli("report", str(out), database_url=database_url)  # no load since the deletions
    assert report.returncode == 0, report.stderr
    check(lists_them=False)
    second = cli(*args, database_url=database_url)
    assert second.returncode == 0, second.stderr
    check(lists_them=True)
    view = Page(browser)
    view.open((out / "index.html").as_uri())
    view.page.locator("p.gone a", has_text="errors page").click()
    assert view.page.locator("table.errors").inner_text().count(GONE.split(" (")[0]) == len(deleted)

    # a catalog loaded from a manifest has none gone: its rows are its rows, wherever the files are
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path\n" + "".join(f"phone/{n}\n" for n in sorted(by_name)))
    assert gone_images(conn, [str(manifest)], []) == {}
    # what the folder's report leaves out: rows of files not there (one not listed but there is not gone)
    gone = {identity(file_location(folder / n)) for n in deleted}
    assert set(gone_images(conn, [str(folder)], [])) == gone

    # one more file deleted, then `ccvec report` alone: the errors page still lists the last load's
    # notes, which do not name it, so the overview does not say that the errors page lists them
    more = next(n for n in sorted(by_name) if n not in deleted)
    (folder / more).unlink()
    again = cli("report", str(out), database_url=database_url)
    assert again.returncode == 0, again.stderr
    view.open((out / "index.html").as_uri())
    line = view.page.locator("p.gone").inner_text()
    assert line.startswith(f"{len(deleted) + 1} images loaded before from this folder"), line
    assert "the next ccvec run lists them" in line, line
