"""The default clustering, cluster labels and medoids, inferred tags, novelty, and their commands."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from pathlib import Path

import numpy as np
import psycopg
import pytest
from pgvector import HalfVector
from typer.testing import CliRunner

from ccvec import clusters, defaults, graph
from ccvec.cli import app
from ccvec.errors import CcvecError

from .images import encode, photo
from .test_graph import MODEL, add_vectors, edges, unit


def groups(rng: np.random.Generator, per_group: int = 8, dims: int = 3) -> np.ndarray:
    """Two tight, well-separated groups around two orthogonal directions."""
    centres = np.eye(dims, dtype=np.float32)[:2]
    return np.stack([unit(np.abs(c + rng.normal(0, 0.05, dims))) for c in centres for _ in range(per_group)])


def labels_of(conn: psycopg.Connection, run_id: int) -> dict[uuid.UUID, int]:
    return dict(
        conn.execute(
            "SELECT identifier, cluster FROM ccvec.cluster_member WHERE run_id = %s", [run_id]
        ).fetchall()
    )


def test_two_groups_make_two_clusters_and_a_bridge_does_not_merge_them(conn: psycopg.Connection) -> None:
    rng = np.random.default_rng(1)
    vectors = groups(rng)
    bridge = unit(vectors[:8].mean(0) + vectors[8:].mean(0))  # halfway between the groups
    ids = add_vectors(conn, np.vstack([vectors, bridge[None]]))
    graph.build(conn, k=5, model=MODEL)
    run_id = clusters.cluster_louvain(conn)
    got = labels_of(conn, run_id)
    a, b = {got[i] for i in ids[:8]}, {got[i] for i in ids[8:16]}
    assert len(a) == 1 and len(b) == 1 and a != b  # each group whole, the two apart
    assert got[ids[16]] in a | b  # the bridge joins one side, it does not merge them
    shape = clusters.shape(conn, run_id)
    assert (shape.clusters, shape.singletons, shape.images) == (2, 0, 17)
    assert shape.largest_share == pytest.approx(9 / 17)  # over the 25 % cap, but nothing to split
    params = conn.execute("SELECT params FROM ccvec.cluster_run WHERE id = %s", [run_id]).fetchone()[0]
    assert params["max_share"] == 0.25 and params["split_modularity"] == 0.3
    with pytest.raises(CcvecError, match=r"between 0\.5 and 2"):
        clusters.cluster_louvain(conn, resolution=5)


def test_labels_from_tags_and_medoid(conn: psycopg.Connection) -> None:
    rng = np.random.default_rng(2)
    vectors = groups(rng, per_group=5)
    tags = [["windmill"], ["windmill", "sky"], ["windmill"], [], ["sky"]] + [["lighthouse"]] * 4 + [[]]
    ids = add_vectors(conn, vectors, tags)
    graph.build(conn, k=4, model=MODEL)
    run_id = clusters.cluster_louvain(conn)
    assert clusters.label(conn, run_id) == 2
    rows = {r[1]: r for r in clusters.summary(conn, run_id)}
    assert set(rows) == {"windmill · sky", "lighthouse"}  # shares 0.6 / 0.4 and 0.8
    assert rows["lighthouse"][4] == "tags" and rows["lighthouse"][2] == 5
    # medoid: the member with the largest summed similarity to its cluster-mates, computed here
    v = vectors.astype(np.float16).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    edges = conn.execute("SELECT identifier, neighbour, similarity FROM ccvec.knn_current").fetchall()
    inner = {i: 0.0 for i in ids}
    for i, nb, sim in edges:
        if (ids.index(i) < 5) == (ids.index(nb) < 5):
            inner[i] += sim
    assert rows["windmill · sky"][3] == max(ids[:5], key=lambda i: (inner[i], -i.int))
    view = conn.execute("SELECT label, size, singleton FROM ccvec.cluster_summary ORDER BY label").fetchall()
    assert view == [("lighthouse", 5, False), ("windmill · sky", 5, False)]
    # the refresh names the clusters again from the tags of now, keeping sizes and medoids
    mill = json.dumps([{"name": "mill"}])
    conn.execute("UPDATE ccvec.image SET tags = %s WHERE identifier = ANY(%s)", [mill, ids[:5]])
    conn.commit()
    assert clusters.relabel(conn, run_id) == 1 and clusters.relabel(conn, run_id) == 0
    again = {r[1]: r for r in clusters.summary(conn, run_id)}
    assert set(again) == {"mill", "lighthouse"}
    assert again["mill"][2:4] == rows["windmill · sky"][2:4] and again["lighthouse"] == rows["lighthouse"]
    # labelled in full again (0042's label_clusters), the same rows as the former function of 0009
    table = (
        "SELECT cluster, size, label, source, medoid FROM ccvec.cluster_label WHERE run_id = %s ORDER BY 1"
    )
    assert clusters.label(conn, run_id) == 2
    now = conn.execute(table, [run_id]).fetchall()
    conn.execute(former_label_clusters())
    conn.execute("SELECT pg_temp.label_clusters_0009(%s)", [run_id])
    assert conn.execute(table, [run_id]).fetchall() == now
    conn.rollback()


def test_labels_from_class_predictions_of_the_default_model(conn: psycopg.Connection, tmp_path) -> None:
    """No tags: the cluster is named by the real EfficientNet-Lite0 head, read from stored embeddings."""
    from PIL import ImageOps

    from ccvec.load import LoadOptions, load

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("chelsea", "coffee"):
        base = photo(name).convert("RGB")
        variants = [base, ImageOps.mirror(base), base.resize((base.width // 2, base.height // 2))]
        for i, image in enumerate(variants):
            (folder / f"{name}{i}.png").write_bytes(encode(image))
    load(str(folder), LoadOptions(workers=0))
    graph.build(conn, k=2)
    run_id = clusters.cluster_louvain(conn)
    assert clusters.predict_classes(conn, defaults.MODEL, batch=4) == 6  # batches resume in key order
    assert clusters.predict_classes(conn, defaults.MODEL, batch=4) == 0
    clusters.label(conn, run_id)
    rows = clusters.summary(conn, run_id)
    assert sorted(r[2] for r in rows) == [3, 3] and all(r[4] == "classes" for r in rows)
    names = " / ".join(r[1] for r in rows)
    assert "espresso" in names
    assert any(cat in names for cat in ("tabby", "tiger cat", "Egyptian cat"))
    # the classes from the stored embedding equal the full network's top class
    stored = dict(conn.execute("SELECT identifier, classes[1] FROM ccvec.image_class").fetchall())
    assert len(stored) == 6 and 967 in stored.values() and set(stored.values()) & set(range(281, 286))


KINDS = {  # each range's first and last class of ccvec.imagenet_group, by name
    "fish": ("tench", "stingray", "barracouta", "puffer"),
    "birds": ("cock", "great grey owl", "black grouse", "black swan", "white stork", "albatross"),
    "reptiles and amphibians": ("European fire salamander", "sidewinder"),
    "insects and other invertebrates": (
        "trilobite",
        "centipede",
        "jellyfish",
        "isopod",
        "tiger beetle",
        "sea cucumber",
    ),
    "dogs": ("Chihuahua", "Mexican hairless"),
    "mammals": (
        "tusker",
        "wombat",
        "grey whale",
        "sea lion",
        "timber wolf",
        "meerkat",
        "wood rabbit",
        "giant panda",
    ),
    "food": ("guacamole", "eggnog"),
    "landscapes": ("alp", "volcano"),
    "people": ("ballplayer", "scuba diver"),
    "plants and fungi": ("rapeseed", "ear"),
    "objects": ("abacus", "plate", "toilet tissue", "toilet tissue"),
}


def test_imagenet_kinds_follow_the_class_names(conn: psycopg.Connection) -> None:
    """ccvec.imagenet_group's index ranges name the right kind: checked on the shipped class names
    at each range's two ends (the classes are ordered by WordNet synset)."""
    index = {name: i for i, name in enumerate(clusters.class_names())}
    for kind, names in KINDS.items():
        for name in names:
            got = conn.execute("SELECT ccvec.imagenet_group(%s)", [index[name]]).fetchone()
            assert got == (kind,), (name, index[name])
        for name in names[1::2]:  # the class after a range's end is of another kind
            after = conn.execute("SELECT ccvec.imagenet_group(%s)", [index[name] + 1]).fetchone()
            assert after != (kind,) or index[name] == 999, name
    assert conn.execute("SELECT ccvec.imagenet_group(1000)").fetchone() == (None,)


