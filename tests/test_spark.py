"""The Spark feature job (local[2]) and the Parquet bulk load against `ccvec load` on the same images.

Real Spark (a JVM and Python workers), the real default model, the real database. Identical pHashes
and cosine >= 0.9999 between the two paths; reruns skip what is done; bad files become error rows.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import psycopg
import pytest

from ccvec import db, load_parquet, migrate
from ccvec.load import LoadOptions, load

from .images import encode, photo, write_photos

if shutil.which("java") is None:  # .ci/run installs Debian's openjdk-17-jre-headless
    pytest.fail("the Spark tests need a Java runtime (apt-get install openjdk-17-jre-headless)")

from ccvec import spark as ccspark


@pytest.fixture(scope="module")
def spark_session():
    session = ccspark.session("local[2]", app="ccvec-test")
    yield session
    session.stop()


def _rows(url: str) -> dict[str, tuple[int, np.ndarray, int, str]]:
    with db.connection(url) as conn:
        rows = conn.execute(
            "SELECT f.identifier, f.phash, e.embedding, f.width, i.title FROM ccvec.image_feature f "
            "JOIN ccvec.image_embedding e USING (identifier) JOIN ccvec.image i USING (identifier)"
        ).fetchall()
    return {str(r[0]): (r[1], r[2].to_numpy().astype(np.float32), r[3], r[4]) for r in rows}


def test_spark_features_equal_ccvec_load(
    spark_session,
    conn: psycopg.Connection,
    database_url: str,
    fresh_database_url: str,
    tmp_path: Path,
    monkeypatch,
) -> None:
    folder = tmp_path / "photos"
    write_photos(folder, ("chelsea", "coffee", "astronaut", "rocket", "camera", "horse"))
    (folder / "broken.jpg").write_bytes(encode(photo("coins"), "JPEG")[:300])  # a truncated JPEG

    # Path 1: the ordinary loader into the shared test database.
    plain = load(str(folder), LoadOptions(workers=0, batch_size=4))
    assert (plain.loaded, plain.failed) == (6, 1)

    # Path 2: Spark on local[2], then the Parquet bulk load into a fresh database.
    out = tmp_path / "features"
    job = ccspark.FeatureJob(str(folder), out, partitions=3)
    first = ccspark.run_features(job, spark_session)
    assert (first.candidates, first.features, first.errors, first.skipped) == (7, 6, 1, 0)
    manifest = json.loads((out / ccspark.MANIFEST).read_text())
    assert manifest["dim"] == 1280 and manifest["embedding"] == "float16 little-endian"

    again = ccspark.run_features(job, spark_session)  # a rerun skips every identifier already in DIR
    assert (again.features, again.skipped) == (0, 6)

    migrate.upgrade(fresh_database_url)
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    assert load_parquet.is_features_dataset(out) and not load_parquet.is_features_dataset(folder)
    env = {**os.environ, "DATABASE_URL": fresh_database_url}
    cli = subprocess.run(
        [sys.executable, "-m", "ccvec.cli", "load", str(out), "--jobs", "2"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert cli.returncode == 1 and "loaded 6, skipped 0 (already loaded), failed 1" in cli.stdout, cli.stderr
    rerun = load_parquet.load_dataset(out, jobs=2)  # resumable: nothing twice
    assert (rerun.loaded, rerun.skipped, rerun.failed) == (0, 6, 0)

    a, b = _rows(database_url), _rows(fresh_database_url)
    assert set(a) == set(b) and len(a) == 6
    for identifier, (phash, vector, width, title) in a.items():
        phash_b, vector_b, width_b, title_b = b[identifier]
        assert phash == phash_b and width == width_b and title == title_b
        cosine = float(vector @ vector_b / np.linalg.norm(vector) / np.linalg.norm(vector_b))
        assert cosine >= 0.9999, (identifier, cosine)
    with db.connection(fresh_database_url) as other:
        (reason,) = other.execute(
            "SELECT reason FROM ccvec.load_error WHERE source LIKE '%broken.jpg'"
        ).fetchone()
    assert "decode" in reason or "truncated" in reason or "cannot" in reason


def test_catalog_dump_parquet_with_bad_rows(spark_session, tmp_path: Path) -> None:
    import pandas as pd

    images = write_photos(tmp_path / "img", ("chelsea", "coffee"))
    ident = str(uuid.uuid4())
    dump = tmp_path / "dump"
    dump.mkdir()
    pd.DataFrame(
        {
            "identifier": [ident, "not-a-uuid", None],
            "url": [images[0].as_uri(), images[1].as_uri(), "ftp://example.org/x.jpg"],
            "provider": ["flickr", "flickr", "flickr"],
            "license": ["by", "by", "by"],
            "tags": ['[{"name": "cat"}]', None, None],
        }
    ).to_parquet(dump / "part-0.parquet")
    out = tmp_path / "features"
    summary = ccspark.run_features(ccspark.FeatureJob(str(dump), out, partitions=2), spark_session)
    assert (summary.features, summary.errors) == (1, 2)
    rows = spark_session.read.parquet(str(out)).collect()
    feature = next(r for r in rows if r["kind"] == "feature")
    assert feature["identifier"] == ident and feature["provider"] == "flickr"
    assert json.loads(feature["tags"]) == [{"name": "cat"}]
    reasons = sorted(r["reason"] for r in rows if r["kind"] == "error")
    assert "not a UUID" in reasons[0] + reasons[1] and "unsupported URL scheme" in reasons[0] + reasons[1]


def test_halfvec_binary_is_what_postgres_reads(conn: psycopg.Connection) -> None:
    values = np.array([[0.5, -1.25, 3.0], [1e-3, 0.0, -0.0]], np.float32)
    blobs = [row.astype("<f2").tobytes() for row in values]
    for blob, expected in zip(load_parquet.halfvec_binary(blobs, 3), values, strict=True):
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS hv (v halfvec)")
        with conn.cursor().copy("COPY hv FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["bytea"])
            copy.write_row([blob])
        got = conn.execute("SELECT v FROM hv").fetchone()[0].to_numpy()
        np.testing.assert_array_equal(got, expected.astype(np.float16))
        conn.execute("TRUNCATE hv")


def _noted(url: str) -> set[tuple[str, str, str]]:
    with db.connection(url) as conn:
        return set(conn.execute("SELECT source, stage, reason FROM ccvec.load_error").fetchall())


def test_non_image_files_are_skipped_notes_as_in_ccvec_load(
    spark_session, conn: psycopg.Connection, database_url: str, fresh_database_url: str, tmp_path: Path
) -> None:
    """A folder's manifest.csv and other non-images: recorded with stage `skipped` and exit 0 on the
    Spark path too (they were `manifest` failures, exit 1), named and counted as `ccvec load` does."""
    folder = tmp_path / "photos"
    write_photos(folder, ("chelsea", "coffee"))
    (folder / "manifest.csv").write_text("identifier,url\n")
    for i in range(101):  # past SKIPPED_NAMED (100): the last two are one counted row
        (folder / f"note{i:03}.txt").write_text("x")
    plain = load(str(folder), LoadOptions(workers=0))
    assert (plain.loaded, plain.failed, plain.not_images) == (2, 0, 102)

    out = tmp_path / "features"
    job = ccspark.run_features(ccspark.FeatureJob(str(folder), out, partitions=2), spark_session)
    assert (job.features, job.errors, job.not_images) == (2, 0, 102)
    migrate.upgrade(fresh_database_url)
    env = {**os.environ, "DATABASE_URL": fresh_database_url}
    command = [sys.executable, "-m", "ccvec.cli", "load", str(out), "--jobs", "1"]
    loaded = subprocess.run(command, capture_output=True, text=True, env=env)
    assert loaded.returncode == 0, (loaded.stdout, loaded.stderr)
    assert "loaded 2, skipped 0 (already loaded), failed 0" in loaded.stdout
    assert "102 files skipped, not images by their name" in loaded.stdout
    assert _noted(fresh_database_url) == _noted(database_url)
    assert {stage for _, stage, _ in _noted(fresh_database_url)} == {"skipped"}
    with db.connection(fresh_database_url) as fresh:
        assert fresh.execute("SELECT failed FROM ccvec.load_run").fetchall() == [(0,)]

    # A dataset written before error rows had a `files` column still loads; its rows count one each.
    import pyarrow as pa
    import pyarrow.parquet as pq

    old = {"identifier": [None], "location": ["/x/old.jpg"], "stage": ["decode"], "reason": ["truncated"]}
    pq.write_table(pa.table(old), out / "kind=error" / "part-old.parquet")
    again = subprocess.run(command, capture_output=True, text=True, env=env)
    assert again.returncode == 1 and "failed 1" in again.stdout and "not images" not in again.stdout


def test_rows_stored_with_changes_are_noted_as_in_ccvec_load(
    spark_session, conn: psycopg.Connection, database_url: str, fresh_database_url: str, tmp_path: Path
) -> None:
    """A manifest row whose title loses a NUL, or a lone surrogate, is stored and recorded as a
    `warning` naming its manifest line on the Spark path too (the job dropped the note); a failing
    row is named by its line as `ccvec load` names it, with the passwords of its URL redacted."""
    images = write_photos(tmp_path / "img", ("chelsea", "coffee", "astronaut"))
    manifest = tmp_path / "manifest.jsonl"
    rows = [
        {"path": str(images[0]), "title": "a\u0000cat"},
        {"path": str(images[1]), "title": "mug \udc80"},
        {"path": str(images[2]), "title": "fine"},
        {"path": str(tmp_path / "missing.jpg"), "title": "gone"},
        {"url": "http://user:secret@127.0.0.1:9/x.jpg?password=hush", "title": "never fetched"},
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    plain = load(str(manifest), LoadOptions(workers=0))
    assert (plain.loaded, plain.failed, plain.warnings) == (3, 2, 2)

    out = tmp_path / "features"
    job = ccspark.run_features(ccspark.FeatureJob(str(manifest), out, partitions=2), spark_session)
    assert (job.features, job.errors, job.warnings) == (3, 2, 2)
    migrate.upgrade(fresh_database_url)
    env = {**os.environ, "DATABASE_URL": fresh_database_url}
    command = [sys.executable, "-m", "ccvec.cli", "load", str(out), "--jobs", "1"]
    loaded = subprocess.run(command, capture_output=True, text=True, env=env)
    assert loaded.returncode == 1, (loaded.stdout, loaded.stderr)
    assert "2 row(s) stored with changes" in loaded.stdout, loaded.stdout
    noted = _noted(fresh_database_url)
    assert noted == _noted(database_url)
    assert {(source.split(" ")[0], stage) for source, stage, _ in noted} == {
        (f"{manifest}:1", "warning"),
        (f"{manifest}:2", "warning"),
        (f"{manifest}:4", "fetch"),
        (f"{manifest}:5", "fetch"),
    }
    assert not [row for row in noted if "secret" in " ".join(row) or "hush" in " ".join(row)], noted


def test_local_masters_bind_the_driver_to_loopback(spark_session, tmp_path: Path) -> None:
    """Without it the local driver listens on the machine's network address (eth0)."""
    assert spark_session.conf.get("spark.driver.host") == "127.0.0.1"
    assert spark_session.conf.get("spark.driver.bindAddress") == "127.0.0.1"
    loopback = {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
    for master in (None, "local", "local[*]", "local[4]", "local[4,2]"):
        conf = ccspark.session_config(master, {})
        assert loopback.items() <= conf.items(), master
        assert conf["spark.master"] == (master or "local[*]")
    for master in (
        "spark://spark-master:7077",
        "yarn",
        "k8s://https://10.0.0.1:6443",
        "local-cluster[2,1,1024]",
    ):
        assert not ccspark.DRIVER_ADDRESS_KEYS & set(ccspark.session_config(master, {})), master
    # What the user set is theirs: the environment, spark-defaults.conf, PYSPARK_SUBMIT_ARGS.
    for env in ({"SPARK_LOCAL_IP": "10.1.2.3"}, {"SPARK_LOCAL_HOSTNAME": "me.example"}):
        assert not ccspark.DRIVER_ADDRESS_KEYS & set(ccspark.session_config("local[2]", env))
    (tmp_path / "spark-defaults.conf").write_text("# mine\nspark.driver.host   10.1.2.3\n")
    conf = ccspark.session_config("local[2]", {"SPARK_CONF_DIR": str(tmp_path)})
    assert not ccspark.DRIVER_ADDRESS_KEYS & set(conf)
    submit = {"PYSPARK_SUBMIT_ARGS": "--conf spark.driver.bindAddress=0.0.0.0 pyspark-shell"}
    assert not ccspark.DRIVER_ADDRESS_KEYS & set(ccspark.session_config(None, submit))
    # With SPARK_HOME and no --master, the master comes from spark-defaults.conf: a cluster's is left alone.
    (tmp_path / "spark-defaults.conf").write_text("spark.master=spark://head:7077\n")
    conf = ccspark.session_config(None, {"SPARK_HOME": "/opt/spark", "SPARK_CONF_DIR": str(tmp_path)})
    assert "spark.master" not in conf and not ccspark.DRIVER_ADDRESS_KEYS & set(conf)
    assert loopback.items() <= ccspark.session_config(None, {"SPARK_HOME": str(tmp_path / "none")}).items()
