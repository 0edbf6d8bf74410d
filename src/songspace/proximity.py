"""The timbre companion's upkeep: each track's mutual-proximity moments, refreshed after `index`.

Mutual proximity (hubness.py, fusion.py) needs, per track, the mean and spread of its distances
(cosine and timbre) to the library. They are estimated against a fixed random sample of up to
`fusion.SAMPLE` searchable tracks, drawn with a fixed seed and stored (its ids, in meta), so a
track's moments keep their meaning from one run to the next. `refresh` runs at the end of every
index run inside the writer lock (Library._refreshed, beside autotags.refresh) and computes the
moments of the tracks that have none (new, re-embedded, or given their timbre blob since); all of
them again when the sample is redrawn: the model changed (the cosine half is the model's), or
the library grew or shrank by more than `REDRAW` since the sample was drawn. Vectorised numpy,
`BATCH` tracks per transaction (bench/proximity_refresh.py: 100k tracks in seconds).

`ready` (in the same meta value) says whether search may fuse: every searchable track had a
timbre blob when it last ran. Until then search ranks by cosine alone, never by a mix.
Reads and writes the catalog; imports no torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from . import fusion
from . import method as methods
from . import timbre
from .catalog import Catalog

STAMP = "proximity"  # meta: JSON {"model", "sample" (ids), "drawn_from" (searchable then), "ready"}
SEED = 0
REDRAW = 0.10  # the library grew or shrank by more than this share: a new sample, every moment again
BATCH = 5000


@dataclass(frozen=True)
class Refreshed:
    computed: int  # tracks whose moments were computed
    lacking: int  # searchable tracks without a timbre blob (search ranks by cosine until 0)
    note: str  # one line for the user


def applies(method: methods.Method) -> bool:
    """Whether a method's tracks get the companion: those embedded from the log-mel (MFCC
    statistics compute none)."""
    return method.kind != "mfcc"


def state(catalog: Catalog) -> dict | None:
    text = catalog.get_meta(STAMP)
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def draw(ids: np.ndarray, seed: int = SEED, size: int = fusion.SAMPLE) -> np.ndarray:
    """The sample: up to `size` of `ids`, drawn with `seed`, ascending."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(ids, size=min(size, len(ids)), replace=False)) if len(ids) else ids


class Sample:
    """The sample's vectors and Gaussians, and each track's moments measured against them."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, blobs: list[bytes]):
        self.ids, self.vectors = np.asarray(ids, dtype=np.int64), np.asarray(vectors, dtype=np.float32)
        self.timbres = timbre.timbre_set(blobs)

    def moments(self, track_ids, vectors: np.ndarray, blobs: list[bytes]) -> np.ndarray:
        """(n, 4) moments of these tracks (a track in the sample is not measured against itself)."""
        cos_d = 1.0 - np.asarray(vectors, dtype=np.float32) @ self.vectors.T
        t_d = fusion.timbre_distance(timbre.divergence_between(timbre.timbre_set(blobs), self.timbres))
        leave_out = np.asarray(track_ids, dtype=np.int64)[:, None] == self.ids[None, :]
        return fusion.moments(cos_d, t_d, leave_out)


def load_sample(catalog: Catalog, ids: np.ndarray, model_id: str) -> Sample:
    blobs = catalog.timbres_of(ids)
    kept, vectors = catalog.vectors_of([i for i in ids.tolist() if i in blobs], model_id)
    return Sample(kept, vectors, [blobs[i] for i in kept.tolist()])


def refresh(catalog: Catalog, full: bool = False) -> Refreshed:
    """Bring the moments of the current method's searchable tracks up to date (a writer
    catalog): those that have none, or every one (`full`, or the sample redrawn)."""
    method = methods.current(catalog)
    if not applies(method):
        catalog.put_proximity_state(STAMP, json.dumps({"model": method.id, "sample": [], "drawn_from": 0,
                                                       "ready": False}))
        return Refreshed(0, 0, "timbre: not with MFCC statistics (search ranks by cosine)")
    model_id = method.id
    with_timbre = catalog.searchable_with_timbre(model_id)
    lacking = catalog.lacking_timbre(model_id)
    old = state(catalog) or {}
    n = len(with_timbre) + lacking
    sample = np.asarray(old.get("sample", []), dtype=np.int64)
    kept = sample[np.isin(sample, with_timbre)]
    drawn_from = old.get("drawn_from") or 0
    redraw = (full or old.get("model") != model_id or abs(n - drawn_from) > REDRAW * drawn_from
              or len(kept) < (1 - REDRAW) * len(sample) or len(sample) == 0)
    if redraw:
        sample, drawn_from = draw(with_timbre), n
        catalog.drop_moments()
    else:
        sample = kept
    ready = lacking == 0 and len(sample) > 1
    todo = catalog.lacking_moments(model_id) if len(sample) else np.zeros(0, np.int64)
    if len(todo):
        measure = load_sample(catalog, sample, model_id)
        for start in range(0, len(todo), BATCH):
            chunk = todo[start : start + BATCH]
            blobs = catalog.timbres_of(chunk)
            ids, vectors = catalog.vectors_of(chunk, model_id)
            has = np.array([i in blobs for i in ids.tolist()], dtype=bool)
            if has.any():
                ids, vectors = ids[has], vectors[has]
                catalog.put_moments(model_id, ids, measure.moments(ids, vectors, [blobs[i] for i in ids.tolist()]))
    catalog.put_proximity_state(STAMP, json.dumps({"model": model_id, "sample": sample.tolist(),
                                                   "drawn_from": drawn_from, "ready": bool(ready)}))
    if lacking:
        note = (f"timbre: {lacking} tracks have no timbre model yet; search ranks by cosine until every "
                "track has one (index the library again)")
    else:
        note = (f"timbre: {len(todo)} tracks measured against a sample of {len(sample)}"
                f"{' (drawn anew)' if redraw else ''}; search ranks by the CNN fused with timbre")
    return Refreshed(len(todo), lacking, note)
