"""Every segment vector of one model in one FAISS index: which few seconds of which track sound
like these few seconds. Duplicates and identify take their candidates from it, so a 10-s
excerpt finds the long track it was cut from even where the two track vectors differ.

Derived from the catalog like the track index; the `Searcher` builds it once per snapshot
(query.py). Exact inner-product search up to `EXACT_MAX` segments; HNSW above, where exact
search of every segment against every other would be quadratic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXACT_MAX = 200_000  # segments (about 1,000 tracks of 5 minutes): flat search stays under a second per batch


@dataclass(frozen=True)
class SegmentIndex:
    track_ids: np.ndarray  # (n,) int64: the track each indexed segment belongs to
    starts: np.ndarray  # (n,) float32 seconds
    index: object  # faiss index over the segments' unit vectors, row i = segment i

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(cosines, rows) of the k nearest segments of each query row; rows -1 where fewer."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        return self.index.search(queries, min(k, len(self.track_ids)))


def build(segments: dict[int, tuple[np.ndarray, np.ndarray]]) -> SegmentIndex:
    """The index over {track id: (starts, (n, dim) unit vectors)}."""
    import faiss

    ids = np.concatenate([np.full(len(s), i, dtype=np.int64) for i, (s, _) in segments.items()])
    starts = np.concatenate([s for s, _ in segments.values()]).astype(np.float32)
    vectors = np.ascontiguousarray(np.concatenate([v for _, v in segments.values()]), dtype=np.float32)
    dim = vectors.shape[1]
    if len(vectors) <= EXACT_MAX:
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = 128
    index.add(vectors)
    return SegmentIndex(ids, starts, index)
