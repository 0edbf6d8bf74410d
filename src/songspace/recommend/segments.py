"""Segments as the recommenders meet them: how long one lasts with the searched model, and audio
cut into segments at several sub-hop trims (`shifted_segments`). The index of every stored
segment is the Searcher's (`Searcher.segment_index`, built once per snapshot: segment_index.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError, QueryError
from ..query import Searcher


def segment_seconds(searcher: Searcher) -> float:
    """How long one segment (patch) lasts with the searched model."""
    from ..models.files import read_config

    method = searcher.space().method
    if not method.has_segments:
        raise QueryError("the MFCC baseline stores no segment vectors; segments need a model (songspace's encoder)")
    f = read_config(method.file)["features"]
    return f["patch_frames"] * f["hop_length"] / f["sr"]


def shifted_segments(searcher: Searcher, source, sr: int | None = None, shifts: int = 4) -> list[tuple[np.ndarray, np.ndarray]]:
    """Audio embedded by the searched model `shifts` times, trimmed each time by a further
    1/shifts of a hop: [(starts in the audio, seconds; (n, dim) unit vectors, as the model makes
    them: `Searcher.as_segments` puts them where stored segments are compared)]. Stored segments
    sit on a fixed grid, so audio cut between two grid points only half-overlaps them; one of
    the trims lines up within hop/shifts. `source`: an audio file, or a mono waveform sampled at `sr`."""
    from .. import audio
    seconds = segment_seconds(searcher)  # also refuses the MFCC baseline, which has no segments
    model = searcher.embedder()
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
