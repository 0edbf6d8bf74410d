"""Segments: the rows of the segment sidecar (the bytes themselves: segment_store.py), each
model's projection, and the sidecar's upkeep.

A segment write only appends and points a row at what it appended. Fitting a model's projection
once it has enough full segments (and re-encoding them under it) and compacting the sidecar are
`upkeep`, which the indexer calls between writes and at the end of a run (library.py).
"""

from __future__ import annotations

import sqlite3
import warnings

import numpy as np

from .. import segment_store
from .store import Store, chunks, marks

COMPACT_BELOW = 2**20  # a sidecar smaller than this is never worth compacting


class Segments(Store):
    def __init__(self, *args, **kwargs):
        self._segment_file: segment_store.SegmentFile | None = None
        self._projections: dict[str, np.ndarray] = {}  # fitted once per model, so cached for good
        super().__init__(*args, **kwargs)

    def close(self) -> None:
        if self._segment_file is not None:
            self._segment_file.close()
        super().close()

    def _segments_file_name(self) -> str:
        return self.get_meta("segments_file", segment_store.DEFAULT_FILE)

    def _segments_in(self, name: str) -> segment_store.SegmentFile:
        path = self.path.parent / name
        if self._segment_file is None or self._segment_file.path != path:
            if self._segment_file is not None:
                self._segment_file.close()
            self._segment_file = segment_store.SegmentFile(path)
        return self._segment_file

    def segment_projection(self, model_id: str) -> np.ndarray | None:
        """The (dims, dim) projection `model_id`'s segments are stored under, None while they are
        stored in full. Fresh segment vectors meet stored ones through `segment_store.project`."""
        if model_id not in self._projections:
            try:
                row = self.db.execute("SELECT basis, dims FROM segment_projections WHERE model_id = ?",
                                      (model_id,)).fetchone()
            except sqlite3.OperationalError:  # older than the sidecar, read-only
                row = None
            if row is None:
                return None
            self._projections[model_id] = np.frombuffer(row[0], dtype=np.float32).reshape(row[1], -1).copy()
        return self._projections[model_id]

    # -- writes -----------------------------------------------------------------------------------

    def _put_segments(self, items, projections: dict | None = None) -> None:
        """Append [(track id, model id, starts, vectors)] to the sidecar (fsynced) and point their
        rows at them. Inside a write transaction: the SQLite write lock orders the appends."""
        projections = projections or {}
        records, codecs = [], []
        for track_id, model_id, starts, vectors in items:
            proj = projections[model_id] if model_id in projections else self.segment_projection(model_id)
            records.append(segment_store.encode(track_id, starts, vectors, proj))
            codecs.append(segment_store.F16 if proj is None else segment_store.I8)
        placed = self._segments_in(self._segments_file_name()).append(records)
        self.db.executemany("INSERT OR REPLACE INTO segment_records VALUES (?, ?, ?, ?, ?, ?)",
                            [(int(t), m, off, size, len(st), codec)
                             for (t, m, st, _), (off, size), codec in zip(items, placed, codecs)])

    # -- reads ------------------------------------------------------------------------------------

    def segments(self, track_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(starts in seconds, (n, dim) float32 unit vectors) of a track's patches, if stored."""
        return self.segments_of([track_id]).get(track_id)

    def segments_of(self, track_ids, model_id: str | None = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """{track id: (starts, vectors)} for those of `track_ids` with stored segments (made by
        `model_id`, if given), read in few queries from the sidecar (or, in a catalog not yet
        migrated and opened read-only, from its BLOBs). Vectors are unit length, in the space
        `segment_projection` names. A record that does not read back is left out, with a warning."""
        found = {}
        for chunk in chunks(track_ids):
            for attempt in range(2):  # a compaction may have renamed the file since: read again
                name, rows, legacy = self._segment_rows(chunk)
                bad = []
                for track_id, made_by, offset, nbytes in rows:
                    if model_id is None or made_by == model_id:
                        try:
                            found[track_id] = self._segments_in(name).read(offset, nbytes, track_id)
                        except segment_store.SegmentStoreError as e:
                            bad.append(str(e))
                if not bad or attempt or self._segments_file_name() == name:
                    break
            for message in bad:
                warnings.warn(f"{self.path.parent / name}: {message}; the track needs analysing again", stacklevel=2)
            for track_id, made_by, segments, starts in legacy:
                starts = np.frombuffer(starts, dtype=np.float32).copy()
                if len(starts) and (model_id is None or made_by == model_id):  # MFCC stores none
                    found[track_id] = starts, np.frombuffer(segments, np.float16).reshape(len(starts), -1).astype(np.float32)
        return found

    def _segment_rows(self, chunk: list[int]) -> tuple[str, list, list]:
        """(sidecar file name, its rows, legacy BLOB rows) for these ids, in one snapshot."""
        own = not self.db.in_transaction
        if own:
            self.db.execute("BEGIN")
        try:
            name = self._segments_file_name()
            try:
                rows = self.db.execute(f"SELECT track_id, model_id, offset, nbytes FROM segment_records "
                                       f"WHERE track_id IN ({marks(chunk)})", chunk).fetchall()
            except sqlite3.OperationalError:  # a catalog older than the sidecar, opened read-only
                rows = []
            legacy = self.db.execute(
                f"SELECT track_id, model_id, segments, segment_starts FROM embeddings "
                f"WHERE track_id IN ({marks(chunk)}) AND segments IS NOT NULL", chunk).fetchall()
        finally:
            if own:
                self.db.execute("COMMIT")
        return name, rows, legacy

    def _stored_segments(self, model_id: str, codec: int):
        """[(track id, starts, vectors)] of one model's readable records in one codec. A damaged
        record is left out (`check` reports and drops it): it must not stop the run storing."""
        name = self._segments_file_name()
        rows = self.db.execute("SELECT track_id, offset, nbytes FROM segment_records WHERE model_id = ? AND codec = ? "
                               "ORDER BY track_id", (model_id, codec)).fetchall()
        found = []
        for t, off, size in rows:
            try:
                found.append((t, *self._segments_in(name).read(off, size, t)))
            except segment_store.SegmentStoreError:
                continue
        return found

    # -- upkeep: between writes, never inside one --------------------------------------------------

    def upkeep(self) -> None:
        """Fit the projection of each model with enough full segments (re-encoding them under it),
        then compact the sidecar when dead bytes exceed half of it. Cheap when there is nothing
        to do; the indexer calls it every few hundred stored tracks and at the end of a run."""
        unfitted = self.db.execute("SELECT model_id, SUM(n) FROM segment_records WHERE codec = ? GROUP BY model_id",
                                   (segment_store.F16,)).fetchall()
        for model_id, stored in unfitted:
            if stored >= segment_store.FIT_SEGMENTS and self.segment_projection(model_id) is None:
                self._fit_segments(model_id)  # the full records it re-encodes are dead bytes after it
        self.compact_segments()

    def _fit_segments(self, model_id: str) -> None:
        """Fit the model's projection from its full segments and re-encode them under it."""
        with self._transaction():
            full = self._stored_segments(model_id, segment_store.F16)
            proj = segment_store.fit_projection(np.concatenate([v for _, _, v in full]))
            self.db.execute("INSERT INTO segment_projections VALUES (?, ?, ?)", (model_id, proj.tobytes(), proj.shape[0]))
            self._put_segments([(t, model_id, s, v) for t, s, v in full], {model_id: proj})
            self._bump()  # segment caches keyed on the generation reload them
        self._projections[model_id] = proj

    def compact_segments(self, force: bool = False) -> tuple[int, int, list[int]]:
        """Copy the sidecar's live records into a new file when dead bytes (replaced or removed
        tracks, interrupted appends) exceed half of it, or always with `force`: (bytes before,
        bytes after, ids of tracks whose records did not read back and were dropped)."""
        with self._transaction():
            name = self._segments_file_name()
            current = self._segments_in(name)
            before = current.size()
            live = self.db.execute("SELECT track_id, offset, nbytes FROM segment_records ORDER BY offset").fetchall()
            dead = before - len(segment_store.FILE_MAGIC) - sum(r[2] for r in live)
            if not force and (dead <= before / 2 or before < COMPACT_BELOW):
                return before, before, []
            number = int(self.get_meta("segments_number", "0")) + 1
            new_name = f"segments.{number}.bin"
            kept = segment_store.compact(current, self.path.parent / new_name, live)
            dropped = sorted({r[0] for r in live} - {t for t, _, _ in kept})
            self.db.executemany("UPDATE segment_records SET offset = ? WHERE track_id = ?", [(o, t) for t, o, _ in kept])
            self.db.executemany("DELETE FROM segment_records WHERE track_id = ?", [(t,) for t in dropped])
            # Forget what the indexer knows of those files, so the next `index` analyses them again.
            self.db.executemany("UPDATE tracks SET mtime = NULL, content_hash = NULL WHERE id = ?", [(t,) for t in dropped])
            self.set_meta("segments_file", new_name)
            self.set_meta("segments_number", str(number))
            if dropped:
                self._bump()
        current.close()
        current.path.unlink(missing_ok=True)  # readers that mapped it keep their mapping
        return before, self._segments_in(new_name).size(), dropped

    def check_segments(self) -> tuple[int, list[str]]:
        """(records checked, problems): every sidecar record read back against its row."""
        name = self._segments_file_name()
        problems, rows = [], self.db.execute("SELECT track_id, offset, nbytes FROM segment_records").fetchall()
        for track_id, offset, nbytes in rows:
            try:
                self._segments_in(name).read(offset, nbytes, track_id)
            except segment_store.SegmentStoreError as e:
                problems.append(str(e))
        return len(rows), problems