def test_a_cluster_no_class_carries_is_named_by_its_kind(conn: psycopg.Connection) -> None:
    """Mammals of 25 classes, none above 4 % of the predicted mass: the cluster was named after two
    of them ("Komodo dragon · koala" for 24 mixed animals of GCompris); now "mammals". A cluster one
    class carries keeps its classes' name."""
    ids = add_vectors(conn, groups(np.random.default_rng(7), per_group=5))
    graph.build(conn, k=4, model=MODEL)
    run_id = clusters.cluster_louvain(conn)
    conn.execute("SELECT ccvec.class_names_add(%s, %s)", [MODEL, clusters.class_names()])
    index = {name: i for i, name in enumerate(clusters.class_names())}
    first = index["wood rabbit"]  # 25 mammals from here, five per image at 0.18 each: 4 % apiece
    predicted = [(list(range(first + 5 * i, first + 5 * i + 5)), [0.18] * 5) for i in range(5)]
    predicted += [([index["espresso"], index["cup"]], [0.9, 0.05])] * 5
    for ident, (classes, probs) in zip(ids, predicted, strict=True):
        conn.execute(
            "INSERT INTO ccvec.image_class (model, identifier, classes, probs) VALUES (%s, %s, %s, %s)",
            [MODEL, ident, classes, probs],
        )
    conn.commit()
    clusters.label(conn, run_id)
    names = {r[1]: r[4] for r in clusters.summary(conn, run_id)}
    assert names == {"mammals": "classes", "espresso · cup": "classes"}


