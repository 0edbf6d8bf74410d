"""Why two tracks are close: the few moments of A and of B that sound most alike.

A track vector is the mean of its segment vectors, so A and B are close when many of their
segments are. We show the most similar segment pairs, each a time range in A, one in B and
their cosine, taking them greedily best first and skipping pairs that overlap a moment already
shown (neighbouring patches overlap by half), so the few pairs name different moments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError, QueryError
from ..query import Searcher, one_snapshot
from .segments import segment_seconds


@dataclass(frozen=True)
class SegmentMatch:
    a_span: tuple[float, float]  # seconds in A
    b_span: tuple[float, float]  # seconds in B
    similarity: float  # cosine of the two segments


@one_snapshot
def explain(searcher: Searcher, a_id: int, b_id: int, top: int = 5) -> list[SegmentMatch]:
    """Up to `top` segment pairs that make tracks A and B close, most similar first (fewer when
    the tracks are too short for `top` moments that do not overlap)."""
    if top < 1:
        raise InputError(f"top must be at least 1, not {top}")
    if int(a_id) == int(b_id):
        raise QueryError(f"track {a_id} explained against itself: give two different tracks")
    a, b = searcher.tracks([int(a_id), int(b_id)])  # QueryError names an unknown id
    seconds = segment_seconds(searcher)
    stored = searcher.segments_of([a.id, b.id])  # one read for both
    for t in (a, b):
        if t.id not in stored:
            raise QueryError(f"track {t.id} has no segment vectors (embedded by {searcher.model_id})")
    (starts_a, vectors_a), (starts_b, vectors_b) = stored[a.id], stored[b.id]
    sim = vectors_a @ vectors_b.T

    # Greedy: best remaining pair, then block both segments' overlapping neighbours (within one
    # segment length), so the next pair names another moment of each track.
    taken_a = np.zeros(len(starts_a), bool)
    taken_b = np.zeros(len(starts_b), bool)
    found = []
    for flat in np.argsort(-sim, axis=None, kind="stable"):
        i, j = divmod(int(flat), sim.shape[1])
        if taken_a[i] or taken_b[j]:
            continue
        found.append(SegmentMatch(_span(starts_a[i], seconds, a.duration), _span(starts_b[j], seconds, b.duration),
                                  round(float(sim[i, j]), 4)))
        if len(found) == top:
            break
        taken_a |= np.abs(starts_a - starts_a[i]) < seconds
        taken_b |= np.abs(starts_b - starts_b[j]) < seconds
    return found


def _span(start: float, seconds: float, duration: float | None) -> tuple[float, float]:
    end = start + seconds if duration is None else min(start + seconds, duration)
    return round(float(start), 3), round(float(end), 3)
