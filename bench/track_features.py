"""Per-track features of a labelled set, computed once and cached for bench/hubness.py and
bench/timbre.py: the shipped model's vector, MFCC statistics (the baseline), the numpy
Musly-style Gaussian (songspace.timbre) and a real Musly track (pymusly, if installed), with the
time each took on each track, all in the same worker on the same decoded audio.

  .venv/bin/python bench/track_features.py ../shared/data/ost-dev/labels.csv --out bench/out/ost-dev.npz
  .venv/bin/python bench/track_features.py /work/corpus/music/MANIFEST.tsv --out bench/out/corpus.npz

A labels.csv (path, album, artist, ...) or a corpus MANIFEST.tsv (package, file, ...: label
"album" = package). Timing per track: `analysis` = decode at 16 kHz + the shipped model's patch
vectors (what indexing does per track, less the catalog write); `timbre` = the DCT + covariance
on the log-mel (which indexing already computes; `logmel` is the time to compute it again);
`musly` = pymusly's analysis of the same track decoded at 22,050 Hz (`decode22k`: that decode).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

# A private numba cache: librosa's cached kernels in a shared venv's __pycache__ crashed
# (segmentation fault in chroma_stft) here, and a fresh cache did not.
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), "numba-songspace-bench"))

_state = {}


def read_set(source: Path) -> tuple[list[str], dict[str, list[str]]]:
    if source.suffix == ".tsv":  # scripts/fetch-training-corpus.sh's MANIFEST.tsv
        with open(source, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        return [str(source.parent / r["file"]) for r in rows], {"album": [r["package"] for r in rows]}
    from songspace.evaluate import read_labels

    data = read_labels(source)
    return data.paths, data.labels


def _init(options=None):
    import torch

    _state.update(options or {})

    torch.set_num_threads(1)
    from songspace.embedding import Embedder

    _state["embedder"] = Embedder(device=torch.device("cpu"))
    try:
        import pymusly

        pymusly.set_musly_loglevel(0)
        _state["jukebox"] = pymusly.MuslyJukebox("timbre")
    except ImportError:
        _state["jukebox"] = None


def _one(task: tuple[int, str]) -> dict:
    from songspace import audio, timbre
    from songspace.baselines import SR, mfcc_statistics
    from songspace.features import log_mel

    i, path = task
    e = _state["embedder"]
    out = {"i": i}
    try:
        t0 = time.perf_counter()
        a = audio.load(path, sr=e.features.sr)
        t1 = time.perf_counter()
        out["vector"] = e.embed_waveform(a.y)
        t2 = time.perf_counter()
        S = log_mel(a.y, e.features).numpy()
        t3 = time.perf_counter()
        out["mean"], out["cov"] = timbre.gaussian(S)
        t4 = time.perf_counter()
        seconds = _state.get("musly_seconds")
        if seconds and not _state.get("mfcc", True):  # decode only Musly's centred excerpt
            a22 = audio.load(path, sr=SR, max_seconds=seconds, window_seconds=seconds)
        else:
            a22 = audio.load(path, sr=SR)
        t5 = time.perf_counter()
        out["mfcc"] = mfcc_statistics(a22.y, SR) if _state.get("mfcc", True) else np.zeros(1, np.float32)
        t6 = time.perf_counter()
        if _state["jukebox"] is not None:
            y = a22.y
            if seconds and len(y) > seconds * SR:  # Musly's own default: an excerpt from the middle
                start = (len(y) - int(seconds * SR)) // 2
                y = y[start : start + int(seconds * SR)]
            track = _state["jukebox"].track_from_audiodata(y.tolist())
            out["musly"] = _state["jukebox"].serialize_track(track)
        t7 = time.perf_counter()
    except audio.DecodeError as err:
        out["error"] = str(err)
        return out
    out["times"] = {"decode16k": t1 - t0, "analysis": t2 - t0, "logmel": t3 - t2, "timbre": t4 - t3,
                    "decode22k": t5 - t4, "mfcc": t6 - t5, "musly": t7 - t6, "seconds": a.duration,
                    "kept_seconds": len(a.y) / a.sr}
    return out


def _timbre_only(path: str):
    from songspace import audio, timbre
    from songspace.features import log_mel

    e = _state["embedder"]
    S = log_mel(audio.load(path, sr=e.features.sr).y, e.features).numpy()
    return timbre.gaussian(S)


def update_timbre(npz: Path) -> None:
    """Recompute only the timbre Gaussians of an existing cache (after songspace.timbre changed)."""
    z = dict(np.load(npz, allow_pickle=True))
    _init()
    pairs = [_timbre_only(str(p)) for p in z["paths"]]
    z["means"], z["covs"] = np.stack([m for m, _ in pairs]), np.stack([c for _, c in pairs])
    np.savez(npz, **z)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-mfcc", action="store_true", help="skip the MFCC baseline (the slowest part)")
    ap.add_argument("--musly-seconds", type=float, help="give Musly this long an excerpt from the middle "
                    "(Musly's own default is 30 s); default: all that was decoded")
    ap.add_argument("--update-timbre", action="store_true",
                    help="recompute only the timbre Gaussians in an existing --out")
    args = ap.parse_args(argv)
    if args.update_timbre:
        return update_timbre(args.out)
    options = {"mfcc": not args.no_mfcc, "musly_seconds": args.musly_seconds}
    paths, labels = read_set(args.source)
    results = [None] * len(paths)
    if args.workers <= 1:
        _init(options)
        it = map(_one, enumerate(paths))
    else:
        import multiprocessing as mp

        pool = mp.get_context("spawn").Pool(args.workers, initializer=_init, initargs=(options,))
        it = pool.imap_unordered(_one, enumerate(paths), chunksize=2)
    start = time.monotonic()
    for done, r in enumerate(it, 1):
        results[r["i"]] = r
        if done % 50 == 0 or done == len(paths):
            print(f"{done}/{len(paths)} tracks, {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)
    ok = [r for r in results if "error" not in r]
    for r in results:
        if "error" in r:
            print(f"skipped: {r['error']}", file=sys.stderr)
    keep = [r["i"] for r in ok]
    times = {k: np.array([r["times"][k] for r in ok]) for k in ok[0]["times"]}
    musly = [r.get("musly", b"") for r in ok]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, paths=np.array([paths[i] for i in keep]),
             **{f"label_{c}": np.array([v[i] for i in keep]) for c, v in labels.items()},
             vectors=np.stack([r["vector"] for r in ok]), mfcc=np.stack([r["mfcc"] for r in ok]),
             means=np.stack([r["mean"] for r in ok]), covs=np.stack([r["cov"] for r in ok]),
             musly=np.array(musly, dtype=object), **{f"time_{k}": v for k, v in times.items()})
    total = {k: v.sum() for k, v in times.items()}
    print(f"{len(ok)} tracks, {total['seconds'] / 60:.0f} min of audio; CPU seconds in total: "
          + ", ".join(f"{k} {v:.1f}" for k, v in total.items() if k not in ("seconds", "kept_seconds")))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
