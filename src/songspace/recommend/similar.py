"""Similar tracks, with manners: other artists or albums only, a duration range, and copies of
the same recording shown once.

Copies are told as `duplicates` tells them, from the stored segment vectors: two tracks whose
vectors are at least `CANDIDATE_COSINE` alike are aligned segment by segment, and are one
recording when they match along one time offset over most of the shorter file
(`duplicates.DEFAULT_THRESHOLD`, `MIN_COVERAGE`). Track vectors alone cannot say it: on ost-dev
a 64 kbit/s copy of a track can sit at a cosine of 0.89 while two different renderings of one
tune sit at 0.99. Without segments (the MFCC baseline) a cosine of `COPY_COSINE` decides.
Unlike `duplicates`, nothing is re-checked from the audio: a list must come back at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..catalog import Track
from ..errors import QueryError
from ..query import Searcher, one_snapshot
from ..rerank import ranked
from .align import align
from .duplicates import DEFAULT_THRESHOLD, MIN_COVERAGE

CANDIDATE_COSINE = 0.85  # below it no copy was seen on ost-dev (lowest: 0.887, 64 kbit/s mp3)
COPY_COSINE = 0.985  # without segments only


@dataclass(frozen=True)
class Manners:
    other_artists: bool = False  # nothing by the query's artist
    other_albums: bool = False  # nothing from the query's album
    min_duration: float | None = None  # seconds
    max_duration: float | None = None
    collapse_copies: bool = True  # copies of one recording shown once

    def check(self) -> None:
        lo, hi = self.min_duration, self.max_duration
        if any(b is not None and not b >= 0 for b in (lo, hi)):  # `not >= 0` also catches NaN
            raise QueryError("a duration bound must be a number of seconds, 0 or more")
        if lo is not None and hi is not None and lo > hi:
            raise QueryError(f"the shortest duration ({lo:g} s) is above the longest ({hi:g} s)")


@dataclass(frozen=True)
class SimilarTrack:
    track: Track
    # What the list is ordered by (rerank.py): the CNN's cosine fused with the timbre companion
    # (in [0, 1]), or the cosine itself where search does not fuse. Not the cosine, so that the
    # list is best first by its score for every client that sorts (AudioMuse-AI's distance,
    # OpenSubsonic's sonicMatch similarity); the cosine is beside it.
    score: float
    copy_of_query: bool = False  # the same recording as the query (another file of it)
    copies: tuple[int, ...] = field(default=())  # ids of other files of this recording, folded in
    cosine: float | None = None  # cosine similarity of the two vectors, 1.0 = same direction


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and a.strip().lower() == b.strip().lower()


def _allowed(t: Track, query: Track | None, manners: Manners) -> bool:
    if manners.min_duration is not None and (t.duration or 0) < manners.min_duration:
        return False
    if manners.max_duration is not None and (t.duration is None or t.duration > manners.max_duration):
        return False
    if query is not None and manners.other_artists and _same(t.artist, query.artist):
        return False
    if query is not None and manners.other_albums and _same(t.album, query.album):
        return False
    return True


@one_snapshot
def similar(searcher: Searcher, query: str | int | Path | Track, k: int = 10,
            manners: Manners = Manners()) -> list[SimilarTrack]:
    """The k tracks that sound most like the query, best first, minding `manners`: ranked as
    search ranks (rerank.py: the CNN fused with the timbre companion once the library has it),
    each with its score and its cosine similarity to the query."""
    if k < 1:
        raise QueryError(f"k must be at least 1, not {k}")
    manners.check()
    target = searcher.resolve(query)
    query_timbre = None
    if isinstance(target, Track):
        query_track, vector = target, searcher.vector(target)
        copies = _Copies(searcher, vector, query_id=target.id)  # its segments come with the first candidates'
    else:  # an outside file: embedded, not added
        query_track, emb = None, searcher.embed_file(target)
        vector, query_timbre = emb.vector, emb.timbre
        query_segments = ((emb.segment_starts, searcher.as_segments(emb.segments.astype(np.float32)))
                          if len(emb.segment_starts) else None)  # put where stored segments are compared
        copies = _Copies(searcher, vector, query_segments=query_segments)
    exclude = {query_track.id} if query_track else set()
    total = len(searcher)

    fetch = min(total, 4 * k + 8)
    while True:  # filters drop hits: widen the search until k are left or the library is exhausted
        found = ranked(searcher, vector, fetch, exclude, [query_track.id if query_track else None], [query_timbre]).rows[0]
        hits = [(h.id, h.score, h.cosine) for h in found]  # in search's order (rerank.py)
        picked = _pick(searcher, hits, query_track, copies, k, manners)
        if len(picked) >= k or fetch >= total:
            return picked
        fetch = min(total, fetch * 4)


class _Copies:
    """Is this track another file of the query's recording, or of a track already listed?

    Segments are read in bulk (`fetch`), once per widening of the search, for the candidates
    that could be a copy of something: those at least `CANDIDATE_COSINE` alike to the query or
    to another candidate. Below it no alignment is looked at, so no other segments are needed."""

    def __init__(self, searcher: Searcher, query_vector: np.ndarray, query_id: int | None = None,
                 query_segments=None):
        self.searcher, self.query_vector, self.query_id = searcher, query_vector, query_id
        self.with_segments = searcher.space().method.has_segments  # MFCC vectors come without
        self.segments: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.fetched: set[int] = set()
        self.query_segments = query_segments  # of an outside file; a library track's are fetched

    def fetch(self, track_ids: list[int], vectors: np.ndarray) -> None:
        """Read the segments of those `track_ids` (rows of `vectors`) that an alignment may need."""
        if not self.with_segments or not track_ids:
            return
        close = vectors @ vectors.T
        np.fill_diagonal(close, -1.0)
        floor = CANDIDATE_COSINE - 1e-6  # rounding must not skip a pair `_same` would align
        needed = (vectors @ self.query_vector >= floor) | (close >= floor).any(axis=1)
        wanted = [i for i, n in zip(track_ids, needed.tolist()) if n and i not in self.fetched]
        if self.query_id is not None and self.query_id not in self.fetched:
            wanted.append(self.query_id)
        if wanted:
            self.segments.update(self.searcher.segments_of(wanted))
            self.fetched.update(wanted)

    def _same(self, vector_a, segments_a, vector_b, segments_b) -> bool:
        cosine = float(vector_a @ vector_b)
        if segments_a is None or segments_b is None:
            return cosine >= COPY_COSINE
        if cosine < CANDIDATE_COSINE:
            return False
        m = align(*segments_a, *segments_b)
        return m.similarity >= DEFAULT_THRESHOLD and m.coverage >= MIN_COVERAGE

    def of_query(self, t: Track, vector: np.ndarray) -> bool:
        query_segments = self.query_segments if self.query_id is None else self.segments.get(self.query_id)
        return self._same(self.query_vector, query_segments, vector, self.segments.get(t.id))

    def of_track(self, t: Track, vector: np.ndarray, other: Track, other_vector: np.ndarray) -> bool:
        return self._same(other_vector, self.segments.get(other.id), vector, self.segments.get(t.id))


def _pick(searcher: Searcher, hits: list[tuple[int, float, float]], query: Track | None, copies: _Copies,
          k: int, manners: Manners) -> list[SimilarTrack]:
    tracks = searcher.tracks([h[0] for h in hits])
    kept = [(t, s, c) for t, (_, s, c) in zip(tracks, hits) if _allowed(t, query, manners)]
    if not manners.collapse_copies:
        return [SimilarTrack(t, s, cosine=c) for t, s, c in kept[:k]]
    vectors = searcher.vectors([t.id for t, _, _ in kept]) if kept else np.zeros((0, 1), np.float32)
    copies.fetch([t.id for t, _, _ in kept], vectors)
    picked: list[SimilarTrack] = []
    picked_rows: list[int] = []
    query_copy_at = None  # where the (one) entry for the query's own copies sits
    for row, (t, s, c) in enumerate(kept):
        if copies.of_query(t, vectors[row]):  # every other file of the query's recording: one entry
            if query_copy_at is None:
                query_copy_at = len(picked)
                picked.append(SimilarTrack(t, s, copy_of_query=True, cosine=c))
                picked_rows.append(row)
            else:
                first = picked[query_copy_at]
                picked[query_copy_at] = replace(first, copies=(*first.copies, t.id))
            continue
        folded = False
        for j, r in enumerate(picked_rows):  # a copy of a track already listed: fold it in
            if copies.of_track(t, vectors[row], picked[j].track, vectors[r]):
                first = picked[j]
                picked[j] = replace(first, copies=(*first.copies, t.id))
                folded = True
                break
        if folded:
            continue
        if len(picked) >= k:
            break
        picked.append(SimilarTrack(t, s, cosine=c))
        picked_rows.append(row)
    return picked[:k]


@one_snapshot
def without_copies(searcher: Searcher, seeds: list[int], tracks: list[Track]) -> list[Track]:
    """`tracks` (searchable, in order) less every other file of a seed's recording and of a track
    kept before it, told as `similar` tells copies (segments aligned, `_Copies`): for lists made
    another way (radio) that must not offer the same recording twice."""
    if not tracks:
        return []
    ids = [*seeds, *(t.id for t in tracks)]
    vectors = searcher.vectors(ids)
    copies = _Copies(searcher, vectors[0])
    copies.fetch(ids, vectors)  # the segments of every track close to another (or to the first seed)
    kept_rows = list(range(len(seeds)))
    kept = []
    for row, t in enumerate(tracks, start=len(seeds)):
        if any(copies._same(vectors[r], copies.segments.get(ids[r]), vectors[row], copies.segments.get(t.id))
               for r in kept_rows):
            continue
        kept_rows.append(row)
        kept.append(t)
    return kept
