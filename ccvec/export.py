"""What people look at: clusters as imagecluster-style folders, and contact sheets.

Folders follow imagecluster's layout, `cluster_with_N/cluster_i/`, where N is the cluster size,
holding symlinks (or copies) of the member files; images no cluster holds go to `unclustered/`.
Each folder has a README with the cluster's label, and `labels.csv` beside them lists every folder
with its label, size, medoid and where the label came from; a label guessed from ImageNet classes
says "(guess)" in the README and on the contact sheet, as in the report. A contact sheet is one
PNG per cluster with thumbnails in a grid, captioned with the label, for the largest clusters.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psycopg
from PIL import Image, ImageDraw, ImageFont, ImageOps

from ccvec.decode import to_rgb
from ccvec.errors import CcvecError
from ccvec.fetch import FetchError, read_file
from ccvec.outdir import EXPORT, OutDir, check_writable
from ccvec.sources import display_path, local_path, not_a_regular_file, printable

THUMB = 160
COLUMNS = 6
MAX_EXPORT_BYTES = 1 << 30  # files are re-read to check they are still the loaded image


def cluster_files(
    conn: psycopg.Connection, run_id: int, min_size: int, left_out: list[str] | None = None
) -> dict[int, list[tuple[Path, str]]]:
    """cluster -> [(local file, caption)] for clusters of at least min_size members. Only regular
    files whose bytes are still the image that was loaded (same sha256) are exported: a catalog
    URL naming some other local file (`file:///etc/passwd`) exports nothing. The locations of the
    members left out (URLs, files moved or changed since loading) go to `left_out` when given."""
    rows = conn.execute("SELECT * FROM ccvec.export_cluster_files(%s, %s)", [run_id, min_size]).fetchall()
    out: dict[int, list[tuple[Path, str]]] = {}
    for cluster, url, title, sha256 in rows:
        path = loaded_file(url, sha256)
        if path is not None:
            out.setdefault(cluster, []).append((path, title))
        elif left_out is not None:
            left_out.append(url or "")
    return out


def loaded_file(url: str | None, sha256: bytes) -> Path | None:
    """The local file a catalog URL names, resolved, when its bytes are still the image loaded."""
    path = local_path(url) if url else None
    if path is None or not_a_regular_file(path) is not None:
        return None
    try:
        path = path.resolve()
        data = read_file(path, MAX_EXPORT_BYTES)
    except (OSError, RuntimeError, FetchError):
        return None
    return path if hashlib.sha256(data).digest() == bytes(sha256) else None


# cluster -> (label, medoid's local file (resolved), where the label came from: tags, classes, none)
Labels = dict[int, tuple[str, Path | None, str | None]]
GUESSED = "classes"  # a label from ImageNet classes: often wrong where ImageNet has no classes for it


def shown_label(label: str, source: str | None) -> str:
    """The label as people read it: one guessed from ImageNet classes says so, as in the report."""
    return f"{label} (guess)" if source == GUESSED else label


def cluster_labels(conn: psycopg.Connection, run_id: int) -> Labels:
    """cluster -> (label, medoid's local file, label source) from ccvec.cluster_label."""
    sources = {row[0]: row[4] for row in conn.execute("SELECT * FROM ccvec.cluster_run_labels(%s)", [run_id])}
    out: Labels = {}
    for cluster, label, url in conn.execute("SELECT * FROM ccvec.export_cluster_labels(%s)", [run_id]):
        path = local_path(url) if url else None
        out[cluster] = (label, path.resolve() if path is not None else None, sources.get(cluster))
    return out


class FolderWriter(Protocol):
    """Where a layout goes: OutDir (a report's, staged and tracked) or a new folder (Directory)."""

    def write_text(self, rel: str, text: str) -> None: ...
    def write_bytes(self, rel: str, data: bytes) -> None: ...
    def symlink(self, rel: str, target: Path) -> None: ...
    def copy(self, rel: str, source: Path) -> None: ...


@dataclass(frozen=True)
class Directory:
    """A new folder written directly; no file is ever overwritten."""

    root: Path

    def _new(self, rel: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_text(self, rel: str, text: str) -> None:
        with open(self._new(rel), "x", encoding="utf-8", newline="") as f:
            f.write(text)

    def write_bytes(self, rel: str, data: bytes) -> None:
        with open(self._new(rel), "xb") as f:
            f.write(data)

    def symlink(self, rel: str, target: Path) -> None:
        os.symlink(target, self._new(rel))

    def copy(self, rel: str, source: Path) -> None:
        with open(source, "rb") as src, open(self._new(rel), "xb") as out:
            shutil.copyfileobj(src, out)


@dataclass(frozen=True)
class Prefixed:
    """Another writer's files under a folder of it (a report's clusters/)."""

    inner: FolderWriter
    prefix: str

    def write_text(self, rel: str, text: str) -> None:
        self.inner.write_text(f"{self.prefix}/{rel}", text)

    def write_bytes(self, rel: str, data: bytes) -> None:
        self.inner.write_bytes(f"{self.prefix}/{rel}", data)

    def symlink(self, rel: str, target: Path) -> None:
        self.inner.symlink(f"{self.prefix}/{rel}", target)

    def copy(self, rel: str, source: Path) -> None:
        self.inner.copy(f"{self.prefix}/{rel}", source)


@dataclass(frozen=True)
class ClusterFiles:
    """A cluster's local files for the layout, its label and medoid (one of `files`, or None), and
    where the label came from (tags, classes or none)."""

    cluster: int
    label: str
    files: list[Path]
    medoid: Path | None = None
    source: str | None = None


def write_layout(clusters: list[ClusterFiles], alone: list[Path], out: FolderWriter, copy: bool) -> int:
    """imagecluster's cluster_with_N/cluster_i/ (N the files in it), images alone (singletons and
    `alone`) in unclustered/, a README naming each cluster and labels.csv listing every folder with
    its label and its medoid by the name the medoid has there; symlinks or copies. Names are
    unique within a folder (README is ccvec's own). Returns how many files it wrote."""
    placed = [(folder_of(c.cluster, len(c.files)), c) for c in clusters if c.files]
    used: dict[Path, set[str]] = {}
    rows: list[list[object]] = []
    written = 0

    def place(folder: Path, files: list[Path]) -> list[str]:
        nonlocal written
        taken = used.setdefault(folder, {_name_key("README")})
        # which of two clashing names keeps its own is decided by the paths, not by the order the
        # members came in (it differed between `run --out` and `export-clusters`)
        names = [""] * len(files)
        for i in sorted(range(len(files)), key=lambda i: os.fsencode(str(files[i]))):
            names[i] = _unique_name(files[i], taken)
        for path, name in zip(files, names, strict=True):
            (out.copy if copy else out.symlink)(f"{folder.as_posix()}/{name}", path)
        written += len(files)
        return names

    for folder, c in sorted(placed, key=lambda fc: (-len(fc[1].files), fc[1].cluster)):
        names = place(folder, c.files)
        # by its name here, as text (a file name's raw bytes replaced)
        medoid = display_path(Path(names[c.files.index(c.medoid)])) if c.medoid in c.files else ""
        # the label is catalog text (from tags): escaped, and never a spreadsheet formula
        rows.append([folder.as_posix(), c.cluster, len(c.files), inert(c.label), medoid, c.source or ""])
        if len(c.files) > 1:
            out.write_text(
                f"{folder.as_posix()}/README",
                _cluster_readme(c.cluster, c.label, len(c.files), medoid, c.source),
            )
    if alone:
        place(Path("unclustered"), alone)
    if any(folder == Path("unclustered") for folder in used):
        out.write_text("unclustered/README", _UNCLUSTERED_README)
    if rows:
        out.write_text("labels.csv", _labels_csv(rows))
    return written


def folder_of(cluster: int, size: int) -> Path:
    """imagecluster's layout for clusters; singletons together under unclustered/."""
    return Path("unclustered") if size == 1 else Path(f"cluster_with_{size}") / f"cluster_{cluster}"


def check_target(target: Path) -> None:
    """An export goes to a new or empty folder that can be created: never over existing files."""
    check_writable(target, "TARGET")
    if target.is_dir() and any(target.iterdir()):
        raise CcvecError(f"{target} is not empty: choose a new folder")


def open_export(target: Path) -> OutDir:
    """The folder of `ccvec export-clusters`: new, empty, or one an earlier export wrote, which is
    then refreshed in place (outdir: files it wrote replaced, those not written again removed).
    Refused: a folder with files ccvec did not write, or one `ccvec run` or `ccvec report` wrote."""
    return OutDir.open(target, "TARGET", EXPORT)


def export_folders(
    clusters: dict[int, list[tuple[Path, str]]],
    target: Path,
    copy: bool = False,
    labels: Labels | None = None,
) -> int:
    """Write the layout (write_layout) into `target`, a new or empty folder; returns the number of
    image files written. Nothing is ever overwritten."""
    check_target(target)
    target.mkdir(parents=True, exist_ok=True)
    return write_layout(cluster_groups(clusters, labels), [], Directory(target), copy)


def cluster_groups(clusters: dict[int, list[tuple[Path, str]]], labels: Labels | None) -> list[ClusterFiles]:
    """The clusters' files with their labels and medoids, as write_layout takes them."""
    labels = labels or {}
    groups = []
    for cluster, members in clusters.items():
        label, medoid, source = labels.get(cluster, (f"cluster {cluster}", None, None))
        groups.append(ClusterFiles(cluster, label, [path for path, _ in members], medoid, source))
    return groups


_UNCLUSTERED_README = (
    "Images alone here: in no cluster, or the only one of their cluster among these images (the rest\n"
    "may have come from other sources); labels.csv gives each one's cluster and label.\n"
)


def _cluster_readme(cluster: int, label: str, size: int, medoid: str, source: str | None = None) -> str:
    """The README of a cluster folder: its label (a guess from ImageNet classes says so) and
    representative image."""
    guess = (
        "The name is a guess from ImageNet classes (no tag is shared by enough of the images): often\n"
        "wrong on pictures ImageNet has no classes for.\n"
        if source == GUESSED
        else ""
    )
    return (  # label (from tags) and file name printable: `cat README` runs no terminal sequence
        f"cluster {cluster}: {printable(shown_label(label, source))}\n{guess}"
        f"{size} images; representative image (medoid): {printable(medoid)}\n"
    )


FORMULA_START = ("=", "+", "-", "@")  # what makes a spreadsheet read a cell as a formula (OWASP)


def inert(text: str) -> str:
    """Catalog text for a CSV people open in a spreadsheet: printable (no control characters), and
    a cell a spreadsheet would run as a formula (`=HYPERLINK(...)`, `@SUM(...)`, `+1+1`) starts
    with an apostrophe, which spreadsheets show as text (OWASP's CSV injection advice)."""
    shown = printable(text)
    return f"'{shown}" if shown.startswith(FORMULA_START) else shown


def _labels_csv(rows: list[list[object]]) -> str:
    """labels.csv beside the folders: folder, cluster, size, label, medoid (file name), and from
    (where the label came from: tags, classes (a guess) or none, as `ccvec clusters` says)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["folder", "cluster", "size", "label", "medoid", "from"])
    writer.writerows(rows)
    return out.getvalue()


def _unique_name(path: Path, used: set[str]) -> str:
    """A name for `path` in a folder whose names' keys (_name_key) are `used`: its own name, else
    with _1, _2... before the extension."""
    stem = path.stem if path.name not in ("", ".", "..") else "image"
    stem = stem.replace(os.sep, "_") or "image"
    name, n = _fitted(stem, path.suffix), 1
    while _name_key(name) in used:
        name, n = _fitted(stem, f"_{n}{path.suffix}"), n + 1
    used.add(_name_key(name))
    return name


NAME_MAX = 255  # bytes in a file name (Linux, macOS; Windows counts 255 UTF-16 units)


def _fitted(stem: str, tail: str) -> str:
    """stem + tail, the stem shortened until the name fits NAME_MAX bytes: a 254-byte name that
    needs `_1` would make the whole export fail with "File name too long"."""
    while len(os.fsencode(stem + tail)) > NAME_MAX and len(stem) > 1:
        stem = stem[:-1]
    return stem + tail


def _name_key(name: str) -> str:
    """What makes two names one file on the file systems a folder is copied to: macOS (APFS, HFS+)
    and Windows (NTFS, exFAT, FAT) ignore case, macOS ignores Unicode normalisation. `Case.jpg` and
    `case.jpg`, or `café.jpg` composed and decomposed, get names of their own even on Linux, where
    they could coexist: on those, one would replace the other (or the export would fail)."""
    return unicodedata.normalize("NFC", name).casefold()


def contact_sheet(
    cluster: int, members: list[tuple[Path, str]], limit: int = 36, label: str = ""
) -> Image.Image:
    """Thumbnails of a cluster in a grid, each captioned with its title or file name."""
    shown = members[:limit]
    rows = -(-len(shown) // COLUMNS)
    caption_h = 18
    header = 28
    sheet = Image.new("RGB", (COLUMNS * THUMB, header + rows * (THUMB + caption_h)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=13)
    more = f" (first {limit} shown)" if len(members) > limit else ""
    name = f"{label} (cluster {cluster})" if label else f"cluster {cluster}"
    draw.text((6, 6), printable(f"{name}: {len(members)} images{more}"), fill="black", font=font)
    for i, (path, title) in enumerate(shown):
        x, y = (i % COLUMNS) * THUMB, header + (i // COLUMNS) * (THUMB + caption_h)
        try:
            with Image.open(path) as image:
                # as the embedder sees it: transparency on white, 16-bit scaled (convert("RGB")
                # made a transparent area black and a 16-bit scan white)
                thumb = ImageOps.contain(to_rgb(ImageOps.exif_transpose(image)), (THUMB - 8, THUMB - 8))
            sheet.paste(thumb, (x + (THUMB - thumb.width) // 2, y + (THUMB - thumb.height) // 2))
        except OSError:
            draw.rectangle((x + 4, y + 4, x + THUMB - 4, y + THUMB - 4), outline="red")
        caption = _shorten(printable(title or path.stem), 22)  # one line: no newline from a title
        draw.text((x + 4, y + THUMB), caption, fill="black", font=font)
    return sheet


def _shorten(text: str, width: int) -> str:
    """Keep both ends: file names often differ only at the end."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return f"{text[:head]}…{text[-(width - 1 - head) :]}"


def contact_sheets(
    clusters: dict[int, list[tuple[Path, str]]], count: int, labels: Labels | None = None
) -> Iterator[tuple[str, Image.Image]]:
    """(file name, sheet) for the `count` largest clusters, and one of the unclustered images."""
    labels = labels or {}
    groups = [kv for kv in clusters.items() if len(kv[1]) > 1]
    largest = sorted(groups, key=lambda kv: (-len(kv[1]), kv[0]))[:count]
    for cluster, members in largest:
        label, _, source = labels.get(cluster, ("", None, None))
        yield (
            f"cluster_{cluster}_{len(members)}.png",
            contact_sheet(cluster, members, label=shown_label(label, source)),
        )
    alone = [m[0] for m in clusters.values() if len(m) == 1]
    if alone and count:
        yield f"unclustered_{len(alone)}.png", contact_sheet(-1, alone, label="unclustered")


def export_sheets(
    clusters: dict[int, list[tuple[Path, str]]], target: Path, count: int, labels: Labels | None = None
) -> list[Path]:
    """Contact sheets (write_sheets) as PNGs in target/contact_sheets/ of a plain folder."""
    return [target / rel for rel in write_sheets(clusters, Directory(target), count, labels)]


def write_sheets(
    clusters: dict[int, list[tuple[Path, str]]], out: FolderWriter, count: int, labels: Labels | None = None
) -> list[str]:
    """Contact sheets (contact_sheets()) as PNGs under contact_sheets/; their relative paths."""
    names = []
    for name, sheet in contact_sheets(clusters, count, labels):
        data = io.BytesIO()
        sheet.save(data, format="PNG")
        out.write_bytes(f"contact_sheets/{name}", data.getvalue())
        names.append(f"contact_sheets/{name}")
    return names
