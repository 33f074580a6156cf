"""Near-duplicate detection quality on Copydays-style edits: pHash, embeddings, and both.

    python bench/neardup.py [DIR] [--radius 8] [--cosine 0.9]

DIR (default ../shared/data/photos) holds originals. For each, the script writes 15 edited copies
(resize x0.5/x0.25, JPEG quality 30/50/75, crops of 5/10/20 %, brightness, contrast, a text
overlay, a logo overlay, horizontal flip, 90° rotation, greyscale), loads originals then edits with
`ccvec load` into a fresh database, and reports for every edit the precision and recall of
duplicate pairs found by
  (a) pHash Hamming distance <= radius,
  (b) embedding cosine similarity >= threshold,
  (c) ccvec's rule: pHash <= radius, or pHash <= loose radius and cosine >= threshold.
A pair is correct when both images come from the same original. Recall for an edit is the share of
(original, edited copy) pairs found. Precision is the share of found pairs involving that edit's
copies that are correct. Finally it runs `ccvec dedup` at the defaults and checks the groups.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ccvec import db, migrate, neardup
from ccvec.load import LoadOptions, load
from ccvec.phash import from_signed
from ccvec.sources import IMAGE_EXTENSIONS

DEFAULT_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "photos"
MILD = ("resize_0.5", "resize_0.25", "jpeg_30", "jpeg_50", "jpeg_75", "crop_5", "crop_10", "brightness")


def edits(image):
    """name -> edited copy (RGB)."""
    from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

    w, h = image.size
    out = {
        "resize_0.5": image.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.LANCZOS),
        "resize_0.25": image.resize((max(1, w // 4), max(1, h // 4)), Image.Resampling.LANCZOS),
        "jpeg_30": ("jpeg", 30),
        "jpeg_50": ("jpeg", 50),
        "jpeg_75": ("jpeg", 75),
    }
    for pct in (5, 10, 20):  # crop pct % of the area away, keeping the centre
        keep = (1 - pct / 100) ** 0.5
        dw, dh = int(w * (1 - keep) / 2), int(h * (1 - keep) / 2)
        out[f"crop_{pct}"] = image.crop((dw, dh, w - dw, h - dh))
    out["brightness"] = ImageEnhance.Brightness(image).enhance(1.3)
    out["contrast"] = ImageEnhance.Contrast(image).enhance(1.4)
    text = image.copy()
    draw = ImageDraw.Draw(text)
    font = ImageFont.load_default(size=max(12, h // 14))
    draw.text(
        (w // 20, h - h // 6),
        "© 2026 example.org",
        fill=(255, 255, 255),
        font=font,
        stroke_width=2,
        stroke_fill=(0, 0, 0),
    )
    out["text"] = text
    logo = image.copy()
    size = max(8, w // 6)
    mark = Image.new("RGB", (size, size), (200, 30, 30))
    ImageDraw.Draw(mark).ellipse((size // 5, size // 5, size * 4 // 5, size * 4 // 5), fill=(255, 255, 255))
    logo.paste(mark, (w - size - w // 30, h // 30))
    out["logo"] = logo
    out["flip"] = ImageOps.mirror(image)
    out["rot90"] = image.transpose(Image.Transpose.ROTATE_90)
    out["grey"] = ImageOps.grayscale(image).convert("RGB")
    return out


def write_dataset(originals: list[Path], root: Path) -> None:
    from PIL import Image

    for i, path in enumerate(originals):
        image = Image.open(path).convert("RGB")
        image.save(root / "originals" / f"{i:04d}.png")
        for name, edited in edits(image).items():
            target = root / "edits" / name
            target.mkdir(parents=True, exist_ok=True)
            if isinstance(edited, tuple):
                image.save(target / f"{i:04d}.jpg", "JPEG", quality=edited[1])
            else:
                edited.save(target / f"{i:04d}.png")


def fetch(conn) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(kind per image, source index per image, pHashes, embeddings)."""
    rows = conn.execute(
        "SELECT i.url, f.phash, e.embedding FROM ccvec.image i JOIN ccvec.image_feature f USING (identifier) "
        "JOIN ccvec.image_embedding e USING (identifier) ORDER BY i.url"
    ).fetchall()
    kinds, sources, hashes, vectors = [], [], [], []
    for url, phash, vector in rows:
        parts = url.split("/")
        kinds.append("original" if parts[-2] == "originals" else parts[-2])
        sources.append(int(parts[-1].split(".")[0]))
        hashes.append(from_signed(phash))
        vectors.append(vector.to_numpy().astype(np.float32))
    return kinds, np.array(sources), np.array(hashes, dtype=np.uint64), np.stack(vectors)


