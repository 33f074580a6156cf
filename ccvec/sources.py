"""What to load: a folder of images or a manifest (CSV / JSON Lines) with Openverse columns.

Every input becomes a `SourceItem` with a stable identifier: the manifest's `identifier`, else a
uuid5 of the canonical location (file URI or URL), so loading the same thing twice never makes a
second row. Rows a manifest gets wrong become `BadRow`s with a reason; they never stop the load.
"""

from __future__ import annotations

import csv
import errno
import itertools
import json
import math
import os
import re
import stat
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias, overload
from urllib.parse import quote, quote_from_bytes, unquote, unquote_to_bytes, urlsplit, urlunsplit

from ccvec.errors import CcvecError

# A JSON value as json.loads returns it (and as jsonb stores it); rows and metadata are objects.
JSON: TypeAlias = dict[str, "JSON"] | list["JSON"] | str | int | float | bool | None
JSONObject: TypeAlias = dict[str, JSON]

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
    ".heic",  # Pillow has no decoder: each is named as a format not supported (ccvec.decode)
    ".heif",
}
# Files a camera, phone or scanner writes beside photos that ccvec cannot read: skipped, saying
# what they are rather than "not an image".
NOT_SUPPORTED = {
    **dict.fromkeys(
        (".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".dng", ".orf", ".rw2", ".raf",
         ".pef", ".srw", ".x3f", ".3fr", ".kdc", ".mrw", ".raw", ".rwl", ".iiq", ".erf"),
        ("camera RAW file", "export a JPEG or TIFF to include it"),
    ),
    **dict.fromkeys((".svg", ".svgz", ".eps", ".ai"), ("vector drawing", "no pixels to hash")),
    ".pdf": ("PDF document", "export its pages as images to include them"),
    ".psd": ("Photoshop document", "export a JPEG or PNG to include it"),
    **dict.fromkeys((".mov", ".mp4", ".m4v", ".avi", ".3gp", ".mts", ".mkv"), ("video", "stills only")),
}
# The manifest ccvec keeps in a folder it writes (ccvec.outdir): such a folder is output, not input.
OUTPUT_MARKER = ".ccvec-manifest.json"
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
URL_COLUMNS = {"foreign_landing_url", "thumbnail", "creator_url"}  # cut URLs are wrong URLs: dropped
INT_RANGE = (0, 2**31 - 1)  # width, height, filesize are Postgres integers
MAX_JSON_DEPTH = 64  # meta_data / tags nesting kept; deeper rows are refused
CSV_FIELD_LIMIT = 16 * 1024 * 1024  # one CSV field up to 16 MB (Python's default is 128 kB)
SKIPPED = "skipped"  # the load_error stage of a folder's file that is not an image by its name
WARNING = "warning"  # the load_error stage of a row stored with something changed (text cut, ...)
NOTED = (SKIPPED, WARNING)  # load_error stages that record an input without it having failed


@dataclass(frozen=True)
class SourceItem:
    """One image to load: where its bytes are, its identity, and catalog metadata."""

    identifier: uuid.UUID
    location: str  # a file URI or an http(s) URL
    metadata: JSONObject = field(default_factory=dict, compare=False)
    origin: str | None = field(default=None, compare=False)  # "manifest.csv:12" for manifest rows
    warnings: tuple[str, ...] = field(default=(), compare=False)  # what sanitising changed
    derived: frozenset[str] = field(default=frozenset(), compare=False)  # metadata ccvec made up

    @property
    def source(self) -> str:
        """How errors name this input: the manifest row (when there is one) and the location."""
        return f"{self.origin} {self.location}" if self.origin else self.location


@dataclass(frozen=True)
class BadRow:
    source: str  # "manifest.csv:12"
    reason: str
    stage: str = "manifest"  # "fetch" for a file that cannot be read (a FIFO in a folder, a loop)
    files: int = 1  # inputs this row stands for (a counted row of skipped files stands for many)
    passed: int = 0  # hidden or system entries of a folder this note stands for (not searched)