def test_novelty_of_an_obvious_outlier(conn: psycopg.Connection) -> None:
    rng = np.random.default_rng(3)
    vectors = groups(rng, per_group=6)
    outlier = unit(np.array([0.05, 0.05, 1], dtype=np.float32))
    ids = add_vectors(conn, np.vstack([vectors, outlier[None]]))
    graph.build(conn, k=3, model=MODEL)
    graph.refresh_inferred(conn)
    novelty = dict(conn.execute("SELECT identifier, novelty FROM ccvec.image_novelty").fetchall())
    assert len(novelty) == 13 and all(0 <= s <= 1 for s in novelty.values())
    assert novelty[ids[12]] == 1.0 and max(novelty[i] for i in ids[:12]) < 1.0
    # against a reference set: the first group; its held-out member fits, the others do not
    conn.execute("UPDATE ccvec.image SET provider = 'ref' WHERE identifier = ANY(%s)", [ids[:5]])
    conn.commit()
    assert clusters.novelty_fit(conn, "group-a", "provider=ref", "provider", "ref", MODEL) == 5
    assert clusters.novelty_score(conn, "group-a") == 8
    scored = dict(conn.execute("SELECT identifier, novelty FROM ccvec.reference_novelty").fetchall())
    assert set(scored) == set(ids[5:])
    assert scored[ids[5]] <= 0.8  # like the reference's own members
    assert all(scored[i] == 1.0 for i in ids[6:])  # farther than every reference member
    # the score is the distance to the members' centre in units of each dimension's spread, floored
    # by novelty.spread_floor (1) x the mean spread; members are scored leave-one-out
    stored = np.vstack([vectors, outlier[None]]).astype(np.float16).astype(np.float64)  # halfvec
    ref = stored[:5]

    def spread(x: np.ndarray, fit: np.ndarray) -> float:
        sd = fit.std(0)
        return float(np.linalg.norm((x - fit.mean(0)) / (sd + ref.std(0).mean())))

    sql = "SELECT score FROM ccvec.{} WHERE identifier = %s"
    score = conn.execute(sql.format("reference_novelty"), [ids[12]]).fetchone()
    assert score is not None and score[0] == pytest.approx(spread(stored[12], ref), rel=1e-3)
    own = conn.execute(sql.format("novelty_reference"), [ids[0]]).fetchone()
    assert own is not None and own[0] == pytest.approx(spread(ref[0], ref[1:]), rel=1e-3)
    # within the collection too: the outlier is the farthest from the centre in spreads
    spreads = dict(conn.execute("SELECT identifier, score FROM ccvec.image_novelty").fetchall())
    assert max(spreads, key=spreads.__getitem__) == ids[12]
    # what `ccvec scores --identifier` shows: both novelties, with what they were measured from
    shown = conn.execute("SELECT * FROM ccvec.explain_novelty(%s)", [ids[12]]).fetchall()
    assert [(label, novelty) for label, novelty, _ in shown] == [
        ("within the collection", 1.0),
        ("against group-a", 1.0),
    ]
    knn = conn.execute("SELECT distance FROM ccvec.image_novelty WHERE identifier = %s", [ids[12]]).fetchone()
    shape = r"distance to the centre in spreads ([\d.]+), mean kNN distance ([\d.]+)"
    detail = re.fullmatch(shape, shown[0][2])
    assert detail is not None and knn is not None
    assert float(detail[1]) == pytest.approx(spreads[ids[12]], abs=0.006)
    assert float(detail[2]) == pytest.approx(knn[0], abs=6e-4)
    with pytest.raises(CcvecError, match="need at least 2"):
        clusters.novelty_fit(conn, "none", "provider=x", "provider", "x", MODEL)


def test_tags_command_and_already_tagged_images(conn: psycopg.Connection) -> None:
    rng = np.random.default_rng(4)
    vectors = groups(rng, per_group=5)
    tags = [["cat"], ["cat"], ["cat"], ["cat"], [], ["dog"], ["dog"], ["dog"], ["dog", "cat"], ["dog"]]
    ids = add_vectors(conn, vectors, tags)
    graph.build(conn, k=4, model=MODEL)
    graph.refresh_inferred(conn)
    inferred = {
        (i, t): s for i, t, s in conn.execute("SELECT identifier, tag, score FROM ccvec.inferred_tags")
    }
    assert inferred[(ids[4], "cat")] == pytest.approx(1.0)  # untagged: every tagged neighbour says cat
    # already tagged images get an extra tag only with strong evidence (score >= 0.99): one of four
    # dog neighbours also says cat (score ~0.25), so no dog gets "cat"
    assert not any(t == "cat" for (i, t) in inferred if i in ids[5:])
    runner = CliRunner()
    one = runner.invoke(app, ["tags", str(ids[4])])
    assert one.exit_code == 0, one.output
    assert "own tags: (none)" in one.output and "inferred: cat  score 1.00" in one.output
    as_json = runner.invoke(app, ["tags", "--all", "--format", "json"])
    rows = json.loads(as_json.stdout)
    assert {(r["identifier"], r["tag"]) for r in rows} == {(str(i), t) for i, t in inferred}
    as_csv = runner.invoke(app, ["tags", "--all", "--format", "csv"])
    assert len(list(csv.DictReader(io.StringIO(as_csv.stdout)))) == len(inferred)
    table = runner.invoke(app, ["tags", "--all"])
    assert table.exit_code == 0 and all(str(i) in table.stdout for i, _ in inferred)
    one_json = json.loads(runner.invoke(app, ["tags", str(ids[4]), "--format", "json"]).stdout)
    assert {"tag": "cat", "kind": "inferred"}.items() <= one_json[0].items()
    bad = runner.invoke(app, ["tags", "--all", "--format", "xml"])
    assert bad.exit_code == 2 and "xml" in bad.output


