"""A third labelled collection, from photos the defaults were never tuned on: GCompris's pictures.

    apt-get download gcompris-qt-data             # Debian's package (no install needed)
    python bench/gcompris.py gcompris-qt-data_*.deb OUT/
    python bench/clusters.py ../shared/data --extra OUT/

Debian's `gcompris-qt-data` ships the educational suite's pictures inside Qt resource files
(`usr/share/gcompris-qt/rcc/*.rcc`). This script unpacks the .deb with `dpkg-deb -x`, reads the
resource files (Qt's documented binary format: a tree of 22-byte nodes, UTF-16 names, zlib-
compressed data), and writes the photographs of six picture sets into OUT/ with a manifest.csv in
the shared collections' columns: path, coarse (the set: fish, monument, renewable energy, tool,
animal; "others" carries no label), fine (a sub-set where the suite has one, e.g. a monument's
country). Drawings (SVG), puzzle pieces (the paintings activity) and spot-the-difference pairs are
left out: they are not a collection a user would cluster. The pictures keep their own licences
(see the package's copyright file); they are for benchmarking here, not redistributed.
"""

from __future__ import annotations

import argparse
import csv
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

RCC = Path("usr/share/gcompris-qt/rcc")
ACTIVITIES = "gcompris/src/activities"
# (resource file, folder inside it, coarse label, fine label: "" or "folder" for the sub-folder name)
SETS = [
    ("categorization.rcc", "categorization/resource/images/fishes", "fish", ""),
    ("categorization.rcc", "categorization/resource/images/monuments", "monument", ""),
    ("categorization.rcc", "categorization/resource/images/renewable", "renewable energy", ""),
    ("categorization.rcc", "categorization/resource/images/tools", "tool", ""),
    ("categorization.rcc", "categorization/resource/images/others", "", ""),
    ("explore_monuments.rcc", "explore_monuments/resource", "monument", "folder"),
    ("explore_farm_animals.rcc", "explore_farm_animals/resource/animals", "animal", "farm"),
    ("explore_world_animals.rcc", "explore_world_animals/resource/animals", "animal", "world"),
]
COMPRESSED, DIRECTORY, ZSTD = 0x01, 0x02, 0x04


def rcc_files(blob: bytes) -> dict[str, bytes]:
    """Every file in a Qt binary resource (format 2 or 3), by its path inside the resource."""
    if blob[:4] != b"qres":
        raise ValueError("not a Qt resource file")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    node_size = 22 if version >= 2 else 14

    def name(offset: int) -> str:
        (length,) = struct.unpack(">H", blob[names + offset : names + offset + 2])
        start = names + offset + 6  # length, then a 4-byte hash, then UTF-16BE
        return blob[start : start + 2 * length].decode("utf-16-be")

    files: dict[str, bytes] = {}

    def walk(index: int, prefix: str) -> None:
        at = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", blob[at : at + 6])
        path = f"{prefix}/{name(name_offset)}" if index else ""
        if flags & DIRECTORY:
            count, first = struct.unpack(">II", blob[at + 6 : at + 14])
            for child in range(first, first + count):
                walk(child, path)
            return
        if flags & ZSTD:
            raise ValueError(f"{path}: zstd-compressed resources are not supported")
        (offset,) = struct.unpack(">I", blob[at + 10 : at + 14])
        (size,) = struct.unpack(">I", blob[data + offset : data + offset + 4])
        body = blob[data + offset + 4 : data + offset + 4 + size]
        files[path.lstrip("/")] = zlib.decompress(body[4:]) if flags & COMPRESSED else body

    walk(0, "")
    return files


def extract(deb: Path, out: Path) -> list[dict[str, str]]:
    """Write the chosen pictures into `out` and return their manifest rows."""
    rows: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory() as unpacked:
        subprocess.run(["dpkg-deb", "-x", str(deb), unpacked], check=True)
        resources: dict[str, dict[str, bytes]] = {}
        for rcc, folder, coarse, fine in SETS:
            files = resources.setdefault(rcc, rcc_files((Path(unpacked) / RCC / rcc).read_bytes()))
            root = f"{ACTIVITIES}/{folder}/"
            for path, body in sorted(files.items()):
                if not (path.startswith(root) and path.endswith(".webp")):
                    continue
                inner = path[len(root) :]
                sub = inner.split("/")[0] if "/" in inner else ""
                target = f"{coarse or 'others'}/{inner.replace('/', '__')}"
                (out / target).parent.mkdir(parents=True, exist_ok=True)
                (out / target).write_bytes(body)
                rows.append({"path": target, "coarse": coarse, "fine": sub if fine == "folder" else fine})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("deb", type=Path, help="gcompris-qt-data_*.deb (apt-get download gcompris-qt-data)")
    parser.add_argument("out", type=Path, help="folder to write the pictures and manifest.csv into")
    args = parser.parse_args()
    if not args.deb.is_file():
        parser.error(f"{args.deb}: no such file")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = extract(args.deb, args.out)
    with open(args.out / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "coarse", "fine"])
        writer.writeheader()
        writer.writerows(rows)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["coarse"] or "(no label)"] = counts.get(row["coarse"] or "(no label)", 0) + 1
    print(f"{len(rows)} pictures in {args.out}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
