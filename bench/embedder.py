"""int8 vs fp32 EfficientNet-Lite0: fidelity, near-duplicate and cluster quality, throughput, in one run.

    python bench/embedder.py [PHOTOS_DIR] [STAMPS_DIR] [--repeat 4] [--limit 0]

Defaults: ../shared/data/photos and ../shared/data/stamps. For each collection:

1. Fidelity: cosine between the fp32 and int8 embedding of every original (min, 1st and 5th
   percentile, mean), and top-1 ImageNet class agreement.
2. Near-duplicates, at the level of what `ccvec dedup` decides: the 15 Copydays-style edits of
   bench/neardup.py, the default rule `pHash <= 8 or cosine >= 0.9`, pair precision and recall of
   mild edits and of all edits, with each model's cosine (pHash is the same for both).
3. Clusters (collections with labels in manifest.csv): `ccvec load` with each model, `ccvec graph
   build` (k=10), `ccvec cluster` at the default S; ARI, NMI and pairwise F1 against the labels.

Then throughput on PHOTOS_DIR copied `--repeat` times: onnxruntime alone on pre-decoded tensors,
and `ccvec load` end to end into a fresh database, fp32 then int8, same files, same run.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ccvec import db, graph, neardup
from ccvec.decode import decode
from ccvec.load import LoadOptions, load
from ccvec.models import quantized, registry
from ccvec.models.runtime import Embedder
from ccvec.phash import phash_from_pixels
from ccvec.sources import IMAGE_EXTENSIONS

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
FP32, INT8 = registry.DEFAULT_MODEL, quantized.NAME
SWEEP = (0.25, 0.3, graph.DEFAULT_SIM, 0.4, 0.45)  # the default S and its neighbourhood


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def embed_all(embedder: Embedder, pixels: np.ndarray, batch: int = 32) -> np.ndarray:
    return np.concatenate([embedder.embed(pixels[i : i + batch]) for i in range(0, len(pixels), batch)])


def fidelity(embedders: dict, pixels: np.ndarray) -> tuple[np.ndarray, float]:
    a, b = (embed_all(embedders[m], pixels) for m in (FP32, INT8))
    top = [
        np.concatenate(
            [e.run(pixels[i : i + 32], ["logits"])[0].argmax(1) for i in range(0, len(pixels), 32)]
        )
        for e in (embedders[FP32], embedders[INT8])
    ]
    return (a * b).sum(axis=1), float((top[0] == top[1]).mean())


def neardup_quality(embedders: dict, originals: list[Path], work: Path) -> dict[str, tuple]:
    """model -> (worst mild recall, mild recall, all-edit recall, precision) of the default rule."""
    nd = _bench_module("neardup")
    root = work / "edits"
    (root / "originals").mkdir(parents=True)
    nd.write_dataset(originals, root)
    files = sorted((root / "originals").glob("*")) + sorted(
        p for p in (root / "edits").rglob("*") if p.is_file()
    )
    kinds = np.array(["original" if f.parent.name == "originals" else f.parent.name for f in files])
    sources = np.array([int(f.stem) for f in files])
    decoded = [decode(f.read_bytes(), quantized.SPEC) for f in files]
    hashes = phash_from_pixels(np.stack([d.hash_grid for d in decoded])).astype(np.uint64)
    distance = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    pixels = np.stack([d.pixels for d in decoded])
    same = sources[:, None] == sources[None, :]
    originals_mask = kinds == "original"
    mild = np.isin(kinds, nd.MILD)
    edited = ~originals_mask
    out = {}
    for model, embedder in embedders.items():
        v = embed_all(embedder, pixels)
        found = (distance <= neardup.DEFAULT_RADIUS) | (v @ v.T >= neardup.DEFAULT_COSINE)
        np.fill_diagonal(found, False)

        def recall(rows: np.ndarray, found: np.ndarray = found) -> float:
            hits = found[np.ix_(rows, originals_mask)] & same[np.ix_(rows, originals_mask)]
            return hits.sum() / rows.sum()

        worst = min(recall(kinds == k) for k in nd.MILD)
        precision = (found & same).sum() / max(found.sum(), 1)
        out[model] = (worst, recall(mild), recall(edited), precision)
    return out


def cluster_quality(folder: Path, work: Path, url: str) -> dict[str, tuple] | None:
    """(model, S) -> (clusters, ARI, NMI, F1) of `ccvec cluster --sim S`, or None without labels."""
    gb = _bench_module("graph")
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        return None
    with open(manifest, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("fine") or r.get("coarse")]
    if len(rows) < 20 or len({r["fine"] or r["coarse"] for r in rows}) < 2:
        return None  # too few labelled images, or one label for all (ARI/NMI undefined)
    lines = work / f"{folder.name}.jsonl"
    lines.write_text(
        "".join(json.dumps({"path": str(folder / r["path"]), "title": r["path"]}) + "\n" for r in rows)
    )
    label = {r["path"]: r["fine"] or r["coarse"] for r in rows}
    out = {}
    for model in (FP32, INT8):
        load(str(lines), LoadOptions(model=model))
        with db.connection(url) as conn:
            graph.build(conn, k=10, model=model, recall_sample=0)
            for sim in SWEEP:
                run_id = graph.cluster(conn, sim, "mutual", level=f"bench-{model}-{sim}")
                data = conn.execute(
                    "SELECT i.title, m.cluster FROM ccvec.cluster_member m JOIN ccvec.image i "
                    "USING (identifier) WHERE m.run_id = %s ORDER BY i.title",
                    [run_id],
                ).fetchall()
                truth = [label[t] for t, _ in data]
                pred = [c for _, c in data]
                out[(model, sim)] = (len(set(pred)), *gb.scores(truth, pred))
    return out


def throughput(
    embedders: dict, folder: Path, repeat: int, work: Path, server: str, rounds: int = 2
) -> dict[str, tuple]:
    """model -> (onnxruntime-alone images/s, end-to-end `ccvec load` images/s), best of `rounds`.

    The models alternate (fp32, int8, fp32, int8, ...) so that both meet the same load from other
    processes on a shared machine; the best round of each is the least disturbed one.
    """
    ib = _bench_module("ingest")
    originals = images_in(folder)
    files = ib.replicate(originals, repeat, work / "copies")
    pixels = np.stack([decode(f.read_bytes(), quantized.SPEC).pixels for f in originals])
    out = {model: (0.0, 0.0) for model in embedders}
    for round_ in range(rounds):
        for model, embedder in embedders.items():
            embedder.embed(pixels[:32])
            start = time.perf_counter()
            embed_all(embedder, pixels)
            alone = len(pixels) / (time.perf_counter() - start)
            name = f"bench_e2e_{model.replace('-', '_')}_{round_}"
            os.environ["DATABASE_URL"] = ib.fresh_database(server, name)
            summary = load(str(work / "copies"), LoadOptions(model=model))
            assert summary.loaded == len(files), summary
            out[model] = (max(out[model][0], alone), max(out[model][1], summary.rate))
            print(
                f"  round {round_ + 1} {model}: alone {alone:.1f}/s, end to end {summary.rate:.1f}/s",
                flush=True,
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", nargs="*", type=Path, default=[SHARED / "photos", SHARED / "stamps"])
    parser.add_argument("--repeat", type=int, default=4, help="copies of the first folder loaded end to end")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N originals per folder")
    args = parser.parse_args()
    for folder in args.folders:
        if not folder.is_dir():
            parser.error(f"{folder}: no such folder")
    work = Path(tempfile.mkdtemp(prefix="ccvec-embedder-"))
    os.environ["CCVEC_HOME"] = str(work / "home")
    os.environ.pop("DATABASE_URL", None)
    try:
        start = time.perf_counter()
        models = {FP32: registry.build_default(), INT8: registry.build_int8()}
        print(
            f"int8 model built (calibration + quantisation) in {time.perf_counter() - start:.0f}s", flush=True
        )
        embedders = {m: Embedder(model) for m, model in models.items()}
        server = db.start_embedded(work / "home" / "pgdata")
        for folder in args.folders:
            originals = images_in(folder)
            originals = originals[: args.limit] if args.limit else originals
            pixels = np.stack([decode(f.read_bytes(), quantized.SPEC).pixels for f in originals])
            cosine, agree = fidelity(embedders, pixels)
            print(f"\n{folder}: {len(originals)} originals")
            print(
                f"cosine(fp32, int8): min {cosine.min():.4f}  p1 {np.percentile(cosine, 1):.4f}  "
                f"p5 {np.percentile(cosine, 5):.4f}  mean {cosine.mean():.4f};  top-1 agreement {agree:.3f}"
            )
            print("near-duplicates, rule pHash <= 8 or cosine >= 0.9 (15 edits per original) ...", flush=True)
            nd = neardup_quality(embedders, originals, work / folder.name)
            print(f"{'model':26s} {'worst mild R':>12s} {'mild R':>8s} {'all R':>8s} {'precision':>9s}")
            for model, row in nd.items():
                print(
                    f"{model:26s} " + " ".join(f"{x:{w}.3f}" for x, w in zip(row, (12, 8, 8, 9), strict=True))
                )
            diff = np.abs(np.subtract(nd[INT8], nd[FP32])).max()
            print(f"largest difference int8 - fp32: {diff:.3f}")
            url = ib_fresh(server, f"bench_q_{folder.name}")
            clusters = cluster_quality(folder, work, url)
            if clusters:
                print("clusters, `ccvec cluster --sim S` (mutual kNN, k=10); the default S is starred")
                print(f"{'model':26s} {'S':>5s} {'clusters':>8s} {'ARI':>7s} {'NMI':>7s} {'F1':>7s}")
                for (model, sim), (n, *s) in clusters.items():
                    star = "*" if sim == graph.DEFAULT_SIM else " "
                    print(f"{model:26s} {sim:4.2f}{star} {n:8d} " + " ".join(f"{x:7.3f}" for x in s))
                at = {m: clusters[(m, graph.DEFAULT_SIM)][1:] for m in (FP32, INT8)}
                best = {m: max(clusters[(m, sim)][1] for sim in SWEEP) for m in (FP32, INT8)}
                diff = np.abs(np.subtract(at[INT8], at[FP32])).max()
                print(
                    f"largest difference int8 - fp32 at the default S: {diff:.3f}; best ARI over S: "
                    f"fp32 {best[FP32]:.3f}, int8 {best[INT8]:.3f}"
                )
        print(f"\nthroughput on {args.folders[0]} x{args.repeat}, {os.cpu_count()} CPUs ...", flush=True)
        rates = throughput(embedders, args.folders[0], args.repeat, work, server)
        print(f"{'images/s, best of 2 rounds':34s} {'fp32':>8s} {'int8':>8s} {'int8/fp32':>9s}")
        for i, label in enumerate(("onnxruntime alone (pre-decoded)", "ccvec load end to end")):
            a, b = rates[FP32][i], rates[INT8][i]
            print(f"{label:34s} {a:8.1f} {b:8.1f} {b / a:8.2f}x")
    finally:
        db.discard_embedded(work / "home" / "pgdata")
        shutil.rmtree(work, ignore_errors=True)


def ib_fresh(server: str, name: str) -> str:
    url = _bench_module("ingest").fresh_database(server, name)
    os.environ["DATABASE_URL"] = url
    return url


if __name__ == "__main__":
    main()