def test_clusters_command_and_export_with_unclustered(conn: psycopg.Connection, tmp_path) -> None:
    from PIL import Image

    from ccvec import export
    from ccvec.load import LoadOptions, load
    from ccvec.models import registry

    from .tiny_model import build_tiny_model, tiny_spec

    registry.add_model(conn, build_tiny_model(tmp_path / "tiny.onnx"), tiny_spec("tiny-labels"))
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(6)
    for colour, name, count in (((200, 30, 30), "red", 4), ((30, 30, 200), "blue", 4)):
        for i in range(count):
            noise = rng.integers(-20, 20, (32, 32, 3))
            Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)).save(
                photos / f"{name}{i}.png"
            )
    load(str(photos), LoadOptions(model="tiny-labels", workers=0, write_catalog=True))
    for ident, url in conn.execute("SELECT identifier, url FROM ccvec.image").fetchall():
        colour = "red" if "red" in url else "blue"
        conn.execute(
            "UPDATE ccvec.image SET tags = %s WHERE identifier = %s", [json.dumps([{"name": colour}]), ident]
        )
    conn.commit()
    graph.build(conn, k=3, model="tiny-labels")
    run_id = clusters.cluster_louvain(conn)
    clusters.label(conn, run_id)
    runner = CliRunner()
    listing = runner.invoke(app, ["clusters"])
    assert listing.exit_code == 0, listing.output
    assert "red" in listing.output and "blue" in listing.output
    assert "2 clusters of 2 or more images, 0 singletons (8 images; the largest has 4 (50%))" in (
        listing.output
    )
    # one image alone: a singleton run is made by splitting a cluster by hand
    lone = conn.execute(
        "SELECT identifier FROM ccvec.cluster_member WHERE run_id = %s LIMIT 1", [run_id]
    ).fetchone()
    conn.execute(
        "UPDATE ccvec.cluster_member SET cluster = 99 WHERE run_id = %s AND identifier = %s",
        [run_id, lone[0]],
    )
    conn.commit()
    clusters.label(conn, run_id)
    listing = runner.invoke(app, ["clusters"])
    assert "2 clusters of 2 or more images, 1 singleton (8 images" in listing.output, listing.output
    assert "singletons (images alone): 1," in listing.output
    out = tmp_path / "out"
    members = export.cluster_files(conn, run_id, 1)
    labels = export.cluster_labels(conn, run_id)
    assert export.export_folders(members, out, labels=labels) == 8
    assert len(list((out / "unclustered").glob("*.png"))) == 1
    table = list(csv.DictReader(io.StringIO((out / "labels.csv").read_text())))
    assert {r["label"] for r in table if r["folder"].startswith("cluster_with_")} == {"red", "blue"}
    assert [r["folder"] for r in table if r["size"] == "1"] == ["unclustered"]
    readme = next(out.glob("cluster_with_4/cluster_*/README")).read_text()
    assert readme.split(": ")[1].split("\n")[0] in {"red", "blue"} and "medoid" in readme
    sheets = export.export_sheets(members, out, 5, labels)
    assert any(p.name.startswith("unclustered_1") for p in sheets)
    assert {r["from"] for r in table if r["folder"].startswith("cluster_with_")} == {"tags"}
    # a name guessed from ImageNet classes says so in the folder's README, as the report does
    conn.execute(
        "UPDATE ccvec.cluster_label SET label = 'drum · tank', source = 'classes' "
        "WHERE run_id = %s AND size > 1 AND label = 'red'",
        [run_id],
    )
    conn.commit()
    guessed = tmp_path / "guessed"
    export.export_folders(members, guessed, labels=export.cluster_labels(conn, run_id))
    table = list(csv.DictReader(io.StringIO((guessed / "labels.csv").read_text())))
    row = next(r for r in table if r["label"] == "drum · tank")
    assert row["from"] == "classes"
    readme = (guessed / row["folder"] / "README").read_text()
    assert readme.startswith(f"cluster {row['cluster']}: drum · tank (guess)\n") and "ImageNet" in readme


def test_a_large_cluster_splits_only_where_it_has_structure() -> None:
    """A cluster over the size cap made of two cliques joined by one weak edge splits in two; one
    uniform clique over the cap stays whole (there is nothing to split it along)."""
    import scipy.sparse as sp

    def cliques(sizes: list[int], weight: float = 0.9) -> sp.csr_matrix:
        n = sum(sizes)
        a = np.zeros((n, n), dtype=np.float32)
        start = 0
        for size in sizes:
            a[start : start + size, start : start + size] = weight
            start += size
        np.fill_diagonal(a, 0)
        if len(sizes) > 1:
            a[0, n - 1] = a[n - 1, 0] = 0.3  # the bridge
        return sp.csr_matrix(a)

    one_cluster = np.zeros(12, dtype=np.int64)
    split = clusters.split_large(cliques([6, 6]), one_cluster, max_share=0.25, resolution=1.0, seed=0)
    assert len(set(split[:6])) == 1 and len(set(split[6:])) == 1 and split[0] != split[6]
    kept = clusters.split_large(cliques([12]), one_cluster, max_share=0.25, resolution=1.0, seed=0)
    assert len(set(kept)) == 1
    under_cap = clusters.split_large(cliques([6, 6]), one_cluster, max_share=1.0, resolution=1.0, seed=0)
    assert len(set(under_cap)) == 1  # not above the cap: not examined


