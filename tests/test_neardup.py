"""Near-duplicates: MIH search equals brute force for every radius 0..16; duplicate groups."""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pgvector import HalfVector

from ccvec import neardup
from ccvec.errors import CcvecError
from ccvec.phash import from_signed, hamming, phash_images, to_signed

from .images import PHOTOS, photo
from .process import run_ccvec


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


@pytest.mark.parametrize("chunks", [2, 3, 4, 5])
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


def test_probe_weights_follow_the_generalised_pigeonhole(conn: psycopg.Connection) -> None:
    """Weights plus one sum to radius + 1 (so any hash within the radius is within its weight on
    some chunk), SQL and Python agree, and they probe fewer values than floor(radius / chunks)."""
    for chunks in range(1, 17):
        widths = neardup.widths(chunks)
        for radius in range(17):
            weights = neardup.thresholds(widths, radius)
            assert sum(t + 1 for t in weights) == radius + 1 and max(weights) - min(weights) <= 1
            sql = conn.execute("SELECT ccvec.mih_thresholds(%s, %s)", [widths, radius]).fetchone()
            assert sql is not None and sql[0] == weights, (chunks, radius)
    probes = conn.execute(
        "SELECT ccvec.mih_probe_count(ARRAY[16, 16, 16, 16], ccvec.mih_thresholds(ARRAY[16, 16, 16, 16], 4))"
    ).fetchone()
    assert probes is not None and probes[0] == 3 + 17  # < 4 * 17 = 68: was floor(4 / 4) = 1 on every chunk


def test_weighted_candidates_skip_chunks_at_weight_minus_one(hash_table) -> None:
    conn, hashes, _ = hash_table
    conn.execute("SELECT ccvec.configure_mih(4)")
    query = int(hashes[0])
    rows = conn.execute(
        "SELECT phash FROM ccvec.mih_candidates(%s, ARRAY[-1, -1, -1, -1])", [to_signed(query)]
    ).fetchall()
    assert rows == []
    last = {
        r[0]
        for r in conn.execute(
            "SELECT phash FROM ccvec.mih_candidates(%s, ARRAY[-1, -1, -1, 0])", [to_signed(query)]
        )
    }
    assert to_signed(query) in last and all((h - to_signed(query)) & 0xFFFF == 0 for h in last)


def test_configure_writes_the_probe_plan_of_every_radius(hash_table) -> None:
    """ccvec.mih_plan holds, per radius, the weights of neardup.thresholds and their probe count;
    radii whose weights exceed the precomputed masks have no row and are searched by a scan."""
    conn, hashes, ids = hash_table
    conn.execute("SELECT ccvec.configure_mih(4, 20)")  # 16-bit chunks: masks of weight <= 1 only
    plan = {r: (w, p) for r, w, p in conn.execute("SELECT radius, weights, probes FROM ccvec.mih_plan")}
    widths = neardup.widths(4)
    assert sorted(plan) == [r for r in range(65) if max(neardup.thresholds(widths, r)) <= 1]
    assert plan[7] == (neardup.thresholds(widths, 7), 4 * 17) and 8 not in plan
    query = int(hashes[0])
    for radius in (7, 8):
        assert set(neardup.neighbours(conn, query, radius)) == brute_force(hashes, ids, query, radius)


