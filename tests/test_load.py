"""`ccvec load` end to end on the real server: folders, manifests, URLs, broken files, resume, kill -9."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import imagehash
import numpy as np
import psycopg
import pytest
from PIL import Image

from ccvec import phash
from ccvec.fetch import FetchPolicy
from ccvec.load import LoadOptions, load

from .images import broken_files, encode, photo, write_photos
from .process import run_ccvec
from .tiny_model import build_tiny_model, tiny_spec

FAST = LoadOptions(workers=1, batch_size=4)


cli = run_ccvec


def count(conn: psycopg.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM ccvec.{table}").fetchone()[0]


def test_folder_loads_then_rerun_loads_nothing(conn: psycopg.Connection, tmp_path: Path) -> None:
    paths = write_photos(tmp_path / "photos", ("chelsea", "coffee", "astronaut", "camera", "rocket"))
    summary = load(str(tmp_path / "photos"), FAST)
    assert (summary.loaded, summary.skipped, summary.failed) == (5, 0, 0)
    assert count(conn, "image") == count(conn, "image_feature") == count(conn, "image_embedding") == 5

    rows = conn.execute(
        "SELECT i.url, f.phash, e.embedding, f.width, i.filetype FROM ccvec.image i "
        "JOIN ccvec.image_feature f USING (identifier) JOIN ccvec.image_embedding e USING (identifier)"
    ).fetchall()
    stored = {Path(url.removeprefix("file://")).name: row for url, *row in rows}
    for path in paths:
        ph, vector, width, filetype = stored[path.name]
        assert phash.to_hex(phash.from_signed(ph)) == str(imagehash.phash(Image.open(path)))
        assert abs(np.linalg.norm(vector.to_numpy().astype(np.float32)) - 1) < 1e-2
        assert width == Image.open(path).width and filetype == "jpeg"

    again = load(str(tmp_path / "photos"), FAST)
    assert (again.loaded, again.skipped, again.failed) == (0, 5, 0)
    assert count(conn, "image_embedding") == 5


def test_cli_says_nothing_new_on_rerun(conn: psycopg.Connection, database_url: str, tmp_path: Path) -> None:
    write_photos(tmp_path / "p", ("coins", "horse"))
    first = cli("load", str(tmp_path / "p"), "--workers", "1", database_url=database_url)
    assert first.returncode == 0, first.stderr
    assert "loaded 2, skipped 0 (already loaded), failed 0" in first.stdout
    second = cli("load", str(tmp_path / "p"), "--workers", "1", database_url=database_url)
    assert second.returncode == 0
    assert "loaded 0, skipped 2 (already loaded), failed 0" in second.stdout
    assert "nothing new to load" in second.stdout


def test_images_another_load_stored_meanwhile_count_as_already_loaded(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    """Two loads of the same images at once (a folder and its parent; one folder twice waits, see
    tests/test_concurrency.py): the one whose rows the other stored first (between its check of
    what is missing and its writes) says they were already loaded, not `loaded 0, skipped 0,
    failed 0` for 3 images; the run's row says the same."""
    write_photos(tmp_path / "p", ("chelsea", "coffee", "rocket"))
    inner: list[tuple[int, int, int]] = []

    def other_load_first(todo: int) -> None:
        assert todo == 3
        done = load(str(tmp_path), FAST)  # the parent: another source, the same images
        inner.append((done.loaded, done.skipped, done.failed))

    summary = load(str(tmp_path / "p"), FAST, on_start=other_load_first)
    assert inner == [(3, 0, 0)]
    assert (summary.loaded, summary.skipped, summary.failed) == (0, 3, 0)
    run = conn.execute(
        "SELECT loaded, skipped, failed FROM ccvec.load_run WHERE id = %s", [summary.run_id]
    ).fetchone()
    assert run == (0, 3, 0)
    assert count(conn, "image_embedding") == 3


