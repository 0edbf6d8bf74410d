"""Hubness reduction and the timbre companion scored on package-CV folds, with fold models that
never heard the fold (issue 21 items 2-3: "every decision is taken on both validations").

  OMP_NUM_THREADS=1 nice .venv/bin/python bench/package_cv.py /work/corpus2/music --base /work/corpus/music \
      --base-only --eval ../shared/data/ost-dev/labels.csv --folds 4 --seeds 0 --steps 120 --no-references \
      --corpus-cache /tmp/model-cv/cache --save-models models120 --json cv120-seed0.json
  OMP_NUM_THREADS=1 nice .venv/bin/python bench/cv_rescoring.py models120 --shipped \
      --corpus /work/corpus2/music --base /work/corpus/music --corpus-cache /tmp/model-cv/cache \
      --eval ../shared/data/ost-dev/labels.csv --check cv120-seed0.json --cache out/cv-rescoring --json rescoring.json

MODELS: model files or folders of them saved by `package_cv.py --save-models` (their config's
info names method, seed and fold); --shipped adds the shipped model on every fold (it heard
every fold: optimistic). Folds are dealt exactly as songspace.crossval deals them (over the
--base corpus's packages, --fold-seed, --folds). Each model is scored on its held-out fold
(package labels; vectors from crossval.embed_segments on the fold's stored segments) and on
--eval (album and artist labels; decoded once, embedded as crossval does). The timbre
Gaussians come from the same log-mel: a fold track's 16 stored segments concatenated along
time, an --eval track's whole log-mel.

Rescorings (the first five as bench/hubness.py and bench/timbre.py measured them on v3):
  cosine                  the baseline; must equal the CV run's own figures (--check)
  local scaling k=K       top --candidates by cosine rescored by 2 cos - r(x) - r(y), the rest below
  mutual proximity        the same with Gaussian MP (moments over the whole set)
  gauss-skl alone         timbre only: -log(1 + symmetric KL), the full ranking
  fused MP w=W            w MP(cos distance) + (1 - w) MP(log(1 + SKL)), the full ranking
  fused MP w=0.7, top N   the w=0.7 fusion applied to the top --candidates by cosine only (as
                          search would apply it to ANN candidates), the rest in cosine order

The decided weight is 0.7 (fixed before these figures, from bench/timbre.py); 0.8 and 0.9 are a
grid. Per-model vectors and per-fold Gaussians are kept in --cache (a rerun or a table over
more models costs seconds). The decoded corpus in --corpus-cache is only ever read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hubness as hubness_bench  # bench/hubness.py: the variants measured on v3
import timbre as timbre_bench  # bench/timbre.py: the Gaussians' divergence, full-set MP

from songspace import hubness, timbre
from songspace.evaluate import ranking_scores, retrieval_scores, usable

KEYS = ("fold_p@1", "fold_map", "album_p@1", "album_map", "artist_p@1", "artist_map")
DECIDED_W = 0.7


# --- the folds and the kept corpus, as songspace.crossval has them ------------------------------

def fold_plan(corpus_dir: Path, base: Path | None, k: int, fold_seed: int):
    """(sorted paths, package of each path, folds): crossval.cross_validate's own dealing."""
    from songspace.crossval import package_folds
    from songspace.training import read_releases

    package_of = read_releases([corpus_dir.expanduser().resolve()])
    paths = sorted(package_of)
    base_packages = set(read_releases([base]).values()) if base else set(package_of.values())
    folds = package_folds([package_of[p] for p in paths if package_of[p] in base_packages], k, fold_seed)
    return paths, package_of, folds


