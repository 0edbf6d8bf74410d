"""Memory of training on a large library: the training corpus lives on disk, not in RAM.

    .venv/bin/python bench/training_memory.py [--tracks 10000] [--steps 30] [--out bench/out]

Writes --tracks short synthetic tracks (8 s each, the demo styles, .flac; built once and cached
in --out), then runs `songspace train` on all of them in a child process for --steps steps, with
the RSS of the whole process tree (the child and its decoding workers) sampled every ~50 ms.
Track length does not change the corpus: every track gives `segments_per_track` log-mel
segments whatever its length, so 10,000 short tracks make the same corpus as 10,000 songs.

Compared in the same run against the naive design: the same segments held in RAM as float32
(the size is computed, not run: it would not fit on a small machine, which is the point).
"Peak RSS" counts the memory-mapped corpus pages the process has touched; the kernel can drop
those at will, so "peak anonymous RSS" (what the process really holds) is the figure that
matters. A benchmark: it prints figures and never fails on them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from index_speed import DEFAULT_OUT, MiB, RssSampler

GiB = 2**30
TRACK_SECONDS = 8.0


def synthetic_library(folder: Path, n: int) -> list[Path]:
    from songspace.synth import STYLES, synth_track, write_audio

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:05d}.flac" for i in range(n)]
    t0 = time.perf_counter()
    for i, path in enumerate(paths):
        if not path.exists():
            y = synth_track(STYLES[i % len(STYLES)], TRACK_SECONDS, sr=16000, seed=i)
            # Written beside the folder, then moved in: an interrupted run leaves no half file inside.
            write_audio(folder.with_name(folder.name + ".partial.flac"), y, 16000).rename(path)
        if i % 1000 == 999:
            print(f"  synthetic tracks: {i + 1}/{n} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--segments-per-track", type=int, default=8)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()

    folder = args.out / f"train-memory-{args.tracks}"
    print(f"building {args.tracks} synthetic tracks in {folder} (cached)")
    synthetic_library(folder, args.tracks)

    from songspace.features import FeatureConfig
    from songspace.training import TrainConfig

    f, cfg = FeatureConfig(), TrainConfig(segments_per_track=args.segments_per_track)
    values = args.tracks * cfg.segments_per_track * f.n_mels * cfg.segment_frames
    on_disk, naive = values * 2, values * 4  # float16 memmap vs float32 arrays

    cmd = [sys.executable, "-m", "songspace", "train", str(folder), "--out", str(args.out / "train-memory.safetensors"),
           "--steps", str(args.steps), "--segments-per-track", str(args.segments_per_track)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with RssSampler(proc.pid) as mem:
        output, _ = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"training failed (rc={proc.returncode}):\n{output[-3000:]}")

    result = dict(tracks=args.tracks, steps=args.steps, wall_s=round(wall, 1),
                  corpus_on_disk_mib=round(on_disk / MiB), naive_in_ram_mib=round(naive / MiB),
                  peak_rss_mib=round(mem.peak_total / MiB), peak_anon_rss_mib=round(mem.peak_anon / MiB),
                  largest_process_mib=round(mem.peak_single / MiB), samples=mem.samples)
    print(output.strip().splitlines()[-1])
    print(f"\n{args.tracks} tracks, {cfg.segments_per_track} segments each, {args.steps} steps, {wall:.0f} s")
    print(f"  corpus (float16 memmap on disk)        {on_disk / GiB:6.2f} GiB")
    print(f"  baseline: same segments in RAM, f32    {naive / GiB:6.2f} GiB")
    print(f"  peak RSS, process tree                 {mem.peak_total / GiB:6.2f} GiB (includes droppable corpus pages)")
    print(f"  peak anonymous RSS, process tree       {mem.peak_anon / GiB:6.2f} GiB")
    (args.out / "training_memory.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
