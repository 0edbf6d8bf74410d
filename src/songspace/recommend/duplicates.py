"""Copies of one recording in the library: another codec or bitrate, a trimmed start or end,
a few dB quieter, or an excerpt of a longer file.

Two stages, so the work grows with the library, not with its square:
1. candidates: each track asks the segment index (every segment vector of the library) for the
   segments nearest a few of its own; another track owning a near-identical segment is a
   candidate. An excerpt finds its long track this way even though their track vectors differ.
2. confirmation: each candidate pair's segment sequences are aligned (`align`): a copy matches
   along one time offset, almost segment for segment, over nearly all of the shorter file.
   Different recordings, even of one album and one artist, may share a texture but not a
   segment-by-segment diagonal this close.

Why a re-check from the audio: stored segments start on a 1.536-s grid from each file's own
start, so a copy trimmed by a fraction of a hop never lines up with its original's grid, and the
model is sensitive to small shifts: on ost-dev such copies aligned at a cosine of 0.944-0.97,
where the closest different recordings already sit (0.956: two renderings of one game tune).
A pair that falls just short of the threshold on stored vectors is therefore decided by
re-embedding the shorter file at 16 sub-hop trims (grid error <= 0.1 s): copies then reached
0.975+, the different recordings stayed where they were (bench/copies.py). With the shipped
model v3 different recordings came closer (synthetic tests: up to 0.966; ost-dev: 0.968 for two
dense metal tracks, 0.984 for drascula's two renderings of one tune, a copy in all but name),
so the threshold rose from 0.965 to 0.975, where v3 still finds all 60 of bench/copies.py's copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DecodeError, InputError
from ..query import Searcher, one_snapshot
from .align import Alignment, align
from .segments import segment_seconds, shifted_segments

DEFAULT_THRESHOLD = 0.975  # mean cosine along the aligned segments (bench/copies.py: copies 0.975+, see above)
MIN_COVERAGE = 0.8  # share of the shorter file that must be matched
RECHECK_MARGIN = 0.04  # stored-vector alignments this far below the threshold are re-checked from audio
RECHECK_SHIFTS = 16


@dataclass(frozen=True)
class DuplicatePair:
    a: int  # track id, the smaller of the two
    b: int
    similarity: float  # mean cosine of the aligned segments
    coverage: float  # share of the shorter track matched
    a_span: tuple[float, float]  # the part of A that matches, seconds
    b_span: tuple[float, float]  # the part of B it matches
    offset: float  # seconds: a time in A plus offset is the same moment in B


@one_snapshot
def candidate_pairs(searcher: Searcher, floor: float, probes: int = 24, k: int = 64) -> set[tuple[int, int]]:
    """Pairs of tracks owning at least one pair of segments with cosine >= floor. `k` hits per
    query leave room for the querying track's own neighbouring segments, which come first in
    a track that keeps one texture."""
    index, segments = searcher.segment_index()
    queries, owners = [], []
    for track_id, (_, vectors) in segments.items():
        # A few segments spread over the track: enough to hit a copy of any length, since the
        # shorter file of a pair queries too (an excerpt asks with all of its few segments).
        picks = np.unique(np.linspace(0, len(vectors) - 1, min(probes, len(vectors))).round().astype(int))
        queries.append(vectors[picks])
        owners.append(np.full(len(picks), track_id))
    sims, rows = index.search(np.concatenate(queries), k)
    owners = np.concatenate(owners)
    pairs = set()
    for owner, srow, rrow in zip(owners.tolist(), sims, rows):
        for s, r in zip(srow, rrow):
            if r < 0 or s < floor:
                break  # hits come best first
            other = int(index.track_ids[r])
            if other != owner:
                pairs.add((min(owner, other), max(owner, other)))
    return pairs


@one_snapshot
def find_duplicates(searcher: Searcher, threshold: float = DEFAULT_THRESHOLD,
                    min_coverage: float = MIN_COVERAGE, recheck: bool = True) -> list[DuplicatePair]:
    """Pairs of tracks that are the same recording, most similar first. `threshold` is the mean
    cosine of the aligned segments a pair needs (0..1); `min_coverage` the share of the shorter
    track that must match; `recheck` re-embeds the shorter file of a pair just below the
    threshold (see the module docstring) instead of trusting stored vectors alone."""
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"threshold must be in (0, 1], not {threshold}")
    if not 0.0 < min_coverage <= 1.0:
        raise InputError(f"min_coverage must be in (0, 1], not {min_coverage}")
    seconds = segment_seconds(searcher)
    _, segments = searcher.segment_index()
    durations = {t.id: t.duration for t in searcher.tracks(list(segments))}
    found = []
    # A copy's best segment pair is at least as close as the mean along its diagonal.
    floor = threshold - RECHECK_MARGIN if recheck else threshold
    for a, b in sorted(candidate_pairs(searcher, floor=floor)):
        m = align(*segments[a], *segments[b], segment_seconds=seconds)
        if recheck and floor <= m.similarity < threshold and m.coverage >= min_coverage:
            m = _recheck(searcher, a, b, segments, seconds) or m
        if m.similarity >= threshold and m.coverage >= min_coverage:
            found.append(DuplicatePair(a, b, round(m.similarity, 4), round(m.coverage, 3),
                                       _clip(m.a_span, durations[a]), _clip(m.b_span, durations[b]),
                                       round(m.offset, 3)))
    return sorted(found, key=lambda p: (-p.similarity, p.a, p.b))


def _recheck(searcher: Searcher, a: int, b: int, segments: dict, seconds: float) -> Alignment | None:
    """The pair aligned again with the shorter file re-embedded at sub-hop trims, in A→B terms;
    None when the file cannot be decoded any more (the stored-vector verdict stands)."""
    short, long = (a, b) if len(segments[a][0]) <= len(segments[b][0]) else (b, a)
    try:
        shifted = shifted_segments(searcher, searcher.track(short).path, shifts=RECHECK_SHIFTS)
    except DecodeError:
        return None
    best = max((align(starts, searcher.as_segments(vectors), *segments[long], segment_seconds=seconds)
                for starts, vectors in shifted),
               key=lambda m: (m.score, m.similarity))
    if short == a:
        return best
    return Alignment(-best.offset, best.b_span, best.a_span, best.pairs, best.coverage, best.similarity)


def duplicate_groups(pairs: list[DuplicatePair]) -> list[list[int]]:
    """Tracks joined by duplicate pairs, as groups of ids (connected components), largest first."""
    parent: dict[int, int] = {}

    def root(i: int) -> int:
        while parent.setdefault(i, i) != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for p in pairs:
        parent[root(p.a)] = root(p.b)
    groups: dict[int, list[int]] = {}
    for i in sorted(parent):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def _clip(span: tuple[float, float], duration: float | None) -> tuple[float, float]:
    end = span[1] if duration is None else min(span[1], duration)
    return round(span[0], 3), round(end, 3)
