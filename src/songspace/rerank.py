"""Ranking tracks as search does: the nearest by cosine, re-ranked by the timbre fusion.

Every command that ranks tracks by their likeness to a query track (similar, radio; the page,
the HTTP API and the Subsonic calls through them) asks `ranked`: the `fusion.CANDIDATES` (or
more) nearest tracks by cosine from the vector index, re-ranked by fusion.py's score, the CNN's
cosine fused with the timbre companion by mutual proximity. The cosine of each hit stays beside
its fused score: it is what users are shown and what thresholds (copies, duplicates) compare.

Fused only when the companion is ready for the searched model (proximity.py's state: every
searchable track has a timbre blob), else cosine order: a ranking is never half one, half the
other. A hit or a query whose moments are not stored yet (indexed since the last refresh, or a
file outside the library) has them measured against the stored sample, as the refresh would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import fusion, proximity, timbre
from .query import Searcher


@dataclass(frozen=True)
class Hit:
    id: int
    cosine: float
    score: float  # what the order follows: the fused score, or the cosine when not fused


def companion(searcher: Searcher) -> proximity.Sample | None:
    """The stored sample, ready to measure moments against, when search fuses (else None);
    made once per snapshot."""
    def build():
        space = searcher.space()
        found = proximity.state(searcher.catalog)
        if (not found or not found.get("ready") or found.get("model") != space.model_id
                or not proximity.applies(space.method) or space.mfcc_stats is not None):
            return None
        ids = np.asarray(found["sample"], dtype=np.int64)
        ids = ids[space.index.contains(ids)]
        blobs = searcher.catalog.timbres_of(ids)
        ids = np.asarray([i for i in ids.tolist() if i in blobs], dtype=np.int64)
        if len(ids) < 2:
            return None
        return proximity.Sample(ids, searcher.vectors(ids), [blobs[i] for i in ids.tolist()])

    return searcher.derived("fusion", build)


def fused(searcher: Searcher) -> bool:
    """Whether search ranks by the fusion now (else by cosine alone)."""
    return companion(searcher) is not None


@dataclass(frozen=True)
class Ranked:
    rows: list[list[Hit]]  # one per query, best first
    fused: bool  # every row ranked by the fused score (else every row by cosine)


def ranked(searcher: Searcher, queries: np.ndarray, k: int, exclude=frozenset(),
           query_ids: list[int | None] | None = None, query_timbres: list[bytes | None] | None = None) -> Ranked:
    """For each row of `queries` (vectors as searched), its nearest tracks best first: the
    max(k, CANDIDATES) nearest by cosine re-ranked by the fused score, or the k nearest by cosine
    when search does not fuse. A query is a library track (`query_ids`: its stored blob and
    moments) or an outside file (`query_timbres`: its packed Gaussian; None: cosine order)."""
    queries = np.atleast_2d(queries)
    sample = companion(searcher)
    q = len(queries)
    query_ids = list(query_ids) if query_ids is not None else [None] * q
    query_timbres = list(query_timbres) if query_timbres is not None else [None] * q
    hits = searcher.search(queries, max(k, fusion.CANDIDATES) if sample is not None else k, exclude)
    if sample is not None:
        rows = [_rescored(searcher, sample, row, v, qid, qt)
                for row, v, qid, qt in zip(hits, queries, query_ids, query_timbres)]
        if all(r is not None for r in rows):
            return Ranked(rows, True)
        hits = [row[:k] for row in hits]  # a query or a hit without timbre: all by cosine, never mixed
    return Ranked([[Hit(i, s, s) for i, s in row] for row in hits], False)


def _rescored(searcher: Searcher, sample: proximity.Sample, row: list[tuple[int, float]], vector: np.ndarray,
              query_id: int | None, query_timbre: bytes | None) -> list[Hit] | None:
    """The row re-ranked by the fused score; None when the query or a hit has no timbre blob."""
    if not row:
        return []
    ids = [i for i, _ in row]
    asked = ids + ([query_id] if query_id is not None else [])
    blobs = searcher.catalog.timbres_of(asked)
    if query_id is not None:
        query_timbre = blobs.get(query_id)
    if query_timbre is None or any(i not in blobs for i in ids):
        return None
    model_id = searcher.model_id
    stored = searcher.catalog.moments_of(asked, model_id)
    missing = [i for i in ids if i not in stored]
    if missing:  # indexed since the last refresh: measured now, against the same sample
        got = sample.moments(np.asarray(missing), searcher.vectors(missing), [blobs[i] for i in missing])
        stored.update(zip(missing, map(tuple, got)))
    if query_id is not None and query_id in stored:
        q_moments = np.asarray(stored[query_id])
    else:
        q_moments = sample.moments(np.asarray([-1 if query_id is None else query_id]), vector[None], [query_timbre])[0]
    cands = timbre.timbre_set([blobs[i] for i in ids])
    t_dist = fusion.timbre_distance(timbre.divergence_between(timbre.timbre_set([query_timbre]), cands)[0])
    cos = np.array([s for _, s in row])
    score = fusion.scores(cos, t_dist, q_moments, np.array([stored[i] for i in ids]))
    order = np.argsort(-score, kind="stable")
    return [Hit(ids[j], row[j][1], float(score[j])) for j in order]


def among(searcher: Searcher, paths) -> dict[str, dict[str, float]] | None:
    """{query path: {other path: score}} as search ranks these library tracks among all the
    searchable ones, higher first (evaluate.py scores it); None when search ranks by cosine
    alone (then the vectors' cosines are the ranking)."""
    if not fused(searcher):
        return None
    ids, _ = searcher.all_vectors()
    path_of = {t.id: t.path for t in searcher.tracks(ids)}
    wanted = set(paths)
    out = {}
    for track_id in ids.tolist():
        if path_of[track_id] in wanted:
            row = ranked(searcher, searcher.vectors([track_id]), len(ids), query_ids=[track_id]).rows[0]
            out[path_of[track_id]] = {path_of[h.id]: h.score for h in row if h.id != track_id}
    return out
