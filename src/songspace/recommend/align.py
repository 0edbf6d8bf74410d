"""Aligning two tracks' segment vectors: at which time offset do they match, and how well.

Each track is a sequence of unit vectors, one per few-second patch, on a regular grid
(`segment_starts`, seconds). Two copies of one recording line up along one diagonal of their
cosine-similarity matrix: segment i of A matches the segment of B that starts `offset` seconds
later, for every i in the part they share. So we bin every pair (i, j) by its time offset,
rounded to the grid, and keep the offset whose pairs add up to the most similarity: a long run of
good matches beats a short run of slightly better ones, which is what "the same audio" means.

This is the shared core of duplicates, identify and explain: arrays in, an `Alignment` out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_HOP = 1.536  # seconds between segment starts with the shipped features (3.072-s patches, 50% overlap)


@dataclass(frozen=True)
class Alignment:
    offset: float  # seconds to add to a time in A to get the matching time in B
    a_span: tuple[float, float]  # the matched part of A, seconds (segment starts to last segment's end)
    b_span: tuple[float, float]  # the matched part of B
    pairs: int  # segments matched along the diagonal
    coverage: float  # pairs / segments of the shorter sequence: 1.0 = all of it matched
    similarity: float  # mean cosine of the matched pairs

    @property
    def score(self) -> float:
        """Mean similarity over the shorter sequence, unmatched segments counting 0."""
        return self.similarity * self.coverage


def grid_hop(*starts: np.ndarray) -> float:
    """The segment hop in seconds, read from the starts themselves (the last patch of a track is
    aligned to its end, so the median step, not the last one)."""
    steps = np.concatenate([np.diff(s) for s in starts if len(s) > 1] or [np.array([])])
    steps = steps[steps > 1e-3]
    return float(np.median(steps)) if len(steps) else DEFAULT_HOP


def align(starts_a: np.ndarray, a: np.ndarray, starts_b: np.ndarray, b: np.ndarray,
          segment_seconds: float | None = None, hop: float | None = None) -> Alignment:
    """The best-matching time offset between two segment sequences (starts (n,), unit vectors
    (n, dim)). `segment_seconds` (default: two hops, the 50% overlap) sets where spans end."""
    starts_a = np.asarray(starts_a, dtype=np.float64)
    starts_b = np.asarray(starts_b, dtype=np.float64)
    if len(starts_a) == 0 or len(starts_b) == 0:
        raise ValueError("cannot align an empty sequence of segments")
    hop = hop or grid_hop(starts_a, starts_b)
    segment_seconds = segment_seconds or 2 * hop
    sim = np.asarray(a, dtype=np.float32) @ np.asarray(b, dtype=np.float32).T

    # Every pair's offset on the grid; bincount sums similarity and counts pairs per offset.
    offsets = np.rint((starts_b[None, :] - starts_a[:, None]) / hop).astype(np.int64)
    lowest = offsets.min()
    bins = (offsets - lowest).ravel()
    total = np.bincount(bins, weights=sim.ravel().astype(np.float64))
    count = np.bincount(bins)
    shorter = min(len(starts_a), len(starts_b))
    pairs_per_bin = np.minimum(count, shorter)  # an end-aligned last patch may land twice in one bin
    best = int(np.argmax(np.where(count > 0, total / np.maximum(count, 1) * pairs_per_bin, -np.inf)))

    ia, ib = _one_to_one(*np.nonzero(offsets == best + lowest), starts_a, starts_b)
    mean = float(sim[ia, ib].mean())
    offset = float(np.median(starts_b[ib] - starts_a[ia]))
    return Alignment(
        offset=offset,
        a_span=(float(starts_a[ia].min()), float(starts_a[ia].max() + segment_seconds)),
        b_span=(float(starts_b[ib].min()), float(starts_b[ib].max() + segment_seconds)),
        pairs=int(min(len(ia), shorter)),
        coverage=float(min(len(ia), shorter) / shorter),
        similarity=mean,
    )


def _one_to_one(ia: np.ndarray, ib: np.ndarray, starts_a: np.ndarray, starts_b: np.ndarray):
    """The pairs of one offset bin with each segment used once. A track's last patch is aligned
    to its end, off the grid, so it can fall into the bin twice (paired with two neighbours);
    keep the pairs whose time offset is closest to the bin's typical one."""
    delta = starts_b[ib] - starts_a[ia]
    order = np.argsort(np.abs(delta - np.median(delta)), kind="stable")
    used_a, used_b, keep = set(), set(), []
    for k in order.tolist():
        if ia[k] not in used_a and ib[k] not in used_b:
            used_a.add(ia[k])
            used_b.add(ib[k])
            keep.append(k)
    keep.sort()
    return ia[keep], ib[keep]
