"""The hostile-input battery: manifests (JSON Lines and CSV) and files written the way third
parties and attackers write them, built here at test time and loaded for real (embedded
PostgreSQL, a small real ONNX model). Every good row must be stored, every bad one recorded in
ccvec.load_error with its row and a reason; nothing may crash or hang."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path
from urllib.parse import unquote_to_bytes

import numpy as np
import psycopg
import pytest
from PIL import Image

from ccvec.fetch import FetchPolicy
from ccvec.load import LoadOptions, Prepared, _write_batch, load
from ccvec.sources import CATALOG_COLUMNS

from .images import broken_files, encode, photo

PNG = encode(Image.fromarray(np.random.default_rng(5).integers(0, 255, (24, 24, 3), np.uint8)), "PNG")


def options(model: str, **policy) -> LoadOptions:
    return LoadOptions(
        model=model,
        workers=0,
        batch_size=8,
        fetch_policy=FetchPolicy(timeout=1, deadline=3, retries=0, **policy),
    )


def deep(n: int):
    value: object = "leaf"
    for _ in range(n):
        value = {"d": value}
    return value


def hostile_jsonl_rows(folder: Path) -> list[tuple[str, object]]:
    """(expectation, row) with expectation 'store', 'warn' (stored, changed, with a warning) or
    'reject'; a row is a dict, or a raw line (str) for what json.dumps cannot produce."""
    (folder / "good.png").write_bytes(PNG)
    (folder / "good copy.png").write_bytes(PNG)
    (folder / "café ☕.png").write_bytes(PNG)
    (folder / "notes.png").write_text("not an image")
    (folder / "dir.png").mkdir()
    os.mkfifo(folder / "pipe.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    (folder / "dangling.png").symlink_to(folder / "gone.png")
    (folder / "zero.png").symlink_to("/dev/zero")

    def row(**fields) -> dict:
        return {"identifier": str(uuid.uuid4()), "path": "good.png", **fields}

    def raw(fields: str) -> str:  # JSON that json.dumps would not write
        return '{"identifier": "' + str(uuid.uuid4()) + '", "path": "good.png", ' + fields + "}"

    dup = str(uuid.uuid4())
    cases: list[tuple[str, object]] = [
        ("store", {"identifier": dup, "path": "good.png", "title": "first of a duplicated id"}),
        ("reject", {"identifier": dup, "path": "good.png", "title": "second of a duplicated id"}),
        ("warn", row(title="nul\x00inside")),
        ("warn", row(title="lone \ud800 surrogate")),
        ("warn", row(creator="\udfff\udfff")),
        ("store", row(creator="\x1b[31mred\x1b[0m \x07 bell")),
        ("warn", row(title="t" * 6000)),
        ("warn", row(license="l" * 60)),
        ("warn", row(license_version="9" * 30)),
        ("warn", row(provider="p" * 100)),
        ("warn", row(filetype="jpegxl")),
        ("warn", row(foreign_landing_url="https://example.org/" + "a" * 1500)),
        ("warn", row(category="💥" * 100)),
        ("store", row(tags="x")),
        ("store", row(tags=["a", {"name": "b"}, "", {"name": " "}])),
        ("warn", row(tags=["nul\x00tag"])),
        ("warn", row(meta_data={"k\x00": "v\x00"})),
        ("warn", raw('"meta_data": {"big": 1e400}')),
        ("warn", raw('"meta_data": {"n": -1e400, "x": NaN}')),
        ("store", row(meta_data=deep(50))),
        ("store", row(meta_data={"huge": 10**30, "neg": -(10**20), "f": 1.5e300})),
        ("store", row(width="12")),
        ("store", row(width=12.0, height=" 7 ")),
        ("store", row(filesize="  42 ")),
        ("store", row(watermarked="yes")),
        ("store", row(watermarked="no")),
        ("store", row(watermarked=0)),
        ("store", row(title=123)),
        ("store", row(creator=1.5)),
        ("warn", row(note="x\x00y")),
        ("store", row(note={"nested": [1, 2, {"a": None}]})),
        ("store", row(title="مرحبا 🖼 עברית \u202e reversed")),
        ("store", row(title="\uffff\ufffe noncharacters")),
        ("store", row(title="[/x] [bold]rich[/bold] [link=file:///etc/passwd]x[/link]")),
        ("store", row(title="line\r\nbreak\ttab")),
        ("store", row(path="good copy.png")),
        ("store", row(path="café ☕.png")),
        ("store", {"identifier": f"  {str(uuid.uuid4()).upper()}  ", "path": "good.png"}),
        ("store", row(path=None, url=(folder / "good.png").as_uri())),
        ("store", row(path=str(folder / "good.png"))),
        ("store", row(meta_data='{"as": "json text"}')),
        ("store", row(tags='["json", "text"]')),
        ("store", {"IDENTIFIER": str(uuid.uuid4()), "Path": "good.png", " Title ": "odd keys"}),
        ("store", row(standardized_popularity="not used")),
        ("store", row(path="./good.png")),
        ("reject", {"title": "no location"}),
        ("reject", row(path="")),
        ("reject", row(path="   ")),
        ("reject", row(path="p" * 5000 + ".png")),
        ("reject", row(path="a\x00.png")),
        ("reject", row(path=42)),
        ("reject", row(path=None, url=["x"])),
        ("reject", row(path=None, url="ftp://example.org/a.jpg")),
        ("reject", row(path=None, url="javascript:alert(1)")),
        ("reject", row(path=None, url="http://exa mple.com/a.jpg")),
        ("reject", row(path=None, url="http://[::1/a.jpg")),
        ("reject", row(path=None, url="http://example.org:99999/a.jpg")),
        ("reject", row(path=None, url="http:///nohost.jpg")),
        ("reject", row(path=None, url="http://example.org/a\x07.jpg")),
        ("reject", row(path=None, url="http://example.org/\ud800.jpg")),
        ("reject", row(path=None, url="https://example.org/" + "a" * 3500)),
        ("reject", row(identifier="not-a-uuid")),
        ("reject", row(identifier=12345)),
        ("reject", row(identifier={"a": 1})),
        ("reject", row(width="abc")),
        ("reject", row(width=-5)),
        ("reject", raw('"width": 1e400')),
        ("reject", row(width=True)),
        ("reject", row(width=2**40)),
        ("reject", row(height=[1])),
        ("reject", row(watermarked="maybe")),
        ("reject", row(meta_data=[1])),
        ("reject", row(meta_data="not json{")),
        ("reject", row(meta_data=deep(100))),
        ("reject", row(tags={"a": 1})),
        ("reject", row(tags=[1, 2])),
        ("reject", row(title={"a": 1})),
        ("reject", row(title=["x"])),
        ("reject", row(license=True)),
        ("reject", "[1, 2, 3]"),
        ("reject", "{"),
        ("reject", '"just a string"'),
        ("reject", '{"path": "good.png", "n": ' + "9" * 5000 + "}"),
        ("reject", "[" * 100_000 + "]" * 100_000),
        ("reject", "\x00\x01\x02 binary junk"),
        ("reject", row(path="missing.png")),
        ("reject", row(path="dir.png")),
        ("reject", row(path="pipe.png")),
        ("reject", row(path="loop.png")),
        ("reject", row(path="dangling.png")),
        ("reject", row(path="zero.png")),
        ("reject", row(path="/dev/zero")),
        ("reject", row(path="notes.png")),
        ("reject", row(path=None, url="file:///dev/zero")),
        ("reject", row(path=None, url="http://127.0.0.1:9/x.jpg")),
        ("reject", row(path=None, url="http://2130706433/x.jpg")),
        ("reject", row(path=None, url="http://0x7f000001/x.jpg")),
        ("reject", row(path=None, url="http://169.254.169.254/latest/meta-data/")),
        ("reject", row(path=None, url="http://[::ffff:127.0.0.1]/x.jpg")),
        ("reject", row(path=None, url="http://localhost/x.jpg")),
        ("reject", row(path=None, url="http://127.0.0.1/ünï code.jpg")),
        ("reject", row(path=None, url="  http://10.0.0.1/a b.jpg  ")),
    ]
    return cases


def write_jsonl(path: Path, cases: list[tuple[str, object]]) -> dict[int, str]:
    """The manifest, and {line number: expectation}."""
    lines, expected = [], {}
    for number, (expectation, row) in enumerate(cases, 1):
        text = row if isinstance(row, str) else json.dumps(row)
        lines.append(text.encode("utf-8", "surrogatepass"))
        expected[number] = expectation
    path.write_bytes(b"\n".join(lines) + b"\n")
    return expected


def outcome(conn: psycopg.Connection, manifest: Path) -> tuple[dict[int, list[tuple[str, str]]], int]:
    """{line: [(stage, reason)]} from load_error, and the number of catalog rows."""
    by_line: dict[int, list[tuple[str, str]]] = {}
    for source, stage, reason in conn.execute("SELECT source, stage, reason FROM ccvec.load_error"):
        assert source.startswith(f"{manifest}:"), source
        line = int(source[len(str(manifest)) + 1 :].split(" ", 1)[0])
        by_line.setdefault(line, []).append((stage, reason))
    stored = conn.execute("SELECT count(*) FROM ccvec.image").fetchone()[0]
    return by_line, stored


def check(conn: psycopg.Connection, manifest: Path, expected: dict[int, str], summary) -> None:
    by_line, stored = outcome(conn, manifest)
    keep = [n for n, e in expected.items() if e in ("store", "warn")]
    assert stored == summary.loaded == len(keep)  # every good row stored (none lost)
    for number, expectation in expected.items():
        records = by_line.get(number, [])
        stages = {stage for stage, _ in records}
        if expectation == "store":
            assert not records, (number, records)
        elif expectation == "warn":
            assert stages == {"warning"}, (number, records)
        else:
            assert len(records) == 1 and stages <= {"manifest", "fetch", "decode", "store"}, (number, records)
            assert records[0][1].strip() and "\n" not in records[0][1], (number, records)
    assert summary.failed == sum(e == "reject" for e in expected.values())
    assert summary.warnings == sum(e == "warn" for e in expected.values())


def test_hostile_jsonl_manifest(conn: psycopg.Connection, tiny: str, tmp_path: Path) -> None:
    cases = hostile_jsonl_rows(tmp_path)
    assert len(cases) >= 60
    manifest = tmp_path / "hostile.jsonl"
    expected = write_jsonl(manifest, cases)
    started = time.monotonic()
    summary = load(str(manifest), options(tiny))
    assert time.monotonic() - started < 60
    check(conn, manifest, expected, summary)
    # what sanitising did is visible in the stored rows
    titles = {r[0] for r in conn.execute("SELECT title FROM ccvec.image")}
    assert "nulinside" in titles and "lone \ufffd surrogate" in titles
    assert max(len(t or "") for t in titles) == CATALOG_COLUMNS["title"]
    reasons = " | ".join(r[0] for r in conn.execute("SELECT reason FROM ccvec.load_error"))
    for fragment in (
        "duplicate identifier",
        "symlink loop",
        "dangling symlink",
        "FIFO",
        "character device",
        "is a directory",
        "169.254.169.254 is a link-local address",
        "127.0.0.1 is a loopback address",
        "--allow-private-urls",
        "title truncated from 6,000 to 5,000 characters",
        "foreign_landing_url dropped",
        "non-finite number",
        "not a UUID",
        "is not an integer",
        "must be a JSON object",
        "unsupported URL scheme",
    ):
        assert fragment in reasons, fragment


def test_a_bom_and_odd_urls_name_the_row(conn: psycopg.Connection, tiny: str, tmp_path: Path) -> None:
    """A JSON Lines file saved with a UTF-8 BOM keeps its first row; an unclosed IPv6 bracket and
    a scheme-relative URL (`//host/x.jpg`, never a local path) are rejected with the URL named; a
    password in a URL is redacted in what is recorded, as in every message."""
    (tmp_path / "good.png").write_bytes(PNG)
    manifest = tmp_path / "bom.jsonl"
    expected = write_jsonl(
        manifest,
        [
            ("store", {"path": "good.png"}),
            ("reject", {"url": "http://[::1/x.jpg"}),
            ("reject", {"url": "//127.0.0.1:9/good.png"}),
            ("reject", {"url": "http://alice:s3cret@127.0.0.1:9/a.jpg?password=hunter2"}),
            ("reject", {"url": "http://bob:pw@127.0.0.1:9/\u0007.jpg"}),
        ],
    )
    manifest.write_bytes(b"\xef\xbb\xbf" + manifest.read_bytes())
    summary = load(str(manifest), options(tiny))
    check(conn, manifest, expected, summary)
    reasons = [r[0] for r in conn.execute("SELECT reason FROM ccvec.load_error ORDER BY id")]
    assert reasons == [
        "malformed URL (Invalid IPv6 URL): 'http://[::1/x.jpg'",
        "URL has no scheme (write http:// or https://): '//127.0.0.1:9/good.png'",
        "URL contains control characters: 'http://bob:***@127.0.0.1:9/\\x07.jpg'",
        "refused: host '127.0.0.1' resolves to an address that is not public (127.0.0.1 is a loopback "
        "address); --allow-private-urls allows such addresses",
    ]
    sources = " ".join(r[0] for r in conn.execute("SELECT source FROM ccvec.load_error"))
    assert "http://alice:***@127.0.0.1:9/a.jpg?password=***" in sources, sources
    assert "s3cret" not in sources and "hunter2" not in sources


def test_remote_only_refuses_local_rows(conn: psycopg.Connection, tiny: str, tmp_path: Path) -> None:
    (tmp_path / "good.png").write_bytes(PNG)
    manifest = tmp_path / "m.jsonl"
    expected = write_jsonl(
        manifest,
        [
            ("reject", {"path": "good.png"}),
            ("reject", {"url": (tmp_path / "good.png").as_uri()}),
            ("reject", {"url": "good.png"}),
            ("reject", {"url": "http://127.0.0.1:9/a.jpg"}),
        ],
    )
    summary = load(str(manifest), options(tiny, remote_only=True))
    check(conn, manifest, expected, summary)
    reasons = [r[0] for r in conn.execute("SELECT reason FROM ccvec.load_error ORDER BY id")]
    assert sum("--remote-only" in r for r in reasons) == 3


def csv_bytes(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8", "surrogateescape")


def test_hostile_csv_manifest(conn: psycopg.Connection, tiny: str, tmp_path: Path) -> None:
    (tmp_path / "good.png").write_bytes(PNG)
    latin1_name = os.fsdecode(b"caf\xe9.png")  # a file name that is not UTF-8
    (tmp_path / latin1_name).write_bytes(PNG)
    u = lambda: str(uuid.uuid4())  # noqa: E731
    header = ["identifier", "path", "title", "width", "meta_data", "tags", "license"]
    good = lambda **kw: [kw.get(h, {"identifier": u(), "path": "good.png"}.get(h, "")) for h in header]  # noqa: E731
    cases: list[tuple[str, list[str] | bytes]] = [
        ("store", good(title="plain")),
        ("warn", good(title="nul\x00in csv")),
        ("warn", good(title="x" * 1_000_000)),  # a 1 MB field
        ("warn", good(license="l" * 51)),
        ("store", good(title='quotes "and", commas\nand a newline')),
        ("store", good(tags="cat; dog")),
        ("store", good(tags="cat,dog")),
        ("store", good(meta_data='{"a": 1}')),
        ("store", good(width="640")),
        ("store", good(path=latin1_name)),
        ("warn", good(title=os.fsdecode(b"bad utf-8 \xff\xfe here"))),
        ("store", good(title="[/x] \x1b]8;;http://evil\x1b\\link")),
        ("reject", good(meta_data="[1]")),
        ("reject", good(meta_data="{broken")),
        ("reject", good(width="abc")),
        ("reject", good(width="1e400")),
        ("reject", good(identifier="nope")),
        ("reject", good(path="")),
        ("reject", good(path="missing.png")),
        ("reject", good(path="p" * 4000)),
        ("reject", b"too,few\n"),
        ("reject", b"a,b,c,d,e,f,g,h,i,j\n"),
        ("reject", good(path=os.fsdecode(b"missing-\xff.png"))),
        ("reject", b"," + b"y" * (17 * 1024 * 1024) + b"\n"),  # over the 16 MB field limit
        ("store", good(title="after the giant field")),
    ]
    manifest = tmp_path / "hostile.csv"
    blob, expected = csv_bytes([header]), {}
    line = 2
    for expectation, row in cases:
        chunk = row if isinstance(row, bytes) else csv_bytes([row])
        blob += chunk
        expected[line] = expectation
        line += chunk.count(b"\n") if not (isinstance(row, list) and "\n" in "".join(row)) else 2
    manifest.write_bytes(blob)
    summary = load(str(manifest), options(tiny))
    by_line, stored = outcome(conn, manifest)
    keep = sum(e != "reject" for e in expected.values())
    assert stored == summary.loaded == keep
    assert summary.failed == sum(e == "reject" for e in expected.values())
    assert summary.warnings == sum(e == "warn" for e in expected.values())
    for number, expectation in expected.items():
        stages = {stage for stage, _ in by_line.get(number, [])}
        if expectation == "reject":  # exactly one error row, and an error, not a warning
            assert len(by_line[number]) == 1 and stages and "warning" not in stages, number
        else:
            assert stages == {"store": set(), "warn": {"warning"}}[expectation], number
    latin = conn.execute("SELECT count(*) FROM ccvec.image WHERE url LIKE '%caf%E9.png'").fetchone()[0]
    assert latin == 1  # the file's real bytes, percent-encoded


def test_one_bad_row_among_300_loses_nothing(conn: psycopg.Connection, tiny: str, tmp_path: Path) -> None:
    (tmp_path / "good.png").write_bytes(PNG)
    rows = [{"identifier": str(uuid.uuid4()), "path": "good.png"} for _ in range(300)]
    rows[137]["path"] = "a\x00b.png"
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = load(str(manifest), options(tiny))
    assert (summary.loaded, summary.failed) == (299, 1)
    assert conn.execute("SELECT source FROM ccvec.load_error").fetchone()[0] == f"{manifest}:138"


def test_a_row_the_database_refuses_is_retried_alone(conn: psycopg.Connection, tiny: str) -> None:
    """A row that slips past validation and fails in Postgres takes only itself down."""
    from ccvec.decode import decode
    from ccvec.load import _Writer
    from ccvec.models import registry
    from ccvec.models.runtime import Embedder
    from ccvec.sources import SourceItem

    model = registry.get_model(conn, tiny)
    image = decode(PNG, model.spec)
    items = [SourceItem(uuid.uuid4(), f"file:///x/{i}.png", {"url": f"file:///x/{i}.png"}) for i in range(10)]
    bad = SourceItem(uuid.uuid4(), "file:///x/bad.png", {"url": "u" * 4000}, origin="m.jsonl:5")
    items.insert(4, bad)
    batch = [Prepared(item, image, len(PNG)) for item in items]
    vectors = Embedder(model).embed(np.stack([p.image.pixels for p in batch]))
    run_id = conn.execute(
        "INSERT INTO ccvec.load_run (source, model) VALUES ('t', %s) RETURNING id", [tiny]
    ).fetchone()[0]
    conn.commit()
    writer = _Writer(conn.info.dsn, tiny, run_id, True)
    try:
        assert _write_batch(writer.conn, tiny, batch, vectors, [], run_id, True) == (10, 1)
        assert _write_batch(writer.conn, tiny, batch[4:5], vectors[4:5], [], run_id, True) == (0, 1)
    finally:
        writer.close()
    assert conn.execute("SELECT count(*) FROM ccvec.image_embedding").fetchone()[0] == 10
    rows = conn.execute("SELECT source, stage, reason FROM ccvec.load_error").fetchall()
    assert len(rows) == 2 and rows[0] == rows[1]  # a batch of one bad row: recorded, not raised
    source, stage, reason = rows[0]
    assert source == "m.jsonl:5 file:///x/bad.png" and stage == "store"
    assert "database refused the row" in reason and "character varying(3000)" in reason


def hostile_files(folder: Path) -> tuple[set[str], dict[str, str]]:
    """A folder of >= 60 hostile files: (names that must load, {name: reason fragment})."""
    good_jpeg = encode(photo("chelsea").convert("RGB").resize((80, 60)), "JPEG")
    expected = broken_files(folder, encode(photo("chelsea").convert("RGB"), "JPEG"))  # 20 broken images
    expected = {name: fragment or "" for name, fragment in expected.items()}
    good: set[str] = set()

    def put(name: str, data: bytes, fragment: str | None) -> None:
        (folder / name).write_bytes(data)
        if fragment is None:
            good.add(name)
        else:
            expected[name] = fragment

    base = photo("coffee").convert("RGB").resize((40, 30))
    put("ok.jpg", good_jpeg, None)
    put("UPPER.JPG", encode(base, "JPEG"), None)
    put("cmyk.jpg", encode(base.convert("CMYK"), "JPEG"), None)
    put("grey16.png", encode(Image.fromarray(np.full((10, 10), 40000, np.uint16)), "PNG"), None)
    put("rgba.png", encode(base.convert("RGBA"), "PNG"), None)
    put("palette.gif", encode(base.quantize(16), "GIF"), None)
    put("tiny.png", encode(Image.new("RGB", (1, 1)), "PNG"), None)
    put("wide.png", encode(Image.new("L", (3000, 1)), "PNG"), None)
    put("image.webp", encode(base, "WEBP"), None)
    put("image.bmp", encode(base, "BMP"), None)
    put("image.tiff", encode(base, "TIFF"), None)
    put("image.ico", encode(base, "ICO"), None)
    put("[red]markup[bold.png", encode(base, "PNG"), None)
    put("\x1b[2Jescape.png", encode(base, "PNG"), None)
    put("new\nline.png", encode(base, "PNG"), None)
    put(os.fsdecode(b"latin1-\xe9.png"), encode(base, "PNG"), None)
    put("space name.png", encode(base, "PNG"), None)
    put("ünïcödé.png", encode(base, "PNG"), None)
    put("one-byte.jpg", b"\xff", "not an image")
    put("svg.png", b'<svg xmlns="http://www.w3.org/2000/svg"/>', "not an image")
    put("pdf.jpg", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "not an image")
    put("zip.png", b"PK\x03\x04" + bytes(100), "not an image")
    put("elf.gif", b"\x7fELF" + bytes(200), "not an image")
    put("nul-bytes.webp", bytes(10_000), "not an image")
    put("jpeg-magic-only.jpg", b"\xff\xd8\xff\xe0", "")
    put("riff-not-webp.webp", b"RIFF\x00\x00\x00\x00WAVE", "not an image")
    bomb = Image.new("1", (20000, 20000))
    put("bomb.png", encode(bomb, "PNG"), "decompression bomb")
    put("zero-size.gif", b"GIF89a\x00\x00\x00\x00\x00\x00\x00;", "")
    put("big-file.png", encode(base, "PNG") + bytes(2_100_000), "over the")
    put("html.webp", b"<!doctype html><title>404</title>", "not an image")
    put("truncated.webp", encode(base, "WEBP")[:60], "")
    put("truncated.gif", encode(base.quantize(16), "GIF")[:40], "")
    exif = Image.Exif()
    exif[0x0112] = 99  # an orientation that does not exist
    put("bad-orientation.jpg", encode(base, "JPEG", exif=exif.tobytes()), None)
    ihdr = b"IHDR" + (100_000).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00"
    header = b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + ihdr + zlib.crc32(ihdr).to_bytes(4, "big")
    put("huge-header.png", header, "")
    (folder / "dir.jpg").mkdir()
    expected["dir.jpg"] = "is a directory"
    os.mkfifo(folder / "fifo.jpg")
    expected["fifo.jpg"] = "FIFO"
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")
    expected["loop.jpg"] = "symlink loop"
    (folder / "dangling.png").symlink_to(folder / "nowhere.png")
    expected["dangling.png"] = "dangling symlink"
    (folder / "devzero.jpg").symlink_to("/dev/zero")
    expected["devzero.jpg"] = "character device"
    (folder / "devnull.png").symlink_to("/dev/null")
    expected["devnull.png"] = "character device"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "sock.png"))
    sock.close()
    expected["sock.png"] = "socket"
    (folder / "link-to-ok.jpg").symlink_to(folder / "ok.jpg")  # the same image: loaded once
    (folder / "notes.txt").write_text("not an image extension: recorded as skipped, not failed")
    return good, expected


def test_hostile_files_through_the_cli(
    conn: psycopg.Connection, tiny: str, database_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "hostile"
    good, expected = hostile_files(folder)
    assert len(good) + len(expected) >= 60
    env = {**os.environ, "DATABASE_URL": database_url}
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ccvec.cli",
            "load",
            str(folder),
            "--model",
            tiny,
            "--workers",
            "2",
            "--batch-size",
            "8",
            "--max-bytes",
            "2000000",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert time.monotonic() - started < 120
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.returncode == 1
    # the symlink to ok.jpg is ok.jpg: listed once, the link noted (it counted as 'already loaded')
    assert f"loaded {len(good)}, skipped 0 (already loaded), failed {len(expected)}" in result.stdout
    assert "1 file skipped, not images by their name" in result.stdout
    assert "; 1 entry passed over (hidden, system folders, symlinks)" in result.stdout
    skipped = conn.execute(
        "SELECT source FROM ccvec.load_error WHERE stage = 'skipped' ORDER BY id"
    ).fetchall()
    assert [Path(source).name for (source,) in skipped] == ["notes.txt", "link-to-ok.jpg"]  # paths, as shown
    stored = {r[0] for r in conn.execute("SELECT url FROM ccvec.image")}
    assert len(stored) == len(good), (sorted(stored), result.stdout, result.stderr)
    errors, stages = {}, {}
    for source, stage, reason in conn.execute(
        "SELECT source, stage, reason FROM ccvec.load_error WHERE stage NOT IN ('warning', 'skipped')"
    ):
        path = (
            os.fsdecode(unquote_to_bytes(source[len("file://") :]))
            if source.startswith("file://")
            else source
        )
        errors[os.path.basename(path)] = reason
        stages[os.path.basename(path)] = stage
    assert len(errors) == len(expected), sorted(set(errors) ^ set(expected))
    for name, fragment in expected.items():
        assert fragment in errors[name], (name, errors[name])
    # the stages docs/loading.md gives: a file that cannot be read is `fetch`, bad bytes `decode`
    assert {stages[n] for n in ("dir.jpg", "fifo.jpg", "loop.jpg", "dangling.png", "sock.png")} == {"fetch"}
    assert stages["html.webp"] == "decode"


def test_export_only_copies_the_loaded_images_and_never_overwrites(tmp_path: Path) -> None:
    import hashlib

    from ccvec.export import export_folders, loaded_file

    sha = hashlib.sha256(PNG).digest()
    for sub in ("a", "b", "c"):
        (tmp_path / sub).mkdir()
    (tmp_path / "a" / "x.png").write_bytes(PNG)
    (tmp_path / "b" / "x.png").write_bytes(PNG)
    (tmp_path / "c" / "x_1.png").write_bytes(PNG)
    (tmp_path / "changed.png").write_bytes(PNG[:-1] + b"\x00")
    uri = lambda p: Path(p).as_uri()  # noqa: E731
    assert loaded_file("file:///etc/passwd", sha) is None  # not the image that was loaded
    assert loaded_file(uri(tmp_path / "changed.png"), sha) is None
    assert loaded_file(uri(tmp_path / "a") + "/..", sha) is None
    assert loaded_file("file:///dev/zero", sha) is None
    members = [loaded_file(uri(tmp_path / p), sha) for p in ("a/x.png", "b/x.png", "c/x_1.png")]
    assert all(members)
    written = export_folders({1: [(m, "") for m in members]}, tmp_path / "out", copy=True)
    folder = tmp_path / "out" / "cluster_with_3" / "cluster_1"
    images = [p for p in folder.iterdir() if p.name != "README"]
    assert written == 3 and sorted(p.name for p in images) == ["x.png", "x_1.png", "x_1_1.png"]
    assert all(p.read_bytes() == PNG for p in images)


def test_max_pixels_is_honoured_above_pillows_own_limit() -> None:
    """Pillow's limit is lowered here to stand for its default, which a user's --max-pixels may
    exceed: the user's value wins in both directions."""
    from ccvec.decode import DecodeError, decode

    image = encode(Image.new("RGB", (100, 100), "white"), "PNG")  # 10,000 pixels
    saved = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = 1_000
        assert decode(image, None, max_pixels=20_000).width == 100  # above Pillow's limit: allowed
        with pytest.raises(DecodeError, match="decompression bomb"):
            decode(image, None, max_pixels=5_000)  # below: refused
    finally:
        Image.MAX_IMAGE_PIXELS = saved