def identity(location: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, location)


def file_location(path: Path) -> str:
    """A file URI; bytes of non-UTF-8 file names survive (percent-encoded from os.fsencode)."""
    try:
        resolved = path.resolve()
    except RuntimeError:  # Python < 3.13 raises it for a symlink loop
        raise ValueError("symlink loop") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError("symlink loop") from None
        raise ValueError(f"cannot resolve path: {exc.strerror or exc}") from None
    return "file://" + quote_from_bytes(os.fsencode(resolved), safe="/")


def local_path(location: str) -> Path | None:
    """The filesystem path of a file URI, or None for remote URLs (and text urlsplit refuses)."""
    try:
        parts = urlsplit(location)
    except ValueError:  # "file://[::1/x": an invalid IPv6 host, from a hostile catalog row
        return None
    if parts.scheme.lower() == "file":
        return Path(os.fsdecode(unquote_to_bytes(parts.path)))
    return None


_FILE_URI = re.compile(r"file://\S+")


def readable_source(source: str) -> str:
    """An error's source for people: its file URIs as paths ("manifest.csv:12 /photos/a b.jpg")."""

    def path(match: re.Match[str]) -> str:
        local = local_path(match.group())
        return display_path(local) if local is not None else match.group()

    return _FILE_URI.sub(path, source)


def display_path(path: Path) -> str:
    """A path as text that always encodes (undecodable bytes shown as U+FFFD)."""
    return clean_text(str(path))[0]


# C0 and C1 controls (a tab too: it would shift a table's columns) and the bidirectional overrides,
# embeddings and isolates (U+202A-202E, U+2066-2069), which reorder the text after them: a file
# named "photo<U+202E>gpj.exe" would show as "photoexe.jpg".
_UNPRINTABLE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """Text from data, fit for a terminal or a text file: control characters and bidirectional
    overrides shown as escapes (`\\x1b`, `\\u202e`, `\\n`), so no terminal sequence gets through and
    nothing is reordered or spans lines. Stored data keeps them: only what is shown changes."""
    text = _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode(), str(text))
    return text.replace("\n", "\\n")


# ---------------------------------------------------------------- sanitising


_SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def clean_text(value: str) -> tuple[str, list[str]]:
    """Text Postgres accepts: NUL removed, lone surrogates (and undecodable bytes) -> U+FFFD."""
    notes = []
    if "\x00" in value:
        value = value.replace("\x00", "")
        notes.append("NUL characters removed")
    if _SURROGATES.search(value):
        value = _SURROGATES.sub("\ufffd", value)
        notes.append("invalid characters replaced by U+FFFD")
    return value, notes


@overload
def clean_json(value: str, name: str, notes: list[str], depth: int = 0) -> str: ...
@overload
def clean_json(value: JSON, name: str, notes: list[str], depth: int = 0) -> JSON: ...
def clean_json(value: JSON, name: str, notes: list[str], depth: int = 0) -> JSON:
    """A JSON value jsonb accepts: text cleaned, non-finite numbers -> null, bounded nesting."""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"column {name} is nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        text, changed = clean_text(value)
        notes.extend(f"{name}: {n}" for n in changed)
        return text
    if isinstance(value, float) and not math.isfinite(value):
        notes.append(f"{name}: non-finite number {value} stored as null")
        return None
    if isinstance(value, list):
        return [clean_json(v, name, notes, depth + 1) for v in value]
    if isinstance(value, dict):
        return {
            clean_json(str(k), name, notes, depth + 1): clean_json(v, name, notes, depth + 1)
            for k, v in value.items()
        }
    return value


