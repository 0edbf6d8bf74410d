"""Radio: an endless-feeling playlist from a few liked tracks (seeds) and some disliked ones.

The taste is the seeds: a track's relevance is its likeness to the nearest seed as search
scores it (rerank.py: the CNN's cosine fused with the timbre companion, or cosine alone), so
each seed keeps its own neighbourhood (a mean of the seeds would favour whatever lies between
two different seeds, which may be liked by nobody). Relevance is always measured against the
seeds, never against the last pick, and candidates come from a pool of the `pool * n` tracks
most relevant to the seeds: the playlist cannot drift away however long it runs.

Within the pool, picks balance closeness and variety by maximal marginal relevance (MMR):
each next track maximises `(1 - diversity) * relevance - diversity * (cosine to the closest
track already picked)`. A small jitter, drawn from `seed`, is added to relevance so that
another seed gives another playlist of equal quality, and the same seed the same one.

Rules that hold whatever the scores say:
- never a seed, never an avoided track, never a track close to an avoided track. "Close" is
  relative to the library, since cosines mean different things under different models: a
  cosine above the library's `AVOID_QUANTILE` quantile of track-pair similarities, i.e. closer
  than all but 2% of pairs of tracks (so on average 2% of the library lies this close to any
  one track: near copies and the same album in a small library, the closest neighbourhood of
  a style in a big one).
- no artist twice within `artist_window` consecutive tracks. Artists are compared by tag,
  ignoring case and surrounding spaces; a track without an artist tag counts as an artist of
  its own (guessing, say from the folder, would let one flat folder of untagged files block
  the whole radio).
When fewer than `n` tracks pass these rules the list is shorter: never padded with tracks
from outside the pool.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..catalog import Track
from ..errors import InputError
from ..query import Match, Searcher, one_snapshot
from ..rerank import ranked

AVOID_QUANTILE = 0.98
_SAMPLE = 2000  # tracks whose pairs estimate the quantile: 2M pairs, a few ms, stable to ~0.001


def close_similarity(vectors: np.ndarray, quantile: float = AVOID_QUANTILE) -> float:
    """The cosine above which two tracks of this library count as close: the `quantile` of the
    similarities between pairs of distinct tracks (estimated on an even sample of a big library)."""
    if len(vectors) > _SAMPLE:
        vectors = vectors[np.linspace(0, len(vectors) - 1, _SAMPLE).astype(int)]
    if len(vectors) < 2:
        return 1.0  # no pairs to learn from: only identical vectors are close
    sims = vectors @ vectors.T
    return float(np.quantile(sims[np.triu_indices(len(vectors), k=1)], quantile))


def artist_key(track: Track) -> str:
    """Who a track is by, for the artist window; an untagged track is its own artist."""
    return _artist_key(track.id, track.artist)


def _artist_key(track_id: int, artist: str | None) -> str:
    artist = (artist or "").strip().casefold()
    return artist if artist else f"\0untagged {track_id}"  # \0: no tag can spell it


def _tracks(searcher: Searcher, queries: Iterable[int | str | Track]) -> list[Track]:
    """Searchable tracks for these queries, each once, in the order given."""
    found: dict[int, Track] = {}
    for q in queries:
        t = searcher.resolve_track(q)
        found.setdefault(t.id, t)
    return list(found.values())


@one_snapshot
def radio(searcher: Searcher, seeds: Iterable[int | str | Track], avoid: Iterable[int | str | Track] = (),
          n: int = 30, seed: int = 0, artist_window: int = 3, diversity: float = 0.3, pool: int = 3,
          jitter: float = 0.1) -> list[Match]:
    """Up to `n` tracks for someone who likes `seeds` and not `avoid`, in playing order; each
    Match's score is its cosine similarity to the nearest seed (relevance, which picks them, is
    search's score: rerank.py).

    seeds, avoid: ids, Tracks or anything `Searcher.resolve_track` accepts.
    seed: the random seed of the jitter (same seed, same list).
    artist_window: no artist twice among this many consecutive tracks (1: no rule).
    diversity: 0 = most relevant first, larger = more variety (MMR's trade-off).
    pool: candidates are the `pool * n` tracks most relevant to the seeds.
    jitter: the random part of relevance, as a share of the pool's spread of relevance.
    """
    if n < 1:
        raise InputError(f"a radio needs at least 1 track, not n={n}")
    searcher.require(n)
    if artist_window < 1:
        raise InputError(f"the artist window must be at least 1 track, not {artist_window}")
    if not 0 <= diversity <= 1:
        raise InputError(f"diversity must be between 0 and 1, not {diversity}")
    seed_tracks, avoid_tracks = _tracks(searcher, seeds), _tracks(searcher, avoid)
    if not seed_tracks:
        raise InputError("a radio needs at least one seed track")
    both = sorted({t.id for t in seed_tracks} & {t.id for t in avoid_tracks})
    if both:
        raise InputError(f"track {', '.join(map(str, both))} is both a seed and avoided")

    # Left out: the seeds, the avoided tracks, and every track close to an avoided one.
    banned = {t.id for t in seed_tracks} | {t.id for t in avoid_tracks}
    if avoid_tracks:
        ids, vectors = searcher.all_vectors()
        closeness = (vectors @ searcher.vectors([t.id for t in avoid_tracks]).T).max(axis=1)
        banned |= set(ids[closeness >= close_similarity(vectors)].tolist())

    # The pool: the tracks most relevant to the seeds, by search's score (rerank.py) to the
    # nearest seed: fused with timbre once the library has it (a track outside a seed's
    # candidates scores 0 for it: mutual proximity that far is ~0), else cosine.
    seed_ids = [t.id for t in seed_tracks]
    seed_vectors = searcher.vectors(seed_ids)
    found = ranked(searcher, seed_vectors, pool * n, exclude=banned, query_ids=seed_ids)
    best: dict[int, float] = {}
    for row in found.rows:
        for h in row:
            best[h.id] = max(best.get(h.id, 0.0), h.score)
    pool_ids = np.array(sorted(best), dtype=np.int64)
    if len(pool_ids) == 0:
        return []
    pool_vectors = searcher.vectors(pool_ids)
    cosine = (pool_vectors @ seed_vectors.T).max(axis=1)  # what each Match shows
    relevance = np.array([best[i] for i in pool_ids.tolist()]) if found.fused else cosine
    keep = np.argsort(-relevance, kind="stable")[: pool * n]
    pool_ids, pool_vectors, relevance, cosine = pool_ids[keep], pool_vectors[keep], relevance[keep], cosine[keep]
    # Only the artists of the pool: whole track rows are fetched for the picks alone.
    pool_artists = searcher.artists(pool_ids.tolist())
    _, artists = np.unique([_artist_key(i, a) for i, a in zip(pool_ids.tolist(), pool_artists)], return_inverse=True)

    rng = np.random.default_rng(seed)
    spread = max(float(relevance.max() - relevance.min()), 1e-6)
    jittered = relevance + jitter * spread * rng.random(len(relevance))

    # Greedy MMR under the artist window.
    picked: list[int] = []  # rows of the pool, in playing order
    closest = np.zeros(len(pool_ids))  # cosine of each candidate to its closest pick (at least 0)
    available = np.ones(len(pool_ids), dtype=bool)
    while len(picked) < n:
        recent = artists[picked[-(artist_window - 1):]] if artist_window > 1 else []
        allowed = available & ~np.isin(artists, recent)
        if not allowed.any():
            break  # the window only moves with a new pick: nothing more can ever qualify
        score = (1 - diversity) * jittered - diversity * closest
        best = int(np.argmax(np.where(allowed, score, -np.inf)))
        picked.append(best)
        available[best] = False
        closest = np.maximum(closest, pool_vectors @ pool_vectors[best])
    picked_tracks = searcher.tracks(pool_ids[picked].tolist())
    return [Match(t, float(cosine[r])) for t, r in zip(picked_tracks, picked)]
