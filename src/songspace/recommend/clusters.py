"""Organise: group the library into playlists by sound.

k-means on the track vectors (k given, or about sqrt(n/2)), or HDBSCAN when the number of
groups should be found from the music itself. HDBSCAN leaves out tracks that belong to no dense
group ("noise"); they go to one playlist of their own, "unclustered", rather than into the
nearest group: forcing them in would blur the groups that are coherent, and a user can still see
and play them. Under a seed the result is the same every run.

Each group is named from its tracks' tags: the dominant genre, else album, else artist, else a
label songspace predicted (`classify`), else "cluster N". A value dominates when at least half
the group's tracks carry it. Names are unique (" 2", " 3" for repeats, largest group first).
Playlists list each group's most typical tracks (nearest its centre) first.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..catalog import Catalog, Track
from ..errors import InputError, QueryError
from ..playlists import write_m3u8
from ..query import Searcher, one_snapshot

UNCLUSTERED = "unclustered"
TAG_ORDER = ("genre", "album", "artist")
DOMINANT_SHARE = 0.5


@dataclass(frozen=True)
class Cluster:
    name: str
    track_ids: list[int]  # most typical first
    noise: bool = False  # HDBSCAN's tracks that belong to no group


def default_k(n: int) -> int:
    """About sqrt(n/2) groups (a common rule of thumb), at least 2 and at most n."""
    return max(1, min(n, max(2, round(math.sqrt(n / 2)))))


# ---------------------------------------------------------------------------------------------
# Grouping: vectors in, a group number per vector out (-1: noise)
# ---------------------------------------------------------------------------------------------


def kmeans_groups(vectors: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(vectors)


def hdbscan_groups(vectors: np.ndarray) -> np.ndarray:
    """HDBSCAN, with a smallest group of 2 tracks in a small library and 5 from 50 tracks up."""
    from sklearn.cluster import HDBSCAN

    min_size = max(2, min(5, len(vectors) // 10))
    # Vectors are unit length, so Euclidean distance ranks like cosine distance.
    # copy=True: the vectors are the query layer's snapshot, which must not change in place.
    return HDBSCAN(min_cluster_size=min_size, copy=True).fit_predict(vectors)


def typical_first(vectors: np.ndarray) -> np.ndarray:
    """Row order by closeness to the rows' mean, nearest first (ties by row)."""
    centre = vectors.mean(axis=0)
    return np.argsort(np.linalg.norm(vectors - centre, axis=1), kind="stable")


# ---------------------------------------------------------------------------------------------
# Naming
# ---------------------------------------------------------------------------------------------


def dominant(values: list[str | None]) -> str | None:
    """The commonest value if at least DOMINANT_SHARE of `values` carry it (ties: alphabetical)."""
    counts = Counter(v.strip() for v in values if v and v.strip())
    if not counts:
        return None
    value, n = min(counts.items(), key=lambda vn: (-vn[1], vn[0]))
    return value if n >= DOMINANT_SHARE * len(values) else None


def group_name(tracks: list[Track], predicted: dict[str, dict[int, tuple[str, float]]]) -> str | None:
    """The group's dominant tag (genre, album, artist), else its dominant predicted label."""
    for tag in TAG_ORDER:
        if name := dominant([getattr(t, tag) for t in tracks]):
            return name
    # What the user's own labels taught (`classify`) before the shipped model's guesses (auto-*).
    for label_name in sorted(predicted, key=lambda n: (n.startswith("auto-"), n != "genre", n)):
        # A track's own tag stands in for its prediction: classify predicts only untagged tracks.
        own = label_name if label_name in TAG_ORDER else None
        values = [(getattr(t, own) if own else None) or predicted[label_name].get(t.id, (None,))[0] for t in tracks]
        if name := dominant(values):
            return name
    return None


def unique_names(names: list[str]) -> list[str]:
    """Repeats get " 2", " 3", ... in order; compared case-insensitively (as file names may be)."""
    seen: set[str] = set()
    result = []
    for name in names:
        candidate, n = name, 1
        while candidate.lower() in seen:
            n += 1
            candidate = f"{name} {n}"
        seen.add(candidate.lower())
        result.append(candidate)
    return result


def predicted_labels(catalog: Catalog) -> dict[str, dict[int, tuple[str, float]]]:
    """{name: {track id: (label, confidence)}} of everything `classify` stored."""
    return {name: catalog.predictions(name) for name in catalog.prediction_names()}


# ---------------------------------------------------------------------------------------------
# Clustering the library, and writing the playlists
# ---------------------------------------------------------------------------------------------


@one_snapshot
def cluster_library(searcher: Searcher, k: int | None = None, auto: bool = False, seed: int = 0) -> list[Cluster]:
    """Every searchable track in exactly one named group, largest group first ("unclustered"
    last): k-means with k groups (default `default_k`), or HDBSCAN when `auto`."""
    ids, vectors = searcher.all_vectors()
    n = len(ids)
    if n == 0:
        raise QueryError("the library has no searchable tracks to group")
    if auto and k is not None:
        raise InputError("choose either a number of groups or automatic grouping, not both")
    if auto:
        groups = hdbscan_groups(vectors) if n >= 2 else np.zeros(n, dtype=int)
        if n >= 2 and (groups < 0).all():
            raise QueryError(f"found no groups among {n} tracks (too few, or spread too evenly); "
                             f"ask for a number of groups instead")
    else:
        k = default_k(n) if k is None else k
        if not 1 <= k <= n:
            raise InputError(f"the number of groups must be between 1 and the {n} searchable tracks, not {k}")
        groups = kmeans_groups(vectors, k, seed)

    tracks = searcher.tracks(ids)
    predicted = predicted_labels(searcher.catalog)
    found = []  # (size, first id, rows, noise)
    for g in sorted(set(groups.tolist())):
        rows = np.flatnonzero(groups == g)
        rows = rows[typical_first(vectors[rows])]
        found.append((g < 0, -len(rows), int(ids[rows].min()), rows))
    found.sort(key=lambda f: f[:3])  # largest first; ties by lowest track id: deterministic

    names = []
    for number, (noise, _, _, rows) in enumerate(found, 1):
        names.append(UNCLUSTERED if noise else group_name([tracks[r] for r in rows], predicted) or f"cluster {number}")
    return [Cluster(name, [int(ids[r]) for r in rows], noise)
            for name, (noise, _, _, rows) in zip(unique_names(names), found)]


def safe_file_name(name: str, limit: int = 100) -> str:
    """`name` as a file name on any system: no separators, reserved or control characters."""
    safe = re.sub(r'[\x00-\x1f<>:"/\\|?*]+', "_", name).strip().strip(".").strip()
    return safe[:limit].rstrip() or "playlist"


def write_playlists(searcher: Searcher, clusters: list[Cluster], out_dir: str | Path,
                    absolute: bool = False) -> list[Path]:
    """One M3U8 per group in `out_dir` (made if missing), paths relative to it unless
    `absolute`. A file of the same name is replaced; other files are left alone."""
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = unique_names([safe_file_name(c.name) for c in clusters])
    return [write_m3u8(searcher.tracks(c.track_ids), out_dir / f"{f}.m3u8", absolute=absolute)
            for c, f in zip(clusters, files)]
