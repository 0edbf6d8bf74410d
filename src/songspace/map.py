"""The library map: every searchable track as a dot in 2-D, near the tracks that sound like it,
stored in the catalog (catalog/derived.py) so the page draws it the moment it asks.

`refresh` brings the stored map up to date after every index run (the CLI's `index`, the
server's update job, the server at start-up), never when the page asks:
- tracks added to a UMAP map are placed among their nearest mapped neighbours and removed ones
  dropped (map_layout.place): nothing already drawn moves;
- no map yet, or one made from another model's vectors: the quick layout (PCA) is stored at once,
  so the page has a map while UMAP runs in a child process, then UMAP's layout replaces it;
- below MIN_UMAP tracks the layout is PCA, made again at every change (a handful of dots has no
  shape worth keeping);
- `full`: everything laid out again by UMAP (the page's "Recompute" button); the map shown
  stays until the new one is stored.

Stored: rows (track id, x, y), meta 'map' = "<model id>@<generation>" the rows are up to date
for, meta 'map_method' = "pca" or "umap". `library_map` only reads: when the stored map is behind
the searched vectors it answers with the same quick steps in memory (PCA, or placing the new
tracks), says so ("stored": false), and leaves storing to `refresh`. Tags and predicted labels
are read fresh on every call: they are cheap, and changing them must not cost a new layout.
Like every derived thing here the map can be deleted freely and made again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Callable

import numpy as np

from .errors import QueryError
from .map_layout import MIN_UMAP, layout, layout_method, place, quick_layout, umap_in_child  # noqa: F401 (layout: re-exported)


@dataclass
class Stored:
    """The map as the catalog holds it."""
    stamp: str | None
    method: str | None
    points: dict[int, tuple[float, float]]

    @property
    def model_id(self) -> str | None:
        return self.stamp.rsplit("@", 1)[0] if self.stamp else None

    def covers(self, stamp: str, ids: np.ndarray) -> bool:
        return self.stamp == stamp and len(self.points) == len(ids) and all(int(i) in self.points for i in ids)


def stored(catalog) -> Stored:
    stamp, points = catalog.map_points()
    return Stored(stamp, catalog.map_method(), points)


def _stamp(space) -> str:
    return f"{space.model_id}@{space.stamp[0]}"


def _quick_steps(old: Stored, model_id: str, ids: np.ndarray, vectors: np.ndarray) -> tuple[str, np.ndarray]:
    """(method, xy) of the map without UMAP: the stored UMAP points of the tracks still here and
    the new tracks placed among them; else PCA of everything."""
    n = len(ids)
    if layout_method(n) == "umap" and old.model_id == model_id and old.method == "umap":
        have = np.fromiter((int(i) in old.points for i in ids), dtype=bool, count=n)
        if have.sum() >= MIN_UMAP:  # enough of the old map left to place the rest on
            xy = np.empty((n, 2))
            xy[have] = [old.points[int(i)] for i in ids[have]]
            if not have.all():
                xy[~have] = place(vectors[~have], vectors[have], xy[have])
            return "umap", xy
    return "pca", quick_layout(vectors)


# ---------------------------------------------------------------------------------------------
# Bringing the stored map up to date (after an index run; in the background in the server)
# ---------------------------------------------------------------------------------------------


def refresh(searcher, writer, *, full: bool = False, umap: bool = True, cancel=None,
            report: Callable[[str], None] | None = None, run_umap: Callable[..., np.ndarray] = umap_in_child) -> str:
    """Bring the map stored through the catalog connection `writer` up to date with the vectors
    `searcher` searches now; returns what was done, in words. UMAP runs through `run_umap`
    (a killable child process); `cancel` (a threading.Event) stops it: MapCancelled, with the
    quick layout left stored. `umap=False` stops after the quick steps (the CLI's index: the
    server lays the map out in the background). `report(step)` is told "quick" and "umap" as
    they start."""
    report = report or (lambda step: None)
    space = searcher.space()
    stamp = _stamp(space)
    ids, vectors = space.index.all()  # together: the index may be updated in place meanwhile
    n = len(ids)
    old = stored(writer)
    if n == 0:
        if old.stamp != stamp:
            writer.put_map(stamp, [], "pca")
        return "no track to map"
    # A recompute keeps a UMAP map of these vectors on screen until the new one is stored.
    keep_shown = full and layout_method(n) == "umap" and old.model_id == space.model_id and old.method == "umap"
    if not keep_shown:
        if old.covers(stamp, ids):
            method = old.method
        else:
            report("quick")
            method, xy = _quick_steps(old, space.model_id, ids, vectors)
            writer.put_map(stamp, _rows(ids, xy), method)
        if layout_method(n) == "pca" or (method == "umap" and not full):
            placed = sum(int(i) not in old.points for i in ids) if old.model_id == space.model_id else n
            return f"map: {placed} tracks placed" if method == "umap" else f"map: {n} tracks laid out by PCA"
        if not umap:
            return (f"map: a quick PCA of {n} tracks stored; `songspace serve` lays it out with UMAP "
                    f"in the background")
    report("umap")
    xy = run_umap(vectors, cancel=cancel)
    writer.put_map(stamp, _rows(ids, xy), "umap")
    return f"map: {n} tracks laid out by UMAP"


def _rows(ids: np.ndarray, xy: np.ndarray) -> list[tuple[int, float, float]]:
    return [(int(i), float(x), float(y)) for i, (x, y) in zip(ids, xy)]


def needs_refresh(searcher) -> bool:
    """Whether `refresh` has work to do: the stored map is behind the searched vectors, or
    UMAP's layout is still to come."""
    space = searcher.space()
    ids, _ = space.index.all()
    old = stored(searcher.catalog)
    return not old.covers(_stamp(space), ids) or (layout_method(len(ids)) == "umap" and old.method != "umap")