def open_kept_corpus(cache: Path, paths: list[str], segments: int, segment_frames: int, features):
    """The corpus training.Corpus(keep=True) decoded into `cache`, opened read-only. Corpus itself
    would decode again into the same file when the key differs; this refuses instead, so the
    shared cache is never written."""
    key = json.loads(json.dumps({"paths": paths, "shape": (len(paths), segments, features.n_mels, segment_frames),
                                 "features": asdict(features)}))
    try:
        kept = json.loads((cache / "corpus.json").read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: {cache}: no kept corpus ({e}); run bench/package_cv.py --corpus-cache first")
    wrong = [k for k, v in key.items() if kept.get(k) != v]
    if wrong:
        raise SystemExit(f"error: {cache}: kept corpus differs in {', '.join(wrong)} (other corpus or segments)")
    return np.load(cache / "corpus.npy", mmap_mode="r"), np.array(kept["rows"], dtype=np.int64)


def gaussians(log_mels) -> tuple[np.ndarray, np.ndarray]:
    pairs = [timbre.gaussian(S) for S in log_mels]
    return np.stack([m for m, _ in pairs]), np.stack([c for _, c in pairs])


# --- rescorings --------------------------------------------------------------------------------

def rescorings(v: np.ndarray, means: np.ndarray, covs: np.ndarray, ks, weights, n_candidates: int) -> dict:
    """name -> square score matrix whose row order is that rescoring's ranking."""
    sims = hubness_bench.cosine(v)
    hv = hubness_bench.variants(sims, ks, n_candidates, sample=500)
    out = {name: m for name, m in hv.items() if name != "mutual proximity (empirical)"}
    t_dist = np.log1p(timbre_bench.gauss_divergence({"means": means, "covs": covs}))  # stored (float16) form
    out["gauss-skl alone"] = -t_dist
    mc, mt = timbre_bench.gaussian_mp(1.0 - sims), timbre_bench.gaussian_mp(t_dist)
    for w in weights:
        out[f"fused MP w={w}"] = w * mc + (1 - w) * mt
    fused = DECIDED_W * mc + (1 - DECIDED_W) * mt
    out[f"fused MP w={DECIDED_W}, top {n_candidates}"] = hubness.rescore_top(
        sims, lambda i, j, s: fused[i, j], n_candidates)
    return out


def score_set(prefix: str, v, means, covs, labels, args, all_usable: bool = False) -> dict[str, dict]:
    """variant -> {prefix_p@1, prefix_map, ...} over the tracks with a usable label (all of them
    with `all_usable`: a package name such as "unknown-horizons" is a label, as crossval has it)."""
    use = np.array([i for i, x in enumerate(labels) if all_usable or usable(str(x))])
    lab = [labels[i] for i in use]
    out = {}
    for name, s in rescorings(v[use], means[use], covs[use], args.k, args.weights, args.candidates).items():
        r = retrieval_scores(v[use], lab) if name == "cosine" else ranking_scores(s, lab)
        out[name] = {f"{prefix}_p@1": r["p@1"], f"{prefix}_p@5": r["p@5"], f"{prefix}_map": r["map"]}
        if prefix in ("fold", "album"):
            out[name].update({f"{prefix}_{k}": x for k, x in hubness.hub_statistics(s, 5).items()})
    return out


# --- the models ----------------------------------------------------------------------------------

def model_list(sources: list[Path], shipped: bool, k: int) -> list[tuple[str, dict]]:
    """(model path or "" for the shipped one, info) per (model, fold) to score."""
    from songspace.models.files import read_config

    out = []
    for src in sources:
        files = sorted(src.glob("*.safetensors")) if src.is_dir() else [src]
        for f in files:
            info = read_config(f).get("info", {})
            if "fold" not in info:
                raise SystemExit(f"error: {f}: no fold in its config's info (not saved by package_cv.py --save-models)")
            out.append((str(f), info))
    if shipped:
        out += [("", {"method": "shipped (heard every fold)", "seed": None, "fold": f, "steps": None}) for f in range(k)]
    return out


def cached(path: Path, make):
    """np.savez-able dict from `path`, or make() written there first."""
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    out = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path.with_suffix(".tmp.npz"), **out)
    path.with_suffix(".tmp.npz").rename(path)
    return out


def read_expected(files: list[Path]) -> dict:
    """(method, seed, fold) -> the CV run's own scores, from its --json or its log."""
    out = {}
    line = re.compile(r"^(.+?)(?: seed (\d+))? fold (\d+): (.*?)(?:, \d+ steps .*| \(\d+ s\))$")
    for f in files:
        text = f.read_text()
        if f.suffix == ".json":
            for r in json.loads(text):
                out[(r["method"], r["seed"], r["fold"])] = {k: r[k] for k in KEYS if k in r}
            continue
        for m in map(line.match, text.splitlines()):
            if m:
                pairs = (p.rsplit(" ", 1) for p in m.group(4).split(", "))
                seed = None if m.group(2) is None else int(m.group(2))
                out[(m.group(1), seed, int(m.group(3)))] = {k: float(x) for k, x in pairs}
    return out


# --- the tables ----------------------------------------------------------------------------------

def group_of(r: dict) -> str:
    return r["method"] + (f", {r['steps']} steps" if r.get("steps") else "")


