"""Near-duplicates: MIH search equals brute force for every radius 0..16; duplicate groups."""

from __future__ import annotations

import uuid

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccvec import neardup
from ccvec.errors import CcvecError
from ccvec.phash import phash_images, to_signed

from .images import PHOTOS, photo


def realistic_hashes(n_random: int, seed: int = 0) -> np.ndarray:
    """Hashes of real photos and of variants of them (bit flips), plus uniform random fill."""
    rng = np.random.default_rng(seed)
    real = phash_images([photo(name) for name in PHOTOS]).astype(np.uint64)
    variants = []
    for h in real:
        for flips in (1, 2, 3, 5, 7, 9, 12, 15):
            bits = rng.choice(64, flips, replace=False)
            variants.append(int(h) ^ int(sum(1 << int(b) for b in bits)))
    fill = rng.integers(0, 2**63, n_random, dtype=np.uint64) * np.uint64(2) + rng.integers(
        0, 2, n_random
    ).astype(np.uint64)
    return np.concatenate([real, np.array(variants, dtype=np.uint64), fill])


def insert_hashes(conn: psycopg.Connection, hashes: np.ndarray) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in hashes]
    with conn.cursor().copy(
        "COPY ccvec.image_feature (identifier, phash, content_sha256, width, height) FROM STDIN"
    ) as copy:
        for ident, h in zip(ids, hashes, strict=True):
            copy.write_row([ident, to_signed(int(h)), bytes(32), 100, 100])
    conn.commit()
    return ids


def brute_force(
    hashes: np.ndarray, ids: list[uuid.UUID], query: int, radius: int
) -> set[tuple[uuid.UUID, int]]:
    distances = np.array([bin(int(h) ^ query).count("1") for h in hashes])
    return {(ids[i], int(d)) for i, d in enumerate(distances) if d <= radius}


@pytest.fixture()
def hash_table(conn: psycopg.Connection):
    hashes = realistic_hashes(3000)
    ids = insert_hashes(conn, hashes)
    return conn, hashes, ids


@pytest.mark.parametrize("chunks", [2, 3, 4])
def test_mih_equals_brute_force_for_every_radius(hash_table, chunks: int) -> None:
    conn, hashes, ids = hash_table
    conn.execute("SELECT ccvec.configure_mih(%s)", [chunks])
    rng = np.random.default_rng(chunks)
    queries = [int(hashes[i]) for i in rng.choice(len(PHOTOS) * 9, 6, replace=False)]
    queries += [int(h) ^ 0b1011 for h in hashes[:3]] + [int(rng.integers(0, 2**63))]
    found_any = 0
    for query in queries:
        for radius in range(17):
            got = set(neardup.neighbours(conn, query, radius))
            assert got == brute_force(hashes, ids, query, radius), (chunks, radius)
            found_any += len(got)
    assert found_any > 100  # the queries do hit: variants lie within the radii


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    query=st.integers(0, 2**64 - 1), radius=st.integers(0, 16), base=st.integers(0, 3000 + 9 * len(PHOTOS))
)
def test_mih_property_random_queries(hash_table, query: int, radius: int, base: int) -> None:
    conn, hashes, ids = hash_table
    if conn.execute("SELECT count(*) FROM ccvec.mih_config").fetchone()[0] == 0:
        conn.execute("SELECT ccvec.configure_mih(3)")
    # half the queries are near a stored hash, so the answer is rarely empty
    near = int(hashes[base % len(hashes)]) ^ (query & 0xFF) if query % 2 else query
    assert set(neardup.neighbours(conn, near, radius)) == brute_force(hashes, ids, near, radius)


def test_unconfigured_search_is_exact_too(hash_table) -> None:
    conn, hashes, ids = hash_table
    conn.execute("DELETE FROM ccvec.mih_config")
    assert set(neardup.neighbours(conn, int(hashes[0]), 9)) == brute_force(hashes, ids, int(hashes[0]), 9)


def test_pairs_batch_form_equals_brute_force(conn: psycopg.Connection) -> None:
    hashes = realistic_hashes(200, seed=5)
    ids = insert_hashes(conn, hashes)
    conn.execute("SELECT ccvec.configure_mih(3)")
    got = {(a, b, d) for a, b, d in conn.execute("SELECT a, b, distance FROM ccvec.hamming_pairs(6)")}
    expected = set()
    for i in range(len(hashes)):
        for j in range(len(hashes)):
            d = bin(int(hashes[i]) ^ int(hashes[j])).count("1")
            if ids[i] < ids[j] and d <= 6:
                expected.add((ids[i], ids[j], d))
    assert got == expected and len(got) > 50


def test_chunk_choice_follows_catalog_size() -> None:
    assert neardup.choose_chunks(10**6, 8) == 3
    assert neardup.plan(10**6, 3, 8).probes == 3 * (1 + 22 + 231)
    assert neardup.plan(10**8, 2, 8).probes > neardup.plan(10**8, 3, 8).probes
    assert neardup.choose_chunks(10**3, 8) > neardup.choose_chunks(10**9, 8)


# ------------------------------------------------------------ groups


def add_images(
    conn: psycopg.Connection, rows: list[tuple[int, int, int, str | None, str]]
) -> dict[str, uuid.UUID]:
    """rows: (phash, width, height, provider, name) -> {name: identifier}"""
    ids = {}
    for h, w, hgt, provider, name in rows:
        ident = uuid.uuid4()
        ids[name] = ident
        conn.execute(
            "INSERT INTO ccvec.image (identifier, url, provider, title) VALUES (%s, %s, %s, %s)",
            [ident, f"file:///{name}", provider, name],
        )
        conn.execute(
            "INSERT INTO ccvec.image_feature (identifier, phash, content_sha256, width, height) "
            "VALUES (%s, %s, %s, %s, %s)",
            [ident, to_signed(h), bytes(32), w, hgt],
        )
    conn.commit()
    return ids


