"""One snapshot of what is searched, and the gate that keeps it whole while a question reads it.

A `Snapshot` is what a `Searcher` (query.py) answers from: which model made the vectors, their
index, the MFCC statistics they were standardised with, and whatever is derived from them on
demand (the segment index, the Subsonic view), built once per snapshot by whoever asks first.

Its vector index is shared with the next snapshot and changed in place (a few tracks from the
change log, vectors.py), so a question that searches and then looks up what it found could see
a track leave in between. `Readers` counts the questions reading; a change in place happens
only when none is, and never waits for one: the Searcher keeps answering from the snapshot it
has and tries again on the next question. A question waits only while a change is being
applied (milliseconds).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import QueryError
from .method import Method
from .vectors import VectorIndex


@dataclass(eq=False)
class Snapshot:
    stamp: tuple  # (catalog generation, its current model) when taken
    method: Method  # what made these vectors
    model_id: str
    index: VectorIndex
    mfcc_stats: tuple[np.ndarray, np.ndarray] | None  # mean, std: MFCC vectors are standardised
    derived: dict[str, Any] = field(default_factory=dict)
    stale: bool = False  # it holds vectors of tracks since re-embedded by another model (a switch under way)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def lookup(self, track_ids) -> np.ndarray:
        track_ids = np.asarray(track_ids, dtype=np.int64)
        try:
            return self.index.reconstruct(track_ids)
        except KeyError as e:
            missing = ", ".join(map(str, e.args[0]))
            raise QueryError(f"track {missing} is not searchable (not indexed, failed, "
                             f"or not yet embedded by model {self.model_id})") from None

    def require_searchable(self, track_ids) -> None:
        track_ids = np.asarray(track_ids, dtype=np.int64)
        missing = track_ids[~self.index.contains(track_ids)]
        if len(missing):
            raise QueryError(f"track {', '.join(map(str, missing.tolist()))} is not searchable (not indexed, failed, "
                             f"or not yet embedded by model {self.model_id})")

    def get(self, name: str, build: Callable[[], Any]) -> Any:
        """What `build()` makes from this snapshot, made once (concurrent askers wait for it)."""
        with self._lock:
            if name not in self.derived:
                self.derived[name] = build()
            return self.derived[name]


class Readers:
    """How many questions are reading the shared index; a change in place only when none is."""

    def __init__(self):
        self._cond = threading.Condition()
        self._reading = 0
        self._changing = False

    @contextmanager
    def reading(self):
        with self._cond:
            while self._changing:
                self._cond.wait()
            self._reading += 1
        try:
            yield
        finally:
            with self._cond:
                self._reading -= 1

    @contextmanager
    def changing_if_idle(self):
        """Yields True, keeping new readers out, when no question is reading; else False at once."""
        with self._cond:
            idle = self._reading == 0 and not self._changing
            self._changing = self._changing or idle
        try:
            yield idle
        finally:
            if idle:
                with self._cond:
                    self._changing = False
                    self._cond.notify_all()
