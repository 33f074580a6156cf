"""Every output ccvec writes from third-party strings, attacked: a folder of files with hostile names
and a manifest of hostile rows (titles, creators, URLs, tags) go through `ccvec run --out` for real
(embedded PostgreSQL, the tiny ONNX model); then the report is opened page by page in headless
Chromium, every local link is checked on disk, and the terminal lines, READMEs and labels.csv are
checked for terminal sequences and spreadsheet formulas."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import unicodedata
import uuid
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import psycopg
from PIL import Image

from ccvec.export import ClusterFiles, Directory, _name_key, _unique_name, export_folders, inert, write_layout
from ccvec.sources import IMAGE_EXTENSIONS, file_location, identity, printable

from .images import photo
from .process import COMMAND, environment, run_ccvec
from .test_report import Page, browser  # noqa: F401  (the Chromium fixture)
from .tiny_model import register_tiny

RLO = "\u202e"
ESC = "\x1b"
# file names (a folder's): markup, quotes, template syntax, bidi override, zero-width, newline and
# carriage return, terminal sequences (clear screen, window title, OSC 8 hyperlink), case and
# Unicode-normalisation twins, spreadsheet formulas, a Windows device name, percent-escapes
FILE_NAMES = [
    "<script>alert(1)<script>.png",
    '"><img src=x onerror=alert(2)>.png',
    "it's \"quoted\".png",
    "&lt;textarea&gt;{{7*7}}{% if 1 %}.png",
    f"invoice{RLO}fdp.png",
    "zero\u200bwidth\u200d.png",
    "line1\nline2.png",
    "cr\rreturn.png",
    f"{ESC}[2J{ESC}]0;pwned\x07clear.png",
    f"{ESC}]8;;http:\u2215\u2215evil.example{ESC}\\click{ESC}]8;;{ESC}\\.png",
    "-rf.png",
    "=cmd.png",
    "CON.png",
    "%2e%2e%2fescape.png",
]
TWINS = ["Case.png", "case.png", *(unicodedata.normalize(form, "café.png") for form in ("NFC", "NFD"))]
BAD_LINKS = [
    "java\tscript:alert(11)",
    " JAVASCRIPT:alert(12)",
    "\x01javascript:alert(13)",
    "vbscript:msgbox(14)",
    "data:text/html,<script>alert(15)</script>",
    "JaVaScRiPt:alert(16)",
    "javascript&colon;alert(17)",
    "//evil.example/x",
    'https://ok.example/"onmouseover=alert(18)',
    f"https://evil.example/#{RLO}moc.elpmaxe-knab//:sptth",  # shown as "…#https://bank-example.com"
]
TITLES = [
    "<script>alert(20)</script>",
    '"><img src=x onerror=alert(21)>',
    "{{7*7}} {% raw %}",
    f"x{RLO}gpj.exe",
    f"{ESC}]0;title\x07{ESC}[2Jansi",
    '=HYPERLINK("http://evil.example","x")',
    "t" * 100_000,
    "</textarea><textarea>",
    "a\r\nb",
    "zero\u200bwidth",
]
TAGS = [f"{RLO}gat", f"=cmd|calc{ESC}[2J"]  # shared by every manifest row: the label of their clusters


def small(index: int, shift: int = 0) -> Image.Image:
    names = ("chelsea", "coffee", "astronaut", "rocket")
    array = np.asarray(photo(names[index % 4]).convert("RGB").resize((40, 40))).astype(int) + shift
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


def hostile_corpus(root: Path) -> tuple[Path, Path]:
    """A folder of small PNGs with hostile names (and a broken one) and a manifest of hostile rows."""
    files = root / "files"
    files.mkdir(parents=True)
    for k, name in enumerate(FILE_NAMES):
        small(k, k % 3).save(files / name, "PNG")
    for name in TWINS:  # the same picture under names a Mac or Windows takes for one
        small(0, 7).save(files / name, "PNG")
    (files / f"{ESC}[31mbroken<b>x<b>.png").write_bytes(b"not an image")
    folder = root / "m"
    folder.mkdir()
    rows: list[dict[str, object]] = []
    for k, (link, title) in enumerate(zip(BAD_LINKS, TITLES, strict=True)):
        small(k + 1, 20 + k).save(folder / f"row{k}.png", "PNG")
        rows.append(
            {
                "identifier": str(uuid.uuid4()),
                "path": f"row{k}.png",
                "title": title,
                "creator": f"<b>mallory</b>{ESC}[5m",
                "creator_url": link,
                "foreign_landing_url": link,
                "provider": "<i>provider</i>",
                "tags": TAGS,
            }
        )
    for url in ("javascript:alert(30)", "data:image/png;base64,AAAA", f"https://x.invalid/{ESC}]0;t\x07"):
        rows.append({"identifier": str(uuid.uuid4()), "url": url, "title": "a bad URL"})
    rows.append({"identifier": str(uuid.uuid4()), "path": f"{ESC}[2Jmissing<script>.png"})
    # a GIF that is also an HTML page: it loads (it decodes), and a browser opening it runs its script
    small(2).save(folder / "polyglot.html", "GIF", comment=b"<script>alert('polyglot')</script>")
    rows.append({"identifier": str(uuid.uuid4()), "path": "polyglot.html", "title": "polyglot"})
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest, files


def hostile_report(conn: psycopg.Connection, database_url: str, tmp_path: Path) -> dict[str, object]:
    register_tiny(conn, tmp_path, "tiny-hostile")
    manifest, files = hostile_corpus(tmp_path / "corpus")
    out = tmp_path / "report"
    args = ("--model", "tiny-hostile", "--k", "4", "--sim", "0.3")
    result = run_ccvec("run", str(manifest), str(files), "--out", str(out), *args, database_url=database_url)
    assert result.returncode == 1, result.stderr  # the broken file and the bad rows
    return {"out": out, "files": files, "result": result, "database_url": database_url}


class Links(HTMLParser):
    """Every href and src of a page, and any script or event handler."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []
        self.active: list[str] = []
        self.csp = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script" or any(k.startswith("on") for k in named):
            self.active.append(self.get_starttag_text() or tag)
        if tag == "meta" and named.get("http-equiv") == "Content-Security-Policy":
            self.csp = "default-src 'none'" in (named.get("content") or "")
        self.refs += [(tag, v) for k, v in attrs if k in ("href", "src") and v is not None]


