"""Train the tags head on the teacher's corpus targets and write it into a model file.

    .venv/bin/python bench/track_features.py /work/corpus/music/MANIFEST.tsv --out bench/out/corpus.npz --no-mfcc
    .venv/bin/python bench/track_features.py ../shared/data/ost-dev/labels.csv --out bench/out/ost-dev.npz
    .venv/bin/python scripts/train-tags-head.py --vectors bench/out/corpus.npz \
        --eval-vectors bench/out/ost-dev.npz [--write src/songspace/weights/default.safetensors]

Inputs: the teacher's tag probabilities (`scripts/teacher-tags.py`, committed under
data/teacher/) and the shipped model's track vectors of the same tracks (bench/track_features.py's
cache: the vector indexing stores). The head is ridge regression from the vector to the logit of
the teacher's probability, one output per tag (closed form, deterministic); its L2 weight is
chosen by package-grouped cross-validation on the corpus. ost-dev is only scored, never used to
choose anything. Prints per-tag ROC-AUC against the teacher on ost-dev and on the held-out
corpus folds, and the cost of predicting per track.

AUC: the teacher gives probabilities, not labels, so each tag's positives are the tracks of the
top quarter of the teacher's probability for that tag in the scored set (28 of ost-dev's 112),
the rest negatives; the head's probability ranks them. A second figure takes the positives as
the tracks above the teacher's corpus 75th percentile (no ost-dev statistics at all), where a
tag needs at least 5 positives and 5 negatives on ost-dev to be scored.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from songspace.models.tags_head import TagsHead, add_head

# The vocabulary: (tag, group, the teacher's MSD tags it is the mean of). Genres and moods of the
# MSD set; left out: decades (00s, 80s...), singers (female vocalists...), scenes that are not a
# sound (indie, alternative), instruments (guitar, acoustic) and "instrumental" (all game music).
VOCABULARY = [
    ("rock", "genre", ["rock", "classic rock", "hard rock", "alternative rock", "indie rock", "Progressive rock"]),
    ("metal", "genre", ["metal", "heavy metal"]),
    ("punk", "genre", ["punk"]),
    ("pop", "genre", ["pop", "indie pop"]),
    ("electronic", "genre", ["electronic", "electronica", "electro"]),
    ("dance", "genre", ["dance", "House"]),
    ("ambient", "genre", ["ambient"]),
    ("experimental", "genre", ["experimental"]),
    ("jazz", "genre", ["jazz"]),
    ("blues", "genre", ["blues"]),
    ("folk", "genre", ["folk", "country"]),
    ("soul", "genre", ["soul", "rnb", "funk"]),
    ("hip-hop", "genre", ["Hip-Hop"]),
    ("calm", "mood", ["chillout", "chill", "Mellow", "easy listening"]),
    ("beautiful", "mood", ["beautiful"]),
    ("happy", "mood", ["happy"]),
    ("sad", "mood", ["sad"]),
    ("party", "mood", ["party"]),
    ("catchy", "mood", ["catchy"]),
    ("sexy", "mood", ["sexy"]),
]


def merged(teacher: np.lib.npyio.NpzFile) -> np.ndarray:
    """(tracks, len(VOCABULARY)) teacher probabilities of the vocabulary's tags."""
    tags = [str(t) for t in teacher["tags"]]
    probs = teacher["probs"].astype(np.float64)
    return np.stack([probs[:, [tags.index(t) for t in members]].mean(axis=1) for _, _, members in VOCABULARY], axis=1)