def test_tied_inferred_tags_rank_the_broader_tag_first(conn: psycopg.Connection) -> None:
    """An untagged image whose three neighbours all carry "vehicles" and "construction" scores both
    1.0; "vehicles", carried by more images of the collection (the farming ones too), ranks first,
    where the alphabetical order put the narrower "construction" first."""
    rng = np.random.default_rng(7)
    vectors = groups(rng, per_group=4)
    tags = [[], *[["vehicles", "construction"]] * 3, *[["vehicles", "farming"]] * 4]
    ids = add_vectors(conn, vectors, tags)
    graph.build(conn, k=3, model=MODEL)
    graph.refresh_inferred(conn)
    got = conn.execute(
        "SELECT tag, score, rank FROM ccvec.inferred_tags WHERE identifier = %s ORDER BY rank", [ids[0]]
    ).fetchall()
    assert [(t, r) for t, _, r in got] == [("vehicles", 1), ("construction", 2)]
    assert got[0][1] == pytest.approx(1.0) and got[1][1] == pytest.approx(1.0)  # a tie in score
    assert [t for t, _, _ in conn.execute("SELECT * FROM ccvec.inferred_tags_of(%s)", [ids[0]])] == [
        "vehicles",
        "construction",
    ]
    one = CliRunner().invoke(app, ["tags", str(ids[0])])
    assert one.exit_code == 0, one.output
    assert one.output.index("inferred: vehicles") < one.output.index("inferred: construction")
    # every image's ranks run 1, 2, ... without gaps
    for (ranks,) in conn.execute(
        "SELECT array_agg(rank ORDER BY rank) FROM ccvec.inferred_tags GROUP BY identifier"
    ):
        assert ranks == list(range(1, len(ranks) + 1))


def test_untagged_neighbours_count_against_a_tag_where_few_images_have_tags(conn: psycopg.Connection) -> None:
    """2 of 12 images tagged "interior": an untagged image whose five neighbours are those two and
    three untagged ones scored 1.0 when only the tagged neighbours counted. Now every untagged
    neighbour enters the denominator with weight u^2, u = 10/12 untagged: score ~0.49, below 0.55."""
    vectors = groups(np.random.default_rng(9), per_group=6)
    ids = add_vectors(conn, vectors, [[], ["interior"], ["interior"]] + [[]] * 9)
    run = graph.build(conn, k=5, model=MODEL)
    graph.refresh_inferred(conn)
    assert (
        conn.execute("SELECT count(*) FROM ccvec.inferred_tags WHERE identifier = %s", [ids[0]]).fetchone()[0]
        == 0
    )
    saved = conn.execute(
        "SELECT name, value FROM ccvec.setting WHERE name IN "
        "('inferred_tags.untagged_power', 'inferred_tags.min_score')"
    ).fetchall()

    def score_of_q() -> float:
        graph.refresh_inferred(conn)
        return conn.execute(
            "SELECT score FROM ccvec.inferred_tags WHERE identifier = %s AND tag = 'interior'", [ids[0]]
        ).fetchone()[0]

    try:
        conn.execute("UPDATE ccvec.setting SET value = 0 WHERE name = 'inferred_tags.min_score'")
        conn.commit()
        nbs = edges(conn, run.id)[ids[0]]
        assert {nb for nb, _, _ in nbs} == set(ids[1:6])  # its own group
        w = {nb: s**8 for nb, _, s in nbs}
        carried = w[ids[1]] + w[ids[2]]
        untagged = sum(w[nb] for nb in ids[3:6])
        assert score_of_q() == pytest.approx(carried / (carried + (10 / 12) ** 2 * untagged), abs=1e-4)
        conn.execute("UPDATE ccvec.setting SET value = 1000 WHERE name = 'inferred_tags.untagged_power'")
        conn.commit()
        assert score_of_q() == pytest.approx(1.0)  # untagged neighbours ignored: the former score
    finally:  # settings are shared by the session's tests
        conn.rollback()
        for name, value in saved:
            conn.execute("UPDATE ccvec.setting SET value = %s WHERE name = %s", [value, name])
        conn.commit()


def test_a_collection_without_tags_infers_none(conn: psycopg.Connection) -> None:
    ids = add_vectors(conn, groups(np.random.default_rng(8), per_group=4))
    graph.build(conn, k=3, model=MODEL)
    graph.refresh_inferred(conn)
    graph.refresh_inferred(conn)  # a second refresh (inferred_tags concurrently): still fine with no rows
    assert conn.execute("SELECT count(*) FROM ccvec.inferred_tags").fetchone()[0] == 0
    one = CliRunner().invoke(app, ["tags", str(ids[0])])
    assert one.exit_code == 0 and "inferred: (none" in one.output
    every = CliRunner().invoke(app, ["tags", "--all", "--format", "csv"])
    assert every.exit_code == 0, every.output