def report_pages(out: Path) -> list[Path]:
    """The report's pages (not the cluster folders' files: the polyglot is exported as it is named)."""
    return sorted(p for p in out.rglob("*.html") if p.relative_to(out).parts[0] != "clusters")


def check_links(out: Path) -> int:
    """Every local href/src of every page names a file inside OUT; others are http(s) or file:
    links (a local file's own page); returns the number of pages."""
    pages = report_pages(out)
    for page in pages:
        parsed = Links()
        parsed.feed(page.read_text(encoding="utf-8"))
        assert parsed.active == [], f"{page}: {parsed.active}"
        assert parsed.csp, f"{page}: no Content-Security-Policy"
        for tag, ref in parsed.refs:
            parts = urlsplit(ref)
            if ref == "data:," and tag == "link":  # the empty favicon (no request for one)
                continue
            if parts.scheme or ref.startswith("//"):
                assert tag == "a" and parts.scheme in ("http", "https", "file"), f"{page}: {tag} {ref!r}"
                # a local file is linked only when named as an image (not the polyglot page)
                assert parts.scheme != "file" or Path(parts.path).suffix in IMAGE_EXTENSIONS, ref
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            assert target.is_file(), f"{page.relative_to(out)}: {ref} does not exist"
            assert out.resolve() in target.parents, f"{page}: {ref} leaves OUT"
    return len(pages)


def test_hostile_strings_through_every_output(
    conn: psycopg.Connection,
    database_url: str,
    tmp_path: Path,
    browser,  # noqa: F811
    cli,
) -> None:
    """One `ccvec run` of the hostile corpus (the slow part), then each output in turn."""
    made = hostile_report(conn, database_url, tmp_path)
    check_report(made, browser)
    check_terminal_and_files(made, cli, tmp_path)


