"""Catalogs made by an older ccvec: upgraded by this one with every row kept and a line saying what
was done; and the reverse, a database a newer ccvec upgraded, refused in one line by this one."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import psycopg

from ccvec import migrate

from .images import write_photos
from .process import run_ccvec
from .tiny_model import register_tiny

FIRST_RELEASE = "0006_abtest"  # the schema of the first round's final commit (b51d0a6)

# What the first release's own code wrote (its loader, dedup and experiment import), as plain rows
# (pHashes with 32 bits set, as pictures with detail have).
FIRST_RELEASE_ROWS = """
INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) VALUES ('m', '1', 'x', 4, '{}');
INSERT INTO ccvec.image (identifier, url, title, tags) VALUES
    ('00000000-0000-0000-0000-000000000001', 'file:///a.jpg', 'a', '[{"name": "frog"}]'),
    ('00000000-0000-0000-0000-000000000002', 'file:///b.jpg', 'b', NULL),
    ('00000000-0000-0000-0000-000000000003', 'file:///c.jpg', 'c', NULL);
INSERT INTO ccvec.image_feature (identifier, phash, content_sha256, width, height)
    SELECT identifier, (ARRAY[1085350949813011395, 1085350949813011398, 1311768467463790320])[n],
           sha256(n::text::bytea), 64, 48
    FROM (SELECT identifier, row_number() OVER (ORDER BY identifier) AS n FROM ccvec.image) s;
INSERT INTO ccvec.image_embedding (model, identifier, embedding)
    SELECT 'm', identifier, '[1,0,0,0]'::halfvec FROM ccvec.image;
INSERT INTO ccvec.duplicate_run (radius, prefer, finished_at) VALUES (8, '{resolution}', now());
INSERT INTO ccvec.duplicate_member (identifier, group_id, canonical, distance, matched_by, run_id)
    SELECT i.identifier, g.id, i.identifier = g.id, 0,
           CASE WHEN i.identifier = g.id THEN 'canonical' ELSE 'phash' END, r.id
    FROM ccvec.image i, ccvec.duplicate_run r, (SELECT '00000000-0000-0000-0000-000000000001'::uuid AS id) g
    WHERE i.identifier <> '00000000-0000-0000-0000-000000000003'
    UNION ALL
    SELECT u, u, true, 0, 'canonical', id
    FROM ccvec.duplicate_run, (SELECT '00000000-0000-0000-0000-000000000003'::uuid AS u) g;
INSERT INTO ccvec.experiment (name, salt, treatment_share, substitution_share) VALUES ('e', 's', 0.5, 0.2);
INSERT INTO ccvec.ab_event (experiment, event_type, session, query, result_uuid, result_rank, occurred_at)
    VALUES ('e', 'click', 's1', 'q', '00000000-0000-0000-0000-000000000002', 3, '2026-11-01T00:00:00Z');