def pair_matrices(hashes: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    distance = np.bitwise_count(hashes[:, None] ^ hashes[None, :]).astype(np.int8)
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return distance, vectors @ vectors.T


def scores(kinds, sources, found: np.ndarray) -> dict[str, tuple[float, float]]:
    """edit -> (precision, recall) of duplicate pairs involving that edit's copies."""
    kinds = np.array(kinds)
    same = sources[:, None] == sources[None, :]
    np.fill_diagonal(found, False)
    originals = kinds == "original"
    out = {}
    for kind in sorted(set(kinds) - {"original"}, key=lambda k: (k not in MILD, k)):
        rows = kinds == kind
        hits = found[rows]
        precision = (hits & same[rows]).sum() / max(hits.sum(), 1)
        recall = (found[rows][:, originals] & same[rows][:, originals]).sum() / rows.sum()
        out[kind] = (float(precision), float(recall))
    between = found[np.ix_(originals, originals)]
    out["original~original (false pairs)"] = (float(between.sum() // 2), float("nan"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--radius", type=int, default=neardup.DEFAULT_RADIUS)
    parser.add_argument("--loose-radius", type=int, default=16)
    parser.add_argument("--cosine", type=float, default=0.9)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N originals")
    args = parser.parse_args()
    originals = sorted(p for p in args.folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    originals = originals[: args.limit] if args.limit else originals
    if not originals:
        parser.error(f"no images in {args.folder}")

    work = Path(tempfile.mkdtemp(prefix="ccvec-neardup-"))
    os.environ["CCVEC_HOME"] = str(work / "home")
    try:
        (work / "data" / "originals").mkdir(parents=True)
        print(f"writing 15 edits of {len(originals)} originals ...", flush=True)
        write_dataset(originals, work / "data")
        url = db.start_embedded(work / "home" / "pgdata")
        migrate.upgrade(url)
        os.environ["DATABASE_URL"] = url
        for part in ("originals", "edits"):  # originals first: older, so canonical on ties
            summary = load(str(work / "data" / part), LoadOptions())
            print(f"loaded {summary.loaded} {part} in {summary.seconds:.0f}s", flush=True)
        with db.connection(url) as conn:
            kinds, sources, hashes, vectors = fetch(conn)
            distance, cosine = pair_matrices(hashes, vectors)
            rules = {
                f"pHash <= {args.radius}": distance <= args.radius,
                f"cosine >= {args.cosine}": cosine >= args.cosine,
                f"pHash <= {args.radius} or (pHash <= {args.loose_radius} and cos >= {args.cosine})": (
                    (distance <= args.radius) | ((distance <= args.loose_radius) & (cosine >= args.cosine))
                ),
            }
            tables = {name: scores(kinds, sources, found.copy()) for name, found in rules.items()}
            print_tables(tables)
            sweep(kinds, sources, distance, cosine)
            rule_grid(kinds, sources, distance, cosine)
            check_dedup(conn, kinds, sources, args.radius, args.cosine)
        db.stop_embedded(work / "home" / "pgdata")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def print_tables(tables: dict) -> None:
    names = list(tables)
    print()
    print(f"{'edit':34s} " + " ".join(f"{'(' + 'abc'[i] + ') P':>8s} {'R':>6s}" for i in range(len(names))))
    for i, name in enumerate(names):
        print(f"  ({'abc'[i]}) {name}")
    for kind in tables[names[0]]:
        cells = []
        for name in names:
            p, r = tables[name][kind]
            cells.append(f"{p:8.0f} {'':>6s}" if np.isnan(r) else f"{p:8.3f} {r:6.3f}")
        print(f"{kind + (' *' if kind in MILD else ''):34s} " + " ".join(cells))
    print("* mild edit (the dedup defaults must catch these)")


def sweep(kinds, sources, distance, cosine) -> None:
    """Overall precision/recall on mild edits, and false original~original pairs, per radius."""
    kinds = np.array(kinds)
    same = sources[:, None] == sources[None, :]
    originals = kinds == "original"
    mild = np.isin(kinds, MILD)
    print(
        f"\n{'pHash radius':>12s} {'mild recall':>12s} {'all-edit recall':>16s} {'precision':>10s} "
        f"{'orig~orig pairs':>16s}"
    )
    for radius in (4, 6, 8, 10, 12, 14, 16):
        found = distance <= radius
        np.fill_diagonal(found, False)
        recall_mild = (found[np.ix_(mild, originals)] & same[np.ix_(mild, originals)]).sum() / mild.sum()
        edited = ~originals
        recall_all = (found[np.ix_(edited, originals)] & same[np.ix_(edited, originals)]).sum() / edited.sum()
        precision = (found & same).sum() / max(found.sum(), 1)
        false_orig = found[np.ix_(originals, originals)].sum() // 2
        print(f"{radius:12d} {recall_mild:12.3f} {recall_all:16.3f} {precision:10.3f} {false_orig:16d}")


def rule_grid(kinds, sources, distance, cosine) -> None:
    """The union rule `pHash <= R or cosine >= T`: worst mild-edit recall, precision, false pairs."""
    kinds = np.array(kinds)
    same = sources[:, None] == sources[None, :]
    originals = kinds == "original"
    print(
        f"\n{'rule':28s} {'worst mild recall':>18s} {'mild recall':>12s} {'all recall':>11s} "
        f"{'precision':>10s} {'orig~orig':>10s}"
    )
    for radius in (8, 10, 12):
        for threshold in (0.85, 0.9, 0.93, 0.95, 1.01):
            found = (distance <= radius) | (cosine >= threshold)
            np.fill_diagonal(found, False)
            per_kind = []
            for kind in MILD:
                rows = kinds == kind
                per_kind.append(
                    (found[np.ix_(rows, originals)] & same[np.ix_(rows, originals)]).sum() / rows.sum()
                )
            mild = np.isin(kinds, MILD)
            edited = ~originals
            mild_recall = (found[np.ix_(mild, originals)] & same[np.ix_(mild, originals)]).sum() / mild.sum()
            all_recall = (
                found[np.ix_(edited, originals)] & same[np.ix_(edited, originals)]
            ).sum() / edited.sum()
            precision = (found & same).sum() / max(found.sum(), 1)
            false_orig = found[np.ix_(originals, originals)].sum() // 2
            label = f"pHash <= {radius}" + (f" or cos >= {threshold}" if threshold <= 1 else "")
            print(
                f"{label:28s} {min(per_kind):18.3f} {mild_recall:12.3f} {all_recall:11.3f} "
                f"{precision:10.3f} {false_orig:10d}"
            )


def check_dedup(conn, kinds, sources, radius: int, cosine: float) -> None:
    """`ccvec dedup` at the defaults: mild edits grouped with their original, originals apart."""
    neardup.dedup(conn, radius=radius, cosine=cosine)
    rows = conn.execute(
        "SELECT i.url, d.group_id FROM ccvec.duplicate_member d JOIN ccvec.image i USING (identifier)"
    ).fetchall()
    group_of = {}
    for url, group in rows:
        parts = url.split("/")
        kind = "original" if parts[-2] == "originals" else parts[-2]
        group_of[(kind, int(parts[-1].split(".")[0]))] = group
    n = len(set(sources))
    together = {k: sum(group_of[(k, s)] == group_of[("original", s)] for s in range(n)) for k in MILD}
    merged_originals = n - len({group_of[("original", s)] for s in range(n)})
    print(f"\nccvec dedup --radius {radius} --cosine {cosine}: edits grouped with their original")
    for kind, count in together.items():
        print(f"  {kind:12s} {count}/{n}")
    print(f"  originals sharing a group with another original: {merged_originals}")
    missed = [f"{k}/{s:04d}" for k in MILD for s in range(n) if group_of[(k, s)] != group_of[("original", s)]]
    print(f"  mild edits not with their original: {', '.join(missed) or 'none'}")


if __name__ == "__main__":
    main()