def check_report(hostile_report: dict, browser) -> None:  # noqa: F811
    """The report runs nothing, requests nothing outside OUT, links resolve, nothing spoofs."""
    out: Path = hostile_report["out"]
    pages = check_links(out)
    images = list(out.glob("image/*/*.html"))
    loaded = len(FILE_NAMES) + len(TWINS) + len(TITLES) + 1  # and the polyglot
    assert len(images) == loaded  # every image has its page: the twins too
    view = Page(browser)
    requests: list[str] = []
    view.page.on("request", lambda r: requests.append(r.url))
    view.page.on("console", lambda m: view.problems.append(f"console {m.type}: {m.text}"))
    # a right-to-left override in a cluster's label (from the rows' tags) reorders only itself: the
    # "(N images)" after the label's link in an image's table stays after it, unreversed
    overridden = 0
    for page in sorted(report_pages(out)):
        view.open(page.as_uri())  # every <img> loads; no dialog, console message or page error
        links = view.page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        assert all(link.startswith(("file://", "http://", "https://")) for link in links), links
        boxes = view.page.evaluate(LABEL_AND_AFTER) if page in images else None
        if boxes is not None:
            link_right, text_left = boxes
            assert text_left >= link_right - 1, (page, boxes)
            overridden += 1
    assert overridden >= 2
    assert pages > 10
    root = out.resolve().as_uri() + "/"
    assert [r for r in requests if not r.startswith(root) and r != "data:,"] == []
    # the style sheet applies under the policy (the header is a flex row)
    assert view.page.evaluate("getComputedStyle(document.querySelector('header.top')).display") == "flex"

    # escaped, not run: the markup titles are text, links only http(s)
    for title in TITLES[:3]:  # markup, and template syntax shown as itself
        identifier = next(p for p in images if title in _h1(p))
        view.open(identifier.as_uri())
        assert view.page.locator("h1.title").inner_text() == title
        assert view.page.locator("a[href^='javascript'], a[href^='JAVASCRIPT'], a[href^='data']").count() == 0
    # the 100,000-character title (cut to 5,000 by the load) is whole on its page only; tiles that
    # repeat it (caption, tooltip, alt) show 200 characters, so pages stay small
    whole = [p for p in report_pages(out) if "t" * 5000 in p.read_text(encoding="utf-8")]
    assert len(whole) == 1 and _h1(whole[0]) == "t" * 5000
    tiles = [p for p in report_pages(out) if "t" * 199 + "…" in p.read_text(encoding="utf-8")]
    assert tiles and all("t" * 200 not in p.read_text(encoding="utf-8") for p in tiles if p != whole[0])
    # the polyglot's page names its file as text, not as a link that would run its script
    polyglot = next(p for p in images if _h1(p) == "polyglot")
    view.open(polyglot.as_uri())
    assert view.page.locator("table.meta span.path", has_text="polyglot.html").count() == 1
    assert view.page.locator("a[href$='.html'][href^='file:']").count() == 0
    # a URL's override is shown as an escape in its link's text: the text cannot pass for another URL
    spoofed = next(p for p in images if _h1(p) == "zero\u200bwidth").read_text(encoding="utf-8")
    assert "#\\u202emoc.elpmaxe-knab//:sptth</a>" in spoofed
    page_row = re.search(r"<tr><th>page</th>.*?</tr>", spoofed)
    assert page_row and RLO not in re.sub(r'href="[^"]*"', "", page_row.group())  # in the target only
    # a file name's override and newline are shown as escapes on its page, not obeyed
    spoof = (out / _image_page(hostile_report["files"] / f"invoice{RLO}fdp.png")).read_text(encoding="utf-8")
    assert "invoice\\u202efdp.png" in spoof and f"invoice{RLO}fdp.png</a>" not in spoof
    assert view.problems == []


# the right edge of the cluster label's link in an image's table, and the left edge of the text after
# it, when the label holds a right-to-left override (else null)
LABEL_AND_AFTER = """() => {
  const th = [...document.querySelectorAll('table.meta th')].find(h => h.textContent === 'cluster');
  const a = th && th.nextElementSibling.querySelector('a');
  if (!a || !a.textContent.includes('\\u202e') || !a.nextSibling) return null;
  const after = document.createRange();
  after.selectNodeContents(a.nextSibling);
  return [a.getBoundingClientRect().right, after.getBoundingClientRect().left];
}"""


def _h1(page: Path) -> str:
    text = page.read_text(encoding="utf-8")
    start = text.index('<h1 class="title">') + len('<h1 class="title">')
    import html

    return html.unescape(text[start : text.index("</h1>", start)])