def test_search_stays_exact_after_rows_arrive_in_the_same_session(hash_table) -> None:
    """The search runs a generic plan cached for the session; hashes added after the first call
    are found by the next one."""
    conn, hashes, ids = hash_table
    conn.execute("SELECT ccvec.configure_mih(4)")
    query = int(hashes[0])
    for _ in range(6):  # past the plan cache's five custom plans
        assert set(neardup.neighbours(conn, query, 3)) == brute_force(hashes, ids, query, 3)
    near = np.array([query ^ 0b1, query ^ 0b110], dtype=np.uint64)
    more = insert_hashes(conn, near)
    expected = brute_force(np.concatenate([hashes, near]), ids + more, query, 3)
    assert set(neardup.neighbours(conn, query, 3)) == expected and len(expected) >= 3


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
    assert neardup.choose_chunks(10**6, 8) == 4
    assert [neardup.choose_chunks(10**6, r) for r in (4, 6, 8)] == [4, 4, 4]  # one layout for r <= 8
    assert neardup.plan(10**6, 3, 8).probes == (1 + 22 + 231) + 2 * (1 + 21 + 210)
    assert neardup.plan(10**6, 4, 8).probes == 3 * (1 + 16) + (1 + 16 + 120)
    assert neardup.plan(10**8, 2, 8).probes > neardup.plan(10**8, 3, 8).probes
    assert neardup.choose_chunks(10**3, 8) > neardup.choose_chunks(10**9, 8)


# ------------------------------------------------------------ dihedral probes


def test_transpose_is_exact_and_dihedral_probes_find_flips_and_rotations(conn: psycopg.Connection) -> None:
    from PIL import Image, ImageOps

    from ccvec.phash import hash_pixels, phash_from_pixels

    far = 0
    for name in PHOTOS[:6]:
        image = photo(name).convert("RGB")
        grid = hash_pixels(image.convert("L"))
        h = int(phash_from_pixels(grid[None])[0])
        transposed = int(phash_from_pixels(np.ascontiguousarray(grid.T)[None])[0])
        assert (
            from_signed(conn.execute("SELECT ccvec.phash_transpose(%s)", [to_signed(h)]).fetchone()[0])
            == transposed
        )
        probes = {
            t: from_signed(p)
            for t, p in conn.execute("SELECT * FROM ccvec.phash_dihedral(%s)", [to_signed(h)])
        }
        assert len(probes) == 8 and probes["identity"] == h
        for transform, edited in (
            ("mirror", ImageOps.mirror(image)),
            ("rot90", image.transpose(Image.Transpose.ROTATE_90)),
            ("rot180", image.transpose(Image.Transpose.ROTATE_180)),
        ):
            edited_hash = int(phash_images([edited])[0])
            best = min(probes, key=lambda t: hamming(probes[t], edited_hash))
            assert hamming(probes[best], edited_hash) <= 8, (name, transform)
            far += hamming(h, edited_hash) > 16  # the plain hash would not find it
    assert far >= 12


def test_similar_finds_a_mirrored_copy_by_hash(conn: psycopg.Connection) -> None:
    from PIL import ImageOps

    image = photo("astronaut").convert("RGB")
    h, mirrored = (int(x) for x in phash_images([image, ImageOps.mirror(image)]))
    ids = add_images(conn, [Img("mirrored", mirrored)])
    neardup.configure(conn, 3)
    assert neardup.neighbours(conn, h, 8) == []
    found = neardup.neighbours_dihedral(conn, h, 8)
    assert [(i, t) for i, _, t in found] == [(ids["mirrored"], "mirror")]


# ------------------------------------------------------------ groups

MODEL = "hand-neardup"


@dataclass
class Img:
    name: str
    phash: int
    vector: tuple[float, float, float] | None = None
    width: int = 100
    height: int = 100
    border: float = 0.0
    detail: float = 1.0
    chroma: float = 20.0
    jpeg: int | None = 90


def add_images(conn: psycopg.Connection, images: list[Img]) -> dict[str, uuid.UUID]:
    """Hand-made hashes, vectors and cues; identifiers are derived from the names (stable)."""
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) VALUES (%s, '1', 'hand', 3, '{}') "
        "ON CONFLICT DO NOTHING",
        [MODEL],
    )
    ids = {}
    for im in images:
        ident = uuid.uuid5(uuid.NAMESPACE_URL, im.name)
        ids[im.name] = ident
        conn.execute(
            "INSERT INTO ccvec.image (identifier, url, title, created_on) VALUES (%s, %s, %s, now())",
            [ident, f"file:///{im.name}", im.name],
        )
        conn.execute(
            "INSERT INTO ccvec.image_feature (identifier, phash, content_sha256, width, height) "
            "VALUES (%s, %s, %s, %s, %s)",
            [ident, to_signed(im.phash), bytes(32), im.width, im.height],
        )
        conn.execute(
            "INSERT INTO ccvec.image_cue VALUES (%s, %s, %s, 0, %s, %s)",
            [ident, im.border, im.detail, im.chroma, im.jpeg],
        )
        if im.vector is not None:
            v = np.asarray(im.vector, np.float32)
            conn.execute(
                "INSERT INTO ccvec.image_embedding (model, identifier, embedding) VALUES (%s, %s, %s)",
                [MODEL, ident, HalfVector(v / np.linalg.norm(v))],
            )
    conn.commit()
    return ids


