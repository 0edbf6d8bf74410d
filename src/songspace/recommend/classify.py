"""Tags you never typed: learn a label from the tracks that have it, predict it for the rest.

The labels come from a tag column of the catalog (genre, artist, album) or from a CSV the user
wrote (`path,LABEL,...`, paths relative to the CSV or absolute). A linear model (logistic
regression on standardised embeddings) learns them; it is scored by stratified k-fold
cross-validation beside the same model on MFCC statistics of the same tracks and beside always
guessing the commonest label, so its accuracy is a ratio, not a feeling. Every searchable
track without a label then gets a predicted label and the model's probability for it.

Predictions are stored in the catalog's `predictions` table, apart from the tracks' own tags;
the audio files are never written to.

Labels that are empty or start with "unknown" count as missing (as in `evaluate`): such a
track is predicted, not learned from. A label fewer than `MIN_PER_CLASS` tracks carry is left
out of learning: it can be neither cross-validated nor learned from one example with any
confidence; its tracks keep their label and get no prediction.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..catalog import Catalog, Track
from ..errors import InputError, QueryError
from ..progress import Phase, Report
from ..query import Searcher, one_snapshot

TAG_COLUMNS = ("genre", "artist", "album")
MIN_PER_CLASS = 2
MAX_FOLDS = 5


@dataclass(frozen=True)
class Prediction:
    track_id: int
    label: str
    confidence: float  # the classifier's probability for `label`, in [0, 1]


@dataclass
class Classification:
    name: str  # what was learned: the column
    source: str  # "catalog" or the CSV's path
    model_id: str  # the embedding learned from
    labelled: int  # tracks learned from
    classes: dict[str, int]  # label → tracks learned from, commonest first
    dropped: dict[str, int]  # labels too rare to learn (fewer than MIN_PER_CLASS tracks)
    folds: int
    accuracy: float  # cross-validated, on the library's embeddings
    majority: float  # cross-validated accuracy of always guessing the commonest label
    majority_label: str
    baseline: float | None = None  # cross-validated, on MFCC statistics (None: skipped)
    baseline_tracks: int = 0  # tracks the baseline could read (all, unless a file failed to decode)
    csv_rows: int | None = None  # rows of the CSV, and how many named a searchable track
    csv_matched: int | None = None
    predictions: list[Prediction] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Labels: from the catalog's tags, or from a CSV
# ---------------------------------------------------------------------------------------------


def usable(label: str | None) -> bool:
    return bool(label) and not label.strip().lower().startswith("unknown")


def catalog_labels(tracks: list[Track], column: str) -> dict[int, str]:
    """{track id: label} of the tracks whose tag `column` is set."""
    if column not in TAG_COLUMNS:
        raise InputError(f"unknown label column {column!r}: the catalog's tag columns are {', '.join(TAG_COLUMNS)} "
                         f"(other labels need a CSV with a 'path' column and a {column!r} column)")
    return {t.id: getattr(t, column).strip() for t in tracks if usable(getattr(t, column))}


def csv_labels(csv_path: str | Path, column: str, tracks: list[Track]) -> tuple[dict[int, str], int, int]:
    """({track id: label} for CSV rows naming one of `tracks` with a usable label, CSV rows,
    rows matched to a track)."""
    csv_path = Path(csv_path).expanduser().resolve()
    if not csv_path.is_file():
        raise InputError(f"{csv_path}: no such labels file")
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        rows = list(reader)
    if "path" not in header:
        raise InputError(f"{csv_path}: a labels CSV needs a 'path' column (columns: {', '.join(header) or 'none'})")
    if column not in header:
        others = [c for c in header if c != "path"]
        raise InputError(f"{csv_path}: no column {column!r} (columns: {', '.join(others) or 'none'})")
    by_path = {t.path: t.id for t in tracks}
    labels, matched = {}, 0
    for row in rows:
        # Absolute paths stay as they are: joining an absolute path onto the folder gives it back.
        path = str((csv_path.parent / (row["path"] or "").strip()).resolve())
        if path in by_path:
            matched += 1
            if usable(row[column]):
                labels[by_path[path]] = row[column].strip()
    if not matched:
        raise QueryError(f"{csv_path}: none of its {len(rows)} paths is a searchable track of the library "
                         f"(paths are read relative to the CSV's folder, or absolute)")
    return labels, len(rows), matched


# ---------------------------------------------------------------------------------------------
# The model and its cross-validation
# ---------------------------------------------------------------------------------------------


def make_model(seed: int = 0):
    """Standardised input, then multinomial logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))


def choose_folds(labels: list[str]) -> int:
    """As many folds as the rarest label allows (each fold's test part holds one of its tracks),
    at most MAX_FOLDS, at least 2."""
    return max(2, min(MAX_FOLDS, min(Counter(labels).values())))


