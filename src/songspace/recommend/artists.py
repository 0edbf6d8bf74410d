"""Artists that sound alike: each artist is the mean of their tracks' vectors (normalised), and
two artists are as close as those means. A track credited to several artists (its ARTISTS tag)
counts for each; untagged tracks belong to no artist.

What the pair has in common is shown by representative songs: the closest pairs of tracks, one
of each artist (`ArtistMatch.pairs`), best first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..catalog import Track
from ..errors import QueryError
from ..query import Searcher, one_snapshot


@dataclass(frozen=True)
class Artist:
    name: str  # as first tagged
    track_ids: np.ndarray


@dataclass(frozen=True)
class ArtistMatch:
    artist: Artist
    score: float  # cosine similarity of the two artists' mean vectors
    pairs: tuple[tuple[Track, Track], ...]  # (a track of the query artist, a track of this one), closest first


def credited(t: Track) -> list[str]:
    """The artists a track is credited to (the ARTISTS tag, else the artist tag), each once."""
    names = [n.strip() for n in t.artists if n.strip()] or ([t.artist.strip()] if (t.artist or "").strip() else [])
    return list(dict.fromkeys(names))


class Artists:
    """Every artist of the searched tracks and their mean vectors (one per snapshot)."""

    def __init__(self, searcher: Searcher):
        ids, vectors = searcher.all_vectors()
        members: dict[str, list[int]] = {}
        names: dict[str, str] = {}
        for row, t in enumerate(searcher.tracks([int(i) for i in ids])):
            for name in credited(t):
                names.setdefault(name.casefold(), name)
                members.setdefault(name.casefold(), []).append(row)
        self.keys = list(members)
        self.by_key = {k: Artist(names[k], ids[members[k]]) for k in self.keys}
        self._rows = {k: np.asarray(members[k]) for k in self.keys}
        means = np.stack([vectors[self._rows[k]].mean(axis=0) for k in self.keys]) if self.keys else np.zeros((0, 1))
        self.means = (means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def find(self, name: str) -> Artist | None:
        return self.by_key.get(name.strip().casefold())


def artists(searcher: Searcher) -> Artists:
    """The library's artists, built once per search snapshot."""
    return searcher.derived("artists", lambda: Artists(searcher))


@one_snapshot
def similar_artists(searcher: Searcher, name: str, n: int = 10, pairs: int = 3) -> list[ArtistMatch]:
    """The `n` artists whose music sits closest to `name`'s, best first, each with up to `pairs`
    representative pairs of tracks. QueryError when no searched track is by `name`."""
    if n < 1:
        raise QueryError(f"n must be at least 1, not {n}")
    found = artists(searcher)
    query = found.find(name)
    if query is None:
        raise QueryError(f"no searchable track is by the artist {name[:80]!r}")
    q = found.keys.index(name.strip().casefold())
    scores = found.means @ found.means[q]
    scores[q] = -np.inf
    order = [i for i in np.argsort(-scores, kind="stable")[:n] if np.isfinite(scores[i])]
    query_vectors = searcher.vectors(query.track_ids)
    out = []
    for i in order:
        other = found.by_key[found.keys[i]]
        sims = query_vectors @ searcher.vectors(other.track_ids).T
        best = np.argsort(-sims, axis=None, kind="stable")[:pairs]
        rows, cols = np.unravel_index(best, sims.shape)
        ids = [int(x) for r, c in zip(rows, cols) for x in (query.track_ids[r], other.track_ids[c])]
        tracks = {t.id: t for t in searcher.tracks(list(dict.fromkeys(ids)))}
        out.append(ArtistMatch(other, float(scores[i]),
                               tuple((tracks[ids[2 * k]], tracks[ids[2 * k + 1]]) for k in range(len(rows)))))
    return out
