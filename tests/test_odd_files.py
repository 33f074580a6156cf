"""The folder a person points ccvec at: what phones, cameras, NAS boxes and backup disks leave there.

Each test builds its files at test time and runs the real `ccvec` against the real embedded
PostgreSQL (with the tiny ONNX model), then looks at what the user gets: the terminal lines,
`ccvec errors`, the catalog rows and the report's thumbnails.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import psycopg
from PIL import Image

from ccvec.export import contact_sheet
from ccvec.report import thumb_path

from .images import photo
from .process import run_ccvec


def _grey16(size: tuple[int, int] = (96, 64)) -> Image.Image:
    """A 16-bit greyscale scan: a horizontal ramp over the whole 16-bit range."""
    ramp = np.linspace(0, 65535, size[0], dtype=np.float64)
    return Image.fromarray(np.tile(ramp, (size[1], 1)).astype(np.uint16))


def _half_transparent(size: tuple[int, int] = (96, 64)) -> Image.Image:
    """RGBA whose left half is fully transparent with black underneath (what editors leave)."""
    rgb = np.asarray(photo("coffee").convert("RGB").resize(size)).copy()
    alpha = np.full(size[::-1], 255, np.uint8)
    alpha[:, : size[0] // 2] = 0
    rgb[:, : size[0] // 2] = 0
    return Image.fromarray(np.dstack([rgb, alpha]))


def _thumbnail(out: Path, file: Path) -> Image.Image:
    sha = hashlib.sha256(file.read_bytes()).hexdigest()
    with Image.open(out / thumb_path(sha)) as image:
        return image.convert("RGBA")


def test_thumbnails_of_16_bit_float_and_transparent_images_look_like_the_image(
    conn: psycopg.Connection, database_url: str, tiny: str, tmp_path: Path
) -> None:
    """A 16-bit scan's report thumbnail was all white and a float TIFF's all black
    (`convert("RGB")` clips); contact sheets showed a transparent area black, where the embedder
    sees white."""
    folder = tmp_path / "scans"
    folder.mkdir()
    _grey16().save(folder / "scan16.png")
    _grey16().save(folder / "scan16.tif")
    ramp = np.tile(np.linspace(0.0, 1.0, 96, dtype=np.float32), (64, 1))
    Image.fromarray(ramp).save(folder / "float.tif")  # mode F, values 0..1
    photo("chelsea").convert("RGB").resize((96, 64)).save(folder / "cat.jpg")
    out = tmp_path / "report"
    result = run_ccvec(
        "run", str(folder), "--out", str(out), "--model", tiny, "--k", "2", database_url=database_url
    )
    assert result.returncode == 0, result.stderr
    for name in ("scan16.png", "scan16.tif", "float.tif"):
        grey = np.asarray(_thumbnail(out, folder / name).convert("L"), np.float64)
        left, right = grey[:, : grey.shape[1] // 4].mean(), grey[:, -grey.shape[1] // 4 :].mean()
        assert left < 80 and right > 175, (name, left, right)  # the ramp, not a white or black tile

    sheet = contact_sheet(0, [(_save(tmp_path / "half.png", _half_transparent()), "half")])
    cell = np.asarray(sheet.crop((20, 40, 60, 100)).convert("L"))  # inside the transparent half
    assert cell.min() > 240, cell.min()  # on white, as the embedder sees it (was black)
    sheet = contact_sheet(0, [(folder / "scan16.png", "scan")])
    row = np.asarray(sheet.convert("L"), np.float64)[80]
    assert row[10:40].mean() < 100 and row[120:150].mean() > 160  # the ramp (was white)


def _save(path: Path, image: Image.Image) -> Path:
    image.save(path)
    return path


def _heic_header() -> bytes:
    """The first bytes of an iPhone photo: an ISO-BMFF ftyp box of brand heic."""
    return (24).to_bytes(4, "big") + b"ftypheic" + b"\0\0\0\0" + b"mif1heic" + b"\0" * 300


def test_nas_and_system_folders_are_passed_over_and_said_and_odd_formats_named(
    conn: psycopg.Connection, database_url: str, tiny: str, tmp_path: Path
) -> None:
    """Synology's @eaDir holds a thumbnail of every photo: they loaded as images (near-duplicates of
    the real ones) and the folder named like a photo failed as 'is a directory'; recycle bins
    loaded what the person deleted. Hidden files and symlinked folders were passed over without a
    word; a symlink to a photo of the folder gave the photo its own name and path and made a first
    load say '1 already loaded'. RAW, SVG and PDF files were 'not an image file by its name' and a
    HEIC 'not an image Pillow can read'."""
    folder = tmp_path / "Photos"
    folder.mkdir()
    good = photo("chelsea").convert("RGB").resize((120, 80))
    good.save(folder / "IMG_0001.JPG")
    photo("coffee").convert("RGB").resize((120, 80)).save(folder / "IMG_0002.JPG")
    for hidden in (
        "@eaDir/IMG_0001.JPG/SYNOPHOTO_THUMB_XL.jpg",
        "#recycle/old.jpg",
        "$RECYCLE.BIN/S-1-5-21/$R1.jpg",
        "System Volume Information/x.jpg",
        ".thumbnails/normal/a.png",
        ".git/b.jpg",
    ):
        (folder / hidden).parent.mkdir(parents=True, exist_ok=True)
        good.resize((60, 40)).save(folder / hidden)
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1" + bytes(64))
    (folder / "._IMG_0001.JPG").write_bytes(b"\0\5\26\7" + bytes(64))
    (tmp_path / "elsewhere").mkdir()
    good.save(tmp_path / "elsewhere" / "linked.jpg")
    (folder / "2019").symlink_to(tmp_path / "elsewhere")  # said, not followed
    (folder / "0-favourite.jpg").symlink_to(folder / "IMG_0001.JPG")  # sorts first: was its title
    (folder / "IMG_0003.HEIC").write_bytes(_heic_header())
    (folder / "IMG_0004.CR2").write_bytes(b"II*\0\x10\0\0\0CR\2\0" + bytes(64))
    (folder / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    buffer = io.BytesIO()
    good.save(buffer, "PDF")
    (folder / "scan.pdf").write_bytes(buffer.getvalue())

    result = run_ccvec("run", str(folder), "--model", tiny, "--k", "1", database_url=database_url)
    assert result.returncode == 1, result.stderr  # the HEIC failed
    assert "load: 2 new, 0 already loaded, 1 failed" in result.stdout
    assert "10 entries passed over (hidden, system folders, symlinks): listed by" in result.stdout
    assert f"{folder / 'IMG_0003.HEIC'}: HEIC/HEIF image: format not supported" in result.stderr
    titles = {r[0] for r in conn.execute("SELECT title FROM ccvec.image")}
    assert titles == {"IMG_0001", "IMG_0002"}  # nothing from @eaDir, the recycle bins or dot folders

    listed = json.loads(run_ccvec("errors", "--format", "json", database_url=database_url).stdout)
    rows = {(row["stage"], row["source"], row["reason"]) for row in listed}
    for source, reason in (
        (folder / "@eaDir", "Synology's thumbnail and metadata folder: passed over, not searched"),
        (folder / "#recycle", "Synology's recycle bin: passed over, not searched"),
        (folder / "$RECYCLE.BIN", "Windows' recycle bin: passed over, not searched"),
        (folder / "System Volume Information", "a Windows system folder: passed over, not searched"),
        (
            folder,
            "4 hidden entries (names starting with '.': .git, .thumbnails, .DS_Store, ._IMG_0001.JPG) "
            "passed over, not searched",
        ),
        (
            folder / "IMG_0004.CR2",
            "camera RAW file (.CR2): not supported, skipped; export a JPEG or TIFF to include it",
        ),
        (folder / "2019", "symlink to a folder: not followed; give its target as a source to load it"),
        (
            folder / "0-favourite.jpg",
            f"symlink to {folder / 'IMG_0001.JPG'}, listed already: loaded once, under its target",
        ),
        (folder / "logo.svg", "vector drawing (.svg): not supported, skipped; no pixels to hash"),
        (
            folder / "scan.pdf",
            "PDF document (.pdf): not supported, skipped; export its pages as images to include them",
        ),
    ):
        assert ("skipped", str(source), reason) in rows, (source, listed)
    assert len(listed) == 11  # those 10 and the HEIC: no "is a directory" for @eaDir/IMG_0001.JPG


def test_a_folder_run_again_after_renames_moves_deletions_and_a_replaced_file_says_so(
    conn: psycopg.Connection, database_url: str, tiny: str, tmp_path: Path
) -> None:
    """A file's identifier is a uuid5 of its path: renamed or moved, it is a new image, and the row
    of the old path stays. The rerun said nothing about those rows: the report's duplicate page
    called the renamed file a copy whose kept original 'was loaded from other sources' (it was the
    same file, gone), and a file replaced under the same name was 'already loaded' with the old
    content's pHash and embedding, without a word."""
    folder = tmp_path / "phone"
    folder.mkdir()
    for name in ("chelsea", "coffee", "astronaut", "rocket", "camera"):
        photo(name).convert("RGB").resize((128, 96)).save(folder / f"{name}.jpg", quality=90)
    out = tmp_path / "report"
    args = ("run", str(folder), "--out", str(out), "--model", tiny, "--k", "2")
    first = run_ccvec(*args, database_url=database_url)
    assert first.returncode == 0, first.stderr
    assert "no longer there" not in first.stdout and "changed since" not in first.stdout
    before = {r[0]: r[1] for r in conn.execute("SELECT url, identifier FROM ccvec.image")}

    (folder / "chelsea.jpg").rename(folder / "chelsea_renamed.jpg")
    (folder / "sub").mkdir()
    (folder / "coffee.jpg").rename(folder / "sub" / "coffee.jpg")
    (folder / "astronaut.jpg").unlink()
    old_size = (folder / "rocket.jpg").stat().st_size
    photo("horse").convert("RGB").resize((128, 96)).save(folder / "rocket.jpg", quality=60)
    new_size = (folder / "rocket.jpg").stat().st_size

    second = run_ccvec(*args, database_url=database_url)
    assert second.returncode == 0, second.stderr
    assert "load: 2 new, 2 already loaded, 0 failed" in second.stdout
    assert (
        "3 images loaded before from this folder no longer there (renamed, moved or deleted): left out "
        "of the report, still in the database; 1 file changed since loaded, not read again (the stored "
        "pHash and embedding are the first content's): listed by `ccvec errors --run "
    ) in second.stdout, second.stdout
    listed = json.loads(run_ccvec("errors", "--format", "json", database_url=database_url).stdout)
    notes = {(row["source"], row["reason"]) for row in listed if row["stage"] == "warning"}
    gone = (
        "no longer there (renamed, moved or deleted since it was loaded): left out of this folder's report; "
        "its rows stay in the database, in its duplicate groups and clusters"
    )
    for name in ("astronaut.jpg", "chelsea.jpg", "coffee.jpg"):
        assert (str(folder / name), gone) in notes, notes
    changed = {reason for source, reason in notes if source == str(folder / "rocket.jpg")}
    assert changed == {
        f"changed since it was loaded ({old_size:,} → {new_size:,} bytes): its pHash, embedding and "
        "thumbnail are still the first content's (a path loaded once is not read again; a new name "
        "loads the new content)"
    }
    assert len(notes) == 4

    # identity as documented: the new paths are new identifiers, the old rows stay
    after = {r[0]: r[1] for r in conn.execute("SELECT url, identifier FROM ccvec.image")}
    assert set(before) < set(after) and len(after) == 7
    assert after[(folder / "chelsea_renamed.jpg").as_uri()] != before[(folder / "chelsea.jpg").as_uri()]
    # the report shows the files there now: the renamed and the moved photo are each a near-duplicate
    # of its gone path's row, a group with one member here, which is no group (it was shown, its
    # kept copy "not in this report")
    assert "report/index.html: 4 images" in second.stdout.replace(str(tmp_path) + "/", "")
    assert "0 duplicate groups" in second.stdout
    duplicates = (out / "duplicates-1.html").read_text()
    assert "No near-duplicates." in duplicates and "not in this report" not in duplicates
    overview = (out / "index.html").read_text()
    gone = "3 images loaded before from this folder are no longer there (renamed, moved or deleted)"
    assert gone + ": left out of this report" in overview
    errors_page = (out / "errors-1.html").read_text()  # the report lists the notes too
    assert errors_page.count("no longer there (renamed, moved or deleted") == 3
    assert "changed since it was loaded" in errors_page and "files gone or changed since" in errors_page

    third = run_ccvec("load", str(folder), "--model", tiny, database_url=database_url)  # load says it too
    assert third.returncode == 0, third.stderr
    assert "3 images loaded before from this folder no longer there" in third.stdout
    assert "1 file changed since loaded, not read again" in third.stdout


