"""Every command and subcommand: one happy path and one bad input each, in-process through the
`cli` fixture, on a handful of tiny images embedded by the tiny test model.

COVERED maps each command path to its (happy, bad) tests; `test_every_command_is_covered` walks
the typer app, so a new command without tests fails here.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import typer
from typer.testing import Result

from ccvec import scores
from ccvec import spark as ccspark
from ccvec.cli import app
from ccvec.sources import file_location, identity

from .images import photo
from .test_abtest import current_cluster_run
from .tiny_model import TINY_DIM, TINY_SIZE, build_tiny_model, register_tiny

Cli = Callable[..., Result]
MODEL = "tiny-cmd"
SPARK_HAPPY = "tests/test_spark.py::test_spark_features_equal_ccvec_load"  # Spark startup is slow

COVERED: dict[str, tuple[str, str]] = {
    "authority load-hosts": ("test_load_hosts", "test_load_hosts_wrong_header", "test_load_hosts_not_a_file"),
    "cluster": ("test_cluster", "test_cluster_without_graph"),
    "clusters": (
        "test_clusters",
        "test_clusters_limit_zero",
        "test_clusters_run_that_does_not_exist",
        "test_clusters_run_before_any_clustering",
    ),
    "db downgrade": ("test_db_upgrade_and_downgrade", "test_db_downgrade_unknown_revision"),
    "db grant": ("test_db_grant", "test_db_grant_two_levels"),
    "db lean-index": ("test_db_lean_index", "test_db_lean_index_unknown_model"),
    "db partition": ("test_db_partition_and_upgrade_partitions", "test_db_partition_out_of_range"),
    "db start": ("test_db_start_when_running", "test_db_start_with_database_url"),
    "db status": (
        "test_db_status",
        "test_db_status_unreachable",
        "test_db_status_of_a_stopped_embedded_server",
    ),
    "db stop": ("test_db_stop_when_not_running", "test_db_stop_extra_argument"),
    "db upgrade": ("test_db_upgrade_and_downgrade", "test_db_upgrade_unknown_revision"),
    "db url": ("test_db_url_hides_password", "test_db_url_extra_argument"),
    "dedup": ("test_dedup", "test_dedup_radius_out_of_range"),
    "errors": ("test_load_and_errors", "test_errors_bad_run"),
    "experiment create": ("test_experiment_lifecycle", "test_experiment_create_bad_share"),
    "experiment import": ("test_experiment_lifecycle", "test_experiment_import_wrong_suffix"),
    "experiment power": ("test_experiment_power", "test_experiment_power_impossible"),
    "experiment report": ("test_experiment_lifecycle", "test_experiment_report_unknown"),
    "experiment stop": ("test_experiment_lifecycle", "test_experiment_stop_unknown"),
    "export-clusters": (
        "test_export_clusters",
        "test_export_clusters_without_clusters",
        "test_export_clusters_unwritable_target",
        "test_export_clusters_again_refreshes_its_own_folder",
    ),
    "graph add": ("test_graph_add", "test_graph_add_without_graph"),
    "graph build": (
        "test_graph_build_and_status",
        "test_graph_build_k_zero",
        "test_graph_build_of_one_image",
    ),
    "graph prune": ("test_graph_prune", "test_graph_prune_without_schema"),
    "graph status": ("test_graph_build_and_status", "test_graph_status_without_schema"),
    "load": ("test_load_and_errors", "test_load_missing_source", "test_load_features_dataset_bad_manifest"),
    "model add": ("test_model_add_and_list", "test_model_add_bad_mean"),
    "model build": ("test_model_build", "test_model_build_unknown_option"),
    "model list": ("test_model_add_and_list", "test_model_list_without_schema"),
    "novelty fit": (
        "test_novelty_fit_and_score",
        "test_novelty_fit_on_a_folder",
        "test_novelty_fit_without_selector",
    ),
    "novelty score": ("test_novelty_fit_and_score", "test_novelty_score_unknown"),
    "refresh": ("test_refresh_and_scores", "test_refresh_without_schema"),
    "report": (
        "test_report",
        "test_report_into_foreign_folder",
        "test_report_unwritable_out",
        "test_a_failed_report_or_run_leaves_no_new_folder",
    ),
    "run": (
        "test_run",
        "test_run_missing_source",
        "test_run_bad_sim_fails_before_loading",
        "test_run_unwritable_out_fails_before_loading",
    ),
    "popularity metric": ("test_popularity_metric_for_another_provider", "test_popularity_metric_bad_values"),
    "popularity metrics": (
        "test_popularity_metric_for_another_provider",
        "test_popularity_metric_bad_values",
    ),
    "scores": ("test_refresh_and_scores", "test_scores_not_a_uuid", "test_an_image_by_its_file"),
    "similar": (
        "test_similar",
        "test_similar_bad_phash",
        "test_similar_image_not_a_file",
        "test_similar_semantic_by_a_loaded_file",
        "test_similar_semantic_table_shows_four_decimals",
    ),
    "spark features": (
        SPARK_HAPPY,
        "test_spark_features_onnx_without_spec",
        "test_spark_features_refuses_before_starting_spark",
    ),
    "tags": ("test_tags", "test_tags_id_and_all", "test_an_image_by_its_file"),
}


def command_paths(typer_app: typer.Typer) -> set[str]:
    command = typer.main.get_command(typer_app)
    paths: set[str] = set()

    def walk(group: object, prefix: str) -> None:
        for name, sub in getattr(group, "commands", {}).items():
            path = f"{prefix} {name}".strip()
            if getattr(sub, "commands", None):
                walk(sub, path)
            else:
                paths.add(path)

    walk(command, "")
    return paths


def test_every_command_is_covered() -> None:
    paths = command_paths(app)
    assert len(paths) >= 30
    assert paths - COVERED.keys() == set(), "commands without tests: add them to COVERED"
    assert COVERED.keys() - paths == set(), "COVERED names commands that no longer exist"
    here = globals()
    for path, tests in COVERED.items():
        for test in tests:
            if test != SPARK_HAPPY:
                assert callable(here.get(test)), f"{path}: {test} is not a test of this module"
    spark_test = SPARK_HAPPY.split("::")[1]
    assert f"def {spark_test}(" in (Path(__file__).parent / "test_spark.py").read_text()


# --- helpers -------------------------------------------------------------------------------------


def usage_error(result: Result, text: str) -> None:
    """Exit 2 and one line on stderr that says what is wrong, the parser's errors too."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert text in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr, result.exception)
    return result