def test_inferred_tags_weigh_the_nearest_neighbours_most(conn: psycopg.Connection) -> None:
    """Two very near neighbours say cat (similarity 0.99), three farther ones dog (0.8). Weighted by
    similarity^8 (the default) cat wins clearly; by plain similarity dog would edge ahead."""
    q = [1.0, 0.0, 0.0]
    near = [[0.99, 0.141, 0.0], [0.99, -0.141, 0.0]]
    far = [[0.8, 0.0, 0.6], [0.8, -0.52, -0.3], [0.8, 0.52, -0.3]]
    ids = add_vectors(
        conn,
        np.stack([unit(v) for v in [q, *near, *far]]),
        [[], ["cat"], ["cat"], ["dog"], ["dog"], ["dog"]],
    )
    graph.build(conn, k=5, model=MODEL)
    graph.refresh_inferred(conn)
    got = {
        t: s
        for i, t, s in conn.execute("SELECT identifier, tag, score FROM ccvec.inferred_tags")
        if i == ids[0]
    }
    w_cat, w_dog = 2 * 0.99**8, 3 * 0.8**8
    assert got == {"cat": pytest.approx(w_cat / (w_cat + w_dog), abs=0.02)}  # dog: ~0.21, below 0.55
    saved = conn.execute(
        "SELECT name, value FROM ccvec.setting WHERE name IN "
        "('inferred_tags.weight_power', 'inferred_tags.min_score')"
    ).fetchall()
    try:
        conn.execute("UPDATE ccvec.setting SET value = 1 WHERE name = 'inferred_tags.weight_power'")
        conn.execute("UPDATE ccvec.setting SET value = 0 WHERE name = 'inferred_tags.min_score'")
        conn.commit()
        graph.refresh_inferred(conn)
        plain = {
            t: s
            for i, t, s in conn.execute("SELECT identifier, tag, score FROM ccvec.inferred_tags")
            if i == ids[0]
        }
        assert plain["dog"] == pytest.approx(2.4 / 4.38, abs=0.02) and plain["dog"] > plain["cat"]
    finally:  # settings are shared by the session's tests
        conn.rollback()
        for name, value in saved:
            conn.execute("UPDATE ccvec.setting SET value = %s WHERE name = %s", [value, name])
        conn.commit()


def test_novelty_migration_down_and_up_rescores_a_fitted_set(fresh_database_url: str) -> None:
    """Migration 0034 down puts back the kNN score d * sqrt(d / n) (computing the members' kNN
    distances the new fit skips); up again, the members get their leave-one-out spread distances."""
    from ccvec import db, migrate

    migrate.upgrade(fresh_database_url)
    rng = np.random.default_rng(5)
    with db.connect(fresh_database_url) as conn:
        ids = add_vectors(conn, groups(rng, per_group=4))
        clusters.novelty_fit(conn, "a", "images", "images", "", MODEL, ids[:4])
        spread = dict(conn.execute("SELECT identifier, score FROM ccvec.novelty_reference").fetchall())
    migrate.downgrade(fresh_database_url, "0033_inferred_tags")  # the revision before 0034
    with db.connect(fresh_database_url) as conn:
        rows = conn.execute("SELECT identifier, distance, score FROM ccvec.novelty_reference").fetchall()
        own = {i: d for i, d, _ in rows}
        for i, d, score in rows:  # k = 10 > 3 other members: all of them are the neighbours
            n = np.mean([own[j] for j in own if j != i])
            assert score == pytest.approx(d * np.sqrt(d / n), rel=1e-3)
    migrate.upgrade(fresh_database_url)
    with db.connect(fresh_database_url) as conn:
        again = dict(conn.execute("SELECT identifier, score FROM ccvec.novelty_reference").fetchall())
    assert again == pytest.approx(spread, rel=1e-4) and len(again) == 4


