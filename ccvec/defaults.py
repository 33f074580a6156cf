"""Every user-facing default, defined once.

The CLI, the Python API and the docs cite these names; each value says where the measurement that
chose it lives (docs/benchmarks.md unless stated).
"""

from __future__ import annotations

import os

# Embedding model: EfficientNet-Lite0 (ImageNet), converted to ONNX without torch (docs/loading.md).
MODEL = "efficientnet-lite0"

# Progress when stderr is not a terminal (a cron job's log): a plain line per this many seconds at
# most, the first after as long, so a short command prints none (docs/cli.md).
PROGRESS_LOG_SECONDS = 60.0

# Loading (docs/loading.md).
BATCH_SIZE = 32  # images per inference batch and per transaction
WORKERS = max(1, os.cpu_count() or 1)  # decode processes; 0 decodes in threads
# Batches in inference at once, each on cores / streams onnxruntime threads; 0: one per core, capped
# at 4 (docs/loading.md, bench/ingest_ab.py).
INFERENCE_STREAMS = min(4, max(1, os.cpu_count() or 1))
CONCURRENCY = 8  # fetches in flight
MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb limit (~ 0.25 GiB of RGBA)
MAX_BYTES = 50 * 1024 * 1024  # largest file or download
FETCH_TIMEOUT = 20.0  # seconds
FETCH_RETRIES = 2
FETCH_DEADLINE = 120.0  # seconds for one whole download: attempts, redirects and waits (docs/reliability.md)
MAX_RETRY_AFTER = 30.0  # longest Retry-After wait honoured, seconds
LOAD_JOBS = 2  # parallel COPY connections for a Spark features dataset (docs/scale.md, bench/scale.py)

# Near-duplicates: `ccvec dedup`, `ccvec similar` and the SQL they call, chosen by bench/neardup.py
# on photos and stamps together (docs/neardup.md, docs/benchmarks.md).
HAMMING_RADIUS = 8  # pHash bits, for the image and (DIHEDRAL) its mirrored / rotated hashes
DIHEDRAL = True  # probe flipped and rotated pHashes: rot90 recall 0.21-0.25 -> 0.97-0.99
DEDUP_COSINE = 0.85  # embedding cosine for a direct match
DEDUP_K = 64  # embedding neighbours per image, on which both rules are checked (24 lost thumbnails)
DEDUP_LINK = 0.55  # groups merge while > half their member pairs match directly (chains split)
DEDUP_PREFER = ("original", "largest", "provider", "oldest")  # canonical, after grouping
CONFIRM_REBUILD_ABOVE = 100_000  # `dedup --rebuild` asks (or needs --yes) when more images are grouped

# Storage layout (docs/scale.md): hash partitions on identifier of image_feature, image_embedding
# and knn_edge (1 = plain tables), and connections that build one partition's HNSW index each.
PARTITIONS = 1
INDEX_JOBS = 2
# The memory-lean index (binary-quantised HNSW + cosine rerank; docs/scale.md, bench/scale.py):
# Hamming candidates reranked per query. An option, not the default (recall measured there).
LEAN_CANDIDATES = 200

# kNN graph (docs/graph.md, bench/graph.py).
GRAPH_K = 10
EF_SEARCH = 64
# The graph build measures recall@k on half of RECALL_SAMPLE images at EF_SEARCH, doubling up to
# EF_SEARCH_MAX, and builds with the first breadth that reaches RECALL_TARGET with 95 % confidence
# (graph.choose_ef_search); the other half measures the run.
EF_SEARCH_MAX = 512
RECALL_TARGET = 0.95
EF_SEARCH_MIN_GAIN = 0.01  # a doubling that buys less recall than this ends the search
RECALL_SAMPLE = 200
# Neighbour searches (graph build, dedup edges) run in batches over this many connections at once;
# each batch is one SQL call (docs/graph.md, bench/graph.py).
SEARCH_JOBS = max(1, os.cpu_count() or 1)
SEARCH_BATCH = 500  # query images per SQL call

# The embedded server's buffer cache: a share of RAM, capped (ccvec.db.shared_buffers). With the
# HNSW index in shared buffers a search costs 1.0 ms instead of 5.3 ms at 100k images (docs/graph.md).
SHARED_BUFFERS_SHARE = 0.25
SHARED_BUFFERS_MAX = 8 * 2**30
# maintenance_work_mem of an HNSW build: room for the whole graph (pgvector builds it far faster
# while it fits; bench/index_memory.py), at least the floor, at most this share of RAM (split between
# builds that run at once). Graph bytes per row: the vector plus INDEX_LINK_BYTES of neighbour lists
# (4,096 B/row measured for 1280-d halfvec at m 16: docs/scale.md).
INDEX_BUILD_MEMORY_MIN = 2**30
INDEX_BUILD_MEMORY_SHARE = 0.25
INDEX_LINK_BYTES = 1536

# Clusters (docs/graph.md): imagecluster's similarity index.
CLUSTER_SIM = 0.35
CLUSTER_METHOD = "mutual"

# Default clustering (docs/graph.md, bench/clusters.py): Louvain modularity on the kNN graph, no
# threshold to tune; the resolution is documented for the range below.
CLUSTER_RESOLUTION = 1.0
CLUSTER_RESOLUTION_RANGE = (0.5, 2.0)
CLUSTER_MAX_SHARE = 0.25  # a cluster larger than this share of the images is split where it has structure
CLUSTER_SPLIT_MODULARITY = 0.3  # ... i.e. where Louvain inside it reaches this modularity