def _image_page(file: Path) -> str:
    text = str(identity(file_location(file)))
    return f"image/{text[:2]}/{text}.html"


def check_terminal_and_files(hostile_report: dict, cli, tmp_path: Path) -> None:
    """No terminal sequence reaches a terminal, no formula a spreadsheet, no name collides."""
    out: Path = hostile_report["out"]
    result = hostile_report["result"]
    assert ESC not in result.stdout + result.stderr and RLO not in result.stdout + result.stderr
    assert "\\x1b[31mbroken<b>x<b>.png" in result.stderr  # named, escaped
    url = hostile_report["database_url"]
    ansi = _ansi_titled(url)
    for args in (
        ("errors",),
        ("clusters",),
        ("dedup", "--report"),
        ("scores", "--identifier", ansi),
        ("similar", "--identifier", ansi),
    ):
        listed = cli(*args)  # in-process: as the installed command, faster
        assert listed.exit_code == 0, listed.stderr
        assert ESC not in listed.stdout + listed.stderr and RLO not in listed.stdout, args
    # --format csv is exact through a pipe (for programs), printable on a terminal (for people)
    piped = run_ccvec("clusters", "--format", "csv", database_url=url)  # labels from the tags
    assert f"=cmd|calc{ESC}[2j" in piped.stdout and RLO in piped.stdout, piped.stdout
    on_terminal = _on_a_terminal(url, "clusters", "--format", "csv")
    assert "=cmd|calc\\x1b[2j" in on_terminal and "\\u202e" in on_terminal, on_terminal
    assert ESC not in on_terminal and RLO not in on_terminal
    # error lines name the input escaped (they printed the escape sequence itself before)
    broken = hostile_report["files"] / f"{ESC}[31mbroken<b>x<b>.png"
    for args in (("similar", "--identifier", str(broken)), ("load", f"/nonexistent/{ESC}]0;pwned\x07")):
        failed = cli(*args)
        assert failed.exit_code == 2 and failed.stderr.count("\n") == 1, failed.stderr
        assert ESC not in failed.stderr and "\\x1b" in failed.stderr, failed.stderr
    # labels.csv: labels (from the rows' tags) printable and never a formula; file names exact
    with open(out / "clusters" / "labels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    tagged = [r for r in rows if r["from"] == "tags"]
    assert tagged, rows
    for row in rows:
        assert ESC not in row["label"] and not row["label"].startswith(("=", "+", "-", "@")), row
    assert any("=cmd|calc\\x1b[2j" in r["label"] for r in tagged), tagged
    for readme in (out / "clusters").rglob("README"):
        text = readme.read_text(encoding="utf-8")
        assert ESC not in text and RLO not in text and "\r" not in text and text.count("\n") <= 4, text
    # export-clusters on its own: its labels.csv as run's, the folder's name printed escaped
    target = tmp_path / f"[bold]x{ESC}]0;t\x07"
    exported_alone = cli("export-clusters", str(target))
    assert exported_alone.exit_code == 0, exported_alone.stderr
    assert ESC not in exported_alone.stdout and "[bold]x\\x1b]0;t\\x07" in exported_alone.stdout
    assert (target / "labels.csv").read_bytes() == (out / "clusters" / "labels.csv").read_bytes()
    # every local image is in the folders once, the twins under names that stay apart on macOS
    # and Windows (one would replace the other there)
    exported = [p for p in (out / "clusters").rglob("*.png")]
    assert len(exported) == len(FILE_NAMES) + len(TWINS) + len(TITLES)  # PNGs (and the polyglot)
    keys = [(p.parent, _name_key(p.name)) for p in exported]
    assert len(set(keys)) == len(keys)


def test_export_names_stay_apart_where_case_and_normalisation_do_not_count() -> None:
    used: set[str] = set()
    names = [_unique_name(Path(n), used) for n in [*TWINS, "README", "readme", "a/.."]]
    decomposed = TWINS[3].removesuffix(".png") + "_1.png"
    assert names == ["Case.png", "case_1.png", TWINS[2], decomposed, "README", "readme_1", "image"]


def test_clashing_names_do_not_depend_on_the_members_order(tmp_path: Path) -> None:
    """Which of `Case.png` and `case.png` keeps its name is decided by their paths: it followed the
    order the members came in, which differed between `run --out` and `export-clusters` (their
    labels.csv named another medoid file; found by the merged suite, once in two runs)."""
    files = []
    for i, name in enumerate(["case.png", "Case.png"]):
        (tmp_path / str(i)).mkdir()
        small(i).save(tmp_path / str(i) / name, "PNG")
        files.append(tmp_path / str(i) / name)
    layouts = []
    for order in (files, files[::-1]):
        out = tmp_path / f"out{len(layouts)}"
        out.mkdir()
        write_layout([ClusterFiles(1, "x", order, order[0], "tags")], [], Directory(out), copy=False)
        folder = out / "cluster_with_2" / "cluster_1"
        layouts.append({p.name: os.readlink(p) for p in folder.iterdir() if p.name != "README"})
    assert layouts[0] == layouts[1] == {"case.png": str(files[0]), "Case_1.png": str(files[1])}


def test_names_at_the_length_limit_are_exported_twice(tmp_path: Path) -> None:
    """Two 255-byte names in one cluster: the second gets `_1` within the limit (it made the whole
    export fail with "File name too long")."""
    name = "é" * 125 + "x.png"  # 255 bytes in UTF-8
    files = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        small(0).save(tmp_path / folder / name, "PNG")
        files.append((tmp_path / folder / name, ""))
    assert export_folders({1: files}, tmp_path / "out") == 2
    written = {p.name for p in (tmp_path / "out" / "cluster_with_2" / "cluster_1").iterdir()}
    (second,) = written - {"README", name}
    assert second.endswith("_1.png") and second.startswith("é" * 120) and len(second.encode()) <= 255


def test_labels_never_become_paths(tmp_path: Path) -> None:
    """Labels from tags such as `../../x`, `/etc`, `CON`, `.` or `a/b` name nothing on disk: folders
    are numbered, labels go into README and labels.csv only."""
    labels = ["../../x", "/etc", "CON", ".", "a/b", "..", "~"]
    clusters = []
    for k, label in enumerate(labels):
        files = []
        for copy in ("a", "b"):
            file = tmp_path / "src" / f"{k}{copy}.png"
            file.parent.mkdir(exist_ok=True)
            small(k).save(file, "PNG")
            files.append(file)
        clusters.append(ClusterFiles(k, label, files, files[0], "tags"))
    out = tmp_path / "out"
    out.mkdir()
    assert write_layout(clusters, [], Directory(out), copy=True) == 2 * len(labels)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # nothing beside OUT
    folders = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_dir()}
    assert folders == {"cluster_with_2", *(f"cluster_with_2/cluster_{k}" for k in range(len(labels)))}
    with open(out / "labels.csv", newline="", encoding="utf-8") as f:
        assert [r["label"] for r in csv.DictReader(f)] == labels


