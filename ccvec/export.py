"""What people look at: clusters as imagecluster-style folders, and contact sheets.

Folders follow imagecluster's layout, `cluster_with_N/cluster_i/`, where N is the cluster size,
holding symlinks (or copies) of the member files. A contact sheet is one PNG per cluster with
thumbnails in a grid and captions, for the largest clusters.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg
from PIL import Image, ImageDraw, ImageFont, ImageOps

from ccvec.errors import CcvecError
from ccvec.sources import local_path

THUMB = 160
COLUMNS = 6


def cluster_files(conn: psycopg.Connection, run_id: int, min_size: int) -> dict[int, list[tuple[Path, str]]]:
    """cluster -> [(local file, caption)] for clusters of at least min_size members."""
    rows = conn.execute(
        "SELECT m.cluster, c.url, coalesce(c.title, '') FROM ccvec.cluster_member m "
        "JOIN ccvec.catalog c ON c.identifier = m.identifier "
        "WHERE m.run_id = %s AND m.cluster IN (SELECT cluster FROM ccvec.cluster_member "
        "  WHERE run_id = %s GROUP BY cluster HAVING count(*) >= %s) "
        "ORDER BY m.cluster, c.url",
        [run_id, run_id, min_size],
    ).fetchall()
    out: dict[int, list[tuple[Path, str]]] = {}
    for cluster, url, title in rows:
        path = local_path(url) if url else None
        if path is not None and path.exists():
            out.setdefault(cluster, []).append((path, title))
    return out


def export_folders(clusters: dict[int, list[tuple[Path, str]]], target: Path, copy: bool = False) -> int:
    """Write cluster_with_N/cluster_i/ folders; returns the number of files written."""
    if target.exists() and any(target.iterdir()):
        raise CcvecError(f"{target} is not empty: choose a new folder")
    written = 0
    for cluster, members in clusters.items():
        folder = target / f"cluster_with_{len(members)}" / f"cluster_{cluster}"
        folder.mkdir(parents=True, exist_ok=True)
        used: set[str] = set()
        for path, _ in members:
            name = path.name if path.name not in used else f"{path.stem}_{len(used)}{path.suffix}"
            used.add(name)
            if copy:
                shutil.copy2(path, folder / name)
            else:
                os.symlink(path.resolve(), folder / name)
            written += 1
    return written


def contact_sheet(cluster: int, members: list[tuple[Path, str]], limit: int = 36) -> Image.Image:
    """Thumbnails of a cluster in a grid, each captioned with its title or file name."""
    shown = members[:limit]
    rows = -(-len(shown) // COLUMNS)
    caption_h = 18
    header = 28
    sheet = Image.new("RGB", (COLUMNS * THUMB, header + rows * (THUMB + caption_h)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=13)
    more = f" (first {limit} shown)" if len(members) > limit else ""
    draw.text((6, 6), f"cluster {cluster}: {len(members)} images{more}", fill="black", font=font)
    for i, (path, title) in enumerate(shown):
        x, y = (i % COLUMNS) * THUMB, header + (i // COLUMNS) * (THUMB + caption_h)
        try:
            with Image.open(path) as image:
                thumb = ImageOps.contain(
                    ImageOps.exif_transpose(image).convert("RGB"), (THUMB - 8, THUMB - 8)
                )
            sheet.paste(thumb, (x + (THUMB - thumb.width) // 2, y + (THUMB - thumb.height) // 2))
        except OSError:
            draw.rectangle((x + 4, y + 4, x + THUMB - 4, y + THUMB - 4), outline="red")
        draw.text((x + 4, y + THUMB), _shorten(title or path.stem, 22), fill="black", font=font)
    return sheet


def _shorten(text: str, width: int) -> str:
    """Keep both ends: file names often differ only at the end."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return f"{text[:head]}…{text[-(width - 1 - head) :]}"


def export_sheets(clusters: dict[int, list[tuple[Path, str]]], target: Path, count: int) -> list[Path]:
    """Contact sheets of the `count` largest clusters, as PNGs in target/contact_sheets/."""
    folder = target / "contact_sheets"
    folder.mkdir(parents=True, exist_ok=True)
    largest = sorted(clusters.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:count]
    paths = []
    for cluster, members in largest:
        path = folder / f"cluster_{cluster}_{len(members)}.png"
        contact_sheet(cluster, members).save(path)
        paths.append(path)
    return paths