def images(folder: Path, names: tuple[str, ...] = ("chelsea", "coffee", "astronaut", "rocket")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        photo(name).convert("RGB").resize((48, 40)).save(folder / f"{name}.png")
    return folder


@pytest.fixture()
def tiny(conn: psycopg.Connection, tmp_path: Path) -> Path:
    """The tiny model, registered; returns its ONNX file."""
    return register_tiny(conn, tmp_path, MODEL)


@pytest.fixture()
def loaded(cli: Cli, tiny: Path, tmp_path: Path) -> Path:
    """Four small photos loaded with the tiny model; returns their folder."""
    folder = images(tmp_path / "photos")
    assert "loaded 4," in ok(cli("load", folder, "--model", MODEL, "--workers", "0")).stdout
    return folder


@pytest.fixture()
def graphed(cli: Cli, loaded: Path) -> Path:
    ok(cli("graph", "build", "--model", MODEL, "--k", "2", "--recall-sample", "0"))
    return loaded


@pytest.fixture()
def clustered(cli: Cli, graphed: Path) -> Path:
    ok(cli("cluster"))
    return graphed


def identifiers(conn: psycopg.Connection) -> list[str]:
    return [str(r[0]) for r in conn.execute("SELECT identifier FROM ccvec.image ORDER BY title")]


@pytest.fixture()
def no_schema(cli: Cli, fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """DATABASE_URL points at an empty database (no ccvec schema)."""
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    return fresh_database_url


# --- load, errors ----------------------------------------------------------------------------------


def test_load_and_errors(cli: Cli, tiny: Path, tmp_path: Path) -> None:
    folder = images(tmp_path / "in", ("coffee", "camera"))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    result = cli("load", folder, "--model", MODEL, "--workers", "0")
    assert result.exit_code == 1, result.stderr  # documented: 1 when some input failed
    assert "loaded 2," in result.stdout
    errors = json.loads(ok(cli("errors", "--format", "json")).stdout)
    assert len(errors) == 1 and "broken.png" in json.dumps(errors)
    run = errors[0]["run"]
    assert json.loads(ok(cli("errors", "--run", str(run), "--format", "json")).stdout) == errors
    # a run that does not exist is an error (exit 2, one line), not "no load errors"
    missing = f"load run {run + 1} does not exist (the newest is run {run})"
    usage_error(cli("errors", "--run", str(run + 1)), missing)


def test_progress_shows_as_lines_in_a_log(
    cli: Cli, tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stderr not a terminal (a cron job, `2> log`): a load or a run of hours showed no progress at
    all, since a bar draws nothing there. Plain timestamped lines now, one per
    PROGRESS_LOG_SECONDS at most (the first after as long, so short commands print none); none
    with --quiet."""
    from ccvec import defaults

    monkeypatch.setattr(defaults, "PROGRESS_LOG_SECONDS", 0.0)  # every update, for the test
    result = ok(cli("load", images(tmp_path / "a"), "--model", MODEL, "--workers", "0"))
    lines = [line for line in result.stderr.splitlines() if " loading: " in line]
    assert lines, result.stderr
    assert re.fullmatch(r"\d\d:\d\d:\d\d loading: 4 of 4 \(100%\)", lines[-1]), lines
    quiet = ok(cli("--quiet", "load", images(tmp_path / "b", ("coins",)), "--model", MODEL, "--workers", "0"))
    assert " loading: " not in quiet.stderr, quiet.stderr
    monkeypatch.setattr(defaults, "PROGRESS_LOG_SECONDS", 3600.0)
    short = ok(cli("load", images(tmp_path / "c", ("horse",)), "--model", MODEL, "--workers", "0"))
    assert " loading: " not in short.stderr, short.stderr  # a short command: no line


def test_load_missing_source(cli: Cli, tiny: Path, tmp_path: Path) -> None:
    usage_error(cli("load", tmp_path / "nowhere", "--model", MODEL), "no such folder or manifest file")


def test_errors_bad_run(cli: Cli) -> None:
    usage_error(cli("errors", "--run", "abc"), "--run")
    usage_error(cli("errors", "--run", "99"), "load run 99 does not exist (nothing has been loaded yet)")
    assert ok(cli("errors")).stdout.strip() == "no load errors"  # no run given: nothing failed yet


# --- similar, dedup --------------------------------------------------------------------------------


def test_similar(cli: Cli, loaded: Path) -> None:
    rows = json.loads(ok(cli("similar", "--image", loaded / "coffee.png", "--format", "json")).stdout)
    assert rows[0]["distance"] == 0 and rows[0]["title"] == "coffee"
    cut = ok(cli("similar", "--image", loaded / "coffee.png", "--radius", "64", "--limit", "1"))
    assert "3 more within 64: --limit N shows them" in cut.stderr  # all 4 are within 64 bits


def test_similar_semantic_by_a_loaded_file(
    cli: Cli, loaded: Path, tmp_path: Path, conn: psycopg.Connection
) -> None:
    """--semantic takes --image of a loaded file (its stored embedding, itself left out), or of any
    other image file: embedded as the loader would, searched, and not stored."""
    args = ("similar", "--semantic", "-k", "3", "--model", MODEL, "--format", "json")
    rows = json.loads(ok(cli(*args, "--image", loaded / "coffee.png")).stdout)
    assert len(rows) == 3 and "coffee" not in [r["title"] for r in rows]  # its 3 nearest, not itself
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(loaded / "coffee.png", outside / "my coffee.png")  # the same pixels, never loaded
    found = json.loads(ok(cli(*args, "--image", outside / "my coffee.png")).stdout)
    assert found[0]["title"] == "coffee" and found[0]["similarity"] >= 0.999, found
    assert [r["title"] for r in found[1:]] == [r["title"] for r in rows[:2]]  # the same neighbours
    assert conn.execute("SELECT count(*) FROM ccvec.image").fetchone() == (4,)  # nothing stored
    table = ok(cli("similar", "--semantic", "--model", MODEL, "--image", outside / "my coffee.png")).stdout
    assert "my coffee.png" in table and "not loaded" in table
    broken = outside / "broken.png"
    broken.write_bytes((loaded / "coffee.png").read_bytes()[:100])
    usage_error(cli(*args, "--image", broken), "broken.png: ")
    os.mkfifo(outside / "pipe.png")  # read as the loader reads: named, and no hang
    usage_error(cli(*args, "--image", outside / "pipe.png"), "pipe.png: is a FIFO (named pipe), not a")
    usage_error(cli(*args, "--image", outside / "none.png"), "none.png: file not found")
    usage_error(cli("similar", "--semantic"), "--semantic needs --identifier or --image")
    over = "> limit 100 (--max-pixels N reads larger images)"  # the hint holds here: similar takes it
    usage_error(cli(*args, "--image", outside / "my coffee.png", "--max-pixels", "100"), over)
    usage_error(cli("similar", "--image", outside / "my coffee.png", "--max-pixels", "100"), over)


def test_similar_semantic_table_shows_four_decimals(cli: Cli, loaded: Path, tmp_path: Path) -> None:
    """An exact copy's similarity reads 1.0000 in line with 0.4300 and 0.3638, not 1.0 and 0.43."""
    ok(cli("load", images(tmp_path / "copy", ("coffee",)), "--model", MODEL, "--workers", "0"))
    args = ("similar", "--semantic", "-k", "3", "--model", MODEL, "--image", loaded / "coffee.png")
    table = ok(cli(*args)).stdout.splitlines()
    shown = [line.split()[0] for line in table[2:]]  # after the title and the header
    assert shown[0] == "1.0000", table
    assert len(shown) == 3 and all(re.fullmatch(r"-?\d\.\d{4}", s) for s in shown), table
    rows = json.loads(ok(cli(*args, "--format", "json")).stdout)
    assert rows[0]["similarity"] == 1.0  # csv and json keep numbers


def test_similar_bad_phash(cli: Cli) -> None:
    usage_error(cli("similar", "--phash", "not-hex"), "not-hex")


def test_similar_image_not_a_file(cli: Cli, tmp_path: Path) -> None:
    """--image reads as `ccvec load` does, and says why a path is not an image file."""
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    usage_error(cli("similar", "--image", fifo), "pipe.jpg: is a FIFO (named pipe), not a regular file")
    usage_error(cli("similar", "--image", tmp_path), "is a directory, not a regular file")
    usage_error(cli("similar", "--image", loop), "loop.jpg: symlink loop")
    usage_error(cli("similar", "--image", tmp_path / "none.jpg"), "none.jpg: file not found")


def test_dedup(cli: Cli, loaded: Path, tmp_path: Path) -> None:
    copy = images(tmp_path / "copy", ("coffee",))
    ok(cli("load", copy, "--model", MODEL, "--workers", "0"))
    members = json.loads(ok(cli("dedup", "--model", MODEL, "--format", "json")).stdout)
    assert [(m["size"], Path(m["location"]).name) for m in members] == [(2, "coffee.png")] * 2, members
    assert [m["canonical"] for m in members] == [True, False]  # canonical first
    assert len({m["group"] for m in members}) == 1 and members[1]["distance"] == 0
    listing = ok(cli("dedup", "--report", "--format", "csv")).stdout.splitlines()
    assert listing[0] == "group,size,identifier,canonical,distance,similarity,matched_by,location,title"
    assert len(listing) == 3
    summary = ok(cli("dedup", "--report")).stdout
    assert "1 duplicate group," in summary and "coffee" in summary  # the canonical image's title
    assert "max pHash distance" in summary and "by embedding cosine" in summary  # what a distance means


def test_dedup_radius_out_of_range(cli: Cli, conn: psycopg.Connection) -> None:
    """Settings are checked once, in SQL, before a run clears anything: one line, groups kept."""
    usage_error(cli("dedup", "--radius", "99"), "radius must be between 0 and 64, not 99")
    usage_error(cli("dedup", "--link", "0"), "link must be in (0, 1], not 0")
    usage_error(cli("dedup", "--cosine", "1.5"), "cosine threshold must be in (0, 1], not 1.5")
    usage_error(cli("dedup", "--prefer", "prettiest"), "unknown canonical preference prettiest")
    usage_error(cli("similar", "--phash", "0" * 16, "--radius", "-1"), "radius must be between 0 and 64")
    assert conn.execute("SELECT count(*) FROM ccvec.duplicate_run").fetchone() == (0,)  # nothing started


def test_run_bad_sim_fails_before_loading(cli: Cli, conn: psycopg.Connection, tmp_path: Path) -> None:
    folder = images(tmp_path / "photos")
    usage_error(cli("run", folder, "--model", MODEL, "--sim", "1.5"), "sim must be between 0 and 1, not 1.5")
    assert conn.execute("SELECT count(*) FROM ccvec.image_feature").fetchone() == (0,)  # nothing loaded


# --- graph, cluster, clusters, export, tags, novelty ------------------------------------------------


def test_graph_build_and_status(cli: Cli, loaded: Path) -> None:
    built = ok(cli("graph", "build", "--model", MODEL, "--k", "2", "--recall-sample", "0")).stdout
    assert "4 images, k=2, ef_search 64, recall@2 n/a" in built and "(now current)" in built
    chosen = ok(cli("graph", "build", "--model", MODEL, "--k", "2")).stdout  # the breadth by sampled recall
    assert "ef_search 64 (sampled recall by ef_search: 64 -> 1.000), recall@2 1.000" in chosen
    fixed = ok(cli("graph", "build", "--model", MODEL, "--k", "2", "--ef-search", "80")).stdout
    assert "ef_search 80, recall@2 1.000" in fixed
    status = ok(cli("graph", "status")).stdout
    assert MODEL in status and "yes" in status


def test_graph_prune(cli: Cli, loaded: Path, conn: psycopg.Connection) -> None:
    assert "nothing to prune" in ok(cli("graph", "prune")).stdout
    for _ in range(2):
        ok(cli("graph", "build", "--model", MODEL, "--k", "2", "--recall-sample", "0"))
    first = conn.execute("SELECT min(id) FROM ccvec.knn_run").fetchone()
    conn.commit()
    listed = ok(cli("graph", "prune", "--dry-run")).stdout
    assert re.search(rf"graph\s+{first[0]}\s+\S+ \S+\s+8\b", listed) and "nothing deleted" in listed
    assert "deleted 1 graph run and 8 edges" in ok(cli("graph", "prune")).stdout
    assert conn.execute("SELECT count(*) FROM ccvec.knn_run").fetchone() == (1,)
    assert "nothing to prune" in ok(cli("graph", "prune")).stdout


def test_graph_prune_without_schema(cli: Cli, no_schema: str) -> None:
    usage_error(cli("graph", "prune"), "ccvec db upgrade")


def test_graph_build_k_zero(cli: Cli) -> None:
    usage_error(cli("graph", "build", "--k", "0"), "--k")


def test_graph_build_of_one_image(cli: Cli, tiny: Path, tmp_path: Path) -> None:
    """One image loaded: the message says that a graph needs two, not to load what is loaded."""
    ok(cli("load", images(tmp_path / "one", ("chelsea",)), "--model", MODEL, "--workers", "0"))
    result = cli("graph", "build", "--model", MODEL, "--k", "2")
    usage_error(result, f"model '{MODEL}' has one image embedded: a kNN graph needs two or more")
    assert "first" not in result.stderr


def test_graph_status_without_schema(cli: Cli, no_schema: str) -> None:
    usage_error(cli("graph", "status"), "ccvec db upgrade")


def test_graph_add(cli: Cli, graphed: Path, tmp_path: Path) -> None:
    ok(cli("load", images(tmp_path / "more", ("horse",)), "--model", MODEL, "--workers", "0"))
    assert "added 1 image to the current graph" in ok(cli("graph", "add")).stdout


def test_graph_add_without_graph(cli: Cli, loaded: Path) -> None:
    usage_error(cli("graph", "add"), "no kNN graph yet")


def test_cluster(cli: Cli, graphed: Path) -> None:
    assert "cluster run" in ok(cli("cluster")).stdout


@pytest.mark.parametrize("sim", [None, "0.999"], ids=["louvain", "all-singletons"])
def test_cluster_and_clusters_count_alike(cli: Cli, graphed: Path, sim: str | None) -> None:
    """`cluster` and `clusters` give the same numbers in the same words: clusters of 2 or more
    images, and singletons apart (the listing shows only the former)."""
    made = ok(cli("cluster", *(["--sim", sim] if sim else []))).stdout
    sizes = [r["size"] for r in json.loads(ok(cli("clusters", "--format", "json")).stdout)]
    grouped, alone = sum(1 for n in sizes if n > 1), sizes.count(1)
    plural = {1: ""}
    words = (
        f"{grouped} cluster{plural.get(grouped, 's')} of 2 or more images, "
        f"{alone} singleton{plural.get(alone, 's')} (4 images"
    )
    assert words in made.splitlines()[0], made
    listed = ok(cli("clusters")).stdout
    assert listed.splitlines()[-1].split(": ", 1)[1] == made.splitlines()[0].split(": ", 1)[1], listed
    assert len(made.splitlines()) == 1 + grouped  # the top clusters `cluster` names: no singletons
    if sim:  # every image alone
        assert (grouped, alone) == (0, 4)
        assert "no cluster has 2 or more images" in listed and "singletons (images alone): 4," in listed
    else:
        assert grouped >= 1


def test_cluster_without_graph(cli: Cli, loaded: Path) -> None:
    usage_error(cli("cluster"), "no kNN graph yet")


def test_clusters(cli: Cli, clustered: Path) -> None:
    rows = json.loads(ok(cli("clusters", "--format", "json")).stdout)
    assert sum(r["size"] for r in rows) == 4
    table = ok(cli("clusters")).stdout  # the medoid as people know it: its title (here its file's name)
    titles = {p.stem for p in clustered.iterdir()}
    for row in (r for r in rows if r["size"] > 1):
        line = next(line for line in table.splitlines() if line.split()[:1] == [str(row["cluster"])])
        assert row["medoid"] not in line and line.split()[-1] in titles, table


def test_clusters_limit_zero(cli: Cli) -> None:
    usage_error(cli("clusters", "--limit", "0"), "--limit")


def test_clusters_run_that_does_not_exist(cli: Cli, clustered: Path, tmp_path: Path) -> None:
    usage_error(cli("clusters", "--run", "999"), "cluster run 999 does not exist (the newest is run ")
    usage_error(cli("export-clusters", tmp_path / "x", "--run", "999"), "cluster run 999 does not exist")
    assert not (tmp_path / "x").exists()


def test_clusters_run_before_any_clustering(cli: Cli) -> None:
    usage_error(cli("clusters", "--run", "1"), "nothing has been clustered yet: run `ccvec cluster`")


def test_export_clusters(cli: Cli, clustered: Path, tmp_path: Path) -> None:
    target = tmp_path / "export"
    result = ok(cli("export-clusters", target, "--sheets", "0"))
    said = result.stdout
    assert "labels.csv" in said and "not exported" not in result.stderr
    shape = ok(cli("clusters")).stdout.splitlines()[-1]  # the same counts in the same words
    counts = r"(\d+) clusters? of 2 or more images, (\d+) singletons?"
    assert re.search(counts, said).groups() == re.search(counts, shape).groups(), (said, shape)
    assert (target / "labels.csv").is_file()
    assert len([p for p in target.rglob("*.png") if p.is_symlink()]) == 4
    (clustered / "rocket.png").write_bytes((clustered / "coffee.png").read_bytes())  # changed since loading
    again = ok(cli("export-clusters", tmp_path / "again", "--sheets", "0"))
    assert "1 clustered image not exported" in again.stderr and "rocket.png" in again.stderr
    assert len([p for p in (tmp_path / "again").rglob("*.png") if p.is_symlink()]) == 3


def test_export_clusters_again_refreshes_its_own_folder(cli: Cli, clustered: Path, tmp_path: Path) -> None:
    """The same command twice (as the README shows it): the second run refreshes the folder the
    first wrote, dropping what is no longer exported; a folder with files ccvec did not write, or
    one that `ccvec run` wrote, is still refused, and `ccvec run` and `ccvec report` refuse an
    export's folder (their refresh would remove every exported file)."""
    target = tmp_path / "export"
    first = ok(cli("export-clusters", target))
    assert "contact sheets" in first.stdout and (target / "contact_sheets").is_dir()
    links = sorted(p.relative_to(target) for p in target.rglob("*.png") if p.is_symlink())
    assert len(links) == 4
    ok(cli("export-clusters", target))  # again: same files, nothing left over
    assert sorted(p.relative_to(target) for p in target.rglob("*.png") if p.is_symlink()) == links
    assert not (target / ".ccvec-staging").exists()
    (clustered / "rocket.png").write_bytes((clustered / "coffee.png").read_bytes())  # no longer exported
    ok(cli("export-clusters", target, "--sheets", "0"))
    assert len([p for p in target.rglob("*.png") if p.is_symlink()]) == 3
    assert not (target / "contact_sheets").exists()  # not written this time: removed
    exported = sorted(p for p in target.rglob("*") if p.is_symlink() or p.is_file())
    for other in (("report", target), ("run", clustered, "--out", target, "--model", MODEL)):
        usage_error(cli(*other), "was written by `ccvec export-clusters`, not by `ccvec run` or")
    assert sorted(p for p in target.rglob("*") if p.is_symlink() or p.is_file()) == exported  # untouched
    (target / "notes.txt").write_text("mine")
    usage_error(cli("export-clusters", target), "holds files ccvec did not write (notes.txt)")
    assert (target / "notes.txt").read_text() == "mine"
    report = tmp_path / "report"
    ok(cli("report", report))
    usage_error(cli("export-clusters", report), "not by `ccvec export-clusters`")
    assert (report / "index.html").is_file()


def test_export_clusters_without_clusters(cli: Cli, tmp_path: Path) -> None:
    usage_error(cli("export-clusters", tmp_path / "export"), "no clusters yet")


def test_export_clusters_unwritable_target(cli: Cli, tmp_path: Path) -> None:
    """Checked before the clusters are read (this database has none): one line, nothing written."""
    (tmp_path / "notes.txt").write_text("a file")
    usage_error(cli("export-clusters", tmp_path / "notes.txt"), "notes.txt is a file: TARGET needs a folder")
    usage_error(cli("export-clusters", tmp_path / "notes.txt" / "x"), "notes.txt is not a folder")
    usage_error(cli("export-clusters", "/proc/ccvec-nowhere/x"), "cannot write /proc/ccvec-nowhere/x")


def test_tags(cli: Cli, graphed: Path, conn: psycopg.Connection) -> None:
    ok(cli("refresh"))  # computes the inferred tags
    ident = identifiers(conn)[0]
    assert "own tags: (none)" in ok(cli("tags", ident)).stdout
    assert "inferred: (none: no tag is shared by enough of its neighbours)" in ok(cli("tags", ident)).stdout
    conn.execute('UPDATE ccvec.image SET tags = \'[{"name": "cat"}]\' WHERE identifier = %s', [ident])
    conn.commit()
    ok(cli("refresh"))
    tagged = ok(cli("tags", ident)).stdout  # its own tag, and nobody's to infer: not "not shared enough"
    assert "own tags: cat" in tagged and "none beyond its own tags" in tagged
    assert json.loads(ok(cli("tags", "--all", "--format", "json")).stdout) == []
    assert "a manifest's `tags` column" in ok(cli("tags", "--all")).stderr + ok(cli("tags", "--all")).stdout


def test_an_image_by_its_file(cli: Cli, graphed: Path) -> None:
    """tags, scores and similar take the file a folder load read as well as its identifier."""
    coffee = graphed / "coffee.png"
    ident = str(identity(file_location(coffee)))
    ok(cli("refresh"))
    assert ok(cli("tags", coffee)).stdout == ok(cli("tags", ident)).stdout
    by_file = ok(cli("scores", "--identifier", coffee, "--format", "json")).stdout
    assert json.loads(by_file)[0]["identifier"] == ident
    assert by_file == ok(cli("scores", "--identifier", ident, "--format", "json")).stdout
    assert (
        ok(cli("similar", "--identifier", coffee)).stdout == ok(cli("similar", "--identifier", ident)).stdout
    )
    stranger = images(graphed.parent / "new", ("moon",)) / "moon.png"  # a file, never loaded: named
    for args in (
        ("tags", stranger),
        ("scores", "--identifier", stranger),
        ("similar", "--identifier", stranger),
    ):
        usage_error(cli(*args), "moon.png is not loaded: `ccvec load` it (or its folder) first")
    usage_error(cli("similar", "--semantic", "--image", coffee, "--identifier", ident), "takes one of")


def test_tags_id_and_all(cli: Cli) -> None:
    usage_error(cli("tags", str(uuid.uuid4()), "--all"), "give one IDENTIFIER or --all")


def test_novelty_fit_and_score(cli: Cli, loaded: Path, conn: psycopg.Connection) -> None:
    ids = identifiers(conn)
    conn.execute("UPDATE ccvec.image SET provider = 'museum' WHERE identifier = ANY(%s)", [ids[:3]])
    conn.commit()
    fitted = ok(cli("novelty", "fit", "ref", "--provider", "museum", "--model", MODEL)).stdout
    assert "3 reference images" in fitted
    assert "scored 1 image against 'ref'" in ok(cli("novelty", "score", "ref")).stdout
    ok(cli("novelty", "fit", "all", "--reference", loaded, "--model", MODEL))  # every image a member
    every = ok(cli("novelty", "score", "all")).stdout
    assert "scored 0 images against 'all'" in every and "none is left to score" in every


def test_novelty_fit_on_a_folder(cli: Cli, loaded: Path, tmp_path: Path, conn: psycopg.Connection) -> None:
    """--reference FOLDER: the images that folder holds, for collections without catalog columns."""
    extra = images(tmp_path / "extra", ("camera", "moon"))
    ok(cli("load", extra, "--model", MODEL, "--workers", "0"))
    fitted = ok(cli("novelty", "fit", "ref", "--reference", loaded, "--model", MODEL)).stdout
    assert "4 reference images" in fitted and "images = " in fitted
    assert "scored 2 images against 'ref'" in ok(cli("novelty", "score", "ref")).stdout
    members = conn.execute("SELECT count(*) FROM ccvec.novelty_reference WHERE name = 'ref'").fetchone()
    assert members == (4,)
    usage_error(cli("novelty", "fit", "none", "--reference", "no-such-source"), "no model named efficientnet")
    usage_error(
        cli("novelty", "fit", "none", "--reference", tmp_path / "gone", "--model", MODEL),
        "gone: no such folder or file, and no image has it as its source",
    )
    usage_error(
        cli("novelty", "fit", "none", "--reference", "no-such-source", "--model", MODEL),
        "matches 0 embedded image(s)",
    )


def test_novelty_fit_without_selector(cli: Cli) -> None:
    usage_error(cli("novelty", "fit", "ref"), "give exactly one of --reference, --provider, --tag")


def test_novelty_score_unknown(cli: Cli) -> None:
    usage_error(cli("novelty", "score", "nothing-fitted"), "nothing-fitted")


# --- refresh, scores, authority ---------------------------------------------------------------------


def test_refresh_and_scores(cli: Cli, graphed: Path, conn: psycopg.Connection) -> None:
    assert "scored 4 images" in ok(cli("refresh")).stdout
    ident = identifiers(conn)[0]
    row = json.loads(ok(cli("scores", "--identifier", ident, "--format", "json")).stdout)
    assert row[0]["identifier"] == ident and 0 <= row[0]["authority"] <= 1
    cold = ok(cli("refresh", "--cold"))  # derives every input again: the same scores
    assert "scored 4 images" in cold.stdout and "changed images, constants" in cold.stderr
    again = json.loads(ok(cli("scores", "--identifier", ident, "--format", "json")).stdout)
    assert again == row


def test_popularity_metric_for_another_provider(cli: Cli, graphed: Path, conn: psycopg.Connection) -> None:
    """Views under a provider with no metric are not ignored in silence: refresh and run name them
    and the command that counts them; once set, the next run
    refreshes though no image changed, and they score (the provider's 85th percentile at 0.85)."""
    ids = identifiers(conn)
    for i, ident in enumerate(ids):
        conn.execute(
            "UPDATE ccvec.image SET provider = 'tuxpaint', meta_data = %s WHERE identifier = %s",
            [json.dumps({"views": 10 * (i + 1)}), ident],
        )
    conn.commit()
    before = ok(cli("refresh"))
    assert "popularity observed 0" in before.stdout
    assert "provider 'tuxpaint': 4 of 4 images looked at carry meta_data 'views'" in before.stderr
    assert "`ccvec popularity metric tuxpaint views` counts it" in before.stderr
    run = ("run", graphed, "--model", MODEL, "--k", "2")
    assert "provider 'tuxpaint'" in ok(cli(*run)).stderr
    ok(cli("popularity", "metric", "tuxpaint", "views"))
    after = ok(cli(*run))
    assert "scores: refreshed" in after.stdout and "tuxpaint" not in after.stderr, after.stdout
    observed = conn.execute("SELECT count(*) FROM ccvec.image_score WHERE popularity_provenance = 'observed'")
    assert observed.fetchone() == (4,)
    assert "scores: up to date" in ok(cli(*run)).stdout  # computed now: nothing stale
    listed = json.loads(ok(cli("popularity", "metrics", "--format", "json")).stdout)
    mine = next(r for r in listed if r["provider"] == "tuxpaint")
    assert (mine["metric"], mine["images"], mine["value_at_percentile"]) == ("views", 4, 40.0)
    assert {r["provider"] for r in listed} >= {"flickr", "wikimedia", "nappy", "rawpixel", "stocksnap"}


def test_popularity_metric_bad_values(cli: Cli) -> None:
    usage_error(cli("popularity", "metric", "tuxpaint", "views", "--percentile", "1"), "percentile must be")
    usage_error(cli("popularity", "metric", " ", "views"), "needs a provider and a meta_data key")


def test_refresh_without_schema(cli: Cli, no_schema: str) -> None:
    usage_error(cli("refresh"), "ccvec db upgrade")


def test_scores_not_a_uuid(cli: Cli, tmp_path: Path) -> None:
    usage_error(
        cli("scores", "--identifier", "nope"), "'nope' is neither an image identifier (a UUID) nor a file"
    )
    # there, but no image file: named with what it is, not called "neither ... nor a file"
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    for name, what in (
        ("pipe.jpg", "is a FIFO (named pipe)"),
        ("gone.jpg", "dangling symlink"),
        ("", "is a directory"),
    ):
        result = cli("scores", "--identifier", tmp_path / name)
        usage_error(result, f"{tmp_path / name}: {what}")
        assert "neither" not in result.stderr


def ranks_file(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with gzip.open(path, "wt") as f:
        f.write("\t".join(header) + "\n")
        f.writelines("\t".join(str(x) for x in row) + "\n" for row in rows)
    return path


GOOD_FEATURES_MANIFEST = {
    "format": "ccvec-features",
    "version": 1,
    "model": "m",
    "model_sha256": "a" * 64,
    "weights_sha256": None,
    "dim": 4,
    "spec": {"name": "m", "version": "1", "dim": 4},
    "embedding": "float16 little-endian",
}
BAD_FEATURES_MANIFESTS: list[tuple[object, str]] = [
    ({"format": "ccvec-features", "version": 99}, "unknown version 99: this ccvec reads version 1"),
    ({"format": "ccvec-features"}, "missing key 'version'"),
    ({**GOOD_FEATURES_MANIFEST, "version": True}, "unknown version True"),
    ({k: v for k, v in GOOD_FEATURES_MANIFEST.items() if k != "spec"}, "missing key(s) 'spec'"),
    ({**GOOD_FEATURES_MANIFEST, "dim": "4"}, "'dim' is a JSON string, expected a whole number"),
    ({**GOOD_FEATURES_MANIFEST, "spec": []}, "'spec' is a JSON array, expected an object"),
    ({**GOOD_FEATURES_MANIFEST, "model_sha256": None}, "'model_sha256' is a JSON null, expected a string"),
    ({**GOOD_FEATURES_MANIFEST, "model_file": 3}, "'model_file' is a JSON number, expected a string"),
    ({**GOOD_FEATURES_MANIFEST, "embedding": "float32"}, "unknown embedding encoding 'float32'"),
    ({**GOOD_FEATURES_MANIFEST, "spec": {"name": "m"}}, "'spec' is not a model spec: missing field(s)"),
    (
        {**GOOD_FEATURES_MANIFEST, "spec": {"name": "m", "version": "1", "dim": "x"}},
        "'spec' is not a model spec: dim must be an integer, not 'x'",
    ),
    (
        {**GOOD_FEATURES_MANIFEST, "dim": 8},
        "'spec' names model 'm' of dim 4, the manifest model 'm' of dim 8",
    ),
    ([1, 2], "not a features manifest: a JSON array, not an object"),
    ({"format": "other"}, "not a ccvec features dataset (format 'other')"),
]


def test_load_features_dataset_bad_manifest(cli: Cli, tmp_path: Path) -> None:
    """Each wrong `_ccvec.json` is one line naming the file and what is wrong (a KeyError before)."""
    dataset = tmp_path / "features"
    dataset.mkdir()
    manifest = dataset / "_ccvec.json"
    for data, problem in BAD_FEATURES_MANIFESTS:
        manifest.write_text(json.dumps(data))
        usage_error(cli("load", dataset), f"{manifest}: {problem}")
    manifest.write_bytes(b"{\xff}")
    usage_error(cli("load", dataset), "unreadable features manifest")
    manifest.write_text(json.dumps(GOOD_FEATURES_MANIFEST))
    assert ccspark.read_manifest(dataset) == GOOD_FEATURES_MANIFEST


def test_load_hosts(cli: Cli, conn: psycopg.Connection, tmp_path: Path) -> None:
    ranks = ranks_file(
        tmp_path / "cc-host-ranks.txt.gz",
        scores.HOST_HEADER,
        [[1, 3.2e7, 5, 0.01, "org.wikipedia.en"], [10, 2.1e7, 40, 0.001, "com.flickr"]],
    )
    assert "2 host ranks" in ok(cli("authority", "load-hosts", ranks)).stdout
    assert conn.execute("SELECT count(*) FROM ccvec.web_rank WHERE kind = 'host'").fetchone() == (2,)


def test_load_hosts_wrong_header(cli: Cli, tmp_path: Path) -> None:
    ranks = ranks_file(tmp_path / "x-ranks.txt.gz", ["rank", "host"], [[1, "org.example"]])
    usage_error(cli("authority", "load-hosts", ranks), "not a Common Crawl ranks file")


def test_load_hosts_not_a_file(cli: Cli, tmp_path: Path) -> None:
    usage_error(cli("authority", "load-hosts", tmp_path), f"{tmp_path}: is a folder, not a ranks file")
    usage_error(cli("authority", "load-hosts", tmp_path / "gone.gz"), "gone.gz: no such ranks file")
    os.mkfifo(tmp_path / "fifo.gz")  # refused before it is opened: an open would wait for a writer
    usage_error(cli("authority", "load-hosts", tmp_path / "fifo.gz"), "is a FIFO (named pipe)")


# --- report, run ----------------------------------------------------------------------------------


def test_report(cli: Cli, clustered: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert "report:" in ok(cli("report", out)).stdout
    assert "coffee" in (out / "index.html").read_text()


def test_report_into_foreign_folder(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("not ccvec's")
    usage_error(cli("report", out), "holds files ccvec did not write")
    assert (out / "notes.txt").read_text() == "not ccvec's"


def test_run(cli: Cli, tiny: Path, tmp_path: Path) -> None:
    folder = images(tmp_path / "photos")
    out = tmp_path / "out"
    ok(cli("run", folder, "--model", MODEL, "--k", "2", "--out", out))
    assert (out / "index.html").is_file()
    manifest = tmp_path / "titles.csv"  # the same files with titles: the catalog rows take them
    manifest.write_text("path,title\nphotos/coffee.png,Morning coffee\n")
    again = ok(cli("run", manifest, "--model", MODEL, "--k", "2")).stdout
    assert "load: 0 new, 1 already loaded, 0 failed, 1 catalog row(s) updated from a manifest" in again
    assert "report: none written (--out FOLDER writes" in again


def test_report_unwritable_out(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file")
    usage_error(cli("report", tmp_path / "notes.txt"), "notes.txt is a file: OUT needs a folder")
    usage_error(cli("report", "/proc/ccvec-nowhere/x"), "cannot write /proc/ccvec-nowhere/x")


def test_a_failed_report_or_run_leaves_no_new_folder(cli: Cli, no_schema: str, tmp_path: Path) -> None:
    """OUT is made to hold the write lock; a command failing before it writes removes it again."""
    usage_error(cli("report", tmp_path / "new report"), "no ccvec schema yet")
    usage_error(cli("run", tmp_path / "nowhere", "--out", tmp_path / "new run"), "nowhere")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_run_unwritable_out_fails_before_loading(
    cli: Cli, tiny: Path, conn: psycopg.Connection, tmp_path: Path
) -> None:
    folder = images(tmp_path / "photos")
    (tmp_path / "notes.txt").write_text("a file")
    usage_error(
        cli("run", folder, "--model", MODEL, "--out", tmp_path / "notes.txt" / "report"), "is not a folder"
    )
    assert conn.execute("SELECT count(*) FROM ccvec.image_feature").fetchone() == (0,)  # nothing loaded


def test_run_missing_source(cli: Cli, tiny: Path, tmp_path: Path) -> None:
    usage_error(cli("run", tmp_path / "nowhere", "--model", MODEL), "no such folder or file")


# --- models -----------------------------------------------------------------------------------------


def tiny_options(onnx: Path, name: str = "tiny-added") -> list[str | Path]:
    return [
        "model", "add", name, onnx, "--dim", str(TINY_DIM), "--size", str(TINY_SIZE),
        "--input", "pixels", "--output", "embedding", "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25",
    ]  # fmt: skip


def test_model_add_and_list(cli: Cli, conn: psycopg.Connection, tmp_path: Path) -> None:
    onnx = build_tiny_model(tmp_path / "t.onnx")
    assert "registered tiny-added (dim 8" in ok(cli(*tiny_options(onnx))).stdout
    assert "tiny-added" in ok(cli("model", "list")).stdout
    listed = {m["model"]: m for m in json.loads(ok(cli("model", "list", "--format", "json")).stdout)}
    assert listed["tiny-added"]["dim"] == 8 and len(listed["tiny-added"]["onnx_sha256"]) == 64


def test_model_add_bad_mean(cli: Cli, tmp_path: Path) -> None:
    onnx = build_tiny_model(tmp_path / "t.onnx")
    args = tiny_options(onnx)
    args[args.index("0.5,0.5,0.5")] = "0.5,0.5"
    usage_error(cli(*args), "bad model spec")


def test_model_add_with_a_spec_file_alone(cli: Cli, conn: psycopg.Connection, tmp_path: Path) -> None:
    """docs/loading.md: `--spec spec.json` with the fields it lists (no version, no --dim) is enough."""
    onnx = build_tiny_model(tmp_path / "t.onnx")
    fields = {
        "dim": TINY_DIM, "input_size": TINY_SIZE, "resize": TINY_SIZE, "crop": True,
        "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "resample": "bilinear",
        "input_name": "pixels", "output_name": "embedding",
    }  # fmt: skip
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(fields))
    assert "registered tiny-spec (dim 8" in ok(cli("model", "add", "tiny-spec", onnx, "--spec", spec)).stdout
    spec.write_text(json.dumps({k: v for k, v in fields.items() if k != "dim"}))
    nodim = cli("model", "add", "tiny-nodim", onnx, "--spec", spec)
    usage_error(nodim, "bad model spec: missing field(s) dim")
    spec.write_text(json.dumps({**fields, "colour": "rgb"}))
    usage_error(cli("model", "add", "tiny-extra", onnx, "--spec", spec), "unknown field(s) colour")
    usage_error(cli("model", "add", "tiny-none", onnx), "give --dim")


def test_model_list_without_schema(cli: Cli, no_schema: str) -> None:
    usage_error(cli("model", "list"), "the database has no ccvec schema yet: run `ccvec db upgrade`")


def test_model_build(cli: Cli) -> None:
    out = ok(cli("model", "build")).stdout
    assert "efficientnet-lite0" in out and "dim 1280" in out


def test_model_build_unknown_option(cli: Cli) -> None:
    usage_error(cli("model", "build", "--fast"), "No such option")


# --- experiments ------------------------------------------------------------------------------------


def test_experiment_lifecycle(cli: Cli, conn: psycopg.Connection, tmp_path: Path) -> None:
    usage_error(
        cli("experiment", "create", "exp"), "no clusters at level 'default': run `ccvec cluster` first"
    )
    current_cluster_run(conn)
    conn.commit()
    assert "experiment exp running: 50% of sessions" in ok(cli("experiment", "create", "exp")).stdout
    served = [("treatment", True, uuid.uuid4()), ("control", False, uuid.uuid4())]
    for n, (arm, substituted, ident) in enumerate(served):
        conn.execute(
            "INSERT INTO ccvec.ab_served VALUES ('exp', %s, 'q', 1, %s, %s, %s, %s, now())",
            [f"s{n}", ident, ident, arm, substituted],
        )
    conn.commit()
    events = tmp_path / "events.csv"
    events.write_text(
        "query,result_uuid,result_rank,session_uuid,timestamp,event_type\n"
        f"q,{served[0][2]},1,s0,2026-11-01T10:00:00+00:00,click\n"
        f"q,{served[1][2]},x,s1,2026-11-01T10:00:00+00:00,click\n"
    )
    imported = cli("experiment", "import", "exp", events)
    assert imported.exit_code == 1, imported.stderr  # a rejected row: some input failed to load
    assert "imported 1, already there 0, rejected 1" in imported.stdout
    report = json.loads(ok(cli("experiment", "report", "exp", "--format", "json")).stdout)
    assert report["strata"][0]["substituted_clicks"] == 1, report
    assert json.loads(ok(cli("experiment", "report", "exp", "--json")).stdout) == report  # kept for scripts
    usage_error(cli("experiment", "report", "exp", "--json", "--format", "csv"), "give one of --json and")
    as_csv = ok(cli("experiment", "report", "exp", "--format", "csv")).stdout
    table = list(csv.DictReader(io.StringIO(as_csv)))
    assert [{k: int(v) for k, v in row.items()} for row in table] == [
        {k: v for k, v in stratum.items() if not k.startswith("ctr")} for stratum in report["strata"]
    ]
    verdict = ok(cli("experiment", "report", "exp")).stdout
    assert "CMH p" in verdict and "no difference shown at 95 %" in verdict, verdict
    assert "experiment exp stopped" in ok(cli("experiment", "stop", "exp")).stdout


def test_experiment_report_rank_without_impressions() -> None:
    """A rank where one arm showed nothing has no CTR: the table says '-', not 'nan'."""
    from ccvec.cli.abtest import _rate

    assert (_rate(float("nan")), _rate(0.25)) == ("-", "0.250")


def test_experiment_create_bad_share(cli: Cli) -> None:
    """The range is checked once, by ccvec.create_experiment in SQL, and still reads as one line."""
    usage_error(
        cli("experiment", "create", "exp", "--treatment", "2"), "treatment share must be between 0 and 1"
    )
    usage_error(cli("experiment", "create", "exp", "--substitution", "-0.1"), "substitution share must be")


def test_experiment_import_wrong_suffix(cli: Cli, conn: psycopg.Connection, tmp_path: Path) -> None:
    current_cluster_run(conn)
    conn.commit()
    ok(cli("experiment", "create", "exp"))
    events = tmp_path / "events.xlsx"
    events.write_text("x")
    usage_error(cli("experiment", "import", "exp", events), "must be .csv or .jsonl")


def test_experiment_report_unknown(cli: Cli) -> None:
    usage_error(cli("experiment", "report", "nope"), "no experiment named 'nope'")


def test_experiment_stop_unknown(cli: Cli) -> None:
    usage_error(cli("experiment", "stop", "nope"), "no experiment named 'nope'")


def test_experiment_power(cli: Cli) -> None:
    out = ok(cli("experiment", "power", "--ctr", "0.05", "--lift", "-0.1")).stdout
    n = int(out.split()[0].replace(",", ""))
    assert 10_000 < n < 100_000, out


def test_experiment_power_impossible(cli: Cli) -> None:
    usage_error(cli("experiment", "power", "--ctr", "1.5", "--lift", "0.1"), "need 0 < ctr < 1")
    usage_error(
        cli("experiment", "power", "--ctr", "0.05", "--lift", "-0.1", "--power", "1"), "need 0 < alpha < 1"
    )


# --- spark --------------------------------------------------------------------------------------------


def test_spark_features_onnx_without_spec(cli: Cli, tmp_path: Path) -> None:
    usage_error(
        cli("spark", "features", tmp_path, "--out", tmp_path / "f", "--onnx", tmp_path / "m.onnx"),
        "--onnx and --spec go together",
    )


def test_spark_features_refuses_before_starting_spark(cli: Cli, tmp_path: Path) -> None:
    """A missing source and an --out that is a file are one line each, before Spark (seconds of JVM
    start and warnings) and before the model is built; nothing is written."""
    from pyspark import SparkContext

    assert SparkContext._active_spark_context is None
    out = tmp_path / "features"
    usage_error(
        cli("spark", "features", tmp_path / "nowhere", "--out", out),
        f"{tmp_path / 'nowhere'}: no such folder or manifest file",
    )
    assert not out.exists() and SparkContext._active_spark_context is None
    file = tmp_path / "m.csv"
    file.write_text("identifier,url\n")
    usage_error(
        cli("spark", "features", images(tmp_path / "photos"), "--out", file),
        f"--out {file}: is a file; --out must be a folder",
    )
    assert file.read_text() == "identifier,url\n" and SparkContext._active_spark_context is None


# --- db -------------------------------------------------------------------------------------------------


def test_db_upgrade_and_downgrade(cli: Cli, fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    assert "schema at" in ok(cli("db", "upgrade")).stdout
    status = ok(cli("db", "status")).stdout
    assert "(up to date)" in status and "(from DATABASE_URL or --database-url)" in status, status
    assert "schema at base" in ok(cli("db", "downgrade", "base", "--yes")).stdout
    assert "schema      none" in ok(cli("db", "status")).stdout


def test_db_partition_and_upgrade_partitions(
    cli: Cli, fresh_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    assert (
        "image_feature 2, image_embedding 2, knn_edge 2"
        in ok(cli("db", "upgrade", "--partitions", "2")).stdout
    )
    assert "partitions  image_feature 2" in ok(cli("db", "status")).stdout
    assert "nothing to move" in ok(cli("db", "partition", "2", "--jobs", "1")).stdout
    assert "image_feature 1, image_embedding 1, knn_edge 1" in ok(cli("db", "partition", "1")).stdout
    ok(cli("db", "partition", "3"))
    assert "schema at base" in ok(cli("db", "downgrade", "base", "--yes")).stdout  # from partitioned


def test_db_lean_index(cli: Cli, loaded: Path, conn: psycopg.Connection) -> None:
    assert "lean index of tiny-cmd built" in ok(cli("db", "lean-index", "--model", MODEL)).stdout
    query = conn.execute("SELECT embedding FROM ccvec.image_embedding LIMIT 1").fetchone()[0]
    found = conn.execute("SELECT * FROM ccvec.nearest_lean(%s, %s, 2, 4)", [MODEL, query]).fetchall()
    conn.commit()  # the drop below waits for readers of the table
    assert len(found) == 2 and found[0][1] == pytest.approx(1.0, abs=1e-3)
    assert "dropped" in ok(cli("db", "lean-index", "--model", MODEL, "--drop")).stdout
    assert conn.execute("SELECT ccvec.indexed_models('binary')").fetchall() == []


def test_db_lean_index_unknown_model(cli: Cli) -> None:
    usage_error(cli("db", "lean-index", "--model", "nosuch"), "no model named nosuch")


def test_db_partition_out_of_range(
    cli: Cli, fresh_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    ok(cli("db", "upgrade"))
    usage_error(cli("db", "partition", "5000"), "out of range")


def test_db_upgrade_unknown_revision(cli: Cli, no_schema: str) -> None:
    usage_error(cli("db", "upgrade", "nosuchrev"), "nosuchrev")


def test_db_downgrade_unknown_revision(cli: Cli) -> None:
    usage_error(cli("db", "downgrade", "nosuchrev", "--yes"), "nosuchrev")


def test_db_status(cli: Cli, tiny: Path) -> None:
    out = ok(cli("db", "status")).stdout
    assert "(up to date)" in out and "ccvec.model" in out


def test_db_status_of_a_stopped_embedded_server(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Status reports an embedded server that is not running instead of starting it."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("CCVEC_HOME", str(tmp_path / "home"))
    out = ok(cli("db", "status")).stdout
    assert "embedded server: not created yet" in out and "any other ccvec command starts it" in out
    from ccvec import db

    assert not db.server_location(tmp_path / "home" / "pgdata").exists()  # nothing started or created


def test_db_status_unreachable(cli: Cli, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url.replace("/ccvec?", "/no_such_database?"))
    usage_error(cli("db", "status"), 'database "no_such_database" does not exist')


def test_db_url_hides_password(cli: Cli, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ok(cli("db", "url", "--show-password")).stdout.strip() == database_url
    monkeypatch.setenv("DATABASE_URL", "postgresql://ann:s3cret@db.example/ccvec")
    shown = ok(cli("db", "url")).stdout
    assert "s3cret" not in shown and "ann:***@db.example" in shown


def test_db_url_extra_argument(cli: Cli) -> None:
    usage_error(cli("db", "url", "extra"), "unexpected extra argument")


def test_db_grant(cli: Cli, conn: psycopg.Connection) -> None:
    role = f"r_{uuid.uuid4().hex[:10]}"
    conn.execute(f'CREATE ROLE "{role}" LOGIN')
    conn.commit()
    try:
        assert f"{role} is now a ccvec reader" in ok(cli("db", "grant", role, "--reader")).stdout
        allowed = conn.execute("SELECT has_table_privilege(%s, 'ccvec.image', 'SELECT')", [role]).fetchone()
        assert allowed == (True,)
    finally:
        conn.rollback()
        conn.execute(f'DROP OWNED BY "{role}"')
        conn.execute(f'DROP ROLE "{role}"')
        conn.commit()


def test_db_grant_two_levels(cli: Cli) -> None:
    usage_error(cli("db", "grant", "someone", "--reader", "--writer"), "give exactly one of")


def test_db_start_when_running(cli: Cli, server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL")  # the session's embedded server, under $CCVEC_HOME: a no-op
    assert f"embedded server running: {server_url}" in ok(cli("db", "start")).stdout


def test_db_start_with_database_url(cli: Cli) -> None:
    usage_error(cli("db", "start"), "DATABASE_URL is set")


def test_db_stop_when_not_running(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCVEC_HOME", str(tmp_path / "elsewhere"))  # never the session's server
    monkeypatch.delenv("DATABASE_URL")
    assert "embedded server was not running" in ok(cli("db", "stop")).stdout


def test_db_stop_extra_argument(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCVEC_HOME", str(tmp_path / "elsewhere"))
    usage_error(cli("db", "stop", "now"), "unexpected extra argument")


def test_tags_before_any_refresh_says_what_to_run(fresh_database_url: str) -> None:
    """A view never refreshed is not a lost connection: one line that says to run `ccvec refresh`."""
    import os
    import subprocess
    import sys

    from ccvec import migrate

    migrate.upgrade(fresh_database_url)
    env = {**os.environ, "DATABASE_URL": fresh_database_url}
    done = subprocess.run(
        [sys.executable, "-m", "ccvec.cli", "tags", "--all"], capture_output=True, text=True, env=env
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "connection failed" not in lines[0] and "ccvec refresh" in lines[0]