def test_a_deleted_catalog_row_is_written_again_by_the_next_load(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    """An image whose ccvec.image row was deleted after it was embedded comes back, the same row, when
    its source is loaded again (not `skipped (already loaded)` with no catalog row); its embedding
    is kept, not duplicated."""
    write_photos(tmp_path / "p", ("chelsea", "coffee", "rocket"))
    assert load(str(tmp_path / "p"), FAST).loaded == 3
    columns = "identifier, url, title, width, height, filesize, filetype"
    before = conn.execute(f"SELECT {columns} FROM ccvec.image ORDER BY identifier").fetchall()
    vector = conn.execute("SELECT embedding FROM ccvec.image_embedding WHERE identifier = %s", [before[0][0]])
    kept = vector.fetchone()[0]
    conn.execute("DELETE FROM ccvec.image WHERE identifier = %s", [before[0][0]])
    conn.commit()
    again = load(str(tmp_path / "p"), FAST)
    assert (again.loaded, again.restored, again.skipped, again.failed) == (0, 1, 2, 0)
    assert conn.execute(f"SELECT {columns} FROM ccvec.image ORDER BY identifier").fetchall() == before
    assert count(conn, "image_embedding") == 3
    same = conn.execute("SELECT embedding FROM ccvec.image_embedding WHERE identifier = %s", [before[0][0]])
    assert same.fetchone()[0] == kept
    third = load(str(tmp_path / "p"), FAST)
    assert (third.loaded, third.restored, third.skipped) == (0, 0, 3)


def test_broken_files_are_recorded_and_the_rest_loads(
    conn: psycopg.Connection, database_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    write_photos(folder, ("chelsea", "coffee", "moon"))
    expected = broken_files(folder / "bad", encode(photo("chelsea").convert("RGB"), "JPEG"))
    result = cli("load", str(folder), "--workers", "2", "--batch-size", "4", database_url=database_url)
    assert result.returncode == 1
    assert "loaded 3, skipped 0 (already loaded), failed 20" in result.stdout
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("20 inputs failed (10 more not shown): all in `ccvec errors --run")
    shown = [line for line in lines if line.startswith(f"  {folder / 'bad'}/")]  # paths, not file URIs
    assert len(shown) == 10 and all(" (decode)" in line for line in shown)
    assert {Path(line.split(": ")[0].strip()).name for line in shown} <= set(expected)
    errors = conn.execute("SELECT source, stage, reason FROM ccvec.load_error").fetchall()
    assert len(errors) == 20
    by_name = {Path(src).name: (stage, reason) for src, stage, reason in errors}
    assert set(by_name) == set(expected)
    for name, fragment in expected.items():
        assert by_name[name][0] == "decode" and fragment in by_name[name][1]
    assert count(conn, "image_embedding") == 3

    listed = cli("errors", database_url=database_url)
    assert listed.returncode == 0 and "empty file (0 bytes)" in listed.stdout


def test_files_that_are_not_images_are_named_not_failed(
    conn: psycopg.Connection, database_url: str, tmp_path: Path
) -> None:
    """A folder's other files (notes, a manifest, a JPEG renamed .txt) are recorded as skipped, so
    every file ends loaded or in `ccvec errors`; they do not fail the load; hidden files are not
    content: passed over, in one note counting them."""
    folder = tmp_path / "mixed"
    write_photos(folder, ("chelsea",))
    (folder / "notes.txt").write_text("not an image")
    (folder / "elephant-renamed.txt").write_bytes(encode(photo("coffee").convert("RGB"), "JPEG"))
    (folder / "README").write_text("no extension")
    (folder / ".DS_Store").write_bytes(b"\0" * 16)
    (folder / ".git").mkdir()
    (folder / ".git" / "config").write_text("[core]")
    result = cli("load", str(folder), "--workers", "1", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "loaded 1, skipped 0 (already loaded), failed 0" in result.stdout
    assert "3 files skipped, not images by their name" in result.stdout
    assert "; 2 entries passed over (hidden, system folders, symlinks): listed by" in result.stdout
    noted = conn.execute("SELECT source, stage, reason FROM ccvec.load_error ORDER BY source").fetchall()
    assert [(Path(s).name, stage) for s, stage, _ in noted] == [
        ("mixed", "skipped"),
        ("README", "skipped"),
        ("elephant-renamed.txt", "skipped"),
        ("notes.txt", "skipped"),
    ]
    assert "(extension .txt)" in noted[2][2] and "(no extension)" in noted[1][2]
    assert (
        noted[0][2] == "2 hidden entries (names starting with '.': .git, .DS_Store) passed over, not searched"
    )
    listed = cli("errors", database_url=database_url)
    assert listed.returncode == 0 and "notes.txt" in listed.stdout

    (folder / "zz-broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")  # sorts after every note
    failed = cli("load", str(folder), "--workers", "1", database_url=database_url)
    assert failed.returncode == 1 and "1 input failed: all in `ccvec errors --run" in failed.stderr
    assert cli("load", str(folder), "--workers", "1", database_url=database_url).returncode == 1
    rows = cli("errors", "--format", "csv", database_url=database_url).stdout.splitlines()[1:]
    assert "zz-broken.jpg" in rows[0] and ",skipped," in rows[1]  # the failure first, then the notes


def test_manifest_metadata_lands_in_the_catalog(conn: psycopg.Connection, tmp_path: Path) -> None:
    write_photos(tmp_path, ("chelsea", "coffee"))
    ident = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
    (tmp_path / "m.jsonl").write_text(
        json.dumps(
            {
                "identifier": ident,
                "path": "chelsea.jpeg",
                "provider": "flickr",
                "license": "by",
                "meta_data": {"views": 42},
                "tags": ["cat"],
                "width": 1,
            }
        )
        + "\n"
        + json.dumps({"path": "missing.jpeg"})
        + "\n"
        + json.dumps({"title": "no location"})
        + "\n"
        + json.dumps({"path": "coffee.jpeg", "title": "Espresso"})
        + "\n"
    )
    summary = load(str(tmp_path / "m.jsonl"), FAST)
    assert (summary.loaded, summary.failed) == (2, 2)
    row = conn.execute(
        "SELECT provider, license, meta_data, tags, width FROM ccvec.catalog WHERE identifier = %s", [ident]
    ).fetchone()
    assert row == ("flickr", "by", {"views": 42}, [{"name": "cat"}], 451)  # decoded width wins
    assert conn.execute("SELECT title FROM ccvec.image WHERE title = 'Espresso'").fetchone()
    reasons = dict(conn.execute("SELECT stage, reason FROM ccvec.load_error").fetchall())
    assert reasons == {"fetch": "file not found", "manifest": "row has neither path nor url"}


# ------------------------------------------------------------ URLs


class _ImageServer(http.server.BaseHTTPRequestHandler):
    hits: dict[str, int] = {}  # noqa: RUF012
    jpeg = encode(photo("chelsea").convert("RGB"), "JPEG")

    def do_GET(self) -> None:
        hits = self.hits[self.path] = self.hits.get(self.path, 0) + 1
        if self.path == "/ok.jpg" or (self.path == "/flaky.jpg" and hits > 1):
            self._send(200, self.jpeg)
        elif self.path == "/flaky.jpg":
            self._send(503, b"busy")
        elif self.path == "/huge.jpg":
            self._send(200, self.jpeg + bytes(200_000))
        elif self.path == "/slow.jpg":
            time.sleep(1.5)
            self._send(200, self.jpeg)
        elif self.path == "/html.jpg":
            self._send(200, b"<html>login required</html>")
        else:
            self._send(404, b"not found")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def image_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ImageServer)
    _ImageServer.hits = {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_urls_with_retries_timeouts_and_size_cap(
    conn: psycopg.Connection, tmp_path: Path, image_server: str
) -> None:
    names = ["ok", "flaky", "missing", "huge", "slow", "html"]
    (tmp_path / "urls.csv").write_text("url\n" + "".join(f"{image_server}/{n}.jpg\n" for n in names))
    policy = FetchPolicy(
        max_bytes=len(_ImageServer.jpeg) + 1000, timeout=0.5, retries=2, backoff=0.05, allow_private=True
    )
    summary = load(str(tmp_path / "urls.csv"), LoadOptions(workers=0, fetch_policy=policy, concurrency=4))
    assert (summary.loaded, summary.failed) == (2, 4)
    loaded = {r[0].rsplit("/", 1)[1] for r in conn.execute("SELECT url FROM ccvec.image")}
    assert loaded == {"ok.jpg", "flaky.jpg"}
    assert _ImageServer.hits["/flaky.jpg"] == 2  # one 503, one retry that worked
    assert _ImageServer.hits["/missing.jpg"] == 1  # 404 is not retried
    reasons = {
        src.rsplit("/", 1)[1]: reason
        for src, reason in conn.execute("SELECT source, reason FROM ccvec.load_error")
    }
    assert reasons["missing.jpg"] == "download failed after 1 attempt(s): HTTP 404 Not Found"
    assert "over the" in reasons["huge.jpg"] and "byte limit" in reasons["huge.jpg"]
    assert (
        reasons["slow.jpg"].startswith("download failed after 3 attempt(s)")
        and "timed out" in reasons["slow.jpg"]
    )
    assert reasons["html.jpg"].startswith("not an image")


# ------------------------------------------------------------ crash safety


def test_kill_9_midway_then_rerun_loads_every_image_exactly_once(
    conn: psycopg.Connection, database_url: str, tmp_path: Path
) -> None:
    """1,000 real (generated) images, a small real ONNX model; SIGKILL the whole load, rerun."""
    from ccvec.models import registry

    registry.add_model(conn, build_tiny_model(tmp_path / "tiny.onnx"), tiny_spec("tiny-kill"))
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(1000):
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), np.uint8)).save(folder / f"{i:04d}.png")
    args = [
        sys.executable,
        "-m",
        "ccvec.cli",
        "load",
        str(folder),
        "--model",
        "tiny-kill",
        "--batch-size",
        "10",
        "--workers",
        "1",
    ]
    env = {**os.environ, "DATABASE_URL": database_url}
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.time() + 120
    loaded = 0
    while time.time() < deadline and proc.poll() is None:
        loaded = conn.execute(
            "SELECT count(*) FROM ccvec.image_embedding WHERE model = 'tiny-kill'"
        ).fetchone()[0]
        conn.commit()
        if loaded >= 150:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the load finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the loader and its worker processes, like kill -9
    proc.wait()
    # a server backend finishes the statement its killed client sent (a COMMIT lands after the
    # kill): count once the load's sessions are gone
    gone_by = time.time() + 30
    while time.time() < gone_by and conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'ccvec load%%'"
    ).fetchone()[0]:
        conn.commit()
        time.sleep(0.05)
    conn.commit()
    partial = conn.execute("SELECT count(*) FROM ccvec.image_embedding WHERE model = 'tiny-kill'").fetchone()[
        0
    ]
    assert 150 <= partial < 1000
    # no half rows: every committed batch wrote image, feature and embedding together
    assert count(conn, "image") == count(conn, "image_feature") == partial

    rerun = subprocess.run(args, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"skipped {partial:,} (already loaded)" in rerun.stdout
    total, distinct = conn.execute(
        "SELECT count(*), count(DISTINCT identifier) FROM ccvec.image_embedding WHERE model = 'tiny-kill'"
    ).fetchone()
    assert total == distinct == 1000
    assert count(conn, "image") == count(conn, "image_feature") == 1000


def test_hnsw_index_is_rebuilt_after_big_loads_and_kept_for_small(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    from ccvec.graph import ensure_index
    from ccvec.models import registry

    registry.add_model(conn, build_tiny_model(tmp_path / "tiny.onnx"), tiny_spec("tiny-hnsw"))
    rng = np.random.default_rng(9)

    def folder(name: str, n: int) -> str:
        path = tmp_path / name
        path.mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (20, 20, 3), np.uint8)).save(path / f"{i}.png")
        return str(path)

    def index_oid() -> int | None:
        conn.commit()
        return conn.execute(
            "SELECT to_regclass('ccvec.' || ccvec.embedding_index_name('tiny-hnsw'))::oid"
        ).fetchone()[0]

    options = LoadOptions(model="tiny-hnsw", workers=0)
    load(folder("first", 20), options)
    ensure_index(conn, "tiny-hnsw")
    before = index_oid()
    load(folder("small", 3), options)  # 3 <= 0.15 x 20: maintained in place
    assert index_oid() == before
    load(folder("big", 10), options)  # 10 > 0.15 x 23: dropped, rebuilt after
    after = index_oid()
    assert after is not None and after != before
    indexed = conn.execute("SELECT count(*) FROM ccvec.image_embedding WHERE model = 'tiny-hnsw'").fetchone()[
        0
    ]
    assert indexed == 33


