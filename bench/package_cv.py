"""Package-level cross-validation of the training recipe (songspace.crossval), one command.

  OMP_NUM_THREADS=1 nice .venv/bin/python bench/package_cv.py /work/corpus/music \
      --eval ../shared/data/ost-dev/labels.csv --folds 4 --seeds 0 1 2 --steps 1000

The recipe defaults to the shipped model's (docs/model-card.md): contrastive, 64 tracks per
step, learning rate 1e-3 annealed to 0 (cosine), 16 segments per track; --steps or --minutes
make it shorter. Prints one line per fold and a table of mean +- sd over folds and seeds
(and the spread of the per-seed means), and writes every row to --json. Held-out tracks are
embedded from the segments the corpus keeps of them (see songspace.crossval).

The teacher as an auxiliary loss (docs/results.md, "The teacher as an auxiliary loss"): add
--teacher-tags data/teacher/corpus-tags.npz --teacher-weight 1.

Does a grown corpus help? Same folds (dealt over the smaller corpus's packages), only the
training side grows:

  OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python bench/package_cv.py /work/corpus2/music \
      --base /work/corpus/music --eval ../shared/data/ost-dev/labels.csv --folds 4 --seeds 0 \
      --steps 200 --corpus-cache /tmp/cv-corpus2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path, help="the folder with MANIFEST.tsv (scripts/fetch-training-corpus.sh's DEST/music)")
    ap.add_argument("--eval", type=Path, help="a labels.csv scored beside each fold (e.g. ost-dev)")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--only-folds", type=int, nargs="+", help="run just these folds (0-based)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--minutes", type=float, help="a time budget per fold instead of --steps")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--segments-per-track", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--fold-seed", type=int, default=0, help="how packages are dealt into folds")
    ap.add_argument("--no-references", action="store_true", help="skip the shipped and untrained models")
    ap.add_argument("--workers", type=int, help="decoding processes (default: the machine's)")
    ap.add_argument("--base", type=Path, help="a smaller corpus (its music folder) inside CORPUS: fold over its packages "
                    "and train each fold on the base alone and on the base plus CORPUS's other packages")
    ap.add_argument("--grown-only", action="store_true", help="with --base: train only on the grown corpus (the base's "
                    "runs equal a cross-validation of the base alone with the same seed and steps)")
    ap.add_argument("--base-only", action="store_true", help="with --base: train only on the base (run the two sides "
                    "in two processes)")
    ap.add_argument("--corpus-cache", type=Path, help="keep the decoded corpus here and reuse it next time")
    ap.add_argument("--json", type=Path, help="write every row here")
    ap.add_argument("--save-models", type=Path, help="write each fold's trained model into this folder")
    ap.add_argument("--teacher-tags", type=Path, help="the teacher's tags (data/teacher/corpus-tags.npz) for --teacher-weight")
    ap.add_argument("--teacher-weight", type=float, default=0.0, help="the teacher as an auxiliary loss of this "
                    "weight (TrainConfig.teacher_weight; rows are named METHOD + teacher W)")
    args = ap.parse_args(argv)

    from songspace.crossval import SCORES, cross_validate, paired, summary
    from songspace.errors import InputError
    from songspace.training import TrainConfig
    from songspace.workers import one_thread

    one_thread()
    try:
        cfg = TrainConfig(objective="contrastive", steps=None if args.minutes else args.steps, minutes=args.minutes,
                          batch_size=args.batch_size, lr=args.lr, cosine_decay=True,
                          segments_per_track=args.segments_per_track, teacher_weight=args.teacher_weight,
                          teacher_tags=str(args.teacher_tags) if args.teacher_tags else None)
        rows = cross_validate(args.corpus, cfg, args.folds, args.seeds, args.eval, args.fold_seed, args.workers,
                              references=not args.no_references, only_folds=args.only_folds,
                              log=lambda m: print(m, flush=True), base=args.base, corpus_cache=args.corpus_cache,
                              grown_only=args.grown_only, base_only=args.base_only, save_models=args.save_models)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print("\n| method | runs | " + " | ".join(SCORES) + " |")
    print("| --- | ---: |" + " ---: |" * len(SCORES))
    for entry in summary(rows):
        cells = [f"{entry[k][0]:.3f} ± {entry[k][1]:.3f}" if k in entry else "–" for k in SCORES]
        extra = f" (seed spread of fold mAP {entry['fold_map_seed_sd']:.3f})" if "fold_map_seed_sd" in entry else ""
        print(f"| {entry['method']}{extra} | {entry['runs']} | " + " | ".join(cells) + " |")
    if args.base:
        print("\nrecipe on corpus − recipe on base, same seed and fold (mean ± sd over folds and seeds; per seed):")
        for key in SCORES:
            d = paired(rows, "recipe on corpus", "recipe on base", key)
            if d:
                seeds = ", ".join(f"seed {s} {m:+.3f}" for s, m in d["per_seed"].items())
                print(f"  {key}: {d['mean']:+.3f} ± {d['sd']:.3f} over {d['n']} ({seeds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
