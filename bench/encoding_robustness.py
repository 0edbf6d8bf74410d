"""How far a track's vector moves when the same recording is encoded or edited differently.

    .venv/bin/python bench/encoding_robustness.py [--data ../shared/data/ost-dev] [--model default]

For every ost-dev track: decode at 44.1 kHz, write the variants of `songspace.variants`
(mp3 at 64 kbit/s, Opus at 48 kbit/s, 6 dB quieter, first 5 s trimmed) to a temp folder,
embed the original file and each variant with the model, and report per variant the mean,
5th percentile and worst cosine to the original, and which track was worst. The MFCC baseline
(hand-crafted statistics, standardised by the originals' mean and spread as `evaluate` does)
goes through the same variants in the same run. Targets (issue 12):
mean >= 0.98, worst >= 0.95. A benchmark: it prints, it never fails on the figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from songspace import audio  # noqa: E402
from songspace.baselines import mfcc_file, standardise  # noqa: E402
from songspace.embedding import Embedder  # noqa: E402
from songspace.evaluate import read_labels  # noqa: E402
from songspace.method import resolve  # noqa: E402
from songspace.variants import VARIANTS, write_variants  # noqa: E402

SR = 44100


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "ost-dev"))
    ap.add_argument("--model", default=None, help="model file (default: the shipped one)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N tracks")
    args = ap.parse_args()
    labels = Path(args.data) / "labels.csv"
    if not labels.exists():
        print(f"skipped: {labels} is not here")
        return
    paths = read_labels(labels).paths[: args.limit]
    embedder = Embedder(resolve(args.model).name)  # None or "default": the shipped model
    methods = {embedder.model_id: lambda p: embedder.embed_file(p).vector, "mfcc baseline": lambda p: mfcc_file(p)[0]}
    names = ("original", *VARIANTS)
    vectors = {m: {n: [] for n in names} for m in methods}
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(paths):
            files = {"original": path, **write_variants(audio.load(path, sr=SR).y, SR, tmp, f"{i:03d}")}
            for method, embed in methods.items():
                for name, file in files.items():
                    vectors[method][name].append(embed(file))
            print(f"{i + 1}/{len(paths)}", end="\r", file=sys.stderr)
    cosines = {}
    for method, by_name in vectors.items():
        V = {n: np.stack(v).astype(np.float64) for n, v in by_name.items()}
        if method == "mfcc baseline":
            mean, std = V["original"].mean(axis=0), V["original"].std(axis=0)
            V = {n: standardise(v, mean, std) for n, v in V.items()}
        V = {n: v / np.linalg.norm(v, axis=1, keepdims=True) for n, v in V.items()}
        cosines[method] = {n: (V["original"] * V[n]).sum(axis=1) for n in VARIANTS}
    print(f"{len(paths)} tracks from {args.data}\n")
    print("| method | variant | mean | 5th percentile | worst | worst track |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for method, by_variant in cosines.items():
        for variant, c in by_variant.items():
            c = np.array(c)
            worst = Path(paths[int(c.argmin())])
            print(f"| {method} | {variant} | {c.mean():.4f} | {np.percentile(c, 5):.4f} | {c.min():.4f} | "
                  f"{worst.parent.name}/{worst.name} |")


if __name__ == "__main__":
    main()