# ---------------------------------------------------------------------------------------------
# Reading the map (the page, the API): never UMAP
# ---------------------------------------------------------------------------------------------


def library_map(searcher) -> dict:
    """The map as JSON-ready data:
    {"model_id", "stamp", "method", "final", "stored", "count", "predicted_names",
     "points": [{"id", "x", "y", "artist", "album", "genre", "title", "predicted": {name: label}}]}
    with x, y in [0, 1]. "final": false while UMAP's layout is still to come (a quick PCA is
    shown); "stored": false when the stored map was behind the vectors and this answer placed
    the difference itself (refresh stores the same). QueryError when no track has a vector."""
    space = searcher.space()
    stamp = _stamp(space)
    ids, vectors = space.index.all()
    if len(ids) == 0:
        raise QueryError("no map yet: no track has been analysed (index some music first)")
    catalog = searcher.catalog
    old = stored(catalog)
    if old.covers(stamp, ids):
        method, is_stored = old.method or "pca", True
        xy = np.array([old.points[int(i)] for i in ids], dtype=np.float64)
    else:
        method, xy = _quick_steps(old, space.model_id, ids, vectors)
        is_stored = False
    names = catalog.map_names()
    predicted_names = catalog.prediction_names()
    predicted = {name: catalog.predictions(name) for name in predicted_names}
    points = []
    for i, (x, y) in zip(ids.tolist(), xy.tolist()):
        if i not in names:  # removed since the snapshot was taken
            continue
        title, artist, album, genre, path = names[i]
        points.append({
            "id": i, "x": round(x, 5), "y": round(y, 5), "artist": artist, "album": album, "genre": genre,
            "title": title or _label(artist, path),
            "predicted": {name: predicted[name][i][0] for name in predicted_names if i in predicted[name]},
        })
    return {"model_id": space.model_id, "stamp": stamp, "method": method,
            "final": method == "umap" or layout_method(len(ids)) == "pca", "stored": is_stored,
            "count": len(points), "predicted_names": predicted_names, "points": points}


def _label(artist: str | None, path: str) -> str:
    """A dot's name without a title: as Track.label ("artist - file stem", or the file name)."""
    return f"{artist} - {PurePath(path).stem}" if artist else PurePath(path).name
