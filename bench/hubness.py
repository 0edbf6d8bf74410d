"""Hubness reduction (songspace.hubness) measured: leave-one-out retrieval and hub statistics
with and without rescoring, for the shipped model and the MFCC baseline, from one run.

  .venv/bin/python bench/track_features.py ../shared/data/ost-dev/labels.csv --out bench/out/ost-dev.npz
  .venv/bin/python bench/hubness.py bench/out/ost-dev.npz [bench/out/corpus.npz ...]

Rescoring works as search would: each query's top --candidates by cosine are rescored and put
first in their new order, the rest keep cosine order. Per-track statistics come from the set
itself (as a library's would): local scaling's r = mean cosine to the k nearest neighbours;
mutual proximity's (mu, sd) of the distances to --sample random tracks (all of them when the
set is smaller). Empirical MP uses the full matrix: a reference for the Gaussian form only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from songspace import hubness
from songspace.baselines import standardise
from songspace.evaluate import usable


def load_set(path: Path) -> dict:
    z = np.load(path, allow_pickle=True)
    labels = {k[len("label_"):]: z[k] for k in z.files if k.startswith("label_")}
    data = {"name": path.stem, "labels": labels, "songspace": z["vectors"]}
    if z["mfcc"].shape[1] > 1:  # track_features.py --no-mfcc leaves a placeholder
        data["mfcc"] = standardise(z["mfcc"])
    return data


def cosine(v: np.ndarray) -> np.ndarray:
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return v @ v.T


def variants(sims: np.ndarray, ks, n_candidates: int, sample: int, seed: int = 0) -> dict[str, np.ndarray]:
    """name -> score matrix whose row order is the ranking."""
    n = len(sims)
    off = np.where(np.eye(n, dtype=bool), -np.inf, sims)
    out = {"cosine": off}
    for k in ks:
        r = hubness.neighbourhood_mean(off, k)
        out[f"local scaling k={k}"] = hubness.rescore_top(sims, lambda i, j, s, r=r: hubness.csls(s, r[i], r[j]), n_candidates)
    rng = np.random.default_rng(seed)
    cols = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    sample_sims = sims[:, cols].copy()
    sample_sims[cols, np.arange(len(cols))] = np.nan  # a track's distance to itself is not a sample
    d = 1.0 - sample_sims
    mu, sd = np.nanmean(d, axis=1), np.maximum(np.nanstd(d, axis=1), 1e-6)
    out["mutual proximity (Gaussian)"] = hubness.rescore_top(
        sims, lambda i, j, s: hubness.mutual_proximity(s, mu[i], sd[i], mu[j], sd[j]), n_candidates)
    mp = hubness.empirical_mutual_proximity(sims)
    out["mutual proximity (empirical)"] = hubness.rescore_top(sims, lambda i, j, s: mp[i, j], n_candidates)
    return out


def evaluate_set(data: dict, methods, ks, n_candidates, sample) -> list[dict]:
    rows = []
    for method in [m for m in methods if m in data]:
        sims = cosine(data[method])
        for variant, scores in variants(sims, ks, n_candidates, sample).items():
            row = {"set": data["name"], "method": method, "variant": variant, **hubness.hub_statistics(scores, 5)}
            for column, labels in data["labels"].items():
                keep = np.array([usable(str(x)) for x in labels])
                if keep.sum() < 2:
                    continue
                s = hubness.ranking_scores(scores[np.ix_(keep, keep)], labels[keep])
                row.update({f"{column} p@1": s["p@1"], f"{column} p@5": s["p@5"], f"{column} map": s["map"]})
            rows.append(row)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", type=Path, nargs="+", help="npz files from bench/track_features.py")
    ap.add_argument("--k", type=int, nargs="+", default=[5, 10, 20], help="local scaling's neighbourhood sizes")
    ap.add_argument("--candidates", type=int, default=50, help="ANN candidates rescored per query")
    ap.add_argument("--sample", type=int, default=500, help="tracks sampled for mutual proximity's moments")
    ap.add_argument("--methods", nargs="+", default=["songspace", "mfcc"])
    ap.add_argument("--labels", nargs="+", default=["album", "artist"], help="label columns to score")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    rows = []
    for path in args.sets:
        data = load_set(path)
        data["labels"] = {c: v for c, v in data["labels"].items() if c in args.labels}
        rows += evaluate_set(data, args.methods, args.k, args.candidates, args.sample)
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in ("set", "method", "variant")]
    print("| set | method | rescoring | " + " | ".join(keys) + " |")
    print("| --- | --- | --- |" + " ---: |" * len(keys))
    for r in rows:
        print(f"| {r['set']} | {r['method']} | {r['variant']} | "
              + " | ".join(f"{r[k]:.3f}" if k in r else "–" for k in keys) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
