"""How long the timbre companion's refresh (proximity.refresh) takes for a big library, and what
one query's re-ranking (rerank.py) costs beside it.

    .venv/bin/python bench/proximity_refresh.py [--tracks 100000] [--dim 256]

Builds a catalog of synthetic tracks (random unit vectors, random Gaussians packed as index
stores them; written with one SQL transaction, not timed), then times in CPU seconds:
  full      every track's moments against a new sample of 500 (what a first index, a new model,
            or a library grown by > 10% costs)
  changed   1% of the tracks re-stored, then refreshed (what an ordinary index run costs)
  query     one query's top 10: the nearest by cosine alone (Searcher.search), and re-ranked by the
            fusion (rerank.ranked: 50 candidates' blobs and moments read by id), warm, median
A benchmark, not a test: it prints figures and never fails on speed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from songspace import method as methods  # noqa: E402
from songspace import proximity, rerank, timbre  # noqa: E402
from songspace.catalog import Catalog  # noqa: E402
from songspace.query import Searcher  # noqa: E402


def synthetic_blobs(rng, n: int) -> list[bytes]:
    d = timbre.N_MFCC
    blobs = []
    for _ in range(n):
        A = rng.normal(size=(d, d)) * rng.uniform(0.2, 2.0)
        blobs.append(timbre.pack(rng.normal(scale=5.0, size=d), A @ A.T / d))
    return blobs


def build(path: Path, n: int, dim: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    cat = Catalog(path)
    method = methods.resolve(None)
    methods.use(cat, method)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    blobs = synthetic_blobs(rng, n)
    with cat._transaction():
        cat.db.executemany("INSERT INTO tracks (id, path, status, updated_at) VALUES (?, ?, 'ok', 0)",
                           [(i + 1, f"/music/{i}.flac") for i in range(n)])
        cat.db.executemany("INSERT INTO embeddings VALUES (?, ?, ?, NULL, NULL)",
                           [(i + 1, method.id, vectors[i].tobytes()) for i in range(n)])
        cat.db.executemany("INSERT INTO timbre VALUES (?, ?)", [(i + 1, blobs[i]) for i in range(n)])
    cat.close()
    return method.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.sqlite"
        start = time.perf_counter()
        build(path, args.tracks, args.dim)
        print(f"{args.tracks} synthetic tracks (dim {args.dim}) written in {time.perf_counter() - start:.0f} s")
        cat = Catalog(path)
        cpu, wall = time.process_time(), time.perf_counter()
        done = proximity.refresh(cat)
        print(f"full refresh:    {time.process_time() - cpu:6.1f} s CPU, {time.perf_counter() - wall:6.1f} s wall "
              f"({done.computed} tracks; {done.note})")
        rng = np.random.default_rng(1)
        changed = rng.choice(np.arange(1, args.tracks + 1), size=args.tracks // 100, replace=False)
        for i, blob in zip(changed.tolist(), synthetic_blobs(rng, len(changed))):
            cat.put_timbre(i, blob)
        cpu, wall = time.process_time(), time.perf_counter()
        done = proximity.refresh(cat)
        print(f"1% changed:      {time.process_time() - cpu:6.1f} s CPU, {time.perf_counter() - wall:6.1f} s wall "
              f"({done.computed} tracks)")
        cat.close()
        time_queries(path, args.tracks)


def time_queries(path: Path, n: int, queries: int = 40) -> None:
    searcher = Searcher(path, save=False)
    ids = np.random.default_rng(2).choice(np.arange(1, n + 1), size=queries, replace=False).tolist()
    vectors = searcher.vectors(ids)  # builds the vector index (not timed)
    assert rerank.fused(searcher), "the catalog should be ready to fuse"
    for name, ask in (("cosine", lambda i, v: searcher.search(v[None], 11, {i})),
                      ("fused", lambda i, v: rerank.ranked(searcher, v[None], 10, {i}, query_ids=[i]))):
        ask(ids[0], vectors[0])  # warm
        cpu = []
        for i, v in zip(ids, vectors):
            start = time.process_time()
            ask(i, v)
            cpu.append(time.process_time() - start)
        print(f"query, {name}:{' ' * (8 - len(name))}{np.median(cpu) * 1000:6.2f} ms CPU median over {queries} "
              f"({len(searcher)} tracks, {searcher.space().index.kind} index)")
    searcher.close()


if __name__ == "__main__":
    main()
