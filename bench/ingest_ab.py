"""`ccvec load` end to end, several checkouts or models side by side, rounds alternating.

    python bench/ingest_ab.py [DIR] [--run PATH[:MODEL] ...] [--repeat 8] [--rounds 3]

On a shared machine the load moves between two runs of bench/ingest.py by more than the effect
being measured, and that script times onnxruntime alone minutes before its end-to-end load. Here
each round runs, for every `--run` in turn: onnxruntime alone on pre-decoded tensors of DIR's
images (the model's ceiling, measured just before), then `ccvec load` of DIR copied `--repeat`
times into a fresh database, in a subprocess that imports ccvec from PATH (a checkout with its own
`.venv`, e.g. a `git worktree` of an older commit). The table gives images/s of both and their
ratio, per round and the median over rounds.

`--run` defaults to this checkout with the default model. Examples:

    git worktree add /tmp/before b51d0a6   # once, then in /tmp/before:
    python3 -m venv .venv && .venv/bin/pip install -e '.[bench]'
    python bench/ingest_ab.py ../shared/data/photos --run /tmp/before --run .
    python bench/ingest_ab.py ../shared/data/photos --run .:efficientnet-lite0 --run .:efficientnet-lite0-int8
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ccvec import db
from ccvec.decode import decode
from ccvec.models import registry
from ccvec.models.runtime import Embedder
from ccvec.sources import IMAGE_EXTENSIONS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT.parent / "shared" / "data" / "photos"

# Run by each checkout's own interpreter: one `ccvec load` into a fresh database, prints images/s.
LOAD = """
import os, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from ccvec import db, migrate
from ccvec.load import LoadOptions, load
home = Path(os.environ["CCVEC_HOME"])
server = db.start_embedded(home / "pgdata")
try:
    import psycopg
    with psycopg.connect(server.replace("/ccvec?", "/postgres?"), autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "ab" WITH (FORCE)')
        conn.execute('CREATE DATABASE "ab"')
    os.environ["DATABASE_URL"] = url = server.replace("/ccvec?", "/ab?")
    migrate.upgrade(url)
    options = LoadOptions(model=sys.argv[3]) if sys.argv[3] else LoadOptions()
    summary = load(sys.argv[2], options)
    print(summary.loaded, summary.seconds)
finally:
    db.stop_embedded(home / "pgdata")
"""


def model_of(name: str) -> registry.Model:
    return registry.BUILT_IN[name]()


def onnx_alone(embedder: Embedder, pixels: np.ndarray, batch: int, passes: int = 2) -> float:
    """images/s of onnxruntime on pre-decoded tensors (after one warm-up batch)."""
    embedder.embed(pixels[:batch])
    start = time.perf_counter()
    for _ in range(passes):
        for i in range(0, len(pixels), batch):
            embedder.embed(pixels[i : i + batch])
    return passes * len(pixels) / (time.perf_counter() - start)


def end_to_end(checkout: Path, model: str, images: Path, home: Path) -> tuple[int, float]:
    python = checkout / ".venv" / "bin" / "python"
    env = {**os.environ, "CCVEC_HOME": str(home)}
    env.pop("DATABASE_URL", None)
    out = subprocess.run(
        [str(python if python.exists() else sys.executable), "-c", LOAD, str(checkout), str(images), model],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{checkout}: load failed:\n{out.stderr[-2000:]}")
    loaded, seconds = out.stdout.split()[-2:]
    return int(loaded), float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--run", action="append", help="PATH[:MODEL] (default: this checkout, default model)")
    parser.add_argument("--repeat", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--models",
        type=Path,
        help="a CCVEC_HOME/models folder whose built models to reuse (int8 takes minutes)",
    )
    args = parser.parse_args()
    if not args.folder.is_dir():
        parser.error(f"{args.folder}: no such folder")
    originals = sorted(p for p in args.folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not originals:
        parser.error(f"no images in {args.folder}")
    runs = []
    for spec in args.run or ["."]:
        path, _, model = spec.partition(":")
        runs.append((Path(path).resolve(), model or registry.DEFAULT_MODEL))

    work = Path(tempfile.mkdtemp(prefix="ccvec-ab-"))
    os.environ["CCVEC_HOME"] = str(work / "home")
    try:
        images = work / "images"
        for r in range(args.repeat):
            for i, f in enumerate(originals):
                (images / f"r{r}").mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, images / f"r{r}" / f"{i:05d}{f.suffix.lower()}")
        if args.models:
            shutil.copytree(args.models, work / "home" / "models")
        embedders = {m: Embedder(model_of(m)) for m in {m for _, m in runs}}
        spec = next(iter(embedders.values())).spec
        pixels = np.stack([decode(f.read_bytes(), spec).pixels for f in originals])
        for i in range(len(runs)):  # every run's home gets the models built above, before timing
            shutil.copytree(work / "home" / "models", work / f"home{i}" / "models")
        results: dict[int, list[tuple[float, float]]] = {i: [] for i in range(len(runs))}
        total = len(originals) * args.repeat
        print(f"{len(originals)} images x{args.repeat} = {total} per load; {os.cpu_count()} CPUs", flush=True)
        for round_ in range(1, args.rounds + 1):
            for i, (checkout, model) in enumerate(runs):
                alone = onnx_alone(embedders[model], pixels, args.batch_size)
                loaded, seconds = end_to_end(
                    checkout, model if model != registry.DEFAULT_MODEL else "", images, work / f"home{i}"
                )
                assert loaded == len(originals) * args.repeat, (checkout, loaded)
                results[i].append((loaded / seconds, alone))
                print(
                    f"round {round_} {checkout} {model}: end to end {loaded / seconds:.1f}/s, "
                    f"onnxruntime alone {alone:.1f}/s, ratio {loaded / seconds / alone:.2f}",
                    flush=True,
                )
    finally:
        for home in ["home", *(f"home{i}" for i in range(len(runs)))]:  # as root, data is elsewhere
            db.discard_embedded(work / home / "pgdata")
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"median of {args.rounds} rounds")
    print(f"{'checkout':40s} {'model':26s} {'e2e img/s':>10s} {'alone img/s':>11s} {'e2e/alone':>9s}")
    for i, (checkout, model) in enumerate(runs):
        e2e = statistics.median(r[0] for r in results[i])
        alone = statistics.median(r[1] for r in results[i])
        ratio = statistics.median(r[0] / r[1] for r in results[i])
        print(f"{str(checkout)[-40:]:40s} {model:26s} {e2e:10.1f} {alone:11.1f} {ratio:9.2f}")
    if len(runs) > 1:
        base = statistics.median(r[0] for r in results[0])
        for i in range(1, len(runs)):
            print(
                f"run {i + 1} vs run 1, end to end: {statistics.median(r[0] for r in results[i]) / base:.2f}x"
            )


if __name__ == "__main__":
    main()