def paired_table(rows: list[dict]) -> list[dict]:
    """Per (group, variant): variant - cosine on the same model and fold, mean +- sd over the
    (seed, fold) runs, and how many runs it won (> 0) and lost (< 0)."""
    base = {(r["model"], r["fold"]): r for r in rows if r["variant"] == "cosine"}
    out = []
    for group in dict.fromkeys(group_of(r) for r in rows):
        for variant in dict.fromkeys(r["variant"] for r in rows if r["variant"] != "cosine"):
            mine = [r for r in rows if group_of(r) == group and r["variant"] == variant]
            entry = {"group": group, "variant": variant, "runs": len(mine)}
            for key in KEYS:
                d = np.array([r[key] - base[(r["model"], r["fold"])][key] for r in mine if key in r])
                if len(d):
                    seeds = [r["seed"] for r in mine if key in r]
                    entry[key] = {"mean": float(d.mean()), "sd": float(d.std(ddof=1)) if len(d) > 1 else 0.0,
                                  "won": int((d > 1e-9).sum()), "lost": int((d < -1e-9).sum()), "diffs": d.tolist(),
                                  "per_seed": {str(s): float(np.mean([x for t, x in zip(seeds, d) if t == s]))
                                               for s in dict.fromkeys(seeds)},
                                  "value": float(np.mean([r[key] for r in mine if key in r]))}
            out.append(entry)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=Path, nargs="*", help="fold models (files or folders) from package_cv.py --save-models")
    ap.add_argument("--shipped", action="store_true", help="score the shipped model on every fold too")
    ap.add_argument("--corpus", type=Path, required=True, help="the CV run's corpus (its music folder)")
    ap.add_argument("--base", type=Path, help="the CV run's --base")
    ap.add_argument("--corpus-cache", type=Path, required=True, help="the CV run's --corpus-cache (only read)")
    ap.add_argument("--eval", type=Path, help="a labels.csv with album and artist columns (ost-dev)")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--fold-seed", type=int, default=0)
    ap.add_argument("--segments-per-track", type=int, default=16)
    ap.add_argument("--segment-frames", type=int, default=256)
    ap.add_argument("--k", type=int, nargs="+", default=[5, 10], help="local scaling's neighbourhood sizes")
    ap.add_argument("--weights", type=float, nargs="+", default=[0.7, 0.8, 0.9], help="fusion weights of the CNN")
    ap.add_argument("--candidates", type=int, default=50, help="candidates by cosine rescored per query")
    ap.add_argument("--check", type=Path, nargs="*", default=[], help="the CV run's --json or log: cosine must equal it")
    ap.add_argument("--cache", type=Path, default=Path("bench/out/cv-rescoring"), help="vectors and Gaussians kept here")
    ap.add_argument("--json", type=Path, help="write every row and the paired differences here")
    args = ap.parse_args(argv)

    from songspace import audio
    from songspace.crossval import _embed, embed_segments
    from songspace.evaluate import read_labels
    from songspace.features import FeatureConfig, log_mel
    from songspace.models.checkpoint import load_model
    from songspace.models.files import read_config
    from songspace.workers import one_thread

    one_thread()
    features = FeatureConfig(**read_config(None)["features"])
    paths, package_of, folds = fold_plan(args.corpus, args.base, args.folds, args.fold_seed)
    data, rows_kept = open_kept_corpus(args.corpus_cache, paths, args.segments_per_track, args.segment_frames, features)
    models = model_list(args.models, args.shipped, args.folds)
    eval_set = read_labels(args.eval) if args.eval else None
    eval_cache: dict = {}

    def held(f):
        fold = set(folds[f])
        return np.array([r for r in rows_kept if package_of[paths[r]] in fold])

    def tag(f):  # names a fold's cache files by what is in it
        return hashlib.sha1("\n".join(paths[r] for r in held(f)).encode()).hexdigest()[:10]

    def fold_timbre(f):
        return cached(args.cache / f"timbre-fold{f}-{tag(f)}.npz", lambda: dict(zip(
            ("means", "covs"), gaussians(np.concatenate(list(np.asarray(t, np.float64)), axis=1) for t in data[held(f)]))))

    def eval_vectors(model):
        kept, v = _embed(model, eval_set.paths, eval_cache)
        return {"paths": np.array(kept), "vectors": v}

    def eval_timbre():
        def make():
            if not eval_cache:  # every model's vectors were cached: decode for the log-mel alone
                for p in eval_set.paths:
                    try:
                        eval_cache[p] = audio.load(p, sr=features.sr).y
                    except audio.DecodeError:
                        pass
            kept = [p for p in eval_set.paths if p in eval_cache]
            m, c = gaussians(log_mel(eval_cache[p], features).numpy() for p in kept)
            return {"paths": np.array(kept), "means": m, "covs": c}
        return cached(args.cache / "timbre-eval.npz", make)

    expected = read_expected(args.check)
    loaded: dict = {}
    out_rows, checks = [], []
    for path, info in models:
        f = int(info["fold"])
        t = time.monotonic()
        model_id = read_config(path or None)["model_id"]

        def model(path=path):  # loaded only when a cache file is missing, once per model file
            if path not in loaded:
                loaded.clear()
                loaded[path] = load_model(path or None)
            return loaded[path]

        fv = cached(args.cache / f"{model_id}-fold{f}-{tag(f)}.npz",
                    lambda f=f: {"vectors": embed_segments(model(), data[held(f)])})["vectors"]
        ft = fold_timbre(f)
        variants = score_set("fold", fv, ft["means"], ft["covs"], [package_of[paths[r]] for r in held(f)], args,
                             all_usable=True)
        if eval_set is not None:
            ev = cached(args.cache / f"{model_id}-eval.npz", lambda: eval_vectors(model()))
            et = eval_timbre()
            if list(ev["paths"]) != list(et["paths"]):
                raise SystemExit("error: the evaluation set's decoded tracks differ between runs; clear --cache")
            row_of = {p: i for i, p in enumerate(eval_set.paths)}
            for column in ("album", "artist"):
                labels = [eval_set.labels[column][row_of[p]] for p in ev["paths"]]
                for name, s in score_set(column, ev["vectors"], et["means"], et["covs"], labels, args).items():
                    variants[name].update(s)
        name = Path(path).stem if path else "shipped"
        for variant, s in variants.items():
            out_rows.append({"model": name, "method": info["method"], "seed": info.get("seed"), "fold": f,
                             "steps": info.get("steps"), "variant": variant, **s})
        want = expected.get((info["method"], info.get("seed"), f))
        if want:
            diff = max(abs(variants["cosine"][k] - x) for k, x in want.items() if k in variants["cosine"])
            checks.append((name, diff))
            print(f"check {name}: cosine against the CV run's own figures, largest difference {diff:.4f}"
                  + (" (reproduced)" if diff < 6e-4 else " (DIFFERS)"), flush=True)
        c = variants["cosine"]
        print(f"{name} fold {f}: " + ", ".join(f"{k} {c[k]:.3f}" for k in KEYS if k in c)
              + f" ({time.monotonic() - t:.0f} s)", flush=True)

    keys = [k for k in KEYS if any(k in r for r in out_rows)]
    print("\n| model | fold | rescoring | " + " | ".join(keys) + " |")
    print("| --- | ---: | --- |" + " ---: |" * len(keys))
    for r in out_rows:
        print(f"| {r['model']} | {r['fold']} | {r['variant']} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |")
    table = paired_table(out_rows)
    print("\nrescoring − cosine, same model and fold: mean ± sd over (seed, fold) runs [won/lost]")
    print("| models | rescoring | runs | " + " | ".join(keys) + " |")
    print("| --- | --- | ---: |" + " ---: |" * len(keys))
    for e in table:
        cells = [f"{e[k]['mean']:+.3f} ± {e[k]['sd']:.3f} [{e[k]['won']}/{e[k]['lost']}]" if k in e else "–" for k in keys]
        print(f"| {e['group']} | {e['variant']} | {e['runs']} | " + " | ".join(cells) + " |")
    print("\nmean over the runs (absolute), and the paired difference's mean per seed where there are several")
    print("| models | rescoring | " + " | ".join(keys) + " |")
    print("| --- | --- |" + " ---: |" * len(keys))
    for e in table:
        cells = [f"{e[k]['value']:.3f}" + (" (" + ", ".join(f"s{s} {m:+.3f}" for s, m in e[k]["per_seed"].items()) + ")"
                                           if len(e[k]["per_seed"]) > 1 else "") if k in e else "–" for k in keys]
        print(f"| {e['group']} | {e['variant']} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({"rows": out_rows, "paired": table, "checks": checks}, indent=1))
    return 1 if any(d >= 6e-4 for _, d in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
