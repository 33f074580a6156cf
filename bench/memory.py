"""Peak memory per stage: `ccvec load`, `ccvec graph build`, `ccvec cluster`, `ccvec refresh`, each
run as the CLI a user runs, next to what the in-memory tools need for the same stage.

    python bench/memory.py [--size 100000] [--dim 1280] [--k 10] [--stages load,graph,cluster,refresh]

Synthetic data (no images needed): `--size` embeddings of `--dim` float16 values around 500 random
centres (noise keeps a cosine of ~0.85 to the centre), random pHashes, written as a features
dataset in the format `ccvec spark features` writes (bench/scale.py's writer). Each stage runs in
its own process against one embedded server; the stages follow each other on the same database.

Measured per stage:

* client: the ccvec process's peak RSS (VmHWM) and the highest sum of RSS over it and its worker
  processes, sampled every 0.2 s;
* server: every PostgreSQL process of the server (backends and parallel workers) sampled every
  0.2 s; "largest backend" is the highest VmHWM seen (it includes the shared buffers that backend
  touched), "private sum" the highest sum of RssAnon over all of them at one sample (memory that is
  theirs alone: sorts, hashes, index builds). shared_buffers is printed once; it is allocated
  at start whatever the stage.

References, each in its own process, on the same data in memory:

* load: the embeddings read from the dataset into one float32 numpy array (pyarrow);
* graph: FAISS IndexHNSWFlat (same M and efConstruction as ccvec) built over them and searched
  for k neighbours of 10,000 images;
* cluster: scikit-network Louvain over a random kNN graph of the same shape (size x k edges);
* refresh: scipy.sparse PageRank over that graph (bench/refresh.py's baseline).

Rerun after any change to graph build or clustering: the command is the same.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STAGES = {
    "load": ["load", "{dataset}", "--jobs", "2"],
    "graph": ["graph", "build"],
    "cluster": ["cluster"],
    "refresh": ["refresh"],
}
MiB = 1024 * 1024


def vectors(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    centres = rng.normal(size=(500, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), np.float16)
    for start in range(0, n, 50_000):
        stop = min(n, start + 50_000)
        noisy = centres[rng.integers(0, 500, stop - start)] + rng.normal(0, 0.02, (stop - start, dim))
        out[start:stop] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    return out


def status(pid: int) -> dict[str, int]:
    """VmHWM, VmRSS, RssAnon of a process in KiB ({} once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "PPid"):
            out[key] = int(value.split()[0])
    return out


class Sampler(threading.Thread):
    """Peak memory, sampled every 0.2 s, of the server's processes (children of the postmaster) and
    of the client's process tree. ru_maxrss from wait4 would not do for the client: Linux carries
    the forked parent's high-water mark across exec."""

    def __init__(self, postmaster: int | None) -> None:
        super().__init__(daemon=True)
        self.postmaster, self.client = postmaster, 0
        self.largest = self.private = self.client_peak = self.client_tree = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            procs = {}
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    procs[int(entry.name)] = status(int(entry.name))
            server = [s for s in procs.values() if self.postmaster and s.get("PPid") == self.postmaster]
            self.largest = max([self.largest] + [s.get("VmHWM", 0) for s in server])
            self.private = max(self.private, sum(s.get("RssAnon", 0) for s in server))
            tree, grew = {self.client}, True
            while grew:
                more = {p for p, s in procs.items() if s.get("PPid") in tree} - tree
                tree |= more
                grew = bool(more)
            mine = [procs[p] for p in tree if p in procs]
            self.client_peak = max([self.client_peak] + [s.get("VmHWM", 0) for s in mine])
            self.client_tree = max(self.client_tree, sum(s.get("VmRSS", 0) for s in mine))
            self.done.wait(0.2)


def run_child(argv: list[str], env: dict[str, str], postmaster: int | None) -> dict[str, float]:
    """Run a process to the end: seconds, its peak RSS (and its workers'), and the server's, MiB."""
    sampler = Sampler(postmaster)
    start = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler.client = child.pid
    sampler.start()
    assert child.stderr is not None
    err = child.stderr.read().decode(errors="replace")
    child.wait()
    seconds = time.perf_counter() - start
    sampler.done.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({child.returncode}):\n{err[-2000:]}")
    out = {"seconds": seconds, "client": sampler.client_peak / 1024, "tree": sampler.client_tree / 1024}
    if postmaster:
        out["backend"] = sampler.largest / 1024
        out["private"] = sampler.private / 1024
    return out


# ---------------------------------------------------------------- references (run in a child)


