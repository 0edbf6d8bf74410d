"""The library map: every searchable track as a dot in 2-D, near the tracks that sound like it.

UMAP (cosine metric, fixed seed) over the vectors search uses, so the map and "more like this"
agree. Below MIN_UMAP tracks UMAP's neighbour graph is ill-posed (it warns, or its spectral
start fails), so a tiny library is laid out by PCA instead: the map always draws.

The layout is slow to compute (importing umap alone takes 7-37 s here) and the same until the
searched vectors change, so it is computed once and cached in the catalog: table `map_points`
plus meta key `map` holding the stamp it was computed for, "<model id>@<generation>". A new
model or any change to the searchable set (the generation moves) makes the stamp stale and the
next call recomputes. Tags and predicted labels are read fresh on every call: they are cheap,
and changing them must not cost a new layout. Like every cache here it can be deleted freely.
"""

from __future__ import annotations

import threading

import numpy as np

from .catalog import Catalog
from .errors import DiskFull, ReadOnlyLibrary

MIN_UMAP = 15  # fewer tracks than this: PCA
SEED = 42  # the same library draws the same map every time
N_NEIGHBORS = 15
MIN_DIST = 0.1

_lock = threading.Lock()  # one layout at a time: two requests for a stale map compute it once


# ---------------------------------------------------------------------------------------------
# Layout: vectors in, (n, 2) coordinates in [0, 1] out
# ---------------------------------------------------------------------------------------------


def layout_method(n: int) -> str:
    return "umap" if n >= MIN_UMAP else "pca"


def layout(vectors: np.ndarray, seed: int = SEED) -> np.ndarray:
    """(n, 2) coordinates of the rows of `vectors`, scaled into [0, 1] (aspect kept)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(vectors)
    if n == 0:
        return np.zeros((0, 2))
    if n == 1:
        return np.full((1, 2), 0.5)
    if layout_method(n) == "pca":
        xy = _pca(vectors)
    else:
        xy = _umap(vectors, seed)
    return _unit_square(xy)


def _pca(vectors: np.ndarray) -> np.ndarray:
    from sklearn.decomposition import PCA

    components = min(2, *vectors.shape)
    xy = PCA(n_components=components).fit_transform(vectors.astype(np.float64))
    if components < 2:
        xy = np.column_stack([xy, np.zeros(len(xy))])
    return xy


def _umap(vectors: np.ndarray, seed: int) -> np.ndarray:
    import warnings

    import umap  # lazily: 7-37 s to import

    def fit(init: str) -> np.ndarray:
        reducer = umap.UMAP(n_components=2, metric="cosine", n_neighbors=min(N_NEIGHBORS, len(vectors) - 1),
                            min_dist=MIN_DIST, random_state=seed, init=init)
        return reducer.fit_transform(vectors)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by random_state": wanted, for a fixed map
        try:
            xy = fit("spectral")
        except Exception:  # the spectral start fails on some disconnected neighbour graphs
            xy = fit("random")
    if not np.all(np.isfinite(xy)):
        xy = _pca(vectors)
    return xy


def _unit_square(xy: np.ndarray) -> np.ndarray:
    """Shift and scale by one factor (distances keep their proportions), centred in [0, 1]."""
    xy = np.asarray(xy, dtype=np.float64)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = float((hi - lo).max())
    if span <= 0:
        return np.full_like(xy, 0.5)
    return (xy - lo) / span + (1 - (hi - lo) / span) / 2


# ---------------------------------------------------------------------------------------------
# The cached map of a library
# ---------------------------------------------------------------------------------------------


def _stamp(space) -> str:
    return f"{space.model_id}@{space.stamp[0]}"


def _fresh(cached_stamp: str | None, points: dict, stamp: str, ids: np.ndarray) -> bool:
    return cached_stamp == stamp and len(points) == len(ids) and all(int(i) in points for i in ids)


def map_coordinates(lib, refresh: bool = False) -> tuple[str, np.ndarray, np.ndarray]:
    """(stamp, ids, (n, 2) xy) of every searchable track: from the catalog's cache when it was
    computed for the vectors searched now, else computed and stored (`refresh`: always)."""
    searcher = lib.searcher()
    space = searcher.space()
    stamp = _stamp(space)
    ids, vectors = space.index.all()  # together: the index may be updated in place meanwhile
    cached_stamp, points = searcher.catalog.map_points()
    if refresh or not _fresh(cached_stamp, points, stamp, ids):
        with _lock:
            cached_stamp, points = searcher.catalog.map_points()  # another thread may have done it
            if refresh or not _fresh(cached_stamp, points, stamp, ids):
                xy = layout(vectors)
                rows = [(int(i), float(x), float(y)) for i, (x, y) in zip(ids, xy)]
                # The library's own connection belongs to the thread that opened it: write
                # through a short-lived one of this thread's.
                try:
                    writer = Catalog(lib.catalog.path)
                    try:
                        writer.put_map(stamp, rows)
                    finally:
                        writer.close()
                except (ReadOnlyLibrary, DiskFull):
                    pass  # a read-only library or a full disk: answer, and compute again next time
                points = {i: (x, y) for i, x, y in rows}
    xy = np.array([points[int(i)] for i in ids], dtype=np.float64).reshape(-1, 2)
    return stamp, ids, xy


def library_map(lib, refresh: bool = False) -> dict:
    """The map as JSON-ready data:
    {"model_id", "stamp", "method", "count", "predicted_names",
     "points": [{"id", "x", "y", "artist", "album", "genre", "title", "predicted": {name: label}}]}
    with x, y in [0, 1]; the cached layout is recomputed when the searched vectors changed."""
    stamp, ids, xy = map_coordinates(lib, refresh=refresh)
    searcher = lib.searcher()
    catalog = searcher.catalog
    tracks = catalog.tracks_by_id(ids)
    names = catalog.prediction_names()
    predicted = {name: catalog.predictions(name) for name in names}
    points = []
    for t, (x, y) in zip(tracks, xy):
        if t is None:  # removed since the snapshot was taken
            continue
        points.append({
            "id": t.id, "x": round(float(x), 5), "y": round(float(y), 5),
            "artist": t.artist, "album": t.album, "genre": t.genre, "title": t.title or t.label,
            "predicted": {name: predicted[name][t.id][0] for name in names if t.id in predicted[name]},
        })
    return {"model_id": stamp.rsplit("@", 1)[0], "stamp": stamp, "method": layout_method(len(ids)),
            "count": len(points), "predicted_names": names, "points": points}