def groups(conn: psycopg.Connection) -> set[frozenset[uuid.UUID]]:
    out: dict[uuid.UUID, set[uuid.UUID]] = {}
    for ident, group in conn.execute("SELECT identifier, group_id FROM ccvec.duplicate_member"):
        out.setdefault(group, set()).add(ident)
    return {frozenset(g) for g in out.values()}


def canonical_of(conn: psycopg.Connection) -> dict[uuid.UUID, uuid.UUID]:
    return dict(conn.execute("SELECT identifier, group_id FROM ccvec.duplicate_member").fetchall())


A = 0x0F0F_F0F0_3C3C_C3C3
B = 0x1234_5678_9ABC_DEF0


def bits(*positions: int) -> int:
    return sum(1 << int(p) for p in positions)


def realistic(rng: np.random.Generator) -> int:
    """A pHash as photographs have them: 32 of its 64 bits set (no DCT values tie at the median)."""
    return bits(*rng.choice(64, 32, replace=False))


def moved(phash: int, pairs: int, rng: np.random.Generator) -> int:
    """`phash` with `pairs` set bits cleared and as many clear bits set: 2 * pairs bits away, and
    still 32 bits set, as the hash of an edited copy of a picture is."""
    ones = [p for p in range(64) if phash >> p & 1]
    zeros = [p for p in range(64) if not phash >> p & 1]
    return phash ^ bits(*rng.choice(ones, pairs, replace=False), *rng.choice(zeros, pairs, replace=False))


def dedup(conn: psycopg.Connection, **kwargs) -> int:
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("dihedral", False)
    return neardup.dedup(conn, **kwargs)


def test_a_chain_is_not_one_group(conn: psycopg.Connection) -> None:
    # a~b (6 bits) and b~c (6 other bits), a and c 12 bits apart (3 of A's set bits and 3 clear
    # ones each time: 32 bits set, as a real pHash); then by embedding: x~y~z, x and z far
    ids = add_images(
        conn,
        [
            Img("a", A),
            Img("b", A ^ bits(0, 1, 6, 2, 3, 4)),
            Img("c", A ^ bits(0, 1, 6, 2, 3, 4, 8, 9, 14, 10, 11, 12)),
            Img("x", B, (1, 0, 0)),
            Img("y", B ^ 0xFFFF_0000, (0.94, 0.342, 0)),
            Img("z", B ^ 0xFFFF_FFFF, (0.766, 0.643, 0)),
        ],
    )
    dedup(conn, radius=8, cosine=0.85)
    edges = conn.execute("SELECT count(*) FROM ccvec.duplicate_edge").fetchone()[0]
    assert edges == 4  # a-b, b-c, x-y, y-z: the chains are there
    found = groups(conn)
    assert frozenset({ids["a"], ids["b"], ids["c"]}) not in found
    assert frozenset({ids["x"], ids["y"], ids["z"]}) not in found
    assert sum(len(g) == 2 for g in found) == 2 and sum(len(g) == 1 for g in found) == 2


