"""The teacher's tags as training targets, for the encoder's auxiliary loss (TrainConfig.teacher_weight).

The teacher (musicnn's Million Song Dataset tagger, `scripts/teacher-tags.py`) was run once over
the training corpus; its outputs are an npz with `paths` (each track's path relative to the
corpus's music folder, as MANIFEST.tsv's `file` column spells it), `tags` (names) and `probs`
(tracks, tags): the mean sigmoid probability of each tag over the track.

Targets are the probabilities' logits, standardised per tag over the training tracks. Why not
the probabilities: most of them are tiny (median 0.012; on the training corpus "sad" and "happy"
never pass 0.021), so a loss on probabilities is ruled by the few common tags and gives the rest almost
no gradient, while their ranking (which track is "more sad than usual") is what a tag carries.
Logits turn ratios of small probabilities into differences, and standardising each tag gives
every tag the same say and a loss near 1 for a head that knows nothing, whatever the tag's base
rate, so a weight means the same thing for every teacher file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import InputError

CLIP = 1e-4  # probabilities clipped to [CLIP, 1 - CLIP] before the logit: |logit| <= 9.2


def read_targets(npz: str | Path, paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(has_target (len(paths),) bool, logits (len(paths), tags) float32, zero where none).

    A track gets the teacher's row whose relative path is the longest tail of its own path
    ("package/file" or deeper), so the same file matches under any corpus folder that keeps the
    layout (the base corpus and the grown one alike). Tracks with no row get no target."""
    npz = Path(npz).expanduser()
    if not npz.is_file():
        raise InputError(f"teacher tags {npz}: no such file")
    try:
        with np.load(npz) as f:
            rel = [str(p).strip("/") for p in f["paths"]]
            probs = np.asarray(f["probs"], dtype=np.float64)
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"teacher tags {npz}: not an npz with `paths` and `probs` ({e})") from None
    if probs.ndim != 2 or probs.shape[0] != len(rel) or probs.shape[1] < 1:
        raise InputError(f"teacher tags {npz}: `probs` must be (tracks, tags) with one row per path, "
                         f"not {probs.shape} for {len(rel)} paths")
    if not np.isfinite(probs).all():
        raise InputError(f"teacher tags {npz}: `probs` holds NaN or infinite values")
    row_of = {p: i for i, p in enumerate(rel)}
    p = np.clip(probs, CLIP, 1 - CLIP)
    logits = np.log(p / (1 - p)).astype(np.float32)
    has = np.zeros(len(paths), dtype=bool)
    out = np.zeros((len(paths), probs.shape[1]), dtype=np.float32)
    for n, path in enumerate(paths):
        parts = Path(path).parts
        for k in range(len(parts), 0, -1):  # longest tail first
            i = row_of.get("/".join(parts[-k:]))
            if i is not None:
                has[n], out[n] = True, logits[i]
                break
    return has, out


def standardise(targets: np.ndarray, has: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Targets with each tag at mean 0 and sd 1 over `rows` that have one (the training tracks:
    held-out tracks' targets play no part, not even in the scale)."""
    use = rows[has[rows]]
    mean = targets[use].mean(axis=0)
    sd = np.maximum(targets[use].std(axis=0), 1e-6)  # a tag constant over the corpus teaches nothing
    return ((targets - mean) / sd).astype(np.float32) * has[:, None]
