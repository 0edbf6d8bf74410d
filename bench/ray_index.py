"""Indexing ost-dev locally (process pool) and on a local Ray cluster, in the same run: both
throughputs, and what Ray costs.

    .venv/bin/python bench/ray_index.py [--data ../shared/data/ost-dev] [--workers 2] [--out bench/out]

Engines, each in a fresh child process (this script with --child) into a fresh library, so
every figure is end to end (interpreter, imports, worker start-up, model loading):
  local      Library.index(workers=N): the spawn process pool, the baseline
  ray        Library.index(ray=RayConfig("local"), workers=N): starts a local Ray cluster, an
             actor pool of N analysers, results committed by the driver as they arrive
  ray-data   dataset.embed_to_dataset(ray=...): the same files through Ray Data (map_batches on
             an actor pool of N, write_parquet), no catalog; the other Ray design, measured beside
             the actor pool that `index --ray` uses

Figures: wall time; time to the first stored result (start-up: cluster, actors, model); the
steady rate between the first and the last result (tracks/s, x real time); CPU seconds and peak
RSS of the child's whole process tree (Ray's own processes included), sampled every 50 ms;
tracks per core-hour (from the local engine's CPU time); bytes per track of the Parquet dataset;
the smallest cosine between a track's local and Ray vectors (must be >= 0.999); and how many
tracks a second the driver, the catalog's one writer, can commit (synthetic rows, in this process).

A benchmark, not a test: it prints and writes --out/ray_index.json; it never fails on speed.
On a shared machine wall time swings with other load: compare engines within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from index_speed import RssSampler  # the process tree's memory and CPU, sampled

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "ost-dev"
DEFAULT_OUT = REPO / "bench" / "out"
RESULT_MARK = "@@RESULT@@ "
MiB = 2**20


def run_measured(args: list[str]) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with RssSampler(proc.pid) as tree:
        out, err = proc.communicate()
    wall = time.perf_counter() - t0
    lines = [l for l in out.splitlines() if l.startswith(RESULT_MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {args[0]} failed (rc={proc.returncode}):\n{err[-3000:]}")
    result = json.loads(lines[-1][len(RESULT_MARK):])
    result.update(wall_s=wall, cpu_s=tree.cpu_s, peak_rss=tree.peak_total)
    return result


# ---------------------------------------------------------------------------------------------
# Children
# ---------------------------------------------------------------------------------------------


def child_index(engine: str, data: str, workers: int, vectors_out: str) -> dict:
    """Index `data` into a fresh library with the local pool or on a local Ray cluster."""
    t0 = time.perf_counter()
    from songspace.library import Library

    ray = None
    if engine == "ray":
        from songspace.distributed import RayConfig

        ray = RayConfig("local")
    stamps: list[float] = []

    def on_progress(phase, done, total, note):
        if phase == "analyse" and note:
            stamps.append(time.perf_counter() - t0)

    with tempfile.TemporaryDirectory(prefix="songspace-bench-") as root:
        with Library(root) as lib:
            report = lib.index([data], workers=workers, report=on_progress, ray=ray)
            vectors = {t.path: lib.catalog.vector(t.id)[1] for t in lib.catalog.ok_tracks()}
    np.savez(vectors_out, paths=np.array(list(vectors)), vectors=np.stack(list(vectors.values())))
    return dict(tracks=report.added, failed=report.failed, audio_seconds=report.audio_seconds,
                first_result_s=stamps[0], last_result_s=stamps[-1], results=len(stamps))


def child_ray_data(data: str, workers: int, vectors_out: str) -> dict:
    """Embed `data` into a Parquet dataset with Ray Data on a local cluster."""
    t0 = time.perf_counter()
    import pyarrow.parquet as pq

    from songspace.dataset import embed_to_dataset
    from songspace.distributed import RayConfig

    with tempfile.TemporaryDirectory(prefix="songspace-bench-") as root:
        summary = embed_to_dataset([data], Path(root) / "ds", ray=RayConfig("local"), workers=workers)
        files = sorted((Path(root) / "ds").glob("*.parquet"))
        table = pq.read_table(Path(root) / "ds", columns=["path", "duration", "vector", "error"])
        dataset_bytes = sum(f.stat().st_size for f in files)
    ok = table.filter(table.column("error").is_null())
    np.savez(vectors_out, paths=np.array(ok.column("path").to_pylist()),
             vectors=np.stack(ok.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32))
    return dict(tracks=ok.num_rows, failed=summary.failed, audio_seconds=float(np.sum(ok.column("duration").to_numpy())),
                inner_wall_s=time.perf_counter() - t0, dataset_bytes=dataset_bytes, dataset_files=len(files))


def child_main(argv: list[str]) -> None:
    engine, data, workers, vectors_out = argv[0], argv[1], int(argv[2]), argv[3]
    if engine == "ray-data":
        result = child_ray_data(data, workers, vectors_out)
    else:
        result = child_index(engine, data, workers, vectors_out)
    print(RESULT_MARK + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------------------
# The one writer: how many results a second the driver can commit
# ---------------------------------------------------------------------------------------------


def writer_rate(tracks: int = 2000, segments: int = 160, dim: int = 256) -> float:
    """Tracks per second `Catalog.put_ok` commits, as the driver stores results: each with a
    vector and the segments of a 4-minute track (160 patches at 50% overlap), each its own
    transaction with the sidecar fsynced, and the segment upkeep between them as the indexer
    runs it. Timed over the second half, past the one-off fit of the segment projection."""
    from songspace.catalog import Catalog
    from songspace.indexing import UPKEEP_EVERY

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((64, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    patch = rng.standard_normal((segments, dim)).astype(np.float16)
    starts = np.arange(segments, dtype=np.float32) * 1.536
    with tempfile.TemporaryDirectory(prefix="songspace-bench-writer-") as root:
        cat = Catalog(Path(root) / "catalog.sqlite")
        t_half = 0.0
        for i in range(tracks):
            if i == tracks // 2:
                t_half = time.perf_counter()
            cat.put_ok(f"/music/{i:07d}.flac", size=5_000_000, mtime=1.0, content_hash=f"{i:032x}", duration=240.0,
                       tags={"title": f"song {i}", "artist": "someone"}, model_id="bench", vector=vectors[i % 64],
                       segments=patch, segment_starts=starts)
            if (i + 1) % UPKEEP_EVERY == 0:
                cat.upkeep()
        rate = (tracks - tracks // 2) / (time.perf_counter() - t_half)
        cat.close()
    return rate


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------


def min_cosine(a_file: str, b_file: str) -> tuple[float, int]:
    """(smallest cosine over the tracks both hold, how many they share) between two vector files."""
    a, b = np.load(a_file), np.load(b_file)
    va = dict(zip(a["paths"].tolist(), a["vectors"]))
    vb = dict(zip(b["paths"].tolist(), b["vectors"]))
    shared = sorted(set(va) & set(vb))
    return min(float(np.dot(va[p], vb[p])) for p in shared), len(shared)


def show(name: str, r: dict) -> None:
    print(f"\n[{name}]")
    print(f"  tracks          {r['tracks']}  ({len(r['failed'])} failed), {r['audio_seconds']:,.0f} s of audio")
    print(f"  wall            {r['wall_s']:.1f} s end to end = {r['audio_seconds'] / r['wall_s']:,.0f}x real time")
    if "first_result_s" in r:
        steady = r["last_result_s"] - r["first_result_s"]
        print(f"  first result    {r['first_result_s']:.1f} s after start (start-up: imports, workers, model)")
        print(f"  steady          {(r['results'] - 1) / steady:.2f} tracks/s between first and last result "
              f"({steady:.1f} s)")
    print(f"  CPU (tree)      {r['cpu_s']:.1f} s = {r['audio_seconds'] / r['cpu_s']:,.0f} audio s per CPU s")
    print(f"  peak RSS (tree) {r['peak_rss'] / MiB:,.0f} MiB")
    if "dataset_bytes" in r:
        print(f"  dataset         {r['dataset_bytes'] / MiB:.2f} MiB in {r['dataset_files']} files = "
              f"{r['dataset_bytes'] / max(r['tracks'], 1):,.0f} bytes per track")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--workers", type=int, default=2, help="local worker processes, and Ray actors (default 2)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child_main(args.child)
    if not args.data.is_dir():
        sys.exit(f"{args.data}: no such folder (ost-dev lives in ../shared/data/ost-dev)")
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{args.data}, {args.workers} workers, {os.cpu_count()} CPUs; each engine in a fresh child process")
    results, vector_files = {}, {}
    with tempfile.TemporaryDirectory(prefix="songspace-bench-vectors-") as tmp:
        for engine in ("local", "ray", "ray-data"):
            vector_files[engine] = str(Path(tmp) / f"{engine}.npz")
            results[engine] = run_measured([engine, str(args.data.resolve()), str(args.workers), vector_files[engine]])
            show(engine, results[engine])
        cosines = {e: min_cosine(vector_files["local"], vector_files[e]) for e in ("ray", "ray-data")}
    commits = writer_rate()

    local, ray = results["local"], results["ray"]
    cpu_per_track = local["cpu_s"] / local["tracks"]
    mean_track = local["audio_seconds"] / local["tracks"]
    steady = {e: (results[e]["results"] - 1) / (results[e]["last_result_s"] - results[e]["first_result_s"])
              for e in ("local", "ray")}
    summary = {
        "tracks_per_core_hour_local": 3600 / cpu_per_track,
        "mean_track_s": mean_track,
        "audio_s_per_cpu_s_local": local["audio_seconds"] / local["cpu_s"],
        "ray_startup_extra_s": ray["first_result_s"] - local["first_result_s"],
        "ray_steady_rate_ratio": steady["ray"] / steady["local"],
        "ray_wall_ratio": ray["wall_s"] / local["wall_s"],
        "ray_data_wall_ratio": results["ray-data"]["wall_s"] / local["wall_s"],
        "ray_cpu_ratio": ray["cpu_s"] / local["cpu_s"],
        "min_cosine_vs_local": {e: c for e, (c, n) in cosines.items()},
        "dataset_bytes_per_track": results["ray-data"]["dataset_bytes"] / results["ray-data"]["tracks"],
        "writer_tracks_per_s": commits,
    }
    print("\n[summary]")
    print(f"  local           {local['audio_seconds'] / local['wall_s']:,.0f}x real time end to end; "
          f"{cpu_per_track:.2f} CPU s per track (mean {mean_track:.0f} s) = "
          f"{summary['tracks_per_core_hour_local']:,.0f} tracks per core-hour")
    print(f"  index --ray     {ray['audio_seconds'] / ray['wall_s']:,.0f}x real time end to end "
          f"({summary['ray_wall_ratio']:.2f}x local's wall time); start-up +{summary['ray_startup_extra_s']:.1f} s; "
          f"steady rate {summary['ray_steady_rate_ratio']:.2f}x local's; CPU {summary['ray_cpu_ratio']:.2f}x local's")
    print(f"  embed --ray     {results['ray-data']['wall_s']:.1f} s wall ({summary['ray_data_wall_ratio']:.2f}x local index)")
    print(f"  one writer      {commits:,.0f} tracks/s committed (vector + 160 segments, fsynced): enough for "
          f"{commits * cpu_per_track:,.0f} analysing cores at local's CPU s per track")
    for e, (c, n) in cosines.items():
        print(f"  vectors         {e}: smallest cosine to local {c:.5f} over {n} tracks "
              f"({'PASS' if c >= 0.999 else 'MISS'} >= 0.999)")
    out = args.out / "ray_index.json"
    out.write_text(json.dumps({"engines": results, "summary": summary, "workers": args.workers,
                               "cpus": os.cpu_count()}, indent=2, default=str))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
