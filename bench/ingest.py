"""Ingest benchmark: per-stage throughput, end to end, against what a user would use instead.

    python bench/ingest.py [DIR] [--repeat N] [--batch-size 32]

DIR defaults to ../shared/data/photos when it exists. Images are copied `--repeat` times (as
distinct files) so the end-to-end run is long enough to measure. In one run it reports:

* stages, single process: read, decode, pHash (grey + 32x32 + batched DCT), model pixels,
  embed (onnxruntime on pre-decoded tensors), DB write (COPY BINARY + ingest)
* baseline `imagehash.phash(Image.open(path))`, the loop a user writes
* baseline onnxruntime alone on pre-decoded tensors (the ceiling for end-to-end)
* `ccvec load` end to end (worker processes, batches, COPY) into a fresh database
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ccvec import db, migrate
from ccvec.decode import _open, decode
from ccvec.load import LoadOptions, load
from ccvec.models import registry
from ccvec.models.runtime import Embedder
from ccvec.phash import hash_pixels, phash_from_pixels
from ccvec.sources import IMAGE_EXTENSIONS

DEFAULT_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "photos"


def timed(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def replicate(files: list[Path], repeat: int, target: Path) -> list[Path]:
    """Distinct copies (so identities differ) of every file, `repeat` times."""
    out = []
    for r in range(repeat):
        for i, f in enumerate(files):
            dest = target / f"r{r}" / f"{i:05d}{f.suffix.lower()}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest)
            out.append(dest)
    return out


def stage_timings(files: list[Path], embedder: Embedder, batch: int) -> dict[str, float]:
    """Seconds per stage over all files, one process, stages run in isolation."""
    from ccvec.decode import to_rgb
    from ccvec.models.spec import crop_pixels

    spec = embedder.spec
    t = dict.fromkeys(("read", "decode", "phash", "pixels", "embed"), 0.0)
    blobs = []
    for f in files:
        dt, data = timed(f.read_bytes)
        t["read"] += dt
        blobs.append(data)
    images = []
    for data in blobs:
        dt, image = timed(_open, data, 10**9)
        t["decode"] += dt
        images.append(image)
    grids = []
    start = time.perf_counter()
    for image in images:
        grids.append(hash_pixels(image.convert("L")))
    phash_from_pixels(np.stack(grids))
    t["phash"] = time.perf_counter() - start
    start = time.perf_counter()
    pixels = np.stack([crop_pixels(to_rgb(image), spec) for image in images])
    t["pixels"] = time.perf_counter() - start
    embedder.embed(pixels[:batch])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(pixels), batch):
        embedder.embed(pixels[i : i + batch])
    t["embed"] = time.perf_counter() - start
    return t


def _imagehash_file(path: Path) -> str:
    import imagehash
    from PIL import Image

    return str(imagehash.phash(Image.open(path)))


def _ccvec_hash_grid(path: Path) -> np.ndarray:
    return decode(path.read_bytes(), None).hash_grid


def hash_seconds(files: list[Path], workers: int, ccvec: bool) -> float:
    """Wall seconds to hash all files: ccvec (decode once, batched DCT) or imagehash.phash."""
    from concurrent.futures import ProcessPoolExecutor

    fn = _ccvec_hash_grid if ccvec else _imagehash_file
    start = time.perf_counter()
    if workers <= 1:
        results = [fn(f) for f in files]
    else:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(fn, files, chunksize=8))
    if ccvec:
        phash_from_pixels(np.stack(results))
    return time.perf_counter() - start


def db_write_timing(url: str, files: list[Path], embedder: Embedder, batch: int) -> float:
    """COPY + ingest of pre-computed rows, batch by batch, on a fresh schema."""
    from ccvec.load import Prepared, _write_batch
    from ccvec.sources import scan_directory

    items = {Path(i.location.removeprefix("file://")).name: i for i in scan_directory(files[0].parent.parent)}
    prepared = []
    for f in files:
        data = f.read_bytes()
        prepared.append(Prepared(items.get(f.name), decode(data, embedder.spec), len(data)))
    prepared = [p for p in prepared if p.item is not None]
    vectors = np.random.default_rng(0).standard_normal((len(prepared), embedder.spec.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with db.connection(url) as conn:
        registry.register(conn, embedder.model)
        run = conn.execute("INSERT INTO ccvec.load_run (source) VALUES ('bench') RETURNING id").fetchone()[0]
        conn.execute("SELECT ccvec.create_load_stage()")
        conn.commit()
        start = time.perf_counter()
        for i in range(0, len(prepared), batch):
            _write_batch(
                conn, embedder.model.name, prepared[i : i + batch], vectors[i : i + batch], [], run, True
            )
        return (time.perf_counter() - start) / len(prepared) * len(files)


def fresh_database(server_url: str, name: str) -> str:
    import psycopg

    admin = server_url.replace("/ccvec?", "/postgres?")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server_url.replace("/ccvec?", f"/{name}?")
    migrate.upgrade(url)
    return url


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--repeat", type=int, default=3, help="copies of the folder to load end to end")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if not args.folder.is_dir():
        parser.error(f"{args.folder}: no such folder")
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder of images")
    originals = list_images(args.folder)
    if not originals:
        parser.error(f"no images in {args.folder}")

    work = Path(tempfile.mkdtemp(prefix="ccvec-bench-"))
    os.environ["CCVEC_HOME"] = str(work / "home")
    os.environ.pop("DATABASE_URL", None)
    try:
        files = replicate(originals, args.repeat, work / "images")
        print(
            f"{len(originals)} images from {args.folder}, x{args.repeat} = {len(files)} files; "
            f"{os.cpu_count()} CPUs",
            flush=True,
        )
        server = db.start_embedded(work / "home" / "pgdata")
        embedder = Embedder(registry.build_default())

        print("stages (single process) ...", flush=True)
        stages = stage_timings(originals, embedder, args.batch_size)
        print("pHash: ccvec vs imagehash.phash, 1 and N processes ...", flush=True)
        hashing = {
            (tool, w): hash_seconds(files, w, tool == "ccvec") / len(files) * 1000
            for tool in ("ccvec", "imagehash")
            for w in (1, args.workers)
        }
        print("DB write ...", flush=True)
        write = db_write_timing(
            fresh_database(server, "bench_write"), files[: len(originals)], embedder, args.batch_size
        )
        stages["db write"] = write / len(files[: len(originals)]) * len(originals)
        print("end to end: ccvec load ...", flush=True)
        os.environ["DATABASE_URL"] = fresh_database(server, "bench_e2e")
        summary = load(str(work / "images"), LoadOptions(batch_size=args.batch_size, workers=args.workers))
        assert summary.loaded == len(files), summary
    finally:
        db.discard_embedded(work / "home" / "pgdata")
        shutil.rmtree(work, ignore_errors=True)

    n = len(originals)
    per_image = {k: v / n * 1000 for k, v in stages.items()}
    print()
    print(f"{'stage':28s} {'ms/image':>9s} {'images/s':>9s}")
    for name, ms in per_image.items():
        print(f"{name:28s} {ms:9.2f} {1000 / ms:9.1f}")
    hash_share = per_image["phash"] + (per_image["decode"] + per_image["read"]) / 2
    embed_rate = 1000 / per_image["embed"]
    print()
    print(f"{'comparison (ms/image unless noted)':56s} {'ccvec':>8s} {'baseline':>8s} {'ratio':>7s}")
    base_1 = hashing[("imagehash", 1)]
    rows = [
        ("pHash stage, 1 process, half of read+decode (shared)", hash_share, base_1),
        ("pHash incl. all of read+decode, 1 process", hashing[("ccvec", 1)], base_1),
        (
            f"pHash incl. read+decode, {args.workers} processes vs imagehash loop",
            hashing[("ccvec", args.workers)],
            base_1,
        ),
        (
            f"pHash incl. read+decode, {args.workers} processes vs imagehash {args.workers} proc.",
            hashing[("ccvec", args.workers)],
            hashing[("imagehash", args.workers)],
        ),
    ]
    for label, ours, theirs in rows:
        print(f"{label:56s} {ours:8.2f} {theirs:8.2f} {theirs / ours:6.2f}x")
    print(
        f"{'end-to-end images/s vs onnxruntime alone (images/s)':56s} {summary.rate:8.1f} "
        f"{embed_rate:8.1f} {summary.rate / embed_rate:6.2f}x"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\nend to end: {summary.loaded} images in {summary.seconds:.1f}s; "
        f"peak RSS of this process {peak:.0f} MiB"
    )


if __name__ == "__main__":
    main()