def test_reference_novelty_without_knn_distance_and_with_a_member_sample(conn: psycopg.Connection) -> None:
    """novelty.k = 0 skips the exact kNN search (distance NULL) and leaves the novelty as it was;
    novelty.fit_sample caps the members scored leave-one-out (the percentile's scale)."""
    rng = np.random.default_rng(6)
    ids = add_vectors(conn, groups(rng, per_group=6))
    conn.execute("UPDATE ccvec.image SET provider = 'ref' WHERE identifier = ANY(%s)", [ids[:5]])
    conn.commit()
    try:
        novelty_sql = "SELECT identifier, novelty, distance FROM ccvec.reference_novelty ORDER BY identifier"
        clusters.novelty_fit(conn, "a", "provider=ref", "provider", "ref", MODEL)
        clusters.novelty_score(conn, "a")
        with_knn = conn.execute(novelty_sql).fetchall()
        assert len(with_knn) == 7 and all(d is not None for _, _, d in with_knn)
        conn.execute("UPDATE ccvec.setting SET value = 0 WHERE name = 'novelty.k'")
        clusters.novelty_fit(conn, "a", "provider=ref", "provider", "ref", MODEL)
        clusters.novelty_score(conn, "a")
        without = conn.execute(novelty_sql).fetchall()
        assert [(i, n) for i, n, _ in without] == [(i, n) for i, n, _ in with_knn]
        assert all(d is None for _, _, d in without)
        conn.execute("UPDATE ccvec.setting SET value = 3 WHERE name = 'novelty.fit_sample'")
        clusters.novelty_fit(conn, "a", "provider=ref", "provider", "ref", MODEL)
        scale = conn.execute("SELECT member_scores FROM ccvec.novelty_model WHERE name = 'a'").fetchone()
        members = conn.execute("SELECT count(score) FROM ccvec.novelty_reference WHERE name = 'a'").fetchone()
        assert scale is not None and len(scale[0]) == 3 and scale[0] == sorted(scale[0]) and members == (3,)
    finally:  # the settings are the shared database's (novelty_fit commits)
        conn.rollback()
        conn.execute("UPDATE ccvec.setting SET value = 10 WHERE name = 'novelty.k'")
        conn.execute("UPDATE ccvec.setting SET value = 100000 WHERE name = 'novelty.fit_sample'")
        conn.commit()


def test_reference_scores_by_what_changed_equal_a_full_rescore(conn: psycopg.Connection) -> None:
    """`ccvec refresh` scores only images new since the last scoring (changed_only), drops the
    scores of images no longer embedded, and rescores one embedded again; the kNN distance, searched
    in numpy over the members' vectors, equals ccvec.reference_distance's exact search in SQL."""
    rng = np.random.default_rng(7)
    ids = add_vectors(conn, np.abs(rng.normal(size=(30, 3))).astype(np.float32))
    conn.execute("UPDATE ccvec.image SET provider = 'ref' WHERE identifier = ANY(%s)", [ids[:12]])
    conn.commit()
    clusters.novelty_fit(conn, "a", "provider=ref", "provider", "ref", MODEL)
    assert clusters.novelty_score(conn, "a", changed_only=True) == 18
    assert clusters.novelty_score(conn, "a", changed_only=True) == 0  # nothing new
    more = add_vectors(conn, np.abs(rng.normal(size=(5, 3))).astype(np.float32))
    assert clusters.novelty_score(conn, "a", changed_only=True) == 5
    sql = "SELECT identifier, distance, novelty, score FROM ccvec.novelty_score WHERE name = 'a' ORDER BY 1"
    incremental = conn.execute(sql).fetchall()
    assert [r[0] for r in incremental] == sorted(ids[12:] + more)
    searched = conn.execute("SELECT * FROM ccvec.reference_distance('a', %s)", [ids[12:] + more])
    exact = dict(searched.fetchall())
    assert [r[1] for r in incremental] == pytest.approx([exact[r[0]] for r in incremental], abs=2e-6)
    assert clusters.novelty_score(conn, "a") == 23  # a full rescore: the same rows
    full = conn.execute(sql).fetchall()
    assert [r[0] for r in full] == [r[0] for r in incremental]
    assert np.array([r[1:] for r in full]) == pytest.approx(np.array([r[1:] for r in incremental]), abs=1e-6)
    # the SQL form (distances searched in SQL) writes the same rows
    assert conn.execute("SELECT ccvec.novelty_score_batch('a', %s)", [ids[12:] + more]).fetchone() == (23,)
    in_sql = conn.execute(sql).fetchall()
    assert np.array([r[1:] for r in in_sql]) == pytest.approx(np.array([r[1:] for r in full]), abs=2e-6)
    conn.commit()
    # an image no longer embedded loses its score; one embedded again is scored again
    conn.execute("DELETE FROM ccvec.image_embedding WHERE identifier = %s", [more[0]])
    far = HalfVector(np.array([0.0, 0.0, 1.0], np.float32))
    conn.execute(
        "UPDATE ccvec.image_embedding SET embedding = %s, computed_at = now() WHERE identifier = %s",
        [far, more[1]],
    )
    conn.commit()
    before = dict((r[0], r[3]) for r in full)
    assert clusters.novelty_score(conn, "a", changed_only=True) == 1
    after = dict((r[0], r[3]) for r in conn.execute(sql).fetchall())
    assert more[0] not in after and len(after) == 22
    assert after[more[1]] != pytest.approx(before[more[1]])
    assert all(after[i] == before[i] for i in after if i != more[1])


def test_reference_distances_merge_chunks_exactly() -> None:
    """The numpy search keeps the k best across member chunks: the same means as one brute-force
    pass, also with fewer members than k; a zero vector gets NaN as in pgvector."""
    rng = np.random.default_rng(9)
    queries = np.abs(rng.normal(size=(40, 1280))).astype(np.float16)
    members = np.abs(rng.normal(size=(57, 1280))).astype(np.float16)
    q = queries.astype(np.float64) / np.linalg.norm(queries.astype(np.float64), axis=1, keepdims=True)
    m = members.astype(np.float64) / np.linalg.norm(members.astype(np.float64), axis=1, keepdims=True)
    brute = np.sort(1 - q @ m.T, axis=1)
    for k, chunk in ((5, 7), (5, 8192), (10, 3), (80, 11)):
        found = clusters.reference_distances(queries, members, k, chunk)
        assert found == pytest.approx(brute[:, :k].mean(axis=1), abs=1e-6)
    zero = clusters.reference_distances(np.zeros((1, 1280), np.float16), members, 5)
    assert np.isnan(zero).all()