def groups(conn: psycopg.Connection) -> dict[uuid.UUID, set[uuid.UUID]]:
    out: dict[uuid.UUID, set[uuid.UUID]] = {}
    for ident, group in conn.execute("SELECT identifier, group_id FROM ccvec.duplicate_member"):
        out.setdefault(group, set()).add(ident)
    return out


A = 0x0F0F_F0F0_3C3C_C3C3
B = 0x1234_5678_9ABC_DEF0


def test_groups_canonical_and_no_chaining(conn: psycopg.Connection) -> None:
    ids = add_images(
        conn,
        [
            (A, 640, 480, "flickr", "a_flickr_big"),
            (A ^ 0b111, 320, 240, None, "a_small"),
            (A ^ 0b1, 640, 480, "met", "a_met_same_size"),  # same size as a_flickr_big: museum wins
            (A ^ 0xFF00, 640, 480, None, "a_far"),  # 8 bits from A, 9 from a_met
            (A ^ 0xFF00 ^ 0xF0000, 100, 100, None, "chain"),  # within 8 of a_far only
            (B, 50, 50, None, "b"),
        ],
    )
    neardup.dedup(conn, radius=8)
    members = {
        row[0]: row[1:]
        for row in conn.execute(
            "SELECT identifier, group_id, canonical, distance FROM ccvec.duplicate_member"
        )
    }
    met = ids["a_met_same_size"]
    assert members[met] == (met, True, 0)
    assert members[ids["a_flickr_big"]] == (met, False, 1)
    assert members[ids["a_small"]] == (met, False, 2)
    assert members[ids["b"]] == (ids["b"], True, 0)
    # a_far is 9 bits from the canonical: its own group; chain joins a_far, never the museum copy
    assert members[ids["a_far"]][1] is True
    assert members[ids["chain"]][0] == ids["a_far"]
    for group_id, group in groups(conn).items():
        for member in group:
            assert members[member][2] <= 8 and (member == group_id) == members[member][1]
    report = neardup.report(conn)
    assert (report.images, report.groups, report.duplicates) == (6, 2, 3)


def test_new_images_join_existing_groups_incrementally(conn: psycopg.Connection) -> None:
    ids = add_images(conn, [(A, 640, 480, None, "a"), (B, 640, 480, None, "b")])
    first = neardup.dedup(conn, radius=6)
    more = add_images(conn, [(A ^ 0b11, 100, 100, None, "a2"), (B ^ 0xFFFF, 10, 10, None, "far")])
    second = neardup.dedup(conn, radius=6)
    rows = dict(conn.execute("SELECT identifier, run_id FROM ccvec.duplicate_member").fetchall())
    assert rows[ids["a"]] == first and rows[more["a2"]] == second  # old rows untouched
    assert groups(conn)[ids["a"]] == {ids["a"], more["a2"]}
    assert groups(conn)[more["far"]] == {more["far"]}
    # a different radius rebuilds everything
    neardup.dedup(conn, radius=20)
    assert {r[0] for r in conn.execute("SELECT DISTINCT run_id FROM ccvec.duplicate_member")} == {second + 1}


def test_canonical_preference_is_configurable(conn: psycopg.Connection) -> None:
    ids = add_images(
        conn, [(A, 1000, 1000, "flickr", "big_social"), (A ^ 1, 500, 500, "met", "small_museum")]
    )
    neardup.dedup(conn, radius=4, prefer=("provider", "pixels"))
    canonical = conn.execute("SELECT identifier FROM ccvec.duplicate_member WHERE canonical").fetchall()
    assert canonical == [(ids["small_museum"],)]
    neardup.dedup(conn, radius=4, prefer=("pixels",))
    canonical = conn.execute("SELECT identifier FROM ccvec.duplicate_member WHERE canonical").fetchall()
    assert canonical == [(ids["big_social"],)]
    with pytest.raises(CcvecError, match="unknown canonical preference"):
        neardup.dedup(conn, radius=4, prefer=("prettiest",))


# ------------------------------------------------------------ CLI


def test_similar_and_dedup_commands(conn: psycopg.Connection, database_url: str, tmp_path) -> None:
    import os
    import subprocess
    import sys

    from ccvec.load import LoadOptions, load

    from .images import write_photos

    folder = tmp_path / "p"
    write_photos(folder, ("chelsea", "coffee"))
    photo("chelsea").convert("RGB").resize((226, 150)).save(folder / "chelsea_small.png")
    load(str(folder), LoadOptions(workers=0))

    def cli(*args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "DATABASE_URL": database_url}
        return subprocess.run(
            [sys.executable, "-m", "ccvec.cli", *args], capture_output=True, text=True, env=env
        )

    found = cli("similar", "--image", str(folder / "chelsea.jpeg"), "--radius", "8")
    assert found.returncode == 0, found.stderr
    assert "chelsea_small" in found.stdout and "coffee" not in found.stdout
    grouped = cli("dedup")
    assert grouped.returncode == 0, grouped.stderr
    assert "3 images, 1 duplicate groups, 1 duplicates of a canonical image" in grouped.stdout
    bad = cli("similar", "--phash", "xyz")
    assert bad.returncode == 2 and "16 hex characters" in bad.stderr
    both = cli("similar", "--phash", "0" * 16, "--image", "x.jpg")
    assert both.returncode == 2 and "exactly one of" in both.stderr
