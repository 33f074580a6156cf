"""Near-duplicate groups on edited copies: what `ccvec dedup` puts together, against the pair rule.

    python bench/neardup.py [DIR ...] [--work DIR] [--limit N]

Each DIR (default ../shared/data/photos and ../shared/data/stamps) holds originals. Every original
gets 17 edited copies (the 14 of issue 11, plus upscaling x2, a white border and a text watermark),
saved as a web re-upload would be (JPEG quality 90 unless the edit says otherwise). Originals are
loaded first, then the edits, with `ccvec load`, into one database per DIR; then `ccvec dedup` runs
at its defaults. Everything below is measured on the groups it makes, where every pair of images in
one group counts as found:

  precision      share of same-group pairs that come from one original
  recall, edit   share of originals whose edited copy ended in the original's group
  groups/orig.   distinct groups over an original and its 17 copies (1 is perfect)
  canonical      share of originals that are the canonical of their group

Beside them, in the same run: the pair rule without grouping (`Hamming <= 8 OR cosine >= 0.85`,
every pair it accepts counts), its connected components, and the grouping variants that were
measured to choose the default (computed in numpy on the same edges). `--work DIR` keeps the edited
images and the databases, so a second run skips writing and loading.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ccvec import db, migrate, neardup
from ccvec.load import LoadOptions, load
from ccvec.phash import from_signed
from ccvec.sources import IMAGE_EXTENSIONS

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
MILD = (
    "resize_jpeg",
    "jpeg_35",
    "crop_8",
    "brightness",
    "contrast",
    "saturation",
    "watermark_box",
    "rotate_3",
    "upscale_x2",
    "text_watermark",
)
HARD = ("flip", "crop_25", "rot90", "grey", "letterbox", "thumb_64", "white_border")
EDITS = MILD + HARD


def _crop_area(image, share: float):
    """Keep the centre, cutting `share` of the area away."""
    w, h = image.size
    keep = (1 - share) ** 0.5
    dw, dh = int(w * (1 - keep) / 2), int(h * (1 - keep) / 2)
    return image.crop((dw, dh, w - dw, h - dh))


def edits(image) -> dict[str, tuple[object, int]]:
    """name -> (edited RGB or L image, JPEG quality it is saved with)."""
    from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

    w, h = image.size
    out: dict[str, tuple[object, int]] = {}
    out["resize_jpeg"] = (image.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.LANCZOS), 75)
    out["jpeg_35"] = (image, 35)
    out["crop_8"] = (_crop_area(image, 0.08), 90)
    out["brightness"] = (ImageEnhance.Brightness(image).enhance(1.3), 90)
    out["contrast"] = (ImageEnhance.Contrast(image).enhance(1.4), 90)
    out["saturation"] = (ImageEnhance.Color(image).enhance(1.6), 90)
    box = image.copy()
    size = max(8, w // 6)
    mark = Image.new("RGB", (size, size), (200, 30, 30))
    ImageDraw.Draw(mark).ellipse((size // 5, size // 5, size * 4 // 5, size * 4 // 5), fill=(255, 255, 255))
    box.paste(mark, (w - size - w // 30, h // 30))
    out["watermark_box"] = (box, 90)
    out["rotate_3"] = (image.rotate(3, resample=Image.Resampling.BICUBIC), 90)
    out["upscale_x2"] = (image.resize((w * 2, h * 2), Image.Resampling.BICUBIC), 90)
    text = image.copy()
    font = ImageFont.load_default(size=max(12, h // 14))
    ImageDraw.Draw(text).text(
        (w // 20, h - h // 6),
        "© 2026 example.org",
        fill=(255, 255, 255),
        font=font,
        stroke_width=2,
        stroke_fill=(0, 0, 0),
    )
    out["text_watermark"] = (text, 90)
    out["flip"] = (ImageOps.mirror(image), 90)
    out["crop_25"] = (_crop_area(image, 0.25), 90)
    out["rot90"] = (image.transpose(Image.Transpose.ROTATE_90), 90)
    out["grey"] = (ImageOps.grayscale(image), 90)
    aspect = max(16 / 9, 1.3 * w / h)  # a wider frame than the picture: bars left and right
    frame = Image.new("RGB", (int(h * aspect), h), (0, 0, 0))
    frame.paste(image, ((frame.width - w) // 2, 0))
    out["letterbox"] = (frame, 90)
    thumb = image.copy()
    thumb.thumbnail((64, 64), Image.Resampling.LANCZOS)
    out["thumb_64"] = (thumb, 90)
    pad = max(2, w // 12)
    out["white_border"] = (ImageOps.expand(image, border=pad, fill=(255, 255, 255)), 90)
    assert set(out) == set(EDITS)
    return out


def write_dataset(originals: list[Path], root: Path) -> None:
    """root/originals/NNNN.ext (the bytes as found) and root/edits/<edit>/NNNN.jpg; skips when done."""
    from PIL import Image

    done = root / ".complete"
    if done.exists():
        return
    (root / "originals").mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(originals):
        shutil.copyfile(path, root / "originals" / f"{i:04d}{path.suffix.lower()}")
        image = Image.open(path).convert("RGB")
        for name, (edited, quality) in edits(image).items():
            target = root / "edits" / name
            target.mkdir(parents=True, exist_ok=True)
            edited.save(target / f"{i:04d}.jpg", "JPEG", quality=quality)
    done.write_text("ok")


def ensure_database(url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(url.replace("/ccvec?", "/postgres?"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    target = url.replace("/ccvec?", f"/{name}?")
    migrate.upgrade(target)
    return target


def fetch(conn) -> dict:
    """Per image, in identifier order: kind, original index, pHash, embedding, content hash, group."""
    rows = conn.execute(
        "SELECT f.identifier, i.url, f.phash, e.embedding, f.content_sha256, d.group_id, d.canonical, "
        "f.width::bigint * f.height, i.created_on "
        "FROM ccvec.image_feature f JOIN ccvec.image i USING (identifier) "
        "JOIN ccvec.image_embedding e USING (identifier) "
        "LEFT JOIN ccvec.duplicate_member d USING (identifier) ORDER BY f.identifier"
    ).fetchall()
    keys = ("id", "kind", "source", "phash", "vector", "sha", "group", "canon", "order")
    out: dict = {key: [] for key in keys}
    for ident, url, phash, vector, sha, group, canon, pixels, created in rows:
        parts = url.split("/")
        out["id"].append(ident)
        out["kind"].append("original" if parts[-2] == "originals" else parts[-2])
        out["source"].append(int(parts[-1].split(".")[0]))
        out["phash"].append(from_signed(phash))
        out["vector"].append(vector.to_numpy().astype(np.float32))
        out["sha"].append(bytes(sha))
        out["group"].append(group)
        out["canon"].append(bool(canon))
        out["order"].append((-pixels, created, ident))  # the former default: most pixels, then oldest
    out["kind"] = np.array(out["kind"])
    out["source"] = np.array(out["source"])
    out["phash"] = np.array(out["phash"], dtype=np.uint64)
    vectors = np.stack(out["vector"])
    out["vector"] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return out


def true_sources(data: dict) -> np.ndarray:
    """The original index, with originals of identical bytes counted as one picture."""
    first: dict[bytes, int] = {}
    alias = {}
    for kind, source, sha in zip(data["kind"], data["source"], data["sha"], strict=True):
        if kind == "original":
            alias[source] = first.setdefault(sha, source)
    return np.array([alias[s] for s in data["source"]])


def components(n: int, pairs: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = (
        coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)) if len(pairs) else None
    )
    if graph is None:
        return np.arange(n)
    return connected_components(graph, directed=False)[1]


def rac(n: int, pairs: np.ndarray, link: float) -> np.ndarray:
    """The same average linkage as ccvec.duplicate_regroup (RAC, ties to the lower id), in Python."""
    label = np.arange(n)
    size = dict.fromkeys(range(n), 1)
    links: dict[tuple[int, int], int] = {}
    for a, b in pairs:
        key = (min(a, b), max(a, b))
        links[key] = links.get(key, 0) + 1
    while links:
        best: dict[int, tuple[float, int]] = {}
        for (x, y), e in links.items():
            value = e / (size[x] * size[y])
            for c, other in ((x, y), (y, x)):
                if c not in best or value > best[c][0] or (value == best[c][0] and other < best[c][1]):
                    best[c] = (value, other)
        merge = {o: c for c, (v, o) in best.items() if c < o and best[o][1] == c and v >= link - 1e-9}
        if not merge:
            break
        for gone, keep in merge.items():
            label[label == gone] = keep
            size[keep] += size.pop(gone)
        finished = {c for c, (v, _) in best.items() if v < link - 1e-9}
        nxt: dict[tuple[int, int], int] = {}
        for (x, y), e in links.items():
            if x in finished or y in finished:
                continue
            x2, y2 = merge.get(x, x), merge.get(y, y)
            if x2 != y2:
                key = (min(x2, y2), max(x2, y2))
                nxt[key] = nxt.get(key, 0) + e
        links = nxt
    return label


def leader(
    data: dict, hamming: np.ndarray, cosine: np.ndarray, radius: int = 8, threshold: float = 0.9
) -> np.ndarray:
    """The former `ccvec dedup` (0003's leader clustering) in numpy: images in canonical order (most
    pixels, then oldest) join the nearest canonical within the radius, else the most similar canonical
    among their 10 nearest embeddings at cosine >= threshold, else become a canonical."""
    order = sorted(range(len(data["id"])), key=lambda i: data["order"][i])
    label = np.full(len(order), -1)
    canonical = np.zeros(len(order), dtype=bool)
    nearest10 = np.argsort(-cosine, axis=1)[:, 1:11]
    for i in order:
        close = np.flatnonzero(canonical & (hamming[i] <= radius))
        if len(close):
            label[i] = label[close[np.argmin(hamming[i, close])]]
            continue
        similar = [j for j in nearest10[i] if canonical[j] and cosine[i, j] >= threshold]
        if similar:
            label[i] = label[max(similar, key=lambda j: cosine[i, j])]
        else:
            label[i], canonical[i] = i, True
    return label


def group_scores(labels: np.ndarray, data: dict, truth: np.ndarray) -> dict:
    """Group-level figures: every pair in a group counts as found."""
    kind = data["kind"]
    together = 0
    correct = 0
    for label in np.unique(labels):
        members = truth[labels == label]
        if len(members) < 2:
            continue
        together += len(members) * (len(members) - 1) // 2
        _, counts = np.unique(members, return_counts=True)
        correct += int((counts * (counts - 1) // 2).sum())
    originals = np.flatnonzero(kind == "original")
    label_of_original = {int(data["source"][i]): labels[i] for i in originals}
    per_edit = {}
    for edit in EDITS:
        rows = np.flatnonzero(kind == edit)
        per_edit[edit] = float(
            np.mean([labels[i] == label_of_original[int(data["source"][i])] for i in rows])
        )
    by_source: dict[int, set] = {}
    for i, s in enumerate(data["source"]):
        by_source.setdefault(int(s), set()).add(labels[i])
    return {
        "precision": correct / together if together else 1.0,
        "mild": float(np.mean([per_edit[e] for e in MILD])),
        "hard": float(np.mean([per_edit[e] for e in HARD])),
        "per_edit": per_edit,
        "groups_per_original": float(np.mean([len(v) for v in by_source.values()])),
    }


def pair_scores(found: np.ndarray, data: dict, truth: np.ndarray) -> dict:
    """Pair-level figures: each accepted pair counts, nothing is grouped."""
    same = truth[:, None] == truth[None, :]
    found = found.copy()
    np.fill_diagonal(found, False)
    upper = np.triu(found)
    kind = data["kind"]
    originals = np.flatnonzero(kind == "original")
    index_of_original = {int(data["source"][i]): i for i in originals}
    per_edit = {}
    for edit in EDITS:
        rows = np.flatnonzero(kind == edit)
        per_edit[edit] = float(np.mean([found[i, index_of_original[int(data["source"][i])]] for i in rows]))
    return {
        "precision": float((upper & same).sum() / max(upper.sum(), 1)),
        "mild": float(np.mean([per_edit[e] for e in MILD])),
        "hard": float(np.mean([per_edit[e] for e in HARD])),
        "per_edit": per_edit,
        "groups_per_original": float("nan"),
    }


def dihedral_distance(hashes: np.ndarray) -> np.ndarray:
    """min over the 8 probe hashes of ccvec.phash_dihedral (the same bit operations, in numpy)."""

    def transpose(h: np.ndarray) -> np.ndarray:
        h = h.copy()
        for shift, mask in ((7, 0x00AA00AA00AA00AA), (14, 0x0000CCCC0000CCCC), (28, 0x00000000F0F0F0F0)):
            t = (h ^ (h >> np.uint64(shift))) & np.uint64(mask)
            h = h ^ t ^ (t << np.uint64(shift))
        return h

    masks = (0, 0x5555555555555555, 0x00FF00FF00FF00FF, 0x55AA55AA55AA55AA)
    t = transpose(hashes)
    probes = [hashes ^ np.uint64(m) for m in masks] + [t ^ np.uint64(m) for m in masks]
    return np.min([np.bitwise_count(p[:, None] ^ hashes[None, :]) for p in probes], axis=0)


def run_set(folder: Path, work: Path, url: str, limit: int) -> dict:
    originals = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    originals = originals[:limit] if limit else originals
    if not originals:
        raise SystemExit(f"no images in {folder}")
    root = work / folder.name
    started = time.perf_counter()
    write_dataset(originals, root / "data")
    print(
        f"{folder.name}: {len(originals)} originals x {len(EDITS)} edits written "
        f"({time.perf_counter() - started:.0f}s)",
        flush=True,
    )
    target = ensure_database(url, "nd_" + folder.name)
    os.environ["DATABASE_URL"] = target
    for part in ("originals", "edits"):  # originals first: older, as on the web
        summary = load(str(root / "data" / part), LoadOptions(workers=1))
        print(
            f"  loaded {summary.loaded} {part} ({summary.seconds:.0f}s, {summary.skipped} already there)",
            flush=True,
        )
    with db.connection(target) as conn:
        started = time.perf_counter()
        neardup.dedup(conn, rebuild=True)
        seconds = time.perf_counter() - started
        data = fetch(conn)
        index = {ident: i for i, ident in enumerate(data["id"])}
        edges = np.array(
            [(index[a], index[b]) for a, b in conn.execute("SELECT a, b FROM ccvec.duplicate_edge")],
            dtype=np.int64,
        ).reshape(-1, 2)
    truth = true_sources(data)
    n = len(data["id"])
    hamming = np.bitwise_count(data["phash"][:, None] ^ data["phash"][None, :])
    cosine = data["vector"] @ data["vector"].T
    dihedral = dihedral_distance(data["phash"])
    r, c = neardup.DEFAULT_RADIUS, neardup.DEFAULT_COSINE
    pair_rule = (hamming <= r) | (cosine >= c)
    rows: dict[str, dict] = {}
    rows[f"pairs: Hamming <= {r} or cos >= {c}"] = pair_scores(pair_rule, data, truth)
    rows[f"pairs: dihedral Hamming <= {r} or cos >= {c}"] = pair_scores(
        (dihedral <= r) | (cosine >= c), data, truth
    )
    rows["groups: former ccvec dedup (leader, pHash <= 8 or cos >= 0.9; numpy)"] = group_scores(
        leader(data, hamming, cosine), data, truth
    )
    rows["groups: components of the plain pair rule"] = group_scores(
        components(n, np.argwhere(np.triu(pair_rule, 1))), data, truth
    )
    rows["groups: components of ccvec's edges"] = group_scores(components(n, edges), data, truth)
    for link in (0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.67, 0.75, 1.0):
        rows[f"groups: average link >= {link} (numpy)"] = group_scores(rac(n, edges, link), data, truth)
    sql_labels = np.array([index[g] for g in data["group"]])
    rows["groups: ccvec dedup (defaults, SQL)"] = group_scores(sql_labels, data, truth)
    reference = rac(n, edges, neardup.DEFAULT_LINK)
    agree = len({(a, b) for a, b in zip(reference, sql_labels, strict=True)}) == len(set(reference))
    canon = data["canon"]
    kind = data["kind"]
    canonical_rate = float(np.mean([canon[i] for i in np.flatnonzero(kind == "original")]))
    largest_first = {}
    for i in range(n):
        label = sql_labels[i]
        if label not in largest_first or data["order"][i] < data["order"][largest_first[label]]:
            largest_first[label] = i
    largest_rate = float(
        np.mean([largest_first[sql_labels[i]] == i for i in np.flatnonzero(kind == "original")])
    )
    canonical_kinds: dict[str, int] = {}
    for i in np.flatnonzero(canon):
        group_size = int((sql_labels == sql_labels[i]).sum())
        if group_size > 1:
            canonical_kinds[kind[i]] = canonical_kinds.get(kind[i], 0) + 1
    print_set(folder.name, len(originals), rows)
    print(f"  SQL groups equal the numpy reference at link {neardup.DEFAULT_LINK}: {agree}")
    print(
        f"  canonical is the true original: {canonical_rate:.3f}; canonicals of groups of 2+ by kind: "
        + ", ".join(f"{k} {v}" for k, v in sorted(canonical_kinds.items(), key=lambda kv: -kv[1]))
    )
    print(f"  the same groups with the former canonical rule (most pixels, then oldest): {largest_rate:.3f}")
    print(f"  ccvec dedup --rebuild: {n} images, {len(edges)} edges, {seconds:.1f}s")
    return {
        "rows": rows,
        "canonical": canonical_rate,
        "largest": largest_rate,
        "seconds": seconds,
        "images": n,
    }


def print_set(name: str, originals: int, rows: dict) -> None:
    print(f"\n### {name}: {originals} originals, {len(EDITS)} edits each\n")
    print("| rule | precision | recall, mild | recall, hard | groups / original |")
    print("|---|---|---|---|---|")
    for label, s in rows.items():
        gpo = "" if np.isnan(s["groups_per_original"]) else f"{s['groups_per_original']:.2f}"
        print(f"| {label} | {s['precision']:.3f} | {s['mild']:.3f} | {s['hard']:.3f} | {gpo} |")
    keys = [k for k in rows if k.startswith("pairs")][:1] + [k for k in rows if "ccvec dedup" in k]
    print("\nrecall per edit (mild first) | " + " | ".join(keys))
    print("|---|" + "---|" * len(keys))
    for edit in EDITS:
        print(
            f"| {edit}{' *' if edit in MILD else ''} | "
            + " | ".join(f"{rows[k]['per_edit'][edit]:.3f}" for k in keys)
            + " |"
        )


def print_summary(results: dict) -> None:
    print("\n### Summary (ccvec dedup defaults)\n")
    print(
        "| set | precision | recall, mild | recall, hard | groups / original | canonical = original "
        "| (most pixels first) | dedup s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        s = r["rows"]["groups: ccvec dedup (defaults, SQL)"]
        print(
            f"| {name} | {s['precision']:.3f} | {s['mild']:.3f} | {s['hard']:.3f} | "
            f"{s['groups_per_original']:.2f} | {r['canonical']:.3f} | {r['largest']:.3f} | "
            f"{r['seconds']:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", nargs="*", type=Path, default=[SHARED / "photos", SHARED / "stamps"])
    parser.add_argument("--work", type=Path, help="keep edited images and databases here (reused)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N originals per folder")
    args = parser.parse_args()
    for folder in args.folders:
        if not folder.is_dir():
            parser.error(f"{folder}: no such folder")
    work = args.work or Path(tempfile.mkdtemp(prefix="ccvec-neardup-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["CCVEC_HOME"] = str(work / "home")
    pgdata = work / "home" / "pgdata"
    url = db.start_embedded(pgdata)
    try:
        results = {}
        for folder in args.folders:
            results[folder.name] = run_set(folder, work, url, args.limit)
        print_summary(results)
    finally:
        if args.work is None:
            db.discard_embedded(pgdata)
            shutil.rmtree(work, ignore_errors=True)
        else:  # kept for inspection
            db.stop_embedded(pgdata)


if __name__ == "__main__":
    main()
