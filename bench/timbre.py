"""A timbre companion (songspace.timbre; Musly itself through pymusly) measured alone and fused
with the shipped model at score level, with its cost beside the whole analysis of the same
tracks in the same run.

  .venv/bin/python bench/track_features.py ../shared/data/ost-dev/labels.csv --out bench/out/ost-dev.npz
  .venv/bin/python bench/timbre.py bench/out/ost-dev.npz [bench/out/corpus.npz ...]

Methods (leave-one-out, evaluate's scoring):
  songspace         cosine of the shipped model's vectors (the baseline)
  gauss-skl         one Gaussian over MFCCs 1-20 of the log-mel, symmetric KL, stored as float16
                    (460 bytes per track; the figures use the stored, rounded values)
  musly             pymusly's "timbre" jukebox (Musly 2.0: 25 MFCCs, Jensen-Shannon-like, its
                    own mutual-proximity normalisation over the set), when installed
  fused z w=...     w * z(cosine) + (1 - w) * z(timbre similarity), z-scored per query row
  fused MP w=...    the same over the Gaussian mutual proximity of each (songspace.hubness)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from songspace import hubness, timbre
from songspace.evaluate import usable

WEIGHTS = (0.5, 0.7, 0.8, 0.9)


def cosine(v):
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return v @ v.T


def gauss_divergence(z) -> np.ndarray:
    packed = [timbre.unpack(timbre.pack(m, c)) for m, c in zip(z["means"], z["covs"])]
    t = timbre.TimbreSet(np.stack([m for m, _ in packed]), np.stack([c for _, c in packed]))  # ridge inside
    return t.divergence()


def _musly_matrix(blobs, leave_out=()):
    import pymusly

    pymusly.set_musly_loglevel(0)
    box = pymusly.MuslyJukebox("timbre")
    tracks = [box.deserialize_track(bytes(b)) for b in blobs]
    rng = np.random.default_rng(0)
    # Musly's advice: <= 1000 random tracks set the style (its normalisation).
    box.set_style([tracks[i] for i in rng.permutation(len(tracks))[:1000] if i not in set(leave_out)])
    pairs = list(zip(range(len(tracks)), tracks))
    box.add_tracks(pairs)
    return np.array([box.compute_similarity(p, pairs) for p in pairs], dtype=np.float64)  # distances


def musly_distance(z) -> np.ndarray | None:
    blobs = list(z["musly"])
    if not blobs or not blobs[0]:
        return None
    d = _musly_matrix(blobs)
    nan_rows = np.flatnonzero(np.isnan(d).sum(axis=1) > len(d) // 2)
    if len(nan_rows):  # a track Musly could not model also spoils the style: set it without them
        print(f"musly: style set again without {len(nan_rows)} tracks with NaN distances")
        d = _musly_matrix(blobs, nan_rows)
    # Musly gives NaN against a track it could not model (one corpus track: all of its row and
    # column): such a track is taken as far from everything.
    # Musly gives NaN (and 0 after its normalisation) against a track it could not model: such
    # a track would be everyone's nearest. It is taken as far from everything.
    off = ~np.eye(len(d), dtype=bool)
    broken = np.flatnonzero((np.isnan(d) | (d <= 0))[off].reshape(len(d), -1).mean(axis=1) > 0.5)
    if len(broken):
        print(f"musly: {len(broken)} tracks it could not model, taken as farthest: "
              + ", ".join(str(z["paths"][i]) for i in broken[:5]))
    d[np.isnan(d)] = np.nanmax(d)
    d[broken, :] = d[:, broken] = np.nanmax(d)
    np.fill_diagonal(d, 0.0)
    return d


def row_z(s: np.ndarray) -> np.ndarray:
    off = np.where(np.eye(len(s), dtype=bool), np.nan, s)
    return (s - np.nanmean(off, axis=1, keepdims=True)) / np.maximum(np.nanstd(off, axis=1, keepdims=True), 1e-12)


def gaussian_mp(d: np.ndarray) -> np.ndarray:
    """Gaussian mutual proximity of a full distance matrix (moments over each row, itself left out)."""
    off = np.where(np.eye(len(d), dtype=bool), np.nan, d)
    mu, sd = np.nanmean(off, axis=1), np.maximum(np.nanstd(off, axis=1), 1e-12)
    return hubness.mutual_proximity(1.0 - d, mu[:, None], sd[:, None], mu[None, :], sd[None, :])


def score(name: str, s: np.ndarray, labels: dict, row: dict) -> None:
    row["method"] = name
    row.update(hubness.hub_statistics(s, 5))
    for column, lab in labels.items():
        keep = np.array([usable(str(x)) for x in lab])
        r = hubness.ranking_scores(s[np.ix_(keep, keep)], lab[keep])
        row.update({f"{column} p@1": r["p@1"], f"{column} p@5": r["p@5"], f"{column} map": r["map"]})


def run(path: Path) -> list[dict]:
    z = np.load(path, allow_pickle=True)
    labels = {k[len("label_"):]: z[k] for k in z.files if k[len("label_"):] in ("album", "artist")}
    cos = cosine(z["vectors"])
    timbres = {"gauss-skl": -np.log1p(gauss_divergence(z))}  # similarity; log: SKL is heavy-tailed
    md = musly_distance(z)
    if md is not None:
        timbres["musly"] = -md
    matrices = {"songspace": cos, **timbres}
    d_cos = 1.0 - cos
    for tname, t in timbres.items():
        zc, zt = row_z(cos), row_z(t)
        mc, mt = gaussian_mp(d_cos), gaussian_mp(-t)
        for w in WEIGHTS:
            matrices[f"songspace + {tname}, z w={w}"] = w * zc + (1 - w) * zt
        for w in WEIGHTS:
            matrices[f"songspace + {tname}, MP w={w}"] = w * mc + (1 - w) * mt
    matrices["songspace, MP alone"] = gaussian_mp(d_cos)
    rows = []
    for name, s in matrices.items():
        row = {"set": path.stem}
        score(name, s, labels, row)
        rows.append(row)
    return rows


def costs(path: Path) -> str:
    z = np.load(path, allow_pickle=True)
    t = {k[len("time_"):]: z[k] for k in z.files if k.startswith("time_")}
    analysis = t["analysis"].sum()
    musly_bytes = np.mean([len(b) for b in z["musly"]]) if len(z["musly"]) and z["musly"][0] else 0
    return (f"{path.stem}: {len(t['analysis'])} tracks, {t['seconds'].sum() / 60:.0f} min; CPU s: analysis "
            f"(decode 16 kHz + CNN) {analysis:.1f}; gauss-skl {t['timbre'].sum():.2f} "
            f"({100 * t['timbre'].sum() / analysis:.1f}% of analysis; +{t['logmel'].sum():.1f} s "
            f"= {100 * (t['timbre'].sum() + t['logmel'].sum()) / analysis:.1f}% if the log-mel is computed again), "
            f"460 bytes/track; musly {t['musly'].sum():.1f} ({100 * t['musly'].sum() / analysis:.0f}%; "
            f"its 22 kHz decode {t['decode22k'].sum():.1f} more), {musly_bytes:.0f} bytes/track; "
            f"MFCC baseline {t['mfcc'].sum():.1f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", type=Path, nargs="+")
    args = ap.parse_args(argv)
    rows = []
    for path in args.sets:
        print(costs(path))
        rows += run(path)
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in ("set", "method")]
    print("| set | method | " + " | ".join(keys) + " |")
    print("| --- | --- |" + " ---: |" * len(keys))
    for r in rows:
        print(f"| {r['set']} | {r['method']} | " + " | ".join(f"{r[k]:.3f}" if k in r else "–" for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