def test_a_folder_s_rows_are_a_range_of_the_file_url_index_not_a_catalog_scan(
    conn: psycopg.Connection,
) -> None:
    """Every `ccvec run DIR` reads the rows loaded from under DIR twice (the load's notes of files
    gone or changed, then the report's files to leave out): a scan of ccvec.image, minutes at a
    catalog's size for a folder of 40 files. ccvec.folder_images reads a range of the partial index
    of the rows loaded from files instead (the planner may use it: scans are made dearest here)."""
    conn.execute("SET LOCAL enable_seqscan = off")
    plan = "\n".join(
        r[0]
        for r in conn.execute("EXPLAIN SELECT * FROM ccvec.folder_images(%s)", ["file:///home/me/photos/"])
    )
    conn.rollback()
    assert "image_file_url_idx" in plan and "Index Cond" in plan, plan


def test_a_note_naming_hidden_files_is_printable_on_the_report_errors_page(
    conn: psycopg.Connection, database_url: str, tiny: str, tmp_path: Path
) -> None:
    """The notes of a person's folder name files in their reason, not only in their source (hidden
    entries, a symlink's target): the report's errors page showed that reason as stored, so a hidden
    file named with a right-to-left override reversed the rest of the note and a terminal
    sequence went through, where the same page shows every path printable."""
    folder = tmp_path / "Photos"
    folder.mkdir()
    photo("chelsea").convert("RGB").resize((120, 80)).save(folder / "IMG_0001.JPG")
    photo("coffee").convert("RGB").resize((120, 80)).save(folder / "IMG_0002.JPG")
    (folder / ".x\u202egpj.exe").write_bytes(b"MZ")
    (folder / ".\x1b[31mred").write_bytes(b"")
    out = tmp_path / "report"
    result = run_ccvec(
        "run", str(folder), "--out", str(out), "--model", tiny, "--k", "1", database_url=database_url
    )
    assert result.returncode == 0, result.stderr
    page = (out / "errors-1.html").read_text()
    assert "2 hidden entries" in page, page  # the note is on the page
    assert "\u202e" not in page and "\x1b" not in page
    assert ".x\\u202egpj.exe" in page and ".\\x1b[31mred" in page  # shown as escapes, as paths are