def random_graph(n: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from bench.refresh import random_edges

    return random_edges(np.arange(n), n, k, np.random.default_rng(0))


def reference(stage: str, dataset: Path, n: int, k: int) -> None:
    if stage in ("load", "graph"):
        import pyarrow.dataset as ds

        table = ds.dataset(dataset / "kind=feature", format="parquet").to_table(columns=["embedding"])
        column = table.column("embedding")
        dim = len(column[0].as_py()) // 2
        matrix = np.empty((len(table), dim), np.float32)
        at = 0
        for chunk in column.chunks:
            raw = np.frombuffer(b"".join(chunk.to_pylist()), "<f2").reshape(-1, dim)
            matrix[at : at + len(raw)] = raw
            at += len(raw)
        del table, column
        if stage == "graph":
            import faiss

            from ccvec import defaults, graph

            index = faiss.IndexHNSWFlat(dim, graph.HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = graph.HNSW_EF_CONSTRUCTION
            index.add(matrix)
            index.hnsw.efSearch = defaults.EF_SEARCH
            index.search(matrix[: min(n, 10_000)], k + 1)
    elif stage == "cluster":
        from ccvec.clusters import louvain_labels

        src, dst, sim = random_graph(n, k)
        louvain_labels(n, src, dst, sim, 1.0, 0)
    elif stage == "refresh":
        from bench.refresh import scipy_pagerank

        src, dst, sim = random_graph(n, k)
        scipy_pagerank(n, src, dst, sim)


REFERENCE_NAMES = {
    "load": "numpy float32 array (pyarrow read)",
    "graph": "FAISS IndexHNSWFlat build + search",
    "cluster": "scikit-network Louvain in memory",
    "refresh": "scipy.sparse PageRank in memory",
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--reference", help=argparse.SUPPRESS)  # internal: run one reference here
    parser.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference:
        reference(args.reference, args.dataset, args.size, args.k)
        return

    from bench.scale import write_dataset
    from ccvec import db, migrate

    stages = [s for s in args.stages.split(",") if s]
    work = Path(tempfile.mkdtemp(prefix="ccvec-memory-"))
    env = {
        **os.environ,
        "CCVEC_HOME": str(work / "home"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    os.environ["CCVEC_HOME"] = env["CCVEC_HOME"]
    rows = []
    try:
        rng = np.random.default_rng(0)
        dataset = work / "features"
        start = time.perf_counter()
        write_dataset(
            dataset, vectors(args.size, args.dim, rng), rng.integers(0, 2**63, args.size, np.uint64), rng
        )
        print(
            f"{args.size:,} x {args.dim} features dataset written in {time.perf_counter() - start:.0f}s",
            flush=True,
        )
        url = db.start_embedded(work / "home" / "pgdata")
        migrate.upgrade(url)
        env["DATABASE_URL"] = url
        with db.connection(url) as conn:
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            shared = conn.execute("SHOW shared_buffers").fetchone()[0]
            maintenance = conn.execute("SHOW maintenance_work_mem").fetchone()[0]
            work_mem = conn.execute("SHOW work_mem").fetchone()[0]
            postmaster = status(backend)["PPid"]
        for stage in stages:
            argv = [sys.executable, "-m", "ccvec.cli", *(a.format(dataset=dataset) for a in STAGES[stage])]
            got = run_child(argv, env, postmaster)
            print(f"{stage}: {json.dumps({k: round(v, 1) for k, v in got.items()})}", flush=True)
            ref_argv = [sys.executable, __file__, "--reference", stage, "--dataset", str(dataset),
                        "--size", str(args.size), "--k", str(args.k)]  # fmt: skip
            ref = run_child(ref_argv, env, None)
            print(f"  reference: {json.dumps({k: round(v, 1) for k, v in ref.items()})}", flush=True)
            rows.append((stage, got, ref))
    finally:
        db.discard_embedded(work / "home" / "pgdata")
        shutil.rmtree(work, ignore_errors=True)
    print(f"\npeak memory per stage, {args.size:,} images x {args.dim}-d, k = {args.k} (MiB; seconds beside)")
    print(f"server: shared_buffers {shared}, work_mem {work_mem}, maintenance_work_mem {maintenance}")
    head = f"{'stage':8s} {'seconds':>8s} {'client':>8s} {'+workers':>8s} {'largest backend':>16s}"
    head += f" {'private sum':>12s}"
    print(f"{head}   {'reference (in memory)':38s} {'seconds':>8s} {'RSS':>8s}")
    for stage, got, ref in rows:
        ours = f"{got['seconds']:8.1f} {got['client']:8.0f} {got['tree']:8.0f} {got['backend']:16.0f}"
        ours += f" {got['private']:12.0f}"
        print(f"{stage:8s} {ours}   {REFERENCE_NAMES[stage]:38s} {ref['seconds']:8.1f} {ref['client']:8.0f}")
    generator = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"this process (the data generator) {generator:.0f} MiB")


if __name__ == "__main__":
    main()
