"""What to load: a folder of images or a manifest (CSV / JSON Lines) with Openverse columns.

Every input becomes a `SourceItem` with a stable identifier: the manifest's `identifier`, else a
uuid5 of the canonical location (file URI or URL), so loading the same thing twice never makes a
second row. Rows a manifest gets wrong become `BadRow`s with a reason; they never stop the load.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ccvec.errors import CcvecError

IMAGE_EXTENSIONS = {
    ".jpg",
    ".jpeg",
    ".jpe",
    ".png",
    ".gif",
    ".webp",
    ".bmp",
    ".tif",
    ".tiff",
    ".ppm",
    ".pgm",
    ".pbm",
    ".pnm",
    ".ico",
    ".jp2",
    ".j2k",
    ".tga",
    ".avif",
    ".heic",
}
# ccvec's namespace for uuid5 identities of sources without an identifier (fixed forever).
NAMESPACE = uuid.UUID("6c0e5a52-4d3b-5b8e-9a57-0b3e1c2f9d41")

CATALOG_COLUMNS = {
    "provider": 80,
    "source": 80,
    "foreign_identifier": 3000,
    "foreign_landing_url": 1000,
    "url": 3000,
    "thumbnail": 3000,
    "license": 50,
    "license_version": 25,
    "creator": 2000,
    "creator_url": 2000,
    "title": 5000,
    "category": 80,
    "filetype": 5,
    "ingestion_type": 80,
}
INT_COLUMNS = {"width", "height", "filesize"}
BOOL_COLUMNS = {"watermarked"}
JSON_COLUMNS = {"meta_data", "tags"}
IGNORED_COLUMNS = {"identifier", "path", "standardized_popularity"}


@dataclass(frozen=True)
class SourceItem:
    """One image to load: where its bytes are, its identity, and catalog metadata."""

    identifier: uuid.UUID
    location: str  # a file URI or an http(s) URL
    metadata: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class BadRow:
    source: str  # "manifest.csv:12"
    reason: str


def identity(location: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, location)


def file_location(path: Path) -> str:
    return path.resolve().as_uri()


def local_path(location: str) -> Path | None:
    """The filesystem path of a file URI, or None for remote URLs."""
    parts = urlsplit(location)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    return None


def scan_directory(root: Path) -> Iterator[SourceItem]:
    """Image files under `root`, recursively, in a stable (sorted) order."""
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS):
        if path.is_file():
            location = file_location(path)
            yield SourceItem(identity(location), location, _file_metadata(path, location))


def _file_metadata(path: Path, location: str) -> dict:
    return {
        "url": location,
        "title": path.stem[:5000],
        "filetype": path.suffix.lower().lstrip(".")[:5] or None,
        "foreign_identifier": str(path)[:3000],
    }


def _parse_json_field(name: str, value):
    if value is None or value == "" or not isinstance(value, str):
        return value if value != "" else None
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        if name == "tags":  # CSV convenience: "cat; animal" or "cat,animal"
            sep = ";" if ";" in value else ","
            return [{"name": t.strip()} for t in value.split(sep) if t.strip()]
        raise ValueError(f"column {name} is not valid JSON: {value[:60]!r}") from None


def _normalise_tags(tags) -> list | None:
    if tags is None:
        return None
    if not isinstance(tags, list):
        raise ValueError("column tags must be a list")
    out = []
    for tag in tags:
        if isinstance(tag, str):
            tag = {"name": tag}
        if not isinstance(tag, dict) or not isinstance(tag.get("name"), str):
            raise ValueError(f"each tag needs a name: {tag!r}")
        if tag["name"].strip():  # an empty label is no tag, not a reason to drop the image
            out.append(tag)
    return out


def row_to_item(row: dict, base_dir: Path) -> SourceItem:
    """One manifest row -> SourceItem; raises ValueError with a readable reason."""
    row = {k.strip().lower(): v for k, v in row.items() if k is not None}
    path, url = (row.get("path") or "").strip(), (row.get("url") or "").strip()
    if path:
        location = file_location(base_dir / path if not Path(path).is_absolute() else Path(path))
    elif url:
        scheme = urlsplit(url).scheme.lower()
        if scheme in ("http", "https", "file"):
            location = url
        elif scheme == "":
            location = file_location(base_dir / url)
        else:
            raise ValueError(f"unsupported URL scheme {scheme!r} in {url[:80]!r}")
    else:
        raise ValueError("row has neither path nor url")
    raw_id = (
        (row.get("identifier") or "").strip()
        if isinstance(row.get("identifier"), str)
        else row.get("identifier")
    )
    try:
        ident = uuid.UUID(str(raw_id)) if raw_id else identity(location)
    except ValueError:
        raise ValueError(f"identifier {raw_id!r} is not a UUID") from None

    metadata: dict = {"url": url or location}
    extra: dict = {}
    for key, value in row.items():
        if key in IGNORED_COLUMNS or key == "url" or value is None or value == "":
            continue
        if key in CATALOG_COLUMNS:
            metadata[key] = str(value)[: CATALOG_COLUMNS[key]]
        elif key in INT_COLUMNS:
            try:
                metadata[key] = int(value)
            except (TypeError, ValueError):
                raise ValueError(f"column {key} is not an integer: {value!r}") from None
        elif key in BOOL_COLUMNS:
            metadata[key] = str(value).strip().lower() in ("1", "true", "t", "yes")
        elif key in JSON_COLUMNS:
            metadata[key] = _parse_json_field(key, value)
        else:
            extra[key] = value  # unknown columns are kept, in meta_data
    if metadata.get("meta_data") is not None and not isinstance(metadata["meta_data"], dict):
        raise ValueError("column meta_data must be a JSON object")
    if extra:
        metadata["meta_data"] = {**extra, **(metadata.get("meta_data") or {})}
    metadata["tags"] = _normalise_tags(metadata.get("tags"))
    metadata.setdefault("title", Path(urlsplit(location).path).stem[:5000] or None)
    return SourceItem(ident, location, metadata)


def read_manifest(path: Path) -> Iterator[SourceItem | BadRow]:
    """Rows of a CSV or JSON Lines manifest; paths resolve relative to the manifest's folder."""
    base = path.resolve().parent
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        rows = jsonl_rows(path)
    elif path.suffix.lower() in (".csv", ".tsv"):
        rows = _csv_rows(path)
    else:
        raise CcvecError(f"{path}: a manifest must be .csv, .tsv or .jsonl")
    for line, row in rows:
        where = f"{path}:{line}"
        if isinstance(row, str):
            yield BadRow(where, row)
            continue
        try:
            yield row_to_item(row, base)
        except ValueError as exc:
            yield BadRow(where, str(exc))