def aligned(teacher_file: Path, vectors_file: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(vectors, targets, relative paths) of the tracks in both files, matched by path suffix."""
    teacher = np.load(teacher_file)
    cache = np.load(vectors_file, allow_pickle=True)
    where = {}
    for n, p in enumerate(cache["paths"]):
        where[str(p)] = n
    rel = [str(p) for p in teacher["paths"]]
    index = []
    for p in rel:
        hits = [n for full, n in where.items() if full.endswith("/" + p)]
        if len(hits) != 1:
            raise SystemExit(f"{p}: {len(hits)} matches in {vectors_file}")
        index.append(hits[0])
    keep = teacher["patches"] > 0
    return cache["vectors"][index][keep].astype(np.float64), merged(teacher)[keep], [p for p, k in zip(rel, keep) if k]


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def ridge(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights (tags, dim) and bias (tags,) of ridge regression of y on x (bias not penalised)."""
    mx, my = x.mean(axis=0), y.mean(axis=0)
    xc = x - mx
    w = np.linalg.solve(xc.T @ xc + lam * np.eye(x.shape[1]), xc.T @ (y - my))
    return w.T, my - mx @ w


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC-AUC by ranks (ties share their mean rank)."""
    from scipy.stats import rankdata

    n_pos, n_neg = positive.sum(), (~positive).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def aucs(pred: np.ndarray, target: np.ndarray, thresholds: np.ndarray | None = None, least: int = 1) -> np.ndarray:
    """Per-tag AUC of `pred` against the teacher's `target` binarised: above `thresholds`, or
    (None) the top quarter of the set itself. NaN where fewer than `least` positives or negatives."""
    out = []
    for t in range(target.shape[1]):
        cut = np.quantile(target[:, t], 0.75) if thresholds is None else thresholds[t]
        positive = target[:, t] > cut
        few = min(positive.sum(), (~positive).sum()) < least
        out.append(float("nan") if few else auc(pred[:, t], positive))
    return np.array(out)


def package_folds(paths: list[str], k: int) -> np.ndarray:
    """Fold of each track: its package (the path's first part), packages dealt largest first."""
    packages = [p.split("/")[0] for p in paths]
    sizes = {q: packages.count(q) for q in set(packages)}
    load, fold_of = [0] * k, {}
    for q in sorted(sizes, key=lambda q: (-sizes[q], q)):
        f = int(np.argmin(load))
        fold_of[q] = f
        load[f] += sizes[q]
    return np.array([fold_of[q] for q in packages])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", type=Path, default=ROOT / "data/teacher/corpus-tags.npz")
    parser.add_argument("--vectors", type=Path, required=True, help="bench/track_features.py's cache of the corpus")
    parser.add_argument("--eval-teacher", type=Path, default=ROOT / "data/teacher/ost-dev-tags.npz")
    parser.add_argument("--eval-vectors", type=Path, help="bench/track_features.py's cache of ost-dev")
    parser.add_argument("--write", type=Path, help="a model file to write the head into (its encoder must have made --vectors)")
    parser.add_argument("--model-id", help="the model id --vectors came from (recorded in the head)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write every figure here too")
    args = parser.parse_args()

    x, y_prob, paths = aligned(args.teacher, args.vectors)
    y = logit(y_prob)
    names = [v[0] for v in VOCABULARY]
    folds = package_folds(paths, args.folds)
    report: dict = {"tracks": len(paths), "tags": names}

    # The L2 weight, by package-grouped cross-validation on the corpus: macro AUC over held-out folds.
    cv = {}
    for lam in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0):
        pred = np.zeros_like(y)
        for f in range(args.folds):
            w, b = ridge(x[folds != f], y[folds != f], lam)
            pred[folds == f] = x[folds == f] @ w.T + b
        cv[lam] = aucs(pred, y_prob)
        print(f"lambda {lam:<5} corpus package-CV macro AUC {np.nanmean(cv[lam]):.3f}")
    lam = max(cv, key=lambda k: np.nanmean(cv[k]))
    report.update(lam=lam, cv_macro={str(k): float(np.nanmean(v)) for k, v in cv.items()},
                  cv_per_tag=dict(zip(names, map(float, cv[lam]))))

    w, b = ridge(x, y, lam)
    head = TagsHead(tuple(names), tuple(v[1] for v in VOCABULARY), w.astype(np.float32), b.astype(np.float32),
                    {"teacher": "musicnn 0.1.0 MSD_musicnn (Pons & Serra 2019, ISC licence): Last.fm tags of the Million Song Dataset",
                     "members": {n: m for n, _, m in VOCABULARY},
                     "trained_on": f"{len(paths)} tracks of the training corpus (data/teacher/corpus-tags.npz)",
                     "method": f"ridge regression to the teacher's logits, L2 {lam} (package-grouped {args.folds}-fold CV)",
                     "vectors_of": args.model_id or "",
                     "cv_macro_auc": round(float(np.nanmean(cv[lam])), 4)})

    # Each tag's mean probability over the corpus: autotags stores per track the tag most above its
    # mean, as raw probabilities would give nearly every game track "electronic" and "calm".
    head.info["prior"] = [round(float(v), 6) for v in head.probabilities(x.astype(np.float32)).mean(axis=0)]

    if args.eval_vectors:
        xe, ye, _ = aligned(args.eval_teacher, args.eval_vectors)
        pe = head.probabilities(xe.astype(np.float32))
        quarter = aucs(pe, ye)
        corpus_cut = aucs(pe, ye, np.quantile(y_prob, 0.75, axis=0), least=5)
        spearman = [float(np.corrcoef(np.argsort(np.argsort(pe[:, t])), np.argsort(np.argsort(ye[:, t])))[0, 1])
                    for t in range(len(names))]
        print(f"\n{'tag':<13}{'group':<7}{'corpus CV':>10}{'ost-dev AUC':>12}{'AUC (corpus cut)':>17}{'positives':>10}{'Spearman':>9}")
        cut = np.quantile(y_prob, 0.75, axis=0)
        for t, n in enumerate(names):
            print(f"{n:<13}{VOCABULARY[t][1]:<7}{cv[lam][t]:>10.3f}{quarter[t]:>12.3f}{corpus_cut[t]:>17.3f}"
                  f"{int((ye[:, t] > cut[t]).sum()):>10}{spearman[t]:>9.3f}")
        print(f"{'macro':<20}{np.nanmean(cv[lam]):>10.3f}{np.nanmean(quarter):>12.3f}{np.nanmean(corpus_cut):>17.3f}"
              f"{'':>10}{np.mean(spearman):>9.3f}")
        report.update(ost_dev_auc=dict(zip(names, map(float, quarter))), ost_dev_macro=float(np.nanmean(quarter)),
                      ost_dev_auc_corpus_cut=dict(zip(names, map(float, corpus_cut))),
                      ost_dev_macro_corpus_cut=float(np.nanmean(corpus_cut)),
                      ost_dev_spearman=dict(zip(names, spearman)))
        head.info["ost_dev_macro_auc"] = round(float(np.nanmean(quarter)), 4)

    # Cost: the head over 100,000 vectors at once, as the end of `index` runs it.
    many = np.random.default_rng(0).standard_normal((100_000, x.shape[1])).astype(np.float32)
    began = time.process_time()
    for _ in range(5):
        head.probabilities(many)
    per_track = (time.process_time() - began) / 5 / len(many)
    print(f"\ncost: {per_track * 1e6:.2f} CPU-µs per track (100,000 vectors per call)")
    report["cpu_seconds_per_track"] = per_track

    if args.write:
        add_head(args.write, head)
        print(f"head written into {args.write}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