def star(prefix: str, base: int, vector: tuple[float, float, float]) -> list[Img]:
    """An original and copies that all match it; the copies match each other only in part."""
    return [
        Img(f"{prefix}-original", base, vector, 400, 300),
        Img(f"{prefix}-small", base ^ bits(1, 2), vector, 200, 150),
        Img(f"{prefix}-upscaled", base ^ bits(3), vector, 800, 600, detail=0.2),
        Img(
            f"{prefix}-letterbox",
            base ^ bits(20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31),
            vector,
            600,
            300,
            border=0.3,
        ),
        Img(f"{prefix}-grey", base ^ bits(4, 5, 6), vector, 400, 300, chroma=0),
        Img(f"{prefix}-jpeg", base ^ bits(7), vector, 400, 300, jpeg=30),
    ]


def test_canonical_is_the_original_and_does_not_change_membership(conn: psycopg.Connection) -> None:
    ids = add_images(conn, star("p", A, (1, 0, 0)) + star("q", B, (0, 1, 0)))
    dedup(conn)
    by_original = groups(conn)
    assert len(by_original) == 2
    canon = canonical_of(conn)
    assert canon[ids["p-upscaled"]] == ids["p-original"] and canon[ids["q-grey"]] == ids["q-original"]
    dedup(conn, prefer=("largest",))  # the upscaled copy has the most pixels
    assert canonical_of(conn)[ids["p-small"]] == ids["p-upscaled"]
    assert groups(conn) == by_original
    dedup(conn, prefer=("newest",))
    assert groups(conn) == by_original
    with pytest.raises(CcvecError, match="unknown canonical preference"):
        dedup(conn, prefer=("prettiest",))


def test_incremental_equals_rebuild(conn: psycopg.Connection) -> None:
    rng = np.random.default_rng(7)
    images = []
    for g in range(12):
        base = realistic(rng)
        vector = tuple(float(x) for x in rng.normal(size=3))
        for m in range(int(rng.integers(1, 5))):
            noisy = tuple(v + float(rng.normal(scale=0.05)) for v in vector)
            copy = moved(base, int(rng.integers(0, 6)), rng)  # 0 to 10 bits away
            images.append(Img(f"g{g}-m{m}", copy, noisy if m % 2 else None))
    # a late image close to two groups' members: incremental must regroup both components
    images.append(Img("bridge", moved(images[0].phash, 1, rng), images[-1].vector or (1, 1, 1)))
    order = list(rng.permutation(len(images)))
    for part in np.array_split(order, 3):
        add_images(conn, [images[i] for i in part])
        dedup(conn, cosine=0.95, link=0.3)
    incremental = groups(conn)
    runs = conn.execute("SELECT count(DISTINCT run_id) FROM ccvec.duplicate_member").fetchone()[0]
    assert runs > 1  # later runs did not regroup everything
    dedup(conn, cosine=0.95, link=0.3, rebuild=True)
    assert groups(conn) == incremental
    assert any(len(g) > 2 for g in incremental)


def test_embedding_candidates_keep_every_hash_match_and_jobs_do_not_change_groups(
    conn: psycopg.Connection,
) -> None:
    # every image embedded: pHash edges come from the embedding neighbours (k = DEDUP_K >= the catalog here)
    rng = np.random.default_rng(11)
    images = star("p", A, (1, 0, 0)) + star("q", B, (0, 1, 0))
    # by hash only: A's mirror image (ccvec.phash_dihedral) two bits off (one set, one clear)
    images.append(Img("p-mirror", A ^ 0x5555_5555_5555_5555 ^ bits(8, 9), (0.2, 0.2, 1)))
    images += [Img(f"r{i}", int(rng.integers(0, 2**63)), tuple(rng.normal(size=3))) for i in range(10)]
    ids = add_images(conn, images)
    name = {v: k for k, v in ids.items()}
    dedup(conn, dihedral=True, jobs=1)
    one = groups(conn)
    found = {
        (name[a], name[b]): (d, t)
        for a, b, d, t in conn.execute("SELECT a, b, distance, transform FROM ccvec.duplicate_edge")
    }
    dedup(conn, dihedral=True, jobs=2, step=5, rebuild=True)
    assert groups(conn) == one
    again = conn.execute("SELECT a, b FROM ccvec.duplicate_edge").fetchall()
    assert {(name[a], name[b]) for a, b in again} == set(found)
    # the exact probes (multi-index hashing) find the same pHash matches, with the same distances,
    # between hashes with detail (more than 8 bits set: all of them here)
    exact = {}
    detail = {im.name: im.phash.bit_count() > 8 for im in images}
    for im in images:
        for other, d, _ in conn.execute(
            "SELECT * FROM ccvec.hamming_neighbours_dihedral(%s, 8)", [to_signed(im.phash)]
        ):
            if other != ids[im.name] and detail[im.name] and detail[name[other]]:
                exact[tuple(sorted((im.name, name[other]), key=lambda n: ids[n]))] = d
    by_hash = {pair: d for pair, (d, _) in found.items() if d is not None}
    assert by_hash == exact
    assert found[tuple(sorted(("p-original", "p-mirror"), key=lambda n: ids[n]))] == (2, "mirror")


