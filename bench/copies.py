"""Duplicates and identify on real music: copies of ost-dev tracks, found again.

    .venv/bin/python bench/copies.py [--data ../shared/data/ost-dev] [--copies 60] [--excerpts 200]
                                     [--threshold 0.9] [--work DIR] [--seed 0]

1. Copies: for `--copies` originals (drawn with --seed), one copy each, the kinds taking turns:
   re-encoded to another codec and bitrate, start trimmed (2-10 s), end trimmed (2-10 s),
   6 dB quieter, a 10-s excerpt at a random offset. Originals + copies are indexed into a fresh
   library (`Library.index`, default workers). Expected duplicate pairs: each original with its
   copy. `find_duplicates` is scored by precision and recall over those pairs; pairs it finds
   among the originals themselves count as false positives and are printed, to be judged.
2. Identify: `--excerpts` 10-s excerpts of random originals at random offsets, re-encoded to mp3
   at 64 kbit/s (not indexed). Top-1 is right when it names the original or a copy of it, the
   offset translated to the original's time (a copy trimmed by 5 s says 5 s less); the offset
   error is measured in the original's time.

Everything is built in a temp folder (or --work, kept and reused: copies and index are made
once). Prints the figures; a benchmark, it never fails on them. Skips if the data is absent.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from songspace import audio  # noqa: E402
from songspace.library import Library  # noqa: E402
from songspace.recommend.duplicates import DEFAULT_THRESHOLD, find_duplicates  # noqa: E402
from songspace.recommend.identify import identify  # noqa: E402
from songspace.synth import write_audio  # noqa: E402

SR = 44100
KINDS = ("reencode", "trim-start", "trim-end", "quieter-6dB", "excerpt-10s")


def make_copies(originals: list[Path], folder: Path, n: int, rng: random.Random) -> dict[str, tuple[str, float]]:
    """Write one copy for each of n originals; {copy path: (original path, where the copy's
    time 0 lies in the original, seconds)}."""
    folder.mkdir(parents=True, exist_ok=True)
    copies = {}
    for i, src in enumerate(rng.sample(originals, n)):
        kind = KINDS[i % len(KINDS)]
        y = audio.load(src, sr=SR).y
        start = 0.0
        if kind == "reencode":
            ext, rate = {".mp3": (".ogg", 96_000), ".ogg": (".mp3", 96_000)}.get(src.suffix, (".mp3", 128_000))
        elif kind == "trim-start":
            start = rng.uniform(2, 10)
            y, ext, rate = y[int(start * SR):], ".mp3", 160_000
        elif kind == "trim-end":
            y, ext, rate = y[: len(y) - int(rng.uniform(2, 10) * SR)], ".ogg", 112_000
        elif kind == "quieter-6dB":
            y, ext, rate = y * 10 ** (-6 / 20), ".flac", None
        else:
            start = rng.uniform(0, len(y) / SR - 10)
            y, ext, rate = y[int(start * SR): int((start + 10) * SR)], ".mp3", 128_000
        out = folder / f"{i:03d}-{kind}-{src.stem}{ext}"
        write_audio(out, y, SR, bit_rate=rate)
        copies[str(out.resolve())] = (str(src.resolve()), start)
    return copies


def make_excerpts(originals: list[Path], folder: Path, n: int, rng: random.Random) -> list[tuple[Path, str, float]]:
    """n 10-s excerpts at random offsets, as 64 kbit/s mp3: (file, original, offset)."""
    folder.mkdir(parents=True, exist_ok=True)
    decoded: dict[Path, np.ndarray] = {}
    found = []
    for i in range(n):
        src = rng.choice(originals)
        y = decoded.setdefault(src, audio.load(src, sr=SR).y)
        start = rng.uniform(0, len(y) / SR - 10)
        out = write_audio(folder / f"{i:03d}.mp3", y[int(start * SR): int((start + 10) * SR)], SR, bit_rate=64_000)
        found.append((out, str(src.resolve()), start))
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ost-dev")
    p.add_argument("--copies", type=int, default=60)
    p.add_argument("--excerpts", type=int, default=200)
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, help="keep copies and library here and reuse them (default: a temp folder)")
    args = p.parse_args()
    if not (args.data / "labels.csv").exists():
        print(f"skipped: {args.data}/labels.csv not found")
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(args, args.work or Path(tmp))


def run(args, work: Path) -> None:
    rng = random.Random(args.seed)
    with open(args.data / "labels.csv", newline="") as f:
        originals = sorted(args.data / row["path"] for row in csv.DictReader(f))
    copy_dir = work / f"copies-{args.seed}-{args.copies}"
    manifest = copy_dir / "manifest.csv"
    t0 = time.perf_counter()
    if manifest.exists():
        with open(manifest, newline="") as f:
            copies = {r["copy"]: (r["original"], float(r["start"])) for r in csv.DictReader(f)}
    else:
        copies = make_copies(originals, copy_dir / "audio", args.copies, rng)
        with open(manifest, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["copy", "original", "start"])
            w.writerows([c, o, s] for c, (o, s) in copies.items())
    excerpts = make_excerpts(originals, work / f"excerpts-{args.seed}", args.excerpts, random.Random(args.seed + 1))
    print(f"made {len(copies)} copies and {len(excerpts)} excerpts in {time.perf_counter() - t0:.0f} s")

    with Library.open(work / "library") as lib:
        t0 = time.perf_counter()
        report = lib.index([args.data, copy_dir / "audio"])
        print(f"indexed: added {report.added}, failed {len(report.failed)} in {time.perf_counter() - t0:.0f} s")
        searcher = lib.searcher()
        by_path = {t.path: t for t in searcher.tracks(searcher.ids().tolist())}
        path_of = {t.id: t.path for t in by_path.values()}
        recording = {path: path for path in by_path}  # path -> the original it is a recording of
        recording.update({c: o for c, (o, _) in copies.items()})
        origin = {c: s for c, (_, s) in copies.items()}  # where a copy's time 0 is in its original

        # -- duplicates --------------------------------------------------------------------------
        expected = {tuple(sorted((by_path[c].id, by_path[o].id))) for c, (o, _) in copies.items()}
        t0 = time.perf_counter()
        pairs = find_duplicates(searcher, threshold=args.threshold)
        took = time.perf_counter() - t0
        got = {(p.a, p.b) for p in pairs}
        tp = len(got & expected)
        print(f"\nduplicates (threshold {args.threshold}): {len(pairs)} pairs found in {took:.1f} s, "
              f"expected {len(expected)}")
        print(f"  precision {tp / max(len(got), 1):.3f}  recall {tp / max(len(expected), 1):.3f}")
        by_kind: dict[str, list[bool]] = {}
        for c in copies:
            kind = next(k for k in KINDS if Path(c).stem.split("-", 1)[1].startswith(k))
            by_kind.setdefault(kind, []).append(tuple(sorted((by_path[c].id, by_path[copies[c][0]].id))) in got)
        print("  recall by kind: " + ", ".join(f"{k} {sum(v)}/{len(v)}" for k, v in by_kind.items()))
        for p in pairs:
            if (p.a, p.b) not in expected:
                print(f"  unexpected: {Path(path_of[p.a]).name} ~ {Path(path_of[p.b]).name} "
                      f"sim {p.similarity:.3f} cov {p.coverage:.2f} A {p.a_span} B {p.b_span}")
        missed = expected - got
        for a, b in sorted(missed):
            print(f"  missed: {Path(path_of[a]).name} ~ {Path(path_of[b]).name}")

        # -- identify ----------------------------------------------------------------------------
        t0 = time.perf_counter()
        right, errors = 0, []
        for path, original, start in excerpts:
            best = identify(searcher, path, k=1)[0]
            if recording.get(best.track.path) == original:
                right += 1
                errors.append(abs(best.offset + origin.get(best.track.path, 0.0) - start))
        took = time.perf_counter() - t0
        errors = np.array(errors)
        print(f"\nidentify: {len(excerpts)} 10-s excerpts, mp3 64 kbit/s, {took:.1f} s "
              f"({1000 * took / len(excerpts):.0f} ms each)")
        print(f"  top-1 accuracy {right / len(excerpts):.3f}")
        if len(errors):
            print(f"  offset error (right track): median {np.median(errors):.2f} s, max {errors.max():.2f} s, "
                  f"within 3 s {np.mean(errors <= 3.0):.3f} (of all excerpts: {np.sum(errors <= 3.0) / len(excerpts):.3f})")


if __name__ == "__main__":
    main()
