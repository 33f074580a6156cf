"""Inputs: folders and manifests become items with stable identities; bad rows become reasons."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from ccvec.errors import CcvecError
from ccvec.sources import BadRow, SourceItem, identity, open_source


def items_and_bad(source: Path) -> tuple[list[SourceItem], list[BadRow]]:
    entries = list(open_source(str(source)))
    return [e for e in entries if isinstance(e, SourceItem)], [e for e in entries if isinstance(e, BadRow)]


def test_directory_scan_is_recursive_sorted_and_filters_extensions(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".thumbnails").mkdir()
    for name in ("b/z.JPG", "a.png", "notes.txt", "b/c.webp", "x.jpeg.bak", ".hidden.jpg", "._a.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".thumbnails" / "t.jpg").write_bytes(b"x")  # hidden: passed over, images too
    items, bad = items_and_bad(tmp_path)
    assert [Path(i.location).name for i in items] == ["a.png", "c.webp", "z.JPG"]
    assert [(Path(b.source).name, b.stage) for b in bad] == [
        ("notes.txt", "skipped"),
        ("x.jpeg.bak", "skipped"),
        (tmp_path.name, "skipped"),  # one note for the hidden entries, counting them
    ]
    assert bad[2].reason.startswith("3 hidden entries (names starting with '.': ") and bad[2].passed == 3
    assert bad[2].files == 0  # not counted among the files skipped as not images
    again, _ = items_and_bad(tmp_path)
    assert [i.identifier for i in again] == [i.identifier for i in items]  # deterministic
    assert items[0].identifier == identity((tmp_path / "a.png").resolve().as_uri())


def test_csv_manifest_maps_openverse_columns(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    ident = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "identifier,path,provider,title,license,tags,meta_data,width,licence_note\n"
        f'{ident},img/a.jpg,flickr,A cat,by,"cat; animal","{{""views"": 12}}",640,see file\n'
        ",img/b.jpg,,B,,,,,\n"
    )
    items, bad = items_and_bad(manifest)
    assert not bad
    first, second = items
    assert first.identifier == uuid.UUID(ident)
    assert first.location == (tmp_path / "img/a.jpg").resolve().as_uri()
    assert first.metadata["provider"] == "flickr" and first.metadata["license"] == "by"
    assert first.metadata["tags"] == [{"name": "cat"}, {"name": "animal"}]
    assert first.metadata["meta_data"] == {"views": 12, "licence_note": "see file"}
    assert first.metadata["width"] == 640
    assert second.identifier == identity(second.location)


def test_jsonl_manifest_and_its_bad_rows(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    rows = [
        {
            "url": "https://example.org/a.jpg",
            "tags": [{"name": "dog", "provider": "clarifai", "accuracy": 0.9}],
        },
        {"title": "no location"},
        {"url": "ftp://example.org/x.jpg"},
        {"path": "a.jpg", "identifier": "not-a-uuid"},
        {"path": "a.jpg", "meta_data": "[1, 2]"},
        {"path": "a.jpg", "width": "wide"},
        {"path": "a.jpg", "tags": [{"accuracy": 1}]},
        {"path": "b.jpg", "tags": ["", {"name": " "}, "kept"]},
    ]
    broken = "{broken json\n[1,2]\n" + '{"path": "tab\tin.jpg"}\n'  # the last: a raw tab in a string
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n" + broken)
    items, bad = items_and_bad(manifest)
    assert len(items) == 2 and items[0].metadata["tags"][0]["provider"] == "clarifai"
    assert items[1].metadata["tags"] == [{"name": "kept"}]  # empty labels dropped, the image kept
    reasons = {b.source.rsplit(":", 1)[1]: b.reason for b in bad}
    assert reasons == {
        "2": "row has neither path nor url",
        "3": "unsupported URL scheme 'ftp' in 'ftp://example.org/x.jpg'",
        "4": "identifier 'not-a-uuid' is not a UUID",
        "5": "column meta_data must be a JSON object, got [1, 2]",
        "6": "column width is not an integer: 'wide'",
        "7": "each tag needs a name: {'accuracy': 1}",
        "9": "not valid JSON: Expecting property name enclosed in double quotes at column 2",
        "10": "a JSON Lines row must be an object",
        "11": "not valid JSON: Invalid control character at column 14",  # json's "… at" not doubled
    }


def test_csv_with_wrong_field_count_is_a_bad_row(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,title\na.jpg,A\nb.jpg,B,extra,fields\n")
    items, bad = items_and_bad(manifest)
    assert len(items) == 1
    assert bad[0].source.endswith("m.csv:3") and "4 fields, header has 2" in bad[0].reason


def test_unusable_sources_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CcvecError, match="no such folder or manifest"):
        open_source(str(tmp_path / "nope"))
    (tmp_path / "m.csv").write_text("name,title\nx,y\n")
    with pytest.raises(CcvecError, match="must name a 'path' or 'url' column"):
        list(open_source(str(tmp_path / "m.csv")))
    (tmp_path / "m.xlsx").write_text("x")
    with pytest.raises(CcvecError, match=r"must be \.csv, \.tsv or \.jsonl"):
        list(open_source(str(tmp_path / "m.xlsx")))


def test_a_folder_of_sidecars_is_named_in_part_and_counted(tmp_path: Path) -> None:
    """A dataset folder with a sidecar per image: the first 100 other files are named, the rest
    counted in one row (by extension) that stands for all of them."""
    for i in range(150):
        (tmp_path / f"{i:03d}.json").write_text("{}")
        (tmp_path / f"{i:03d}.txt").write_text("caption")
    (tmp_path / "x.png").write_bytes(b"x")
    items, bad = items_and_bad(tmp_path)
    assert [Path(i.location).name for i in items] == ["x.png"]
    named, counted = bad[:-1], bad[-1]
    assert len(named) == 100 and [Path(b.source).name for b in named[:2]] == ["000.json", "000.txt"]
    assert all(b.stage == "skipped" and b.files == 1 for b in named)
    assert counted.stage == "skipped" and counted.files == 200 and counted.source == str(tmp_path)
    assert "200 more files not images by their name (of all: .json 150, .txt 150)" in counted.reason
