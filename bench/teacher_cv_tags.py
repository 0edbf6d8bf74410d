"""How well a tags head learns the teacher from each package-CV fold model's vectors.

    OMP_NUM_THREADS=1 nice .venv/bin/python bench/teacher_cv_tags.py /work/corpus2/music \
        --base /work/corpus/music --corpus-cache /tmp/model-cv/cache MODEL.safetensors ...

Each MODEL is a fold model written by `bench/package_cv.py --save-models` (its JSON names its
fold and seed). For each: the track vectors of the base corpus's tracks from the kept corpus's
segments (as package_cv scores folds: `crossval.embed_segments`), a ridge head (as
scripts/train-tags-head.py: the 20 tags of its vocabulary, logits, L2 0.1) fitted on the tracks
of the other folds, and its macro ROC-AUC against the teacher on the held-out fold (each tag's
positives: the top quarter of the fold's tracks by the teacher's probability). Does the teacher
as an auxiliary loss (docs/results.md) leave the vectors knowing more of the tags?
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def head_script():
    """scripts/train-tags-head.py as a module (its vocabulary, ridge and AUC)."""
    spec = importlib.util.spec_from_file_location("train_tags_head", ROOT / "scripts" / "train-tags-head.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path, help="the corpus the folds were run on (its music folder)")
    ap.add_argument("models", type=Path, nargs="+")
    ap.add_argument("--base", type=Path, help="package_cv's --base, if it had one")
    ap.add_argument("--corpus-cache", type=Path, required=True, help="package_cv's kept corpus")
    ap.add_argument("--teacher", type=Path, default=ROOT / "data/teacher/corpus-tags.npz")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--fold-seed", type=int, default=0)
    ap.add_argument("--segments-per-track", type=int, default=16)
    ap.add_argument("--l2", type=float, default=0.1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from songspace.crossval import embed_segments, package_folds
    from songspace.features import FeatureConfig
    from songspace.models.checkpoint import load_model
    from songspace.models.files import read_config
    from songspace.teacher import read_targets
    from songspace.training import Corpus, TrainConfig, read_releases
    from songspace.workers import one_thread

    one_thread()
    tags = head_script()
    package_of = read_releases([args.corpus])
    base = set(read_releases([args.base or args.corpus]).values())
    paths = sorted(package_of)
    folds = package_folds([package_of[p] for p in paths if package_of[p] in base], args.folds, args.fold_seed)
    cfg = TrainConfig(steps=1, minutes=None, segments_per_track=args.segments_per_track)
    corpus = Corpus(paths, FeatureConfig(**read_config(None)["features"]), cfg, args.corpus_cache, keep=True)
    has, _ = read_targets(args.teacher, corpus.all_paths)
    rows = np.array([r for r in corpus.rows if has[r]])
    # The teacher's probabilities per row, merged into the head's vocabulary as train-tags-head does.
    with np.load(args.teacher) as f:
        teacher = {k: f[k] for k in ("paths", "tags", "probs")}
    where = {str(p): i for i, p in enumerate(teacher["paths"])}
    merged = tags.merged(teacher)
    order = []
    for r in rows:
        parts = Path(corpus.all_paths[r]).parts
        order.append(next(where[t] for t in ("/".join(parts[-k:]) for k in range(len(parts), 0, -1)) if t in where))
    y_prob = merged[order]
    y = tags.logit(y_prob)
    fold_of = np.array([next(f for f, pk in enumerate(folds) if package_of[corpus.all_paths[r]] in pk) for r in rows])

    out = []
    for path in args.models:
        info = json.loads(path.with_suffix(".json").read_text())["info"]
        f = info["fold"]
        x = embed_segments(load_model(path), corpus.data[rows]).astype(np.float64)
        w, b = tags.ridge(x[fold_of != f], y[fold_of != f], args.l2)
        held = fold_of == f
        auc = tags.aucs(x[held] @ w.T + b, y_prob[held])
        row = {"model": path.name, "method": info["method"], "seed": info["seed"], "fold": f,
               "tracks": int(held.sum()), "macro_auc": float(np.nanmean(auc)),
               "genre_auc": float(np.nanmean(auc[:13])), "mood_auc": float(np.nanmean(auc[13:]))}
        out.append(row)
        print(f"{row['method']} seed {row['seed']} fold {f}: macro AUC {row['macro_auc']:.3f} "
              f"(genres {row['genre_auc']:.3f}, moods {row['mood_auc']:.3f}) on {row['tracks']} held-out tracks", flush=True)
    del corpus.data
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
