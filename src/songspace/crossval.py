"""Package-level cross-validation of a training recipe over the training corpus.

ost-dev (112 excerpts, 7 albums) moves P@1 by +-0.045 by chance: too small to see a gain of
0.02. The training corpus is much larger and its tracks come in releases (a Debian package ~
an album), so: split the packages into k folds, train on k-1 of them with the recipe, and
score package ("album") retrieval among the held-out fold's tracks, which the model never
heard, beside ost-dev; the mean and spread over folds and seeds is what a recipe gives.

The corpus is decoded once (`training.Corpus`); each fold trains on its rows only. Held-out
tracks are embedded from the log-mel segments the corpus keeps of them (16 segments of 4.1 s
spread evenly over each track by default: about a minute of each, patched and levelled as
indexing does), not from a second full decode: on the 2-core machine that decode cost more
than a short training run. The evaluation set (ost-dev) is decoded whole, once, and embedded
as indexing would. The shipped model and an untrained encoder are scored on the same folds
the same way in the same run as references; the shipped model heard every fold, so its
figure is optimistic.

Command: bench/package_cv.py.
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from .errors import InputError
from .evaluate import retrieval_scores, usable


def package_folds(packages: Sequence[str], k: int, seed: int = 0) -> list[list[str]]:
    """k lists of package names, balanced by track count (largest packages first, each to the
    fold with the fewest tracks; ties broken by a seeded shuffle). `packages`: one per track."""
    counts = Counter(packages)
    if k < 2:
        raise InputError(f"folds must be 2 or more, not {k}")
    if len(counts) < k:
        raise InputError(f"{len(counts)} packages cannot make {k} folds")
    names = sorted(counts)
    rng = np.random.default_rng(seed)
    names = [names[i] for i in rng.permutation(len(names))]
    names.sort(key=lambda n: -counts[n])  # stable: the shuffle orders equal sizes
    folds: list[list[str]] = [[] for _ in range(k)]
    sizes = [0] * k
    for name in names:
        j = int(np.argmin(sizes))
        folds[j].append(name)
        sizes[j] += counts[name]
    return [sorted(f) for f in folds]


def _embed(model, paths: Sequence[str], cache: dict | None = None) -> tuple[list[str], np.ndarray]:
    """(paths that decoded, their track vectors) with the given model; `cache` keeps decoded
    waveforms by path (for a small evaluation set embedded once per fold)."""
    import torch

    from . import audio
    from .embedding import Embedder

    embedder = Embedder(model, torch.device("cpu"))
    kept, vectors = [], []
    for p in paths:
        try:
            y = cache[p] if cache is not None and p in cache else audio.load(p, sr=model.features.sr).y
        except audio.DecodeError:
            continue
        if cache is not None:
            cache[p] = y
        kept.append(p)
        vectors.append(embedder.embed_waveform(y))
    return kept, np.stack(vectors)


def embed_segments(model, segments: np.ndarray) -> np.ndarray:
    """Track vectors from stored log-mel segments (n_tracks, n_segments, n_mels, frames): each
    segment cut into patches and levelled as `Embedder` does with a whole track's log-mel."""
    import torch

    from .embedding import Embedder, track_vector
    from .features import level, patches

    embedder = Embedder(model, torch.device("cpu"))
    cfg = model.features
    out = []
    with torch.inference_mode():
        for track in segments:
            P = torch.cat([patches(torch.from_numpy(np.asarray(seg, dtype=np.float32)), cfg.patch_frames,
                                   cfg.patch_frames // 2) for seg in track])
            out.append(track_vector(embedder._encode(level(P, cfg))))
    return np.stack(out)


def score_sets(model, fold_segments: np.ndarray, fold_packages: Sequence[str], eval_set,
               eval_cache: dict | None) -> dict[str, float]:
    """Package retrieval among a fold's tracks (their stored segments), and album/artist
    retrieval on `eval_set` (an evaluate.LabelledSet, or None)."""
    out = {}
    s = retrieval_scores(embed_segments(model, fold_segments), list(fold_packages))
    out.update({"fold_p@1": s["p@1"], "fold_p@5": s["p@5"], "fold_map": s["map"]})
    if eval_set is not None:
        kept, v = _embed(model, eval_set.paths, eval_cache)
        row = dict(zip(eval_set.paths, range(len(eval_set.paths))))
        for column in ("album", "artist"):
            if column not in eval_set.labels:
                continue
            labels = [eval_set.labels[column][row[p]] for p in kept]
            use = [i for i, label in enumerate(labels) if usable(label)]
            s = retrieval_scores(v[use], [labels[i] for i in use])
            out.update({f"{column}_p@1": s["p@1"], f"{column}_p@5": s["p@5"], f"{column}_map": s["map"]})
    return out


def cross_validate(corpus_dir: str | Path, cfg, k: int = 4, seeds: Sequence[int] = (0,),
                   eval_labels: str | Path | None = None, fold_seed: int = 0, workers: int | None = None,
                   references: bool = True, only_folds: Sequence[int] | None = None,
                   log: Callable[[str], None] = print, base: str | Path | None = None,
                   corpus_cache: str | Path | None = None, grown_only: bool = False,
                   save_models: str | Path | None = None, base_only: bool = False) -> list[dict]:
    """One row per (method, seed, fold): {"method", "seed", "fold", "packages", "tracks", scores...}.
    `cfg` is a training.TrainConfig (its seed is replaced by each of `seeds`).

    `base`: a smaller corpus (a folder with MANIFEST.tsv) whose packages `corpus_dir` also holds,
    to ask whether the packages it adds help: folds are dealt over the base's packages only (the
    same folds as cross-validating the base itself), the added packages are never held out, and
    each fold is trained twice on the same seed, "recipe on base" (the other folds) and "recipe
    on corpus" (the other folds and every added package); only the training side grows.
    `grown_only` skips "recipe on base" (training is deterministic under a seed and the base's
    tracks keep their order, so those runs equal cross-validating the base alone, done before);
    `base_only` the reverse (the two sides can then run in two processes).
    `corpus_cache`: a folder that keeps the decoded corpus for the next run (training.Corpus).
    `save_models`: a folder where each trained fold model is written (METHOD-seedS-foldF), to
    score it again later (e.g. another way of searching) without training it again."""
    import torch

    from .evaluate import read_labels
    from .features import FeatureConfig
    from .models.checkpoint import Model, load_model, save_model
    from .models.encoder import Encoder, EncoderConfig
    from .models.files import read_config
    from .training import Corpus, read_releases, train_on_corpus

    corpus_dir = Path(corpus_dir).expanduser().resolve()
    package_of = read_releases([corpus_dir])
    if not package_of:
        raise InputError(f"{corpus_dir}: no MANIFEST.tsv with `file` and `package` columns "
                         "(scripts/fetch-training-corpus.sh writes one)")
    paths = sorted(package_of)
    if base is not None:
        base_packages = set(read_releases([base]).values())
        if not base_packages:
            raise InputError(f"{base}: no MANIFEST.tsv with `file` and `package` columns")
        missing = base_packages - set(package_of.values())
        if missing:
            raise InputError(f"{corpus_dir} lacks packages of the base {base}: {', '.join(sorted(missing))}")
    else:
        base_packages = set(package_of.values())
    folds = package_folds([package_of[p] for p in paths if package_of[p] in base_packages], k, fold_seed)
    trainings = {"recipe": lambda pkg, held: pkg not in held} if base is None else {
        "recipe on base": lambda pkg, held: pkg in base_packages and pkg not in held,
        "recipe on corpus": lambda pkg, held: pkg not in held}
    if grown_only:
        trainings.pop("recipe on base", None)
    if base_only:
        trainings.pop("recipe on corpus", None)
    if cfg.teacher_weight > 0:  # rows say so, so runs with and without it can be paired (`paired`)
        trainings = {f"{name} + teacher {cfg.teacher_weight:g}": trains for name, trains in trainings.items()}
    eval_set = read_labels(eval_labels) if eval_labels else None
    eval_cache: dict = {}
    features = FeatureConfig(**read_config(None)["features"])
    rows = []
    chosen = range(k) if only_folds is None else only_folds
    with tempfile.TemporaryDirectory(prefix="songspace-cv-") as tmp:
        t = time.monotonic()
        if corpus_cache is not None:
            Path(corpus_cache).mkdir(parents=True, exist_ok=True)
        corpus = Corpus(paths, features, cfg, Path(corpus_cache or tmp), workers, keep=corpus_cache is not None)
        log(f"corpus: {len(corpus)} tracks ready in {time.monotonic() - t:.0f} s, "
            f"{len(base_packages)} packages in {k} folds"
            + (f", {len(set(package_of.values()) - base_packages)} more only ever trained on" if base else ""))
        all_rows = corpus.rows

        def fold_rows(f):
            return np.array([r for r in all_rows if package_of[corpus.all_paths[r]] in set(folds[f])])

        def scores(model, f):
            held = fold_rows(f)
            return len(held), score_sets(model, corpus.data[held], [package_of[corpus.all_paths[r]] for r in held],
                                         eval_set, eval_cache)

        if references:
            torch.manual_seed(0)
            refs = {"shipped (heard every fold)": load_model(None),
                    "untrained": Model(Encoder(EncoderConfig(n_mels=features.n_mels)).eval(), features, "untrained-0")}
            for name, model in refs.items():
                for f in chosen:
                    t = time.monotonic()
                    n, s = scores(model, f)
                    rows.append({"method": name, "seed": None, "fold": f, "packages": len(folds[f]), "tracks": n, **s})
                    log(f"{name} fold {f}: {_brief(s)} ({time.monotonic() - t:.0f} s)")
        for seed in seeds:
            for f in chosen:
                held = set(folds[f])
                for method, trains in trainings.items():
                    train_view = copy.copy(corpus)
                    train_view.rows = np.array([r for r in all_rows if trains(package_of[corpus.all_paths[r]], held)])
                    t = time.monotonic()
                    objective, stats = train_on_corpus(train_view, features, replace(cfg, seed=seed),
                                                       device=torch.device("cpu"))
                    model = Model(objective.encoder.eval(), features, f"cv-fold{f}-seed{seed}")
                    if save_models is not None:
                        save_model(Path(save_models) / f"{method.replace(' ', '-')}-seed{seed}-fold{f}",
                                   objective.encoder, features, {"method": method, "seed": seed, "fold": f,
                                                                 "steps": stats["steps"]})
                    n, s = scores(model, f)
                    rows.append({"method": method, "seed": seed, "fold": f, "packages": len(folds[f]),
                                 "tracks": n, "trained_tracks": len(train_view), "steps": stats["steps"],
                                 "final_loss": stats["final_loss"],
                                 **{k: v for k, v in stats.items() if k.startswith("teacher")}, **s})
                    taught = (f", teacher loss {stats['teacher_loss_first']:.3f} → {stats['teacher_loss']:.3f} on "
                              f"{stats['teacher_tracks']} tracks" if stats.get("teacher_loss") is not None else "")
                    log(f"{method} seed {seed} fold {f}: {_brief(s)}, {stats['steps']} steps on "
                        f"{len(train_view)} tracks, loss {stats['final_loss']:.3f}{taught} ({time.monotonic() - t:.0f} s)")
        del corpus.data
    return rows


def _brief(s: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in s.items() if k.endswith(("map", "p@1")))


SCORES = ("fold_p@1", "fold_p@5", "fold_map", "album_p@1", "album_map", "artist_p@5", "artist_map")


def paired(rows: list[dict], a: str, b: str, key: str = "fold_map") -> dict:
    """Method a minus method b on the same (seed, fold): the differences, their mean and sd, and
    per seed the mean difference over folds. Folds differ in difficulty far more than recipes do,
    so a per-fold difference sees what the columns' spreads hide."""
    of = {(r["seed"], r["fold"]): r[key] for r in rows if r["method"] == b and key in r}
    pairs = [(r["seed"], r[key] - of[(r["seed"], r["fold"])]) for r in rows
             if r["method"] == a and key in r and (r["seed"], r["fold"]) in of]
    if not pairs:
        return {}
    d = np.array([x for _, x in pairs])
    seeds = sorted({s for s, _ in pairs})
    return {"a": a, "b": b, "key": key, "n": len(d), "mean": float(d.mean()),
            "sd": float(d.std(ddof=1)) if len(d) > 1 else 0.0, "diffs": d.tolist(),
            "per_seed": {s: float(np.mean([x for t, x in pairs if t == s])) for s in seeds}}


def summary(rows: list[dict]) -> list[dict]:
    """Per method: mean and standard deviation of each score over its folds and seeds, and the
    spread of the per-seed means (the seed spread) where there are several seeds."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        entry = {"method": method, "runs": len(mine)}
        for key in SCORES:
            vals = np.array([r[key] for r in mine if key in r])
            if len(vals):
                entry[key] = (float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else 0.0)
        seeds = sorted({r["seed"] for r in mine if r["seed"] is not None})
        if len(seeds) > 1:
            per_seed = [np.mean([r["fold_map"] for r in mine if r["seed"] == s]) for s in seeds]
            entry["fold_map_seed_sd"] = float(np.std(per_seed, ddof=1))
        out.append(entry)
    return out