def as_text(name: str, value: JSON) -> str:
    """Text columns take text; numbers become text (unambiguous); anything else is refused."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return str(value)
    raise ValueError(f"column {name} must be text, got {type(value).__name__} {show_value(value)}")


def as_int(name: str, value: JSON) -> int:
    """Integers, integral floats and integer text; anything else is refused."""
    if isinstance(value, bool):
        raise ValueError(f"column {name} must be an integer, got a boolean")
    if (isinstance(value, float) and math.isfinite(value) and value.is_integer()) or (
        isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,18}\s*", value)
    ):
        value = int(value)
    if not isinstance(value, int):
        raise ValueError(f"column {name} is not an integer: {show_value(value)}")
    if not INT_RANGE[0] <= value <= INT_RANGE[1]:
        raise ValueError(f"column {name} is out of range: {show_value(value)}")
    return value


def _as_bool(name: str, value: JSON) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "t", "yes", "y"):
        return True
    if text in ("0", "false", "f", "no", "n"):
        return False
    raise ValueError(f"column {name} is not a boolean: {show_value(value)}")


def show_value(value: object, limit: int = 60) -> str:
    """A short printable repr of a bad value for a reason text."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


# URL characters kept as they are: reserved and unreserved (RFC 3986) plus '%' of escapes.
_URL_SAFE = "-._~:/?#[]@!$&'()*+,;=%"


def normalise_url(url: str) -> str:
    """An http(s)/file URL that is safe to request and store: spaces, non-ASCII and stray '%'
    percent-encoded, host IDNA-encoded; raises ValueError when it cannot be made so."""
    if _CONTROL.search(url):
        raise ValueError(f"URL contains control characters: {show_value(url)}")
    if _SURROGATES.search(url):
        raise ValueError(f"URL contains invalid characters: {show_value(url)}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"malformed URL ({exc}): {show_value(url)}") from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and not parts.hostname:
        raise ValueError(f"URL has no host: {show_value(url)}")
    netloc = parts.netloc
    if parts.hostname and not parts.hostname.isascii():
        try:
            host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"URL host is not a valid domain name: {show_value(url)}") from None
        netloc = host + (f":{port}" if port is not None else "")
        if parts.username:
            raise ValueError(f"URL with credentials and a non-ASCII host: {show_value(url)}")
    if not netloc.isascii() or " " in netloc:
        raise ValueError(f"URL host is not valid: {show_value(url)}")
    path = re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", parts.path)
    query = re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", parts.query)
    fixed = urlunsplit(
        (
            scheme,
            netloc,
            quote(path, safe=_URL_SAFE),
            quote(query, safe=_URL_SAFE),
            quote(parts.fragment, safe=_URL_SAFE),
        )
    )
    return fixed


# ---------------------------------------------------------------- folders


SKIPPED_NAMED = 100  # a folder's other files named one by one; past this they are counted