def test_load_order_does_not_change_groups(fresh_database_url: str, tmp_path, monkeypatch) -> None:
    from PIL import ImageOps

    from ccvec import db, migrate
    from ccvec.load import LoadOptions, load

    folders = [tmp_path / "one", tmp_path / "two"]
    for folder in folders:
        folder.mkdir()
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        image = photo(name).convert("RGB")
        w, h = image.size
        image.save(folders[0] / f"{name}.jpg", quality=90)
        image.resize((w // 2, h // 2)).save(folders[1] / f"{name}-small.jpg", quality=70)
        ImageOps.mirror(image).save(folders[1] / f"{name}-mirror.jpg", quality=90)
        image.crop((w // 10, h // 10, w - w // 10, h - h // 10)).save(folders[0] / f"{name}-crop.jpg")
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    results = []
    for order, batch in ((folders, 32), (folders[::-1], 3)):
        migrate.upgrade(fresh_database_url)
        with db.connection(fresh_database_url) as conn:
            conn.execute(
                "TRUNCATE ccvec.image, ccvec.image_feature, ccvec.image_embedding, ccvec.image_cue, "
                "ccvec.duplicate_member, ccvec.duplicate_edge, ccvec.duplicate_run CASCADE"
            )
            conn.commit()
        for folder in order:
            load(str(folder), LoadOptions(batch_size=batch, workers=0))
        with db.connection(fresh_database_url) as conn:
            neardup.dedup(conn)
            urls = dict(conn.execute("SELECT identifier, url FROM ccvec.image").fetchall())
            results.append({frozenset(urls[i].rsplit("/", 1)[1] for i in g) for g in groups(conn)})
    assert results[0] == results[1]
    assert frozenset({"coffee.jpg", "coffee-small.jpg", "coffee-mirror.jpg", "coffee-crop.jpg"}) in results[0]


def flat_folder(folder) -> None:
    """Pictures without detail (every one hashes to 0x8000000000000000 but the stripes), and a
    photo with a smaller copy."""
    from PIL import Image

    folder.mkdir()
    colours = {"red": (220, 30, 30), "blue": (20, 40, 200), "white": (255, 255, 255), "green": (30, 160, 40)}
    for name, colour in colours.items():
        Image.new("RGB", (400, 300), colour).save(folder / f"{name}.png")
    Image.new("RGB", (1, 1), (255, 0, 0)).save(folder / "red-pixel.png")
    ramp = np.tile(np.linspace(0, 255, 400).astype(np.uint8), (300, 1))
    Image.fromarray(ramp).convert("RGB").save(folder / "gradient.png")
    stripes = np.zeros((30, 40), np.uint8)
    stripes[:, ::4] = 255
    Image.fromarray(stripes).convert("RGB").save(folder / "stripes.png")
    cat = photo("chelsea").convert("RGB")
    cat.save(folder / "cat.jpg", quality=90)
    cat.resize((cat.width // 2, cat.height // 2)).save(folder / "cat-small.jpg", quality=70)
    mirrored = Image.new(
        "RGB", (cat.width * 2, cat.height)
    )  # a mirror-symmetric picture: half its values tie
    mirrored.paste(cat, (0, 0))
    mirrored.paste(cat.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (cat.width, 0))
    mirrored.save(folder / "mirrored.png")
    mirrored.resize((cat.width, cat.height // 2)).save(folder / "mirrored-small.png")


def named_groups(conn: psycopg.Connection) -> set[frozenset[str]]:
    urls = dict(conn.execute("SELECT identifier, url FROM ccvec.image").fetchall())
    return {frozenset(urls[i].rsplit("/", 1)[1] for i in g) for g in groups(conn) if len(g) > 1}


def test_pictures_without_detail_match_by_embedding_only(conn: psycopg.Connection, tmp_path) -> None:
    """Flat pictures share a pHash (imagehash's too) and were all grouped as copies of one another.
    Their hashes have 8 bits set or fewer (ccvec.phash_has_detail), so they match by the cosine
    rule only: the solid red picture and the red pixel (cosine 0.98) stay one group, the other flat
    pictures none. The photo and its copy still match by pHash, and so does a mirror-symmetric
    picture and its copy, whose values tie by half (fewer than 32 bits set, more than 8)."""
    from ccvec.load import LoadOptions, load

    flat_folder(tmp_path / "flat")
    load(str(tmp_path / "flat"), LoadOptions(workers=0))
    hashes = {
        url.rsplit("/", 1)[1]: from_signed(h)
        for url, h in conn.execute(
            "SELECT i.url, f.phash FROM ccvec.image i JOIN ccvec.image_feature f USING (identifier)"
        )
    }
    flat = {n for n in hashes if not n.startswith(("cat", "mirrored"))}
    assert {hashes[n] for n in flat - {"stripes.png"}} == {0x8000_0000_0000_0000}  # the collision is real
    assert all(hashes[n].bit_count() <= 8 for n in flat) and hashes["cat.jpg"].bit_count() == 32
    assert 8 < hashes["mirrored.png"].bit_count() < 32
    assert conn.execute("SELECT ccvec.phash_has_detail(%s)", [to_signed(hashes["cat.jpg"])]).fetchone()[0]
    neardup.dedup(conn)
    pairs = [
        ("cat.jpg", "cat-small.jpg"),
        ("mirrored.png", "mirrored-small.png"),
        ("red.png", "red-pixel.png"),
    ]
    assert named_groups(conn) == {frozenset(p) for p in pairs}
    by_hash = "SELECT count(*) FROM ccvec.duplicate_edge WHERE distance IS NOT NULL"
    assert conn.execute(by_hash).fetchone()[0] == 2  # the photo and the mirror-symmetric one, with copies


def test_upgrading_undoes_groups_made_by_a_flat_hash(fresh_database_url: str, tmp_path, monkeypatch) -> None:
    """Groups made before migration 0068 by flat hashes are undone at the upgrade (their pHash edges
    dropped), and the next dedup groups those pictures by the rule above; other groups stay."""
    from ccvec import db, migrate
    from ccvec.load import LoadOptions, load

    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    migrate.upgrade(fresh_database_url)
    flat_folder(tmp_path / "flat")
    load(str(tmp_path / "flat"), LoadOptions(workers=0))
    migrate.downgrade(fresh_database_url, "0066_knn_adjacency")  # the rule before
    with db.connection(fresh_database_url) as c:
        neardup.dedup(c)
        before = named_groups(c)
    assert any({"blue.png", "white.png"} <= g for g in before)  # grouped by the shared flat hash
    migrate.upgrade(fresh_database_url)
    with db.connection(fresh_database_url) as c:
        kept = {frozenset({"cat.jpg", "cat-small.jpg"}), frozenset({"mirrored.png", "mirrored-small.png"})}
        assert named_groups(c) == kept
        assert c.execute("SELECT ccvec.ungrouped_images()").fetchone()[0] == 7  # the flat pictures
        # the flat pair that also met the cosine rule keeps its edge, without its pHash distance (an
        # upsert keeps the smaller distance, so a stale one would stay): only the two pictures' are left
        by_hash = "SELECT count(*) FROM ccvec.duplicate_edge WHERE distance IS NOT NULL"
        assert c.execute(by_hash).fetchone()[0] == 2
        neardup.dedup(c)
        assert named_groups(c) == kept | {frozenset({"red.png", "red-pixel.png"})}
        how = c.execute(
            "SELECT i.url, d.matched_by FROM ccvec.duplicate_member d JOIN ccvec.image i USING (identifier)"
            " WHERE NOT d.canonical AND i.url LIKE '%%/red%%'"
        ).fetchall()
        assert [m for _, m in how] == ["embedding"]  # not "phash" at distance 0


# ------------------------------------------------------------ CLI


def test_similar_and_dedup_commands(conn: psycopg.Connection, database_url: str, tmp_path) -> None:

    from ccvec.load import LoadOptions, load

    from .images import write_photos

    folder = tmp_path / "p"
    write_photos(folder, ("chelsea", "coffee"))
    photo("chelsea").convert("RGB").resize((226, 150)).save(folder / "chelsea_small.png")
    photo("chelsea").convert("RGB").transpose(0).save(folder / "chelsea_mirror.png")  # FLIP_LEFT_RIGHT
    load(str(folder), LoadOptions(workers=0))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_ccvec(*args, database_url=database_url)

    found = cli("similar", "--image", str(folder / "chelsea.jpeg"), "--radius", "8")
    assert found.returncode == 0, found.stderr
    assert "chelsea_small" in found.stdout and "coffee" not in found.stdout
    assert "mirror" in found.stdout.split("chelsea_mirror")[0].splitlines()[-1]  # found as a mirror
    plain = cli("similar", "--image", str(folder / "chelsea.jpeg"), "--no-dihedral")
    assert "chelsea_small" in plain.stdout and "chelsea_mirror" not in plain.stdout
    grouped = cli("dedup")
    assert grouped.returncode == 0, grouped.stderr
    assert "4 images, 1 duplicate group, 2 duplicates of a canonical image" in grouped.stdout
    bad = cli("similar", "--phash", "xyz")
    assert bad.returncode == 2 and "16 hex characters" in bad.stderr
    both = cli("similar", "--phash", "0" * 16, "--image", "x.jpg")
    assert both.returncode == 2 and "exactly one of" in both.stderr


def test_a_mirrored_copy_records_its_distance_under_the_mirror(conn: psycopg.Connection) -> None:
    """A copy matched by pHash under a dihedral transform records the distance it matched at, so
    that it reads as a near-duplicate ("a pHash distance past the radius is an embedding match"),
    not the raw distance of the unmirrored hashes (28-32 bits for real photos)."""
    from PIL import ImageOps

    image = photo("astronaut").convert("RGB")
    h, mirrored = (int(x) for x in phash_images([image, ImageOps.mirror(image)]))
    assert hamming(h, mirrored) > 8
    ids = add_images(conn, [Img("original", h, width=200, height=200), Img("mirrored", mirrored)])
    dedup(conn, radius=8, cosine=None, dihedral=True)
    row = conn.execute(
        "SELECT group_id, distance, transform, matched_by FROM ccvec.duplicate_member WHERE identifier = %s",
        [ids["mirrored"]],
    ).fetchone()
    assert row[0] == ids["original"] and row[2:] == ("mirror", "phash")
    assert row[1] <= 8, row
    listed = conn.execute("SELECT distance FROM ccvec.duplicate_listing() WHERE NOT canonical").fetchall()
    assert listed == [(row[1],)]
    shown = conn.execute("SELECT transform, distance FROM ccvec.report_duplicates(NULL) WHERE NOT canonical")
    assert shown.fetchall() == [("mirror", row[1])]  # the report says "mirrored · pHash distance N"
