"""How the vector index scales: 10k, 100k and 1M tracks of synthetic clustered vectors.

For each size it writes a catalog (same schema as `songspace index`, rows bulk-inserted in one
transaction; synthetic rows have no segments: a real track adds ~10 KB of segment vectors to the
catalog today), then, each step in a fresh child process:

  build    a `Searcher` with no saved index: read the catalog, build the index, save it
  serve    a new `Searcher` loading the saved index; `similar(id, k=10)` through the public
           query path (bulk track fetch included) on one core; resident memory after the queries
  exact    the same queries with exact search forced (the baseline, same run)
  update   1,000 tracks added (Catalog.put_ok, one transaction each, as the indexer writes) and
           1,000 removed, each followed by the Searcher's refresh

Recall@10 is measured against exact search over the same vectors (the query itself left out, as
`similar` does).

    .venv/bin/python bench/scale.py                      # 10k, 100k, 1M (~15-25 min on 2 cores)
    .venv/bin/python bench/scale.py --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DIM = 256
MODEL_ID = "synthetic-256"
N_QUERIES = 1000  # wall-clock p99 includes time descheduled on a shared machine; CPU p99 does not
N_EXACT_QUERIES = 200
N_CHANGE = 1000


# ---------------------------------------------------------------------------------------------
# Synthetic library
# ---------------------------------------------------------------------------------------------


def clustered_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """(n, dim) float32 unit vectors in ~n/400 clusters of uneven size (a few thousand at 1M):
    each cluster a centre on the sphere plus a random 16-d subspace of variation (artists, styles)
    and a little isotropic noise. Nearest neighbours sit at cosine ~0.85-0.9, as in the model's space."""
    rng = np.random.default_rng(seed)
    k = max(8, n // 400)
    centres = rng.standard_normal((k, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = np.minimum(rng.zipf(1.5, k), 50).astype(float)
    labels = rng.choice(k, n, p=weights / weights.sum())
    r = 16
    bases = (rng.standard_normal((k, dim, r)) / np.sqrt(dim)).astype(np.float32)
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 32768):
        lab = labels[s : s + 32768]
        z = rng.standard_normal((len(lab), r)).astype(np.float32) * (0.6 / np.sqrt(r))
        x = centres[lab] + np.einsum("mdr,mr->md", bases[lab], z)
        x += rng.standard_normal((len(lab), dim)).astype(np.float32) * (0.25 / np.sqrt(dim))
        out[s : s + len(lab)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def write_catalog(path: Path, vectors: np.ndarray) -> float:
    """A catalog holding one searchable track per vector (ids 1..n), written in bulk."""
    from songspace.catalog import Catalog

    Catalog(path).close()  # the schema, exactly as the indexer makes it
    t0 = time.perf_counter()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    now = time.time()
    n = len(vectors)
    for s in range(0, n, 50_000):
        ids = range(s + 1, min(n, s + 50_000) + 1)
        db.executemany(
            "INSERT INTO tracks (id, path, size, mtime, content_hash, duration, title, artist, album, genre, status, "
            "error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'ok', NULL, ?)",
            ((i, f"/synthetic/{i // 1000:04d}/{i:07d}.flac", 8_000_000, now, f"{i:032x}", 240.0, f"Title {i}",
              f"Artist {i // 12}", f"Album {i // 12}", "synthetic", now) for i in ids))
        db.executemany("INSERT INTO embeddings VALUES (?, ?, ?, NULL, NULL)",
                       ((i, MODEL_ID, vectors[i - 1].tobytes()) for i in ids))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------
# Child steps (each in a fresh process)
# ---------------------------------------------------------------------------------------------


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process, MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def child_build(catalog: Path, args) -> dict:
    from songspace.query import Searcher

    t0 = time.perf_counter()
    s = Searcher(catalog)
    s.space()
    return {"build_s": time.perf_counter() - t0, "kind": s.space().index.kind,
            "nprobe": int(getattr(s.space().index.index, "nprobe", 0)),
            "nlist": int(getattr(s.space().index.index, "nlist", 0)), "build_peak_mb": rss_mb()[1]}


def child_serve(catalog: Path, args) -> dict:
    import faiss

    from songspace.query import Searcher
    from songspace.recommend.similar import Manners, similar

    raw = Manners(collapse_copies=False)  # ranked as search ranks them, as before `similar` was one
    faiss.omp_set_num_threads(1)
    exact = args.child == "exact"
    t0 = time.perf_counter()
    s = Searcher(catalog, exact_limit=10**12, save=False) if exact else Searcher(catalog)
    s.space()
    open_s = time.perf_counter() - t0
    queries = [int(q) for q in args.queries.split(",")]
    similar(s, queries[0], 10, raw)  # warm
    times, cpu, found = [], [], []
    for q in queries:
        t, c = time.perf_counter(), time.thread_time()
        matches = similar(s, q, 10, raw)
        cpu.append(time.thread_time() - c)
        times.append(time.perf_counter() - t)
        found.append([m.track.id for m in matches])
    rss, peak = rss_mb()
    return {"open_s": open_s, "p50_ms": float(np.percentile(times, 50) * 1e3),
            "p99_ms": float(np.percentile(times, 99) * 1e3), "cpu_p99_ms": float(np.percentile(cpu, 99) * 1e3), "rss_mb": rss, "peak_mb": peak, "found": found,
            "kind": s.space().index.kind}


def child_update(catalog: Path, args) -> dict:
    import faiss

    from songspace.catalog import Catalog
    from songspace.query import Searcher
    from songspace.recommend.similar import Manners, similar

    raw = Manners(collapse_copies=False)
    faiss.omp_set_num_threads(1)
    s = Searcher(catalog)
    index = s.space().index
    writer = Catalog(catalog)
    n0 = len(s)
    new = clustered_vectors(N_CHANGE, seed=99)
    t0 = time.perf_counter()
    added = [writer.put_ok(f"/synthetic/new/{i:05d}.flac", size=1, mtime=1.0, content_hash=f"new{i}", duration=240.0,
                           tags={}, model_id=MODEL_ID, vector=v) for i, v in enumerate(new)]
    t1 = time.perf_counter()
    s.space()
    t2 = time.perf_counter()
    assert len(s) == n0 + N_CHANGE and similar(s, added[0], 1, raw)
    assert s.search(new[5], 1)[0][0][0] == added[5]
    gone = [int(i) for i in np.random.default_rng(5).choice(s.ids(), N_CHANGE, replace=False)]
    t3 = time.perf_counter()
    writer.remove(gone)
    t4 = time.perf_counter()
    s.space()
    t5 = time.perf_counter()
    assert len(s) == n0 and not set(gone) & set(s.ids().tolist())
    return {"add_write_s": t1 - t0, "add_refresh_s": t2 - t1, "add_s": t2 - t0, "remove_write_s": t4 - t3,
            "remove_refresh_s": t5 - t4, "remove_s": t5 - t3, "rebuilt": s.space().index is not index}


def run_child(mode: str, catalog: Path, **extra) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--catalog", str(catalog)]
    for k, v in extra.items():
        cmd += [f"--{k}", str(v)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# One size
# ---------------------------------------------------------------------------------------------


def recall_at_10(vectors: np.ndarray, queries: list[int], found: list[list[int]]) -> float:
    import faiss

    q = vectors[np.array(queries) - 1]
    _, rows = faiss.knn(q, vectors, 11, metric=faiss.METRIC_INNER_PRODUCT)
    hits = []
    for qid, row, got in zip(queries, rows, found):
        truth = [int(r) + 1 for r in row if int(r) + 1 != qid][:10]
        hits.append(len(set(truth) & set(got)) / 10)
    return float(np.mean(hits))


def bench_size(n: int, work: Path) -> dict:
    folder = work / f"scale-{n}"
    folder.mkdir(parents=True, exist_ok=True)
    for f in folder.iterdir():
        f.unlink()
    catalog = folder / "catalog.sqlite"
    vectors = clustered_vectors(n)
    row = {"n": n, "catalog_write_s": write_catalog(catalog, vectors)}
    row.update(run_child("build", catalog))
    row["catalog_bytes_per_track"] = catalog.stat().st_size / n
    row["index_bytes_per_track"] = (folder / "vectors.faiss").stat().st_size / n
    queries = [int(q) for q in np.random.default_rng(3).choice(n, N_QUERIES, replace=False) + 1]
    serve = run_child("serve", catalog, queries=",".join(map(str, queries)))
    row.update({k: serve[k] for k in ("open_s", "p50_ms", "p99_ms", "cpu_p99_ms", "rss_mb")})
    row["recall@10"] = recall_at_10(vectors, queries, serve["found"])
    exact = run_child("exact", catalog, queries=",".join(map(str, queries[:N_EXACT_QUERIES])))
    row.update({"exact_p50_ms": exact["p50_ms"], "exact_p99_ms": exact["p99_ms"], "exact_cpu_p99_ms": exact["cpu_p99_ms"],
                "exact_rss_mb": exact["rss_mb"]})
    row["exact_recall@10"] = recall_at_10(vectors, queries[:N_EXACT_QUERIES], exact["found"])
    row.update(run_child("update", catalog))
    return row


COLUMNS = [("n", "tracks", "{:,}"), ("kind", "index", "{}"), ("build_s", "build s", "{:.1f}"),
           ("p50_ms", "p50 ms", "{:.2f}"), ("p99_ms", "p99 ms", "{:.2f}"), ("cpu_p99_ms", "p99 CPU ms", "{:.2f}"), ("recall@10", "recall@10", "{:.3f}"),
           ("exact_p50_ms", "exact p50", "{:.2f}"), ("exact_p99_ms", "exact p99", "{:.2f}"), ("exact_cpu_p99_ms", "exact p99 CPU", "{:.2f}"),
           ("rss_mb", "RSS MB", "{:.0f}"), ("exact_rss_mb", "exact RSS", "{:.0f}"),
           ("catalog_bytes_per_track", "catalog B/track", "{:.0f}"), ("index_bytes_per_track", "index B/track", "{:.0f}"),
           ("add_s", "add 1k s", "{:.2f}"), ("remove_s", "remove 1k s", "{:.2f}")]


def table(rows: list[dict]) -> str:
    head = "| " + " | ".join(c[1] for c in COLUMNS) + " |"
    rule = "|" + "|".join("---:" for _ in COLUMNS) + "|"
    body = ["| " + " | ".join(fmt.format(r[key]) for key, _, fmt in COLUMNS) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def plot(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["n"] for r in rows]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    panels = [("similar latency, one core (ms)", [("p50_ms", "ANN p50"), ("p99_ms", "ANN p99"), ("cpu_p99_ms", "ANN p99 CPU time"),
                                                  ("exact_p50_ms", "exact p50"), ("exact_p99_ms", "exact p99")], 2.0),
              ("recall@10 vs exact", [("recall@10", "ANN")], 0.95),
              ("serving RSS (MB)", [("rss_mb", "ANN"), ("exact_rss_mb", "exact")], 2048),
              ("index build (s)", [("build_s", "read catalog + build + save")], None),
              ("bytes per track", [("catalog_bytes_per_track", "catalog (no segments)"),
                                   ("index_bytes_per_track", "index file")], None),
              ("1,000-track change (s)", [("add_s", "add"), ("remove_s", "remove")], 5.0)]
    for ax, (title, series, target) in zip(axes.flat, panels):
        for key, label in series:
            ax.plot(n, [r[key] for r in rows], marker="o", label=label)
        if target is not None:
            ax.axhline(target, color="grey", linestyle="--", linewidth=1, label="target at 1M")
        ax.set_xscale("log")
        if title.startswith("similar") or title.startswith("index build"):
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("tracks")
        ax.legend(fontsize=8)
    fig.suptitle("songspace vector index: synthetic clustered 256-d vectors")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--work", type=Path, default=HERE / "out")
    parser.add_argument("--plot", type=Path, default=HERE / "scale.png")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--catalog", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--queries", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step = {"build": child_build, "serve": child_serve, "exact": child_serve, "update": child_update}[args.child]
        print(json.dumps(step(args.catalog, args)))
        return

    print("synthetic rows carry no segments (a real track stores ~10 KB of them in the catalog today)", flush=True)
    rows = []
    for n in args.sizes:
        t = time.perf_counter()
        rows.append(bench_size(n, args.work))
        print(f"{n:,} tracks done in {time.perf_counter() - t:.0f} s: {json.dumps(rows[-1])}", flush=True)
    print(table(rows))
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "scale.json").write_text(json.dumps(rows, indent=1))
    plot(rows, args.plot)
    print(f"wrote {args.plot} and {args.work / 'scale.json'}")


if __name__ == "__main__":
    main()
