"""Leave-one-out retrieval quality of a set of track vectors against labels.

For each track, every other track is ranked by cosine similarity (or as search ranks: `evaluate`); P@k is the share of the top
k that carry the same label, and AP the average precision over the whole ranking (mAP is its
mean over queries). Queries whose label no other track shares are skipped: they cannot be
answered right.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import method as methods
from .errors import InputError
from .progress import Phase


def retrieval_scores(vectors: np.ndarray, labels: Sequence[str], ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Leave-one-out P@k and mAP of ranking every other track by cosine similarity."""
    v = np.asarray(vectors, dtype=np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return ranking_scores(v @ v.T, labels, ks)


def ranking_scores(scores: np.ndarray, labels: Sequence[str], ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Leave-one-out P@k and mAP from a square matrix of scores (higher: closer), such as cosines
    or a rescored ranking (hubness.py); a query whose label no other track has is skipped."""
    sims = np.asarray(scores, dtype=np.float64).copy()
    labels = np.asarray(labels)
    np.fill_diagonal(sims, -np.inf)
    precision = {k: [] for k in ks}
    average_precision = []
    for i in range(len(sims)):
        relevant = labels == labels[i]
        relevant[i] = False
        if not relevant.any():
            continue
        order = np.argsort(-sims[i], kind="stable")[: len(sims) - 1]  # the query itself sorts last
        hits = relevant[order]
        for k in ks:
            precision[k].append(hits[:k].mean())
        ranks = np.flatnonzero(hits) + 1
        average_precision.append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
    scores = {f"p@{k}": float(np.mean(p)) for k, p in precision.items()}
    scores["map"] = float(np.mean(average_precision))
    scores["queries"] = len(average_precision)
    return scores


# ---------------------------------------------------------------------------------------------
# A labelled folder, and the model beside the baselines on it
# ---------------------------------------------------------------------------------------------

BASELINES = methods.BASELINES  # MFCC statistics and the untrained encoder
DEFAULT_LABELS = ("album", "artist", "genre")


@dataclass
class LabelledSet:
    root: Path  # the folder the paths are relative to
    paths: list[str]  # absolute
    labels: dict[str, list[str]]  # column → one label per path ("" when missing)


def read_labels(source: str | Path) -> LabelledSet:
    """A labels.csv (a `path` column relative to the csv, then label columns), or a folder whose
    subfolders name the label of the music inside them (label column "folder")."""
    source = Path(source).expanduser().resolve()
    if not source.exists():
        raise InputError(f"{source}: no such labels file or folder")
    if source.is_dir():
        from .scan import scan

        files, _ = scan([source])
        return LabelledSet(source, files, {"folder": [Path(f).relative_to(source).parts[0] for f in files]})
    try:
        with open(source, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{source}: not a UTF-8 labels csv ({e})") from None
    if not rows or "path" not in rows[0]:
        raise InputError(f"{source}: a labels csv needs a 'path' column and at least one row")
    columns = [c for c in rows[0] if c not in ("path", None)]
    if not columns:
        raise InputError(f"{source}: no label column beside 'path' (such as album or artist)")
    paths = [str((source.parent / (r["path"] or "")).resolve()) for r in rows]
    absent = [p for p in paths if not Path(p).is_file()]
    if absent:
        raise InputError(f"{source}: {len(absent)} listed files not found, such as {absent[0]}")
    return LabelledSet(source.parent, paths, {c: [(r[c] or "").strip() for r in rows] for c in columns})


def usable(label: str) -> bool:
    return bool(label) and not label.lower().startswith("unknown")


def _baseline_task(task: tuple[str, str]) -> tuple[str, str, np.ndarray | None]:
    from .audio import DecodeError

    method, path = task
    try:
        vector = methods.baseline(method).embedder().embed_file(path).vector
    except DecodeError:
        return method, path, None
    return method, path, vector


def searchable_vectors(lib, paths: Sequence[str]) -> dict[str, np.ndarray]:
    """{path: vector as searched} for those of `paths` that the library can search."""
    searcher = lib.searcher()
    ids, vectors = searcher.all_vectors()
    by_path = {t.path: v for t, v in zip(searcher.tracks(ids), vectors)}
    return {p: by_path[p] for p in paths if p in by_path}


def evaluate(lib, source: str | Path, label_columns: Sequence[str] | None = None,
             baselines: Sequence[str] = BASELINES, workers: int | None = None, report=None,
             in_library: bool = False) -> dict:
    """Leave-one-out retrieval per label column for the library's model and each baseline, all
    computed in this run on the same tracks.

    The labelled music is indexed into a scratch library beside the user's (`scratch/`, kept so
    a second run only analyses what changed), so test tracks never turn up in the user's
    searches; `in_library=True` indexes it into the library itself."""
    import hashlib

    from .baselines import standardise
    from .workers import run_parallel

    data = read_labels(source)
    columns = list(label_columns or [c for c in DEFAULT_LABELS if c in data.labels] or data.labels)
    missing = [c for c in columns if c not in data.labels]
    if missing:
        raise InputError(f"{source}: no label column {', '.join(missing)} (columns: {', '.join(data.labels)})")
    target = lib if in_library else lib.scratch("evaluate-" + hashlib.sha1(str(data.root).encode()).hexdigest()[:10])
    try:
        target.index([data.root], workers=workers, report=report)
        vectors: dict[str, dict[str, np.ndarray]] = {"songspace": searchable_vectors(target, data.paths)}
        searched = target.searched_scores(data.paths)  # None: search ranks by cosine alone
    finally:
        if target is not lib:
            target.close()
    tasks = [(m, p) for m in baselines for p in data.paths]
    for done, (method, path, vector) in enumerate(run_parallel(_baseline_task, tasks, workers), 1):
        if vector is not None:
            vectors.setdefault(method, {})[path] = vector
        if report:
            report(Phase.BASELINES, done, len(tasks), Path(path).name)
    for method in baselines:
        if method in vectors and methods.baseline(method).standardised:
            keys = list(vectors[method])
            vectors[method] = dict(zip(keys, standardise(np.stack([vectors[method][k] for k in keys]))))

    # The same tracks for every method: those every method could embed.
    common = [p for p in data.paths if all(p in v for v in vectors.values())]
    if len(common) < 2:
        raise InputError(f"{source}: {len(common)} of {len(data.paths)} labelled tracks could be analysed; "
                         "evaluating needs 2 or more")
    results = {"model": lib.model_id, "tracks": len(common), "labels": {}}
    for column in columns:
        label_of = dict(zip(data.paths, data.labels[column]))
        kept = [p for p in common if usable(label_of[p])]
        if not any(n >= 2 for n in Counter(label_of[p] for p in kept).values()):
            continue  # no track has anything to find: nothing to score in this column
        labels = [label_of[p] for p in kept]
        scores = {method: retrieval_scores(np.stack([v[p] for p in kept]), labels) for method, v in vectors.items()}
        if searched is not None:  # search's own order first, the embedding alone beside it
            matrix = np.array([[searched[p].get(o, -np.inf) for o in kept] for p in kept])
            scores = {"songspace": ranking_scores(matrix, labels), "songspace cosine": scores["songspace"],
                      **{m: sc for m, sc in scores.items() if m != "songspace"}}
        results["labels"][column] = scores
    if not results["labels"]:
        raise InputError(f"{source}: in no label column ({', '.join(columns)}) do 2 analysed tracks share a label, "
                         "so no track has anything to find")
    return results
