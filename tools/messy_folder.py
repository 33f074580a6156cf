"""Build the folder a person points ccvec at, as phones, cameras, NAS boxes and backup disks leave it.

    .venv/bin/python -m tools.messy_folder ../shared/data/photos /tmp/messy
    .venv/bin/ccvec run /tmp/messy --out /tmp/messy-report

Copies PHOTOS (any folder of JPEGs) under messy/photos and adds, made from two of its photos:
orientation tags 3/6/8, CMYK, 16-bit, I, F, palette+tRNS, LA, half-transparent RGBA and 1-bit images,
animated GIF/WebP/APNG, a multi-page TIFF, AVIF, a HEIC header, SVG, PDF and RAW files, 1x1,
20000x20 and 20x20000 images, a truncated progressive JPEG, a PNG with a bad CRC, trailing garbage,
large EXIF and ICC blocks, hostile file names (newline, tab, escape, invalid UTF-8, leading dash,
255 bytes, case and NFC/NFD twins), hidden and NAS system folders, symlinks (file, folder, loop,
dangling), a hard link, a FIFO, a socket and empty files. docs/reliability.md says what each gets.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import sys
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageDraw


def arrow(size: tuple[int, int] = (160, 120)) -> Image.Image:
    """An asymmetric picture (red band on top, an arrow pointing up): rotation shows at a glance."""
    im = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(im)
    w, h = size
    d.rectangle((0, 0, w, h // 3), fill=(220, 30, 30))
    d.polygon([(w // 2, 10), (w // 2 - 30, 60), (w // 2 + 30, 60)], fill=(20, 20, 200))
    d.rectangle((w // 2 - 8, 60, w // 2 + 8, h - 5), fill=(20, 20, 200))
    return im


def modes(base: Image.Image, odd: Path) -> None:
    for tag, op in {
        3: Image.Transpose.ROTATE_180,
        6: Image.Transpose.ROTATE_90,
        8: Image.Transpose.ROTATE_270,
    }.items():
        exif = Image.Exif()
        exif[0x0112] = tag  # stored sideways: applying the tag makes it upright again
        base.transpose(op).save(odd / f"orient{tag}.jpg", exif=exif, quality=90)
    base.convert("CMYK").save(odd / "cmyk_adobe.jpg", quality=90)  # Pillow writes Adobe's marker
    grey16 = np.asarray(base.convert("L"), np.uint16) * 257
    Image.fromarray(grey16).save(odd / "grey16.png")
    Image.fromarray(grey16).save(odd / "grey16.tif")
    Image.fromarray(grey16.astype(np.int32)).save(odd / "modeI.tif")
    Image.fromarray(np.asarray(base.convert("L"), np.float32) / 255).save(odd / "modeF.tif")
    base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(
        odd / "palette_trns.png", transparency=0
    )
    base.convert("LA").save(odd / "la.png")
    rgba = np.asarray(base.convert("RGBA")).copy()
    rgba[:, : rgba.shape[1] // 2] = 0  # left half transparent, black underneath
    Image.fromarray(rgba).save(odd / "rgba_half_transparent.png")
    base.convert("1").save(odd / "onebit.png")
    base.convert("1").save(odd / "onebit.tif")


def containers(base: Image.Image, other: Image.Image, odd: Path) -> None:
    frames = [base.resize((120, 90)), other.resize((120, 90))]
    for name in ("anim.gif", "anim.webp", "anim.png", "multipage.tif"):
        frames[0].save(odd / name, save_all=True, append_images=frames[1:], duration=100, loop=0)
    base.save(odd / "photo.avif")
    heic = (24).to_bytes(4, "big") + b"ftypheic" + bytes(4) + b"mif1heic" + bytes(200)
    (odd / "iphone.heic").write_bytes(heic)  # the header of one: Pillow has no HEVC decoder
    (odd / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>')
    base.save(odd / "scan.pdf")
    (odd / "IMG_0001.CR2").write_bytes(b"II*\x00\x10\x00\x00\x00CR\x02\x00" + bytes(500))
    (odd / "DSC_0001.NEF").write_bytes(b"MM\x00*\x00\x00\x00\x08" + bytes(500))
    Image.new("RGB", (1, 1), (10, 200, 30)).save(odd / "one_pixel.png")
    Image.new("RGB", (20000, 20), (10, 100, 200)).save(odd / "panorama.png")
    Image.new("RGB", (20, 20000), (200, 100, 20)).save(odd / "strip.png")


def damage(base: Image.Image, other: Image.Image, odd: Path) -> None:
    buffer = io.BytesIO()
    base.save(buffer, "JPEG", progressive=True, quality=90)
    (odd / "progressive_truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    buffer = io.BytesIO()
    other.resize((100, 100)).save(buffer, "PNG")
    png = bytearray(buffer.getvalue())
    png[43] ^= 0xFF  # a byte of the image data: its chunk's CRC no longer matches
    (odd / "bad_crc.png").write_bytes(bytes(png))
    buffer = io.BytesIO()
    other.resize((100, 100)).save(buffer, "JPEG")
    (odd / "trailing_garbage.jpg").write_bytes(buffer.getvalue() + bytes(range(256)) * 20)
    exif = Image.Exif()
    exif[0x010E] = "x" * 60000  # a JPEG's EXIF segment holds at most 64 kB
    base.save(odd / "big_exif.jpg", exif=exif)
    exif[0x010E] = "x" * 1_000_000
    base.save(odd / "exif_1mb.png", exif=exif.tobytes())
    base.save(odd / "icc.jpg", icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def names(folder: Path) -> None:
    folder.mkdir()
    hostile = [
        "new\nline.jpg",
        "tab\there.jpg",
        "-leading-dash.jpg",
        "x" * 251 + ".jpg",
        "Case.jpg",
        "case.jpg",
        unicodedata.normalize("NFC", "café.jpg"),
        unicodedata.normalize("NFD", "café.jpg"),
    ]
    for i, name in enumerate(hostile):
        arrow().rotate(i * 3).save(folder / name)
    arrow((100, 100)).save(os.fsdecode(os.path.join(os.fsencode(folder), b"latin1-\xe9t\xe9.jpg")))
    (folder / "bad\nname.jpg").write_bytes(b"not a jpeg at all")
    (folder / "bad\x1b[31mred.jpg").write_bytes(b"not a jpeg either")


def structure(out: Path, small: Image.Image) -> None:
    for hidden in (
        ".thumbnails/a.jpg",
        ".git/objects/b.jpg",
        "@eaDir/IMG_0001.JPG/SYNOPHOTO_THUMB_XL.jpg",
        "#recycle/old.jpg",
        "$RECYCLE.BIN/S-1-5/deleted.jpg",
        "System Volume Information/x.jpg",
    ):
        (out / hidden).parent.mkdir(parents=True, exist_ok=True)
        small.save(out / hidden)
    (out / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(100))
    (out / "._IMG_0001.JPG").write_bytes(b"\x00\x05\x16\x07" + bytes(100))
    (out / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + bytes(100))
    links = out / "links"
    links.mkdir()
    target = next((out / "photos").rglob("*.jpg"))
    os.symlink(target, links / "link_to_a_photo.jpg")
    os.symlink(target.parent, links / "linked_folder")
    os.symlink(links / "loop_b.jpg", links / "loop_a.jpg")
    os.symlink(links / "loop_a.jpg", links / "loop_b.jpg")
    os.symlink(links, links / "self_dir")
    os.symlink(out / "nowhere.jpg", links / "dangling.jpg")
    os.link(target, links / "hardlink.jpg")
    os.mkfifo(links / "fifo.jpg")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(links / "sock.jpg"))
    (links / "zero.jpg").write_bytes(b"")


def main(photos: Path, out: Path) -> None:
    out = out.resolve()
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(photos, out / "photos")
    jpegs = sorted((out / "photos").rglob("*.jpg"))
    base = Image.open(jpegs[0]).convert("RGB")
    other = Image.open(jpegs[1]).convert("RGB")
    odd = out / "odd"
    odd.mkdir()
    modes(base, odd)
    containers(base, other, odd)
    damage(base, other, odd)
    names(out / "names")
    structure(out, base.resize((80, 60)))
    print(f"{out}: {sum(1 for _ in out.rglob('*'))} entries")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m tools.messy_folder PHOTOS OUT")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