def test_a_file_replaced_since_it_was_loaded_gets_no_thumbnail_of_the_new_picture(
    conn: psycopg.Connection, database_url: str, tiny: str, tmp_path: Path
) -> None:
    """A file replaced under its name keeps the first content's pHash, embedding, group and cluster
    (the load's note says so, "thumbnail" too); a report written afterwards made its thumbnail from
    the new bytes, named by the old content: another picture, shown among the first one's
    neighbours. It now gets none (a placeholder), as `export-clusters` refuses such a file."""
    folder = tmp_path / "phone"
    folder.mkdir()
    for name in ("chelsea", "rocket"):
        photo(name).convert("RGB").resize((128, 96)).save(folder / f"{name}.jpg", quality=90)
    first = run_ccvec("run", str(folder), "--model", tiny, "--k", "1", database_url=database_url)
    assert first.returncode == 0, first.stderr
    loaded = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    photo("horse").convert("RGB").resize((128, 96)).save(folder / "rocket.jpg", quality=60)

    out = tmp_path / "report"
    args = ("run", str(folder), "--out", str(out), "--model", tiny, "--k", "1")
    second = run_ccvec(*args, database_url=database_url)
    assert second.returncode == 0, second.stderr
    assert "1 file changed since loaded" in second.stdout, second.stdout
    assert (out / thumb_path(loaded["chelsea.jpg"])).is_file()
    assert not (out / thumb_path(loaded["rocket.jpg"])).exists()  # not the horse under the rocket's name