def test_a_refit_while_scoring_writes_nothing_for_the_old_fit(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    """Scoring reads the members once and commits per batch; when the set is fitted again in
    between, the later batches write nothing (the fit is checked), the refresh's scoring stops
    with the set unscored, and the next one scores the new fit whole."""
    from ccvec import db

    rng = np.random.default_rng(10)
    ids = add_vectors(conn, np.abs(rng.normal(size=(20, 3))).astype(np.float32))
    conn.execute("UPDATE ccvec.image SET provider = 'ref' WHERE identifier = ANY(%s)", [ids[:6]])
    conn.commit()
    clusters.novelty_fit(conn, "a", "provider=ref", "provider", "ref", MODEL)
    search = clusters.reference_distances

    def refit_first(queries: np.ndarray, members: np.ndarray, k: int) -> np.ndarray:
        monkeypatch.setattr(clusters, "reference_distances", search)
        with db.connect(database_url) as other:  # another session fits the set again, on fewer members
            other.execute("UPDATE ccvec.image SET provider = 'x' WHERE identifier = %s", [ids[0]])
            clusters.novelty_fit(other, "a", "provider=ref", "provider", "ref", MODEL)
        return search(queries, members, k)

    monkeypatch.setattr(clusters, "reference_distances", refit_first)
    assert clusters.novelty_score(conn, "a", batch=4, changed_only=True) == 0
    sql = "SELECT identifier, distance, novelty, score FROM ccvec.novelty_score WHERE name = 'a' ORDER BY 1"
    assert conn.execute(sql).fetchall() == []  # the first batch went with the old fit; none after
    with pytest.raises(CcvecError, match="fitted again while it was scored"):
        monkeypatch.setattr(clusters, "reference_distances", refit_first)
        clusters.novelty_score(conn, "a", batch=4)
    assert clusters.novelty_score(conn, "a", changed_only=True) == 15
    incremental = conn.execute(sql).fetchall()
    assert clusters.novelty_score(conn, "a") == 15
    full = conn.execute(sql).fetchall()
    assert [r[0] for r in full] == [r[0] for r in incremental] and len(full) == 15
    assert np.array([r[1:] for r in full]) == pytest.approx(np.array([r[1:] for r in incremental]), abs=1e-6)


def former_label_clusters() -> str:
    """ccvec.label_clusters as migration 0009 defined it, as a temporary function."""
    text = (Path(__file__).resolve().parent.parent / "sql" / "0009_clusters.up.sql").read_text()
    start = text.index("CREATE FUNCTION ccvec.label_clusters(p_run bigint)")
    body = text[start : text.index("END $$;", start) + len("END $$;")]
    return body.replace("CREATE FUNCTION ccvec.label_clusters", "CREATE FUNCTION pg_temp.label_clusters_0009")


def former_inferred_tags() -> str:
    """ccvec.inferred_tags's query as migration 0033 defined it (before 0038 restructured it)."""
    text = (Path(__file__).resolve().parent.parent / "sql" / "0033_inferred_tags.up.sql").read_text()
    start = text.index("CREATE MATERIALIZED VIEW ccvec.inferred_tags AS") + len(
        "CREATE MATERIALIZED VIEW ccvec.inferred_tags AS"
    )
    return text[start : text.index("WITH NO DATA;", start)]


def test_inferred_tags_equal_the_former_definition(conn: psycopg.Connection) -> None:
    """Migration 0038 reads the settings once and sums the carried tags before joining them with the
    neighbourhood: the rows must be exactly those of 0033's query, here on tags written twice or in
    other case, tagged and untagged images, and tags inferred for images that have tags already."""
    rng = np.random.default_rng(11)
    vectors = groups(rng, per_group=10)
    tags = (
        [["Cat", "cat ", "animal"], ["cat", "animal"], ["animal"], [], ["cat"], ["CAT"]]
        + [["cat", "animal"]] * 4
        + [["car", "vehicle"], ["Vehicle"], [], ["car"], ["car", "vehicle", "red"]]
        + [["vehicle", "car"]] * 5
    )
    ids = add_vectors(conn, vectors, tags)
    graph.build(conn, k=6, model=MODEL)
    graph.refresh_inferred(conn)
    conn.execute(f"CREATE TEMP VIEW former_inferred_tags AS {former_inferred_tags()}")
    now = conn.execute("SELECT * FROM ccvec.inferred_tags ORDER BY identifier, tag").fetchall()
    before = conn.execute("SELECT * FROM former_inferred_tags ORDER BY identifier, tag").fetchall()
    assert now == before
    assert {ids.index(row[0]) for row in now} >= {3, 12}  # the untagged images got tags
    assert (ids[2], "cat", True) in {(row[0], row[1], row[4]) for row in now}  # "animal" only: cat too
