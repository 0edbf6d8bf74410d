"""The timbre companion's rows: each track's timbre Gaussian (timbre.pack's 460 bytes) and each
track's mutual-proximity moments under a model (proximity.py computes them).

A blob is written with the track's vector, in `Tracks.put_ok`'s transaction, or alone for a track
embedded before the companion existed (`put_timbre`). It depends on the audio and the feature
configuration only, not on the CNN. The moments depend on the model (their cosine half) and on
the library (a sample of it): a row is dropped whenever its track's vector or blob changes, and
proximity.py fills in the tracks that have none.
"""

from __future__ import annotations

import numpy as np

from .store import Store, chunks, marks

STEP = 13  # the migration step that made these tables (a reader of an older catalog has none)

_SEARCHABLE = ("FROM tracks t JOIN embeddings e ON e.track_id = t.id "
               "WHERE t.status = 'ok' AND e.model_id = ?")


class Timbres(Store):
    def _has_timbre(self) -> bool:
        """Whether this catalog has the tables (a read-only connection to a catalog not yet
        migrated to step 13 has not: no track has a blob there)."""
        return self.schema_version >= STEP

    def put_timbre(self, track_id: int, blob: bytes) -> None:
        """The timbre blob of an already embedded track (its moments are computed anew)."""
        with self._transaction():
            self._put_timbre(int(track_id), blob)
            self._bump()  # search's snapshot sees the companion's state change

    def _put_timbre(self, track_id: int, blob: bytes | None) -> None:
        """In the caller's transaction: the track's blob (None: none, a stale one removed) and
        no moments until they are computed again."""
        if blob is None:
            self.db.execute("DELETE FROM timbre WHERE track_id = ?", (track_id,))
        else:
            self.db.execute("INSERT OR REPLACE INTO timbre VALUES (?, ?)", (track_id, bytes(blob)))
        self.db.execute("DELETE FROM proximity WHERE track_id = ?", (track_id,))

    def timbres_of(self, track_ids) -> dict[int, bytes]:
        """{track id: blob} of those of `track_ids` that have one."""
        found: dict[int, bytes] = {}
        if not self._has_timbre():
            return found
        for chunk in chunks(track_ids):
            found.update(self.db.execute(f"SELECT track_id, blob FROM timbre WHERE track_id IN ({marks(chunk)})",
                                         tuple(chunk)))
        return found

    def lacking_timbre(self, model_id: str) -> int:
        """How many tracks searchable with `model_id` have no timbre blob."""
        if not self._has_timbre():
            return self.db.execute(f"SELECT COUNT(*) {_SEARCHABLE}", (model_id,)).fetchone()[0]
        return self.db.execute(f"SELECT COUNT(*) {_SEARCHABLE} AND t.id NOT IN (SELECT track_id FROM timbre)",
                               (model_id,)).fetchone()[0]

    def without_timbre(self) -> set[int]:
        """Ids of the analysed (ok) tracks that have no timbre blob: what `index` fills in."""
        return {r[0] for r in self.db.execute(
            "SELECT id FROM tracks WHERE status = 'ok' AND id NOT IN (SELECT track_id FROM timbre)")}

    def searchable_with_timbre(self, model_id: str) -> np.ndarray:
        """Ids of the tracks searchable with `model_id` that have a timbre blob, ascending."""
        rows = self.db.execute(f"SELECT t.id {_SEARCHABLE} AND t.id IN (SELECT track_id FROM timbre) ORDER BY t.id",
                               (model_id,))
        return np.array([r[0] for r in rows], dtype=np.int64)

    # -- moments -------------------------------------------------------------------------------

    def put_moments(self, model_id: str, track_ids, moments: np.ndarray) -> None:
        """Rows (cos mu, cos sd, timbre mu, timbre sd) of these tracks under `model_id`, one
        transaction (a run stopped between batches keeps those done)."""
        with self._transaction():
            self.db.executemany("INSERT OR REPLACE INTO proximity VALUES (?, ?, ?, ?, ?, ?)",
                                [(int(i), model_id, *map(float, m)) for i, m in zip(track_ids, moments)])

    def drop_moments(self, keep_model: str | None = None) -> None:
        """Forget every track's moments (but those of `keep_model`): a new sample, a new model."""
        with self._transaction():
            self.db.execute("DELETE FROM proximity WHERE model_id IS NOT ?", (keep_model,))

    def moments_of(self, track_ids, model_id: str) -> dict[int, tuple[float, float, float, float]]:
        """{track id: (cos mu, cos sd, timbre mu, timbre sd)} of those of `track_ids` that have them."""
        found: dict[int, tuple] = {}
        if not self._has_timbre():
            return found
        for chunk in chunks(track_ids):
            rows = self.db.execute(f"SELECT track_id, cos_mu, cos_sd, timbre_mu, timbre_sd FROM proximity "
                                   f"WHERE model_id = ? AND track_id IN ({marks(chunk)})", (model_id, *chunk))
            found.update((r[0], r[1:]) for r in rows)
        return found

    def lacking_moments(self, model_id: str) -> np.ndarray:
        """Ids of the tracks searchable with `model_id` that have a timbre blob and no moments."""
        rows = self.db.execute(
            f"SELECT t.id {_SEARCHABLE} AND t.id IN (SELECT track_id FROM timbre) AND t.id NOT IN "
            f"(SELECT track_id FROM proximity WHERE model_id = ?) ORDER BY t.id", (model_id, model_id))
        return np.array([r[0] for r in rows], dtype=np.int64)

    def put_proximity_state(self, key: str, value: str) -> None:
        """The companion's state in meta (proximity.py); the generation moves, so search's next
        snapshot reads it (it does not change a vector)."""
        with self._transaction():
            self.set_meta(key, value)
            self._bump()