def test_inert_keeps_text_and_defuses_formulas() -> None:
    assert inert("cat · dog") == "cat · dog"
    assert inert("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert inert("@SUM(A1)") == "'@SUM(A1)" and inert("+1") == "'+1" and inert("-1") == "'-1"
    assert inert(f"{ESC}[2Jx\ty") == "\\x1b[2Jx\\ty"
    assert printable(f"a{RLO}b\u2066c\nd\u200d") == "a\\u202eb\\u2066c\\nd\u200d"  # ZWJ (emoji) kept


def _on_a_terminal(database_url: str, *args: str) -> str:
    """What `ccvec ARGS` prints when its stdout is a terminal (a pseudo-terminal)."""
    main, child = os.openpty()
    with subprocess.Popen(
        [*COMMAND, *args], stdout=child, stderr=subprocess.DEVNULL, env=environment(database_url)
    ) as process:
        os.close(child)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=60)
    os.close(main)
    return b"".join(chunks).decode()


def _ansi_titled(database_url: str) -> str:
    """The image whose title is a terminal sequence: `similar` lists it among its near-duplicates."""
    with psycopg.connect(database_url) as conn:
        sql = "SELECT identifier FROM ccvec.image WHERE title LIKE %s"
        row = conn.execute(sql, [f"{ESC}]0;title%"]).fetchone()
    assert row is not None
    return str(row[0])
