"""The GPU's own embedding rate, and its vectors against the CPU's per-file float32 path.

    python bench/gpu_embedding.py [--data FOLDER] [--device cuda] [--reps 20]

Decodes the audio files under --data once (in this process), then:
  1. embeds them through `gpu.embed_in_batches` (what `index` does with a GPU) and compares each
     track and segment vector with the per-file CPU path in float32 (cosine, worst and mean);
  2. the same in bfloat16 on the device;
  3. times `Embedder.embed_audios` alone on the decoded audio repeated --reps times, in each
     precision, at two batch sizes: the ceiling the GPU puts on indexing, decoding left out.

A benchmark, not a test: it prints figures. Used on a lent H200 (docs/results.md, "Indexing
speed") with --data holding 14 ost-dev clips.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ost-dev")
    p.add_argument("--device", default="cuda")
    p.add_argument("--reps", type=int, default=20, help="times the decoded audio is embedded for the timing")
    args = p.parse_args()

    import torch

    from songspace import gpu
    from songspace.analysis import Task, analyse
    from songspace.embedding import PRECISION_ENV, Embedder

    os.environ[PRECISION_ENV] = "float32"  # the reference: the CPU in float32 (read when an Embedder is made)
    from songspace.models.files import DEFAULT_MODEL
    from songspace.scan import scan

    torch.set_num_threads(1)
    files, _ = scan([str(args.data)])
    model = str(DEFAULT_MODEL)
    ref = {r.path: r for r in map(analyse, [Task(f, model) for f in files]) if r.status == "ok"}
    decoded = [r for r in (analyse(Task(f, model, decode_only=True)) for f in files) if r.status == "decoded"]
    seconds = sum(r.duration for r in decoded)
    print(f"{len(decoded)} files, {seconds:,.0f} s of audio, device {args.device}")

    def compare(results, label: str) -> None:
        tracks = [float(r.vector @ ref[r.path].vector) for r in results]
        segments = []
        for r in results:
            a, b = r.segments.astype(np.float32), ref[r.path].segments.astype(np.float32)
            segments.extend((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))
        print(f"{label}: track cosine against the CPU's float32 per-file path: worst {min(tracks):.6f}, "
              f"mean {np.mean(tracks):.6f}; segment cosine worst {min(segments):.5f}")

    compare(list(gpu.embed_in_batches(decoded, model, args.device)), "float32 through embed_in_batches")
    audios = [r.audio for r in decoded] * args.reps
    for precision in (torch.float32, torch.bfloat16):
        embedder = Embedder(model, device=torch.device(args.device), precision=precision)
        if precision != torch.float32:
            out = embedder.embed_audios([r.audio for r in decoded])
            compare([replace(r, vector=e.vector, segments=e.segments) for r, e in zip(decoded, out)], str(precision))
        for tracks_per_batch in (14, 56):
            embedder.embed_audios(audios[:tracks_per_batch])  # warm-up
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter()
            for i in range(0, len(audios), tracks_per_batch):
                embedder.embed_audios(audios[i : i + tracks_per_batch])  # returns numpy: synchronised
            dt = time.perf_counter() - t
            print(f"embedding alone, {precision}, {tracks_per_batch} tracks per batch: "
                  f"{seconds * args.reps / dt:,.0f}x real time, {len(audios) / dt:,.0f} tracks/s")


if __name__ == "__main__":
    main()
