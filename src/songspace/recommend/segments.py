"""Every segment vector of the library in one FAISS index: which few seconds of which track sound
like these few seconds. Duplicates and identify take their candidates from it, so a 10-s
excerpt finds the long track it was cut from even where the two track vectors differ.

Derived from the catalog like the track index, and rebuilt when the searched space changes.
Exact inner-product search up to `EXACT_MAX` segments; HNSW above, where exact search of every
segment against every other would be quadratic.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import numpy as np

from pathlib import Path

from ..errors import InputError, QueryError
from ..query import Searcher

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


def segment_seconds(searcher: Searcher) -> float:
    """How long one segment (patch) lasts with the searched model."""
    from ..models.files import read_config

    method = searcher.space().method
    if not method.has_segments:
        raise QueryError("the MFCC baseline stores no segment vectors; segments need a model (songspace's encoder)")
    f = read_config(method.file)["features"]
    return f["patch_frames"] * f["hop_length"] / f["sr"]


def track_segments(searcher: Searcher) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{track id: (starts, vectors)} of every searchable track that has segments (those embedded
    before segments were stored have none: nothing to align)."""
    return searcher.segments_of(searcher.ids())


_cache: "weakref.WeakKeyDictionary[Searcher, tuple]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def segment_index(searcher: Searcher) -> tuple[SegmentIndex, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """The segment index of the searched space and every track's segments, built once per space."""
    segment_seconds(searcher)  # a clear error for the MFCC baseline before any work
    stamp = searcher.space().stamp
    with _lock:
        cached = _cache.get(searcher)
        if cached is None or cached[0] != stamp:
            segments = track_segments(searcher)
            if not segments:
                raise QueryError("no track in the library has segment vectors to search")
            cached = (stamp, _build(segments), segments)
            _cache[searcher] = cached
    return cached[1], cached[2]


def _build(segments: dict[int, tuple[np.ndarray, np.ndarray]]) -> SegmentIndex:
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


def shifted_segments(searcher: Searcher, source, sr: int | None = None, shifts: int = 4) -> list[tuple[np.ndarray, np.ndarray]]:
    """Audio embedded by the searched model `shifts` times, trimmed each time by a further
    1/shifts of a hop: [(starts in the audio, seconds; (n, dim) unit vectors, as the model makes
    them: `Searcher.as_segments` puts them where stored segments are compared)]. Stored segments
    sit on a fixed grid, so audio cut between two grid points only half-overlaps them; one of
    the trims lines up within hop/shifts. `source`: an audio file, or a mono waveform sampled at `sr`."""
    from .. import audio
    seconds = segment_seconds(searcher)  # also refuses the MFCC baseline, which has no segments
    model = searcher.space().method.embedder()
    cfg = model.features
    name = "the waveform"
    if isinstance(source, (str, Path)):
        name = str(source)
        a = audio.load(source, sr=cfg.sr)
        y, at = a.y, a.seconds_at
    else:
        y = _resampled(np.asarray(source, dtype=np.float32), sr, cfg.sr)
        at = lambda sample: sample / cfg.sr  # noqa: E731
    duration = len(y) / cfg.sr
    if duration < seconds:
        raise QueryError(f"{name}: the excerpt lasts {duration:.2f} s, shorter than one segment: "
                         f"at least {seconds:.3f} s of audio is needed")
    hop_frames = cfg.patch_frames // 2
    out = []
    for k in range(shifts):
        trim = int(round(k * hop_frames * cfg.hop_length / shifts))
        part = y[trim:]
        if len(part) < cfg.patch_frames * cfg.hop_length:
            break
        starts = [at(trim + s) for s in model.patch_offsets(len(part))]
        out.append((np.array(starts, dtype=np.float64), model.patch_vectors(part).cpu().numpy()))
    return out


def _resampled(y: np.ndarray, sr: int | None, target: int) -> np.ndarray:
    if y.ndim != 1:
        raise InputError(f"a waveform must be mono (n,), not shape {y.shape}")
    if sr is None:
        raise InputError("a waveform needs its sample rate (sr)")
    if sr == target:
        return y
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(sr), int(target))
    return resample_poly(y, target // g, int(sr) // g).astype(np.float32)