"""

# The first release's materialized views, in the order its refresh computed them.
SCORE_VIEWS = (
    "observed_popularity",
    "inferred_tags",
    "neighbourhood_popularity",
    "web_authority",
    "image_score",
    "cluster_mate",
)

# The rows a user would miss, by the columns the first release had.
KEPT = {
    "image": "identifier, url, title, tags",
    "image_feature": "identifier, phash, content_sha256, width, height",
    "image_embedding": "model, identifier, embedding::text",
    "model": "name, version, onnx_sha256, dim",
    "duplicate_member": "identifier, group_id, canonical, distance",
    "experiment": "name, salt, treatment_share, substitution_share, status",
    "ab_event": "experiment, event_type, session, query, result_uuid, result_rank, occurred_at",
}


def rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(url) as conn:
        return {
            table: conn.execute(f"SELECT {columns} FROM ccvec.{table} ORDER BY 1, 2").fetchall()
            for table, columns in KEPT.items()
        }


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    text = result.stdout + result.stderr
    assert "Traceback" not in text and result.returncode == 2, text
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_first_release_catalog_upgrades_with_every_row_and_says_so(fresh_database_url: str) -> None:
    """`ccvec db upgrade` on the first release's schema holding its rows: nothing lost, and one
    line naming both revisions, how many migrations ran and how long they took (it said only
    'schema at HEAD', the same as when nothing was to do)."""
    migrate.upgrade(fresh_database_url, FIRST_RELEASE)
    with psycopg.connect(fresh_database_url) as conn:
        conn.execute(FIRST_RELEASE_ROWS)
        for view in SCORE_VIEWS:  # in its order, as the first release's `ccvec refresh` did
            conn.execute(f"REFRESH MATERIALIZED VIEW ccvec.{view}")
    before = rows(fresh_database_url)
    assert all(before.values())
    pending = migrate.pending_revisions(FIRST_RELEASE)
    assert pending[0] != FIRST_RELEASE and pending[-1] == migrate.head_revision() and len(pending) > 40

    done = run_ccvec("db", "upgrade", database_url=fresh_database_url)
    assert done.returncode == 0, done.stderr
    said = done.stdout.strip()
    head = migrate.head_revision()
    expected = rf"schema at {head}: {len(pending)} migrations from {FIRST_RELEASE} in \d+\.\d s"
    first, note = said.splitlines()
    assert re.fullmatch(expected, first), said
    # Score views that later migrations re-create come back empty (image_score among them): said,
    # with what to run (reading a score said only 'not computed yet', with nothing at the upgrade).
    with psycopg.connect(fresh_database_url) as conn:
        empty = conn.execute(
            "SELECT matviewname FROM pg_matviews WHERE schemaname = 'ccvec' AND NOT ispopulated ORDER BY 1"
        ).fetchall()
    emptied = [name for (name,) in empty if name in SCORE_VIEWS]  # image_novelty: new, never computed
    assert "image_score" in emptied
    rebuilt = ", ".join(f"ccvec.{name}" for name in emptied)
    assert note.startswith(f"the upgrade rebuilt {rebuilt} without data: run `ccvec refresh`"), note
    assert rows(fresh_database_url) == before
    with psycopg.connect(fresh_database_url) as conn:
        # Groups by the first release's rule (no flips, no linkage): the next `ccvec run` regroups.
        assert conn.execute("SELECT ccvec.ungrouped_images()").fetchone() == (3,)
        conn.execute(  # as a dedup of this release records its run (then grouping every image)
            "INSERT INTO ccvec.duplicate_run (radius, prefer, link, k, dihedral) "
            "VALUES (8, '{resolution}', 0.5, 10, true)"
        )
        assert conn.execute("SELECT ccvec.ungrouped_images()").fetchone() == (0,)
    again = run_ccvec("db", "upgrade", database_url=fresh_database_url)
    assert again.stdout.strip() == f"schema at {migrate.head_revision()} (up to date)", again.stdout


def test_each_migration_is_reported_as_it_starts(fresh_database_url: str) -> None:
    """The progress of an upgrade names the migration running (a long one is not a silent wait)."""
    migrate.upgrade(fresh_database_url, "0050_catalog_restore")
    seen: list[tuple[str, int, int]] = []
    done = migrate.upgrade(fresh_database_url, on_step=lambda rev, n, total: seen.append((rev, n, total)))
    pending = ["0051_dihedral_member_distance", "0052_hostile_arguments", "0053_nearest_returns_k"]
    assert [rev for rev, _, _ in seen][:3] == pending
    assert [n for _, n, _ in seen] == list(range(1, len(seen) + 1)) and seen[-1][2] == len(seen) == done.steps
    assert seen[-1][0] == migrate.head_revision() and done.start == "0050_catalog_restore"


def test_a_database_upgraded_by_a_newer_ccvec_is_refused_in_one_line(fresh_database_url: str) -> None:
    """This ccvec meeting a schema from a newer one (a migration it does not have): every command
    says so in one line naming both revisions, and changes nothing. It told the user to run `ccvec
    db upgrade`, whose alembic then failed with "Can't locate revision"."""
    migrate.upgrade(fresh_database_url)
    future = "0999_from_a_newer_ccvec"
    with psycopg.connect(fresh_database_url) as conn:
        conn.execute("INSERT INTO ccvec.image (identifier, url) VALUES (gen_random_uuid(), 'file:///x.jpg')")
        conn.execute("UPDATE ccvec.alembic_version SET version_num = %s", [future])
    head = migrate.head_revision()
    for command in (["db", "upgrade"], ["dedup"], ["db", "downgrade", "base", "--yes"], ["clusters"]):
        line = one_line_error(run_ccvec(*command, database_url=fresh_database_url))
        assert f"at {future}, newer than this ccvec (it knows up to {head})" in line, (command, line)
    status = run_ccvec("db", "status", database_url=fresh_database_url)
    assert f"{future} (newer than this ccvec" in status.stdout, status.stdout
    with psycopg.connect(fresh_database_url) as conn:
        assert conn.execute("SELECT version_num FROM ccvec.alembic_version").fetchall() == [(future,)]
        assert conn.execute("SELECT count(*) FROM ccvec.image").fetchone() == (1,)


def test_ccvec_run_on_an_older_schema_says_it_upgraded_it(fresh_database_url: str, tmp_path: Path) -> None:
    """`ccvec run` upgrades the schema itself: on an older ccvec's catalog it says so, in one line on
    stderr before the load (it upgraded without a word); on a current schema it says nothing."""
    migrate.upgrade(fresh_database_url, "0050_catalog_restore")
    with psycopg.connect(fresh_database_url) as conn:
        register_tiny(conn, tmp_path, "tiny-upgrade")
    write_photos(tmp_path / "p", ("chelsea", "coffee"))
    steps = len(migrate.pending_revisions("0050_catalog_restore"))
    first = run_ccvec("run", str(tmp_path / "p"), "--model", "tiny-upgrade", database_url=fresh_database_url)
    assert first.returncode == 0, first.stderr
    line = f"schema at {migrate.head_revision()}: {steps} migrations from 0050_catalog_restore in "
    assert line in first.stderr, first.stderr
    again = run_ccvec("run", str(tmp_path / "p"), "--model", "tiny-upgrade", database_url=fresh_database_url)
    assert again.returncode == 0 and "schema at" not in again.stderr + again.stdout, again.stderr


def test_a_downgrade_to_an_older_release_asks_before_dropping_a_novelty_fit(fresh_database_url: str) -> None:
    """Back to 0023 (the head of an older session's final commit, 76e039e): the fit of every novelty set
    (its centre and spread columns) goes; it is asked for, naming the table and its rows (only the
    main tables were counted, so this went without a question). Up again, the set is there, unfitted."""
    migrate.upgrade(fresh_database_url)
    with psycopg.connect(fresh_database_url) as conn:
        conn.execute(FIRST_RELEASE_ROWS.split(";")[0])  # a model
        conn.execute("INSERT INTO ccvec.novelty_model (name, model, reference, k) VALUES ('s', 'm', 'p', 5)")
    refused = run_ccvec("db", "downgrade", "0023_partitions", database_url=fresh_database_url)
    line = one_line_error(refused)
    assert "loses data in tables holding 1 row (novelty_model 1); not a terminal, so pass --yes" in line, line
    done = run_ccvec("db", "downgrade", "0023_partitions", "--yes", database_url=fresh_database_url)
    assert done.returncode == 0 and done.stdout.strip() == "schema at 0023_partitions", done.stderr
    up = run_ccvec("db", "upgrade", database_url=fresh_database_url)
    assert up.returncode == 0 and "from 0023_partitions" in up.stdout, up.stderr
    with psycopg.connect(fresh_database_url) as conn:
        assert conn.execute("SELECT name FROM ccvec.model").fetchall() == [("m",)]
        assert conn.execute("SELECT name, centre FROM ccvec.novelty_model").fetchall() == [("s", None)]