def cross_validate(x: np.ndarray, y: np.ndarray, folds: int, seed: int = 0) -> tuple[float, float]:
    """(accuracy of the model, accuracy of always guessing the training part's commonest label),
    by stratified k-fold cross-validation."""
    from sklearn.model_selection import StratifiedKFold

    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y)
    right = guessed = 0
    for train, test in splits:
        model = make_model(seed).fit(x[train], y[train])
        right += int((model.predict(x[test]) == y[test]).sum())
        commonest = Counter(y[train].tolist()).most_common(1)[0][0]
        guessed += int((y[test] == commonest).sum())
    return right / len(y), guessed / len(y)


# ---------------------------------------------------------------------------------------------
# The MFCC baseline, in worker processes
# ---------------------------------------------------------------------------------------------


def _mfcc_task(path: str) -> tuple[str, np.ndarray | None]:
    from ..baselines import mfcc_file
    from ..errors import DecodeError

    try:
        return path, mfcc_file(path)[0]
    except DecodeError:
        return path, None


def mfcc_vectors(paths: list[str], workers: int | None = None, report: Report | None = None) -> dict[str, np.ndarray]:
    """{path: raw MFCC statistics} for the paths that decode, computed in worker processes."""
    from ..workers import run_parallel

    found = {}
    for done, (path, vector) in enumerate(run_parallel(_mfcc_task, paths, workers), 1):
        if vector is not None:
            found[path] = vector
        if report:
            report(Phase.BASELINES, done, len(paths), Path(path).name)
    return found


# ---------------------------------------------------------------------------------------------
# Classify: learn, score, predict
# ---------------------------------------------------------------------------------------------


@one_snapshot
def classify(searcher: Searcher, column: str, labels_csv: str | Path | None = None, *, baseline: bool = True,
             workers: int | None = None, report: Report | None = None, seed: int = 0) -> Classification:
    """Learn `column` from the searchable tracks that carry it (their tag, or the CSV's rows) and
    predict it for every other searchable track. Stores nothing: see `save_predictions`."""
    ids, vectors = searcher.all_vectors()
    if len(ids) == 0:
        raise QueryError("the library has no searchable tracks to learn from")
    tracks = searcher.tracks(ids)
    csv_rows = csv_matched = None
    if labels_csv is None:
        label_of = catalog_labels(tracks, column)
        where = f"tag {column!r}"
    else:
        label_of, csv_rows, csv_matched = csv_labels(labels_csv, column, tracks)
        where = f"column {column!r} of {labels_csv} ({csv_matched} of its {csv_rows} rows matched a searchable track)"
    if not label_of:
        raise InputError(f"no searchable track has a label in {where}")

    counts = Counter(label_of.values())
    dropped = {c: n for c, n in counts.items() if n < MIN_PER_CLASS}
    classes = dict(sorted(((c, n) for c, n in counts.items() if n >= MIN_PER_CLASS), key=lambda cn: (-cn[1], cn[0])))
    if len(classes) < 2:
        seen = ", ".join(f"{c!r} ({n})" for c, n in counts.most_common(5))
        raise InputError(f"{where}: at least two labels with {MIN_PER_CLASS} or more tracks each are needed "
                         f"to learn anything, found {seen}")

    rows = [r for r, i in enumerate(ids) if label_of.get(int(i)) in classes]
    x, y = vectors[rows], np.array([label_of[int(ids[r])] for r in rows])
    folds = choose_folds(y.tolist())
    accuracy, majority = cross_validate(x, y, folds, seed)
    result = Classification(
        name=column, source="catalog" if labels_csv is None else str(Path(labels_csv).expanduser().resolve()),
        model_id=searcher.model_id, labelled=len(rows), classes=classes, dropped=dropped, folds=folds,
        accuracy=accuracy, majority=majority, majority_label=next(iter(classes)), csv_rows=csv_rows,
        csv_matched=csv_matched)

    if baseline:
        paths = [tracks[r].path for r in rows]
        raw = mfcc_vectors(paths, workers, report)
        kept = [k for k, p in enumerate(paths) if p in raw]
        # The baseline needs every label twice among the tracks it could read to use the same folds.
        if kept and min(Counter(y[kept].tolist()).values()) >= folds and len(set(y[kept])) >= 2:
            result.baseline = cross_validate(np.stack([raw[paths[k]] for k in kept]), y[kept], folds, seed)[0]
            result.baseline_tracks = len(kept)

    # Every searchable track without a label gets one: a track whose label was too rare to learn
    # keeps the label it has.
    unlabelled = [r for r, i in enumerate(ids) if int(i) not in label_of]
    if unlabelled:
        model = make_model(seed).fit(x, y)
        proba = model.predict_proba(vectors[unlabelled])
        best = proba.argmax(axis=1)
        result.predictions = [Prediction(int(ids[r]), str(model.classes_[b]), float(p[b]))
                              for r, b, p in zip(unlabelled, best, proba)]
    return result


def save_predictions(catalog: Catalog, result: Classification) -> None:
    """Replace the stored predictions of `result.name` with these (a writer catalog: the
    Library's own, not a Searcher's read-only connection)."""
    catalog.put_predictions(result.name, result.model_id,
                            [(p.track_id, p.label, p.confidence) for p in result.predictions])
