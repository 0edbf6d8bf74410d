"""Where does this excerpt come from: the track, the moment inside it, and how sure we are.

The excerpt is embedded with the searched model into segment vectors, the segment index names
candidate tracks owning segments like them (the nearest track vectors fill up the list), and
each candidate's segments are aligned with the excerpt's (`align`); the best alignment gives
the offset. Stored segments start every hop (1.536 s with the shipped features), so an excerpt
cut between two grid points would only half-overlap them: we embed it again trimmed by a
quarter, a half and three quarters of a hop and keep the trim that lines up best, which puts
the offset within about 0.2 s of the true one, and raises the match's cosine too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..catalog import Track
from ..errors import InputError
from ..query import Searcher, one_snapshot
from .align import Alignment, align
from .segments import segment_seconds, shifted_segments

SHIFTS = 4  # embeddings of the excerpt, each trimmed by a further 1/SHIFTS of a hop: offsets within ~0.2 s


@dataclass(frozen=True)
class Identification:
    track: Track
    offset: float  # seconds into the track where the excerpt begins
    confidence: float  # mean cosine over the excerpt's segments, unmatched ones counting 0 (1.0: identical)
    similarity: float  # mean cosine of the matched segments
    coverage: float  # share of the excerpt's segments matched inside the track


@one_snapshot
def identify(searcher: Searcher, source, sr: int | None = None, k: int = 5, candidates: int = 20) -> list[Identification]:
    """The library tracks the excerpt most likely comes from, best first, each with the offset
    where the excerpt begins. `source`: an audio file, or a mono waveform sampled at `sr`."""
    if k < 1:
        raise InputError(f"k must be at least 1, not {k}")
    raw = shifted_segments(searcher, source, sr, shifts=SHIFTS)
    shifted = [(starts, searcher.as_segments(vectors)) for starts, vectors in raw]  # as segments are stored
    index, segments = searcher.segment_index()
    seconds = segment_seconds(searcher)

    # Candidates: the tracks owning the segments nearest the excerpt's, by their summed cosines.
    queries = np.concatenate([v for _, v in shifted])
    sims, rows = index.search(queries, 10)
    votes: dict[int, float] = {}
    for srow, rrow in zip(sims, rows):
        for s, r in zip(srow, rrow):
            if r >= 0:
                t = int(index.track_ids[r])
                votes[t] = votes.get(t, 0.0) + float(s)
    picked = sorted(votes, key=votes.get, reverse=True)[: max(candidates, k)]
    # The excerpt's own segments may fill every hit with neighbours in one track; the nearest
    # track vectors make up the rest, so there are always k candidates to rank.
    mean = raw[0][1].mean(axis=0)  # the track vector is the mean of the model's own patch vectors
    nearest = searcher.search(mean / max(float(np.linalg.norm(mean)), 1e-12), max(candidates, k))[0]
    picked += [t for t, _ in nearest if t not in votes and t in segments][: max(candidates, k) - len(picked)]

    found = []
    for track_id in picked:
        best: Alignment | None = None
        for starts, vectors in shifted:
            m = align(starts, vectors, *segments[track_id], segment_seconds=seconds)
            if best is None or (m.score, m.similarity) > (best.score, best.similarity):
                best = m
        found.append((track_id, best))
    found.sort(key=lambda f: -f[1].score)
    found = found[:k]
    tracks = searcher.tracks([t for t, _ in found])
    return [Identification(t, round(_clamp(m.offset, t.duration), 3), round(m.score, 4), round(m.similarity, 4),
                           round(m.coverage, 3)) for t, (_, m) in zip(tracks, found)]


def _clamp(offset: float, duration: float | None) -> float:
    # An excerpt starting at 0 may align a fraction of a hop before the track begins.
    return max(0.0, offset if duration is None else min(offset, duration))