def test_batches_embedded_side_by_side_keep_each_image_its_own_vector(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    """Two batches in inference at once (each on its own thread): every stored vector is still the
    embedding of its own image, and a short last batch and the failures are written too."""
    from ccvec.decode import decode
    from ccvec.load import inference_streams
    from ccvec.models import registry
    from ccvec.models.runtime import Embedder

    model = registry.add_model(conn, build_tiny_model(tmp_path / "tiny.onnx"), tiny_spec("tiny-streams"))
    rng = np.random.default_rng(3)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(11):
        Image.fromarray(rng.integers(0, 255, (24, 20 + i, 3), np.uint8)).save(folder / f"{i:02d}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    summary = load(
        str(folder), LoadOptions(model="tiny-streams", workers=0, batch_size=4, inference_streams=2)
    )
    assert (summary.loaded, summary.failed) == (11, 1)
    embedder = Embedder(model, threads=1)
    rows = conn.execute(
        "SELECT i.url, e.embedding FROM ccvec.image i JOIN ccvec.image_embedding e USING (identifier) "
        "WHERE e.model = 'tiny-streams'"
    ).fetchall()
    assert len(rows) == 11
    for url, vector in rows:
        pixels = decode(Path(url.removeprefix("file://")).read_bytes(), model.spec).pixels
        assert pixels is not None
        expected = embedder.embed(pixels[None])[0]
        assert np.allclose(vector.to_numpy().astype(np.float32), expected, atol=2e-3), url
    assert inference_streams(1) == (1, max(1, os.cpu_count() or 1))
    streams, threads = inference_streams(0)
    assert 1 <= streams <= (os.cpu_count() or 1) and streams * threads <= max(os.cpu_count() or 1, 1)


def test_manifest_after_folder_updates_the_catalog_without_reembedding(
    conn: psycopg.Connection, database_url: str, tiny: str, tmp_path: Path
) -> None:
    """The same files as a folder, then as a manifest: the manifest's titles, providers, tags and
    other columns fill in the catalog rows (no image is read again); what a row leaves empty, and
    the title ccvec derives from a file name, do not overwrite; a folder load never does."""
    options = LoadOptions(model=tiny, workers=0)
    write_photos(tmp_path / "photos", ("chelsea", "coffee", "rocket"))
    assert load(str(tmp_path / "photos"), options).loaded == 3
    before = dict(conn.execute("SELECT title, url FROM ccvec.image").fetchall())
    embeddings = "SELECT identifier, computed_at FROM ccvec.image_embedding ORDER BY 1"
    embedded = conn.execute(embeddings).fetchall()
    conn.commit()
    manifest = tmp_path / "photos.csv"
    manifest.write_text(
        "path,title,provider,tags,license,width\n"
        "photos/chelsea.jpeg,A cat,flickr,cat; animal,by,1\n"
        "photos/coffee.jpeg,,wikimedia,,,\n"  # no title, tags or license: those stay as they are
    )
    summary = load(str(manifest), options)
    assert (summary.loaded, summary.skipped, summary.failed, summary.updated) == (0, 2, 0, 2)
    rows = {
        title: (provider, [t["name"] for t in tags or []], license_, width, url)
        for title, provider, tags, license_, width, url in conn.execute(
            "SELECT title, provider, tags, license, width, url FROM ccvec.image"
        )
    }
    assert set(rows) == {"A cat", "coffee", "rocket"}
    assert rows["A cat"][:3] == ("flickr", ["cat", "animal"], "by")
    assert rows["A cat"][3] > 1 and rows["A cat"][4] == before["chelsea"]  # decoded size and location kept
    assert rows["coffee"][:3] == ("wikimedia", [], None)
    assert rows["rocket"][:3] == (None, [], None)
    assert conn.execute(embeddings).fetchall() == embedded  # nothing re-embedded
    conn.commit()
    # the same manifest again changes nothing; the folder again does not undo it
    assert load(str(manifest), options).updated == 0
    assert load(str(tmp_path / "photos"), options).updated == 0
    assert conn.execute("SELECT provider FROM ccvec.image WHERE title = 'A cat'").fetchone() == ("flickr",)
    conn.commit()
    manifest.write_text("path,title\nphotos/rocket.jpeg,A rocket\n")
    said = cli("load", str(manifest), "--model", tiny, "--workers", "0", database_url=database_url)
    assert said.returncode == 0, said.stderr
    assert "1 catalog row(s) loaded before updated from the manifest (not re-embedded)" in said.stdout