@dataclass
class _Others:
    """A folder's files that are not images by their name: the first SKIPPED_NAMED (by path) kept to
    be named, every one counted by extension (a dataset folder can hold a sidecar per image)."""

    named: list[Path] = field(default_factory=list)
    by_extension: Counter[str] = field(default_factory=Counter)

    def add(self, path: Path) -> None:
        self.by_extension[path.suffix.lower() or "(none)"] += 1
        self.named.append(path)
        if len(self.named) > 2 * SKIPPED_NAMED:  # keep the first by path, in bounded memory
            self.named = sorted(self.named)[:SKIPPED_NAMED]

    def rows(self, root: Path) -> Iterator[BadRow]:
        named = sorted(self.named)[:SKIPPED_NAMED]
        for path in named:
            suffix = f"extension {path.suffix}" if path.suffix else "no extension"
            kind = NOT_SUPPORTED.get(path.suffix.lower())
            if kind:
                reason = f"{kind[0]} ({path.suffix}): not supported, skipped; {kind[1]}"
            else:
                reason = f"not an image file by its name ({suffix}): skipped"
            yield BadRow(display_path(path), reason, SKIPPED)
        rest = sum(self.by_extension.values()) - len(named)
        if rest:
            common = sorted(self.by_extension.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
            kinds = ", ".join(f"{ext} {n:,}" for ext, n in common)
            reason = f"{rest:,} more files not images by their name (of all: {kinds}): skipped, not named"
            yield BadRow(display_path(root), reason, SKIPPED, files=rest)


# Folders that NAS and operating systems write beside a person's photos: never entered (by name,
# Windows' case-insensitively). Synology's @eaDir holds a copy of every photo as thumbnails, which
# would all load as near-duplicates; the recycle bins hold what the person deleted.
SYSTEM_FOLDERS = {
    "@eadir": "Synology's thumbnail and metadata folder",
    "#recycle": "Synology's recycle bin",
    "#snapshot": "Synology's snapshot folder",
    "@recycle": "QNAP's recycle bin",
    "$recycle.bin": "Windows' recycle bin",
    "system volume information": "a Windows system folder",
}


def _passed_over(name: str) -> str | None:
    """Why a folder entry is not content (hidden, or a system folder), or None when it is."""
    if name.startswith("."):
        return "hidden"
    return SYSTEM_FOLDERS.get(name.casefold())


def scan_directory(root: Path) -> Iterator[SourceItem | BadRow]:
    """Image files under `root`, recursively, in a stable (sorted) order, symlinks after files: a
    symlink to a file listed already is a note, not a second listing of its target (whose title
    and path it would take). Names with an image extension that are not regular files
    (directories, FIFOs, devices, dangling or looping symlinks) are reported, not skipped in
    silence; so are other files, as skipped (stage "skipped": recorded, not failed; the first
    SKIPPED_NAMED by name, the rest in one counted row)."""
    images, others, passed = [], _Others(), _Passed()
    for path in _content(root, passed):
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            images.append(path)
        elif not_a_regular_file(path) is None:
            others.add(path)
        elif _is_symlink(path) and path.is_dir():  # os.walk lists it and does not enter it
            passed.add(path, "symlink to a folder: not followed; give its target as a source to load it")
    seen: dict[uuid.UUID, Path] = {}
    for path in sorted(images, key=lambda p: (_is_symlink(p), p)):
        problem = not_a_regular_file(path)
        if problem:
            yield BadRow(display_path(path), problem, "fetch")
            continue
        for entry in single_file(path):
            if isinstance(entry, SourceItem) and entry.identifier in seen:
                target = display_path(seen[entry.identifier])
                passed.add(path, f"symlink to {target}, listed already: loaded once, under its target")
                continue
            if isinstance(entry, SourceItem):
                seen[entry.identifier] = path
            yield entry
    yield from others.rows(root)
    yield from passed.rows(root)


@dataclass
class _Passed:
    """Entries of a folder passed over as not content: system folders named one by one (they can
    hold thousands of images), hidden entries counted in one row with a few names as examples."""

    system: list[tuple[Path, str]] = field(default_factory=list)
    hidden: Counter[str] = field(default_factory=Counter)

    def add(self, path: Path, why: str) -> None:
        if why == "hidden":
            self.hidden[display_path(Path(path.name))] += 1
        else:
            self.system.append((path, why))

    def rows(self, root: Path) -> Iterator[BadRow]:
        for path, why in sorted(self.system)[:SKIPPED_NAMED]:
            yield BadRow(display_path(path), why, SKIPPED, 0, 1)
        if len(self.system) > SKIPPED_NAMED:
            rest = len(self.system) - SKIPPED_NAMED
            yield BadRow(display_path(root), f"{rest:,} more system folders passed over", SKIPPED, 0, rest)
        if self.hidden:
            count = sum(self.hidden.values())
            shown = ", ".join(name for name, _ in self.hidden.most_common(4))
            more = ", ..." if len(self.hidden) > 4 else ""
            reason = (
                f"{count:,} hidden {'entry' if count == 1 else 'entries'} (names starting with '.': "
                f"{shown}{more}) passed over, not searched"
            )
            yield BadRow(display_path(root), reason, SKIPPED, 0, count)


def _content(root: Path, passed: _Passed | None = None) -> Iterator[Path]:
    """Every entry under `root` in one walk (symlinked folders are listed, not entered), except
    what is not content, noted in `passed`: hidden names, images too (.DS_Store, macOS's
    ._IMG.jpg, .thumbnails/, .git/, never entered), system folders (SYSTEM_FOLDERS: Synology's
    @eaDir, recycle bins), and the folders ccvec wrote (a report's thumbnails, cluster folders:
    they hold OUTPUT_MARKER)."""
    for folder, dirnames, filenames in os.walk(root):
        if OUTPUT_MARKER in filenames:
            dirnames.clear()
            continue
        kept = []
        for name in dirnames:
            why = _passed_over(name)
            if why is None:
                kept.append(name)
            elif passed is not None:
                reason = why if why == "hidden" else f"{why}: passed over, not searched"
                passed.add(Path(folder, name), reason)
        dirnames[:] = kept
        for name in (*dirnames, *filenames):
            if not name.startswith("."):
                yield Path(folder, name)
            elif passed is not None and name in filenames:
                passed.add(Path(folder, name), "hidden")


def not_a_regular_file(path: Path) -> str | None:
    """Why `path` cannot be read as an image file, or None when it is a regular file."""
    try:
        info = path.stat()  # follows symlinks
    except FileNotFoundError:
        return "dangling symlink (its target does not exist)" if path.is_symlink() else "file not found"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop"
        if exc.errno == errno.ENAMETOOLONG:
            return "path too long"
        return f"cannot stat file: {exc.strerror or exc}"
    if stat.S_ISREG(info.st_mode):
        return None
    kind = {
        stat.S_IFDIR: "a directory",
        stat.S_IFIFO: "a FIFO (named pipe)",
        stat.S_IFCHR: "a character device",
        stat.S_IFBLK: "a block device",
        stat.S_IFSOCK: "a socket",
    }.get(stat.S_IFMT(info.st_mode), "not a regular file")
    return f"is {kind}, not a regular file"


def require_file(path: Path, what: str) -> None:
    """One-line refusal of a named input that is not a regular file, saying what it is instead
    ("no such ranks file", "is a folder, not a ranks file", "is a FIFO (named pipe), ...")."""
    problem = not_a_regular_file(path)
    if problem == "file not found":
        raise CcvecError(f"{display_path(path)}: no such {what}")
    if problem is not None and problem.startswith("is a directory"):
        article = "an" if what[:1] in "aeiou" else "a"
        raise CcvecError(f"{display_path(path)}: is a folder, not {article} {what}")
    if problem is not None:
        raise CcvecError(f"{display_path(path)}: {problem}")


def _is_symlink(path: Path) -> bool:
    try:
        return path.is_symlink()
    except OSError:  # e.g. a name too long: reported when the path is resolved
        return False


def _file_metadata(path: Path, location: str) -> tuple[JSONObject, list[str]]:
    notes: list[str] = []
    title = clean_json(path.stem, "title", notes)[: CATALOG_COLUMNS["title"]]
    return {
        "url": location,
        "title": title,
        "filetype": clean_text(path.suffix.lower().lstrip("."))[0][:5] or None,
        "foreign_identifier": clean_text(str(path))[0][: CATALOG_COLUMNS["foreign_identifier"]],
    }, notes


# ---------------------------------------------------------------- manifest rows


def _parse_json_field(name: str, value: JSON) -> JSON:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return value
    try:
        parsed: JSON = json.loads(value)
        return parsed
    except (ValueError, RecursionError):
        if name == "tags":  # CSV convenience: "cat; animal" or "cat,animal"
            sep = ";" if ";" in value else ","
            return [{"name": t.strip()} for t in value.split(sep) if t.strip()]
        raise ValueError(f"column {name} is not valid JSON: {show_value(value)}") from None


def _normalise_tags(tags: JSON) -> list[JSON] | None:
    if tags is None:
        return None
    if isinstance(tags, str):  # one bare label
        tags = [tags]
    if not isinstance(tags, list):
        raise ValueError(f"column tags must be a list, got {type(tags).__name__} {show_value(tags)}")
    out: list[JSON] = []
    for tag in tags:
        if isinstance(tag, str):
            tag = {"name": tag}
        name = tag.get("name") if isinstance(tag, dict) else None
        if not isinstance(name, str):
            raise ValueError(f"each tag needs a name: {show_value(tag)}")
        if name.strip():  # an empty label is no tag, not a reason to drop the image
            out.append(tag)
    return out


def _location(row: JSONObject, base_dir: Path, remote_only: bool) -> tuple[str, str | None]:
    """(location to fetch, the row's URL as given or None) from the row's path / url columns."""
    raw_path, raw_url = row.get("path"), row.get("url")
    for name, value in (("path", raw_path), ("url", raw_url)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"column {name} must be text, got {type(value).__name__} {show_value(value)}")
    path = (raw_path if isinstance(raw_path, str) else "").strip()  # None -> ""
    url = (raw_url if isinstance(raw_url, str) else "").strip()
    if not path and not url:
        raise ValueError("row has neither path nor url")
    if not path and url.startswith("//"):  # scheme-relative: a web address, never a local path
        raise ValueError(f"URL has no scheme (write http:// or https://): {show_value(url)}")
    try:
        scheme = "" if path else urlsplit(url).scheme.lower() if ":" in url else ""
    except ValueError as exc:  # "Invalid IPv6 URL": an unclosed '['
        raise ValueError(f"malformed URL ({exc}): {show_value(url)}") from None
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme = ""
    if scheme in ("http", "https"):
        return normalise_url(url), url
    if scheme not in ("", "file"):
        raise ValueError(f"unsupported URL scheme {scheme!r} in {show_value(url)}")
    if remote_only:
        raise ValueError("local file refused: --remote-only accepts http(s) URLs only")
    given = path or url
    if "\x00" in given:
        raise ValueError(f"path contains a NUL character: {show_value(given)}")
    if scheme == "file":
        as_file = local_path(normalise_url(given))
        if as_file is None:  # cannot happen: a file: URL stays one when normalised
            raise ValueError(f"not a file URL: {show_value(given)}")
        file_path = as_file
    else:
        file_path = Path(given) if Path(given).is_absolute() else base_dir / given
    if _is_symlink(file_path):  # resolving would hide a dangling link behind its missing target
        problem = not_a_regular_file(file_path)
        if problem in ("symlink loop", "dangling symlink (its target does not exist)"):
            raise ValueError(problem)
    return file_location(file_path), None


def row_to_item(
    row: Mapping[str, JSON], base_dir: Path, origin: str | None = None, remote_only: bool = False
) -> SourceItem:
    """One manifest row -> SourceItem, validated and sanitised on its own; raises ValueError
    with a readable reason when the row cannot be stored. What sanitising changed (text cut to
    its column's length, NULs removed, ...) is kept in `warnings`."""
    row = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
    location, given_url = _location(row, base_dir, remote_only)
    if len(location) > CATALOG_COLUMNS["url"]:
        raise ValueError(
            f"location is {len(location):,} characters, over the {CATALOG_COLUMNS['url']:,} allowed"
        )
    raw_id = row.get("identifier")
    if isinstance(raw_id, str):
        raw_id = raw_id.strip()
    if raw_id not in (None, "") and not isinstance(raw_id, str):
        raise ValueError(f"identifier must be a UUID string, got {show_value(raw_id)}")
    try:  # raw_id is now None, "" or a str
        ident = uuid.UUID(raw_id) if isinstance(raw_id, str) and raw_id else identity(location)
    except ValueError:
        raise ValueError(f"identifier {show_value(raw_id)} is not a UUID") from None

    notes: list[str] = []
    metadata: JSONObject = {"url": location if given_url is None else normalise_url(given_url)}
    extra: JSONObject = {}
    for key, value in row.items():
        if key in IGNORED_COLUMNS or key == "url" or value is None or value == "":
            continue
        if key in CATALOG_COLUMNS:
            metadata[key] = _capped(key, clean_json(as_text(key, value), key, notes), notes)
        elif key in INT_COLUMNS:
            metadata[key] = as_int(key, value)
        elif key in BOOL_COLUMNS:
            metadata[key] = _as_bool(key, value)
        elif key in JSON_COLUMNS:
            metadata[key] = _parse_json_field(key, value)
        else:
            extra[key] = value  # unknown columns are kept, in meta_data
    meta_data = metadata.get("meta_data")
    if meta_data is not None and not isinstance(meta_data, dict):
        raise ValueError(f"column meta_data must be a JSON object, got {show_value(meta_data)}")
    if extra:
        metadata["meta_data"] = {**extra, **(meta_data or {})}
    metadata["tags"] = _normalise_tags(metadata.get("tags"))
    for key in JSON_COLUMNS:
        if metadata.get(key) is not None:
            metadata[key] = clean_json(metadata[key], key, notes)
    derived: frozenset[str] = frozenset()
    if not metadata.get("title"):
        stem = Path(unquote(urlsplit(location).path)).stem
        metadata["title"] = clean_json(stem, "title", [])[: CATALOG_COLUMNS["title"]] or None
        derived = frozenset({"title"})
    return SourceItem(ident, location, metadata, origin=origin, warnings=tuple(notes), derived=derived)


def _capped(name: str, text: str, notes: list[str]) -> str | None:
    """Text cut to its column's length (with a note); over-long URLs are dropped, not cut."""
    limit = CATALOG_COLUMNS[name]
    if len(text) <= limit:
        return text
    if name in URL_COLUMNS:
        notes.append(f"{name} dropped: {len(text):,} characters, over the column's {limit:,}")
        return None
    notes.append(f"{name} truncated from {len(text):,} to {limit:,} characters")
    return text[:limit]


def manifest_kind(path: Path) -> str:
    """The manifest's kind by its extension, "jsonl" or "csv"; a CcvecError saying what to do otherwise."""
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if path.suffix.lower() in (".csv", ".tsv"):
        return "csv"
    if path.suffix.lower() == ".parquet":  # an Openverse-style dump: the Spark job reads those
        raise CcvecError(
            f"{display_path(path)}: `ccvec load` reads .csv, .tsv or .jsonl manifests; for a Parquet "
            f"catalog dump run `ccvec spark features {display_path(path)} --out DIR`, then `ccvec load DIR`"
        )
    raise CcvecError(f"{display_path(path)}: a manifest must be .csv, .tsv or .jsonl")


def read_manifest(path: Path, remote_only: bool = False) -> Iterator[SourceItem | BadRow]:
    """Rows of a CSV or JSON Lines manifest; paths resolve relative to the manifest's folder.
    Each row is parsed and checked on its own: a bad row becomes a BadRow, never an exception.
    A repeated identifier keeps its first row; the later ones are reported. The kind and a CSV
    header are checked now, so a file that cannot serve is refused before any other work."""
    rows = jsonl_rows(path) if manifest_kind(path) == "jsonl" else csv_rows(path, _manifest_header)
    first = next(rows, None)  # a CSV reads (and checks) its header here
    return _manifest_items(path, itertools.chain([] if first is None else [first], rows), remote_only)


def _manifest_items(
    path: Path, rows: Iterator[tuple[int, JSONObject | str]], remote_only: bool
) -> Iterator[SourceItem | BadRow]:
    base = path.resolve().parent
    seen: dict[uuid.UUID, int] = {}
    for line, row in rows:
        where = f"{display_path(path)}:{line}"
        if isinstance(row, str):
            yield BadRow(where, row)
            continue
        try:
            item = row_to_item(row, base, where, remote_only)
        except RecursionError:
            yield BadRow(where, "nested too deeply")
            continue
        except ValueError as exc:
            yield BadRow(where, clean_text(str(exc))[0])
            continue
        first = seen.setdefault(item.identifier, line)
        if first != line:
            yield BadRow(where, f"duplicate identifier {item.identifier}: line {first} is kept")
            continue
        yield item


def _manifest_header(columns: set[str]) -> str | None:
    return None if {"path", "url"} & columns else "the header must name a 'path' or 'url' column"


def csv_rows(
    path: Path, check_header: Callable[[set[str]], str | None]
) -> Iterator[tuple[int, JSONObject | str]]:
    """(line, row) per CSV record, or (line, reason) for a record that cannot be a row. Invalid
    UTF-8 is kept as surrogate escapes (a file name's bytes survive; text fields get U+FFFD).
    `check_header` gets the lower-cased column names and returns what is wrong with them, if
    anything: a header that cannot serve stops the file with one line, not one reason per row."""
    csv.field_size_limit(CSV_FIELD_LIMIT)
    with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as f:
        reader = csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        try:
            fieldnames = reader.fieldnames
        except csv.Error as exc:
            raise CcvecError(f"{display_path(path)}: unreadable CSV header: {exc}") from exc
        if not fieldnames:
            raise CcvecError(f"{display_path(path)}: the file is empty: the first line must be a header")
        names = [h.strip().lower() for h in fieldnames]
        twice = sorted({name for name in names if name and names.count(name) > 1})
        if twice:  # which one holds the value would be a guess (DictReader keeps the last)
            raise CcvecError(
                f"{display_path(path)}: the header names column {twice[0]!r} more than once: keep one"
            )
        problem = check_header(set(names))
        if problem:
            raise CcvecError(f"{display_path(path)}: {problem}")
        while True:
            before = reader.reader.line_num  # DictReader's own count stops at errors
            start = before + 1  # a record's first line (quoted fields may span lines)
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, f"unreadable CSV record: {exc}"
                if reader.reader.line_num == before:  # no progress: stop rather than loop
                    return
                continue
            if None in row:
                yield start, f"row has {len(row) - 1 + len(row[None])} fields, header has {len(row) - 1}"
                continue
            missing = sum(value is None for value in row.values())
            if missing:
                yield start, f"row has {len(row) - missing} fields, header has {len(row)}"
                continue
            yield start, row


def jsonl_rows(path: Path) -> Iterator[tuple[int, JSONObject | str]]:
    """(line number, object) per non-empty line, or (line number, reason) for a bad line."""
    with open(path, encoding="utf-8-sig", errors="surrogateescape") as f:  # a BOM (Windows editors) is no row
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, f"not valid JSON: {exc.msg.removesuffix(' at')} at column {exc.colno}"
                continue
            except (ValueError, RecursionError) as exc:  # int too long, nesting too deep
                yield number, f"not usable JSON: {str(exc)[:120] or type(exc).__name__}"
                continue
            yield number, row if isinstance(row, dict) else "a JSON Lines row must be an object"


def single_file(path: Path) -> Iterator[SourceItem | BadRow]:
    """One image file given by name (`ccvec load photo.jpg`)."""
    try:
        location = file_location(path)
    except ValueError as exc:
        yield BadRow(display_path(path), str(exc), "fetch")
        return
    metadata, notes = _file_metadata(path, location)
    yield SourceItem(identity(location), location, metadata, warnings=tuple(notes))


def open_source(source: str, remote_only: bool = False) -> Iterator[SourceItem | BadRow]:
    """A folder, a manifest file or one image file, as one stream of items."""
    if not source.strip():
        raise CcvecError("no source given: name a folder of images or a manifest file")
    path = Path(source).expanduser()
    try:
        is_dir = path.is_dir()
    except (OSError, ValueError) as exc:  # name too long, NUL in the name
        raise CcvecError(f"{display_path(path)}: {getattr(exc, 'strerror', None) or exc}") from None
    if is_dir:
        if remote_only:
            raise CcvecError(f"{display_path(path)}: --remote-only loads manifests of URLs, not folders")
        return scan_directory(path)
    problem = not_a_regular_file(path)
    if problem == "file not found":
        raise CcvecError(f"{display_path(path)}: no such folder or manifest file")
    if problem:
        raise CcvecError(f"{display_path(path)}: {problem}")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        if remote_only:
            raise CcvecError(f"{display_path(path)}: --remote-only loads manifests of URLs, not files")
        return single_file(path)
    return read_manifest(path, remote_only)  # checks the kind and header now, not after a model conversion