def _csv_rows(path: Path) -> Iterator[tuple[int, dict | str]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        if not reader.fieldnames or not {"path", "url"} & {h.strip().lower() for h in reader.fieldnames}:
            raise CcvecError(f"{path}: the header must name a 'path' or 'url' column")
        try:
            for row in reader:
                if None in row:
                    yield (
                        reader.line_num,
                        f"row has {len(row) - 1 + len(row[None])} fields, header has {len(row) - 1}",
                    )
                    continue
                yield reader.line_num, row
        except (csv.Error, UnicodeDecodeError) as exc:
            raise CcvecError(f"{path}: unreadable CSV near line {reader.line_num}: {exc}") from exc


def jsonl_rows(path: Path) -> Iterator[tuple[int, dict | str]]:
    """(line number, object) per non-empty line, or (line number, reason) for a bad line."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, f"not valid JSON: {exc.msg}"
                continue
            yield number, row if isinstance(row, dict) else "a JSON Lines row must be an object"


def open_source(source: str) -> Iterator[SourceItem | BadRow]:
    """A folder or a manifest file, as one stream of items."""
    path = Path(source).expanduser()
    if path.is_dir():
        return scan_directory(path)
    if path.is_file():
        return read_manifest(path)
    raise CcvecError(f"{source}: no such folder or manifest file")
