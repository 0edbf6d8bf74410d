"""The catalog: SQLite (WAL) holding tracks, tags, per-track status and embeddings.

It is the source of truth; the vector index and everything else are derived from it. It knows
nothing about audio. Every write is its own transaction, so a run killed at any moment leaves
a consistent catalog, and re-running picks up where it stopped.
"""

from __future__ import annotations

import sqlite3
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import segment_store
from .errors import CatalogError
from .tags import TAG_NAMES

SCHEMA = """
CREATE TABLE IF NOT EXISTS tracks (
    id           INTEGER PRIMARY KEY,
    path         TEXT NOT NULL UNIQUE,
    size         INTEGER,
    mtime        REAL,
    content_hash TEXT,
    duration     REAL,
    title        TEXT,
    artist       TEXT,
    album        TEXT,
    genre        TEXT,
    status       TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'silent', 'too_short')),
    error        TEXT,
    updated_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
    track_id       INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
    model_id       TEXT NOT NULL,
    vector         BLOB NOT NULL,  -- float32, unit length
    segments       BLOB,           -- float16 (n, dim): one unit vector per few-second patch
    segment_starts BLOB            -- float32 (n,): where each patch starts in the track, seconds
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS folders (path TEXT PRIMARY KEY);  -- what `index` was pointed at
-- Labels songspace predicted (classify): kept apart from the file's own tags, never written to files.
CREATE TABLE IF NOT EXISTS predictions (
    track_id   INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,   -- what was predicted: genre, mood, ...
    label      TEXT NOT NULL,
    confidence REAL NOT NULL,   -- the classifier's probability for `label`
    model_id   TEXT NOT NULL,   -- the embedding it was predicted from
    PRIMARY KEY (track_id, name)
);
-- The library map (map.py): 2-D coordinates derived from the searched vectors, a cache; meta 'map'
-- holds the stamp (model id and generation) they were computed for.
CREATE TABLE IF NOT EXISTS map_points (
    track_id INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
    x        REAL NOT NULL,
    y        REAL NOT NULL
);
-- The change log: one row per change to a track's searchable state, written in the same
-- transaction as the change, so derived indexes (vectors.py) apply only what is newer than them.
CREATE TABLE IF NOT EXISTS changes (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    track_id INTEGER NOT NULL,   -- no foreign key: a removed track's row stays
    op       TEXT NOT NULL       -- 'put' (stored or re-embedded), 'failed', 'removed'
);
-- The Subsonic face (server/subsonic.py). Users keep their plain password, as Subsonic's token
-- auth (md5(password + salt)) needs it: the file is made private (0600) when a user is added.
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, password TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS playlists (
    id      INTEGER PRIMARY KEY,
    owner   TEXT NOT NULL,
    name    TEXT NOT NULL,
    comment TEXT,
    public  INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    changed REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS playlist_entries (
    playlist_id INTEGER NOT NULL REFERENCES playlists(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    track_id    INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    PRIMARY KEY (playlist_id, position)
);
CREATE TABLE IF NOT EXISTS stars (user TEXT NOT NULL, item TEXT NOT NULL, starred REAL NOT NULL, PRIMARY KEY (user, item));
CREATE TABLE IF NOT EXISTS plays (  -- scrobbles: may feed radio later
    id        INTEGER PRIMARY KEY,
    user      TEXT NOT NULL,
    track_id  INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    played_at REAL NOT NULL
);
-- The segment sidecar (segment_store.py): where each track's segment vectors lie in the file that
-- meta 'segments_file' names (the embeddings.segments BLOBs of older catalogs move there on open).
CREATE TABLE IF NOT EXISTS segment_records (
    track_id INTEGER PRIMARY KEY REFERENCES tracks(id) ON DELETE CASCADE,
    model_id TEXT NOT NULL,
    offset   INTEGER NOT NULL,  -- bytes into the sidecar
    nbytes   INTEGER NOT NULL,
    n        INTEGER NOT NULL,  -- segments
    codec    INTEGER NOT NULL   -- segment_store.F16 (full) or I8 (projected)
);
-- The projection each model's segments are stored under: (dims, dim) float32, fitted once.
CREATE TABLE IF NOT EXISTS segment_projections (model_id TEXT PRIMARY KEY, basis BLOB NOT NULL, dims INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('generation', '0');
"""



@dataclass(frozen=True)
class Track:
    id: int
    path: str
    size: int | None
    mtime: float | None
    content_hash: str | None
    duration: float | None
    title: str | None
    artist: str | None
    album: str | None
    genre: str | None
    status: str
    error: str | None
    model_id: str | None = None

    @property
    def label(self) -> str:
        """'artist - title' when tagged, else the file name."""
        if self.artist or self.title:
            return f"{self.artist or '?'} - {self.title or Path(self.path).stem}"
        return Path(self.path).name


_TRACK_COLUMNS = "t.id, t.path, t.size, t.mtime, t.content_hash, t.duration, t.title, t.artist, t.album, t.genre, t.status, t.error, e.model_id"
_TRACK_SELECT = f"SELECT {_TRACK_COLUMNS} FROM tracks t LEFT JOIN embeddings e ON e.track_id = t.id"


def _chunks(track_ids) -> list[list[int]]:
    """Ids in chunks small enough for one `IN (...)` (SQLite allows at most 999 parameters)."""
    track_ids = [int(i) for i in track_ids]
    return [track_ids[start : start + 900] for start in range(0, len(track_ids), 900)]


class Catalog:
    """One connection. A writer (the default) creates the schema; `readonly=True` opens an
    existing catalog for reading only, as each query thread does (WAL lets readers run beside
    the one writer). A connection is used by one thread at a time; check_same_thread=False lets
    another thread take its turn (the server's Subsonic writes, under a lock) or close it at
    shutdown."""

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        self._segment_file: segment_store.SegmentFile | None = None
        self._projections: dict[str, np.ndarray] = {}  # fitted once per model, so cached for good
        self._puts = 0
        try:
            self._open(readonly)
        except sqlite3.OperationalError:
            raise  # locked, no permission: not damage
        except sqlite3.DatabaseError as e:
            raise CatalogError(f"{self.path}: not a songspace catalog or damaged ({e}); move it aside and index "
                               f"the music again to rebuild it, or restore it from a backup") from None

    def _open(self, readonly: bool) -> None:
        if readonly:
            self.db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                                      timeout=30, check_same_thread=False)
            self.db.execute("PRAGMA schema_version").fetchone()  # a file that is not a database fails here
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we open transactions ourselves, one per logical write.
        self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        # The writer checks the file's structure once per open (a few seconds at a million tracks):
        # damage found now is an error naming the file, not a traceback halfway through a run.
        problems = self.integrity(quick=True)
        if problems:
            raise sqlite3.DatabaseError("; ".join(problems[:3]))
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process kills
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)
        self._migrate_statuses()
        self._migrate_segments()

    def _migrate_statuses(self) -> None:
        """Catalogs from before the 'silent' and 'too_short' statuses allow only 'ok' and
        'failed' (a CHECK constraint, which SQLite cannot alter): rebuild the tracks table once
        with the new one, as SQLite's ALTER TABLE documentation prescribes. One transaction:
        a kill leaves the old table or the new, never neither. Ids are kept, so every table
        pointing at tracks still points right."""
        sql = self.db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'tracks'").fetchone()[0]
        if "'silent'" in sql:
            return
        start = SCHEMA.index("CREATE TABLE IF NOT EXISTS tracks (")
        create = SCHEMA[start : SCHEMA.index(");", start) + 2]
        columns = ", ".join(row[1] for row in self.db.execute("PRAGMA table_info(tracks)"))
        self.db.execute("PRAGMA foreign_keys=OFF")  # dropping the old table must not cascade
        try:
            with self._transaction():
                self.db.execute(create.replace("IF NOT EXISTS tracks", "tracks_new"))
                self.db.execute(f"INSERT INTO tracks_new ({columns}) SELECT {columns} FROM tracks")
                self.db.execute("DROP TABLE tracks")
                self.db.execute("ALTER TABLE tracks_new RENAME TO tracks")
                if self.db.execute("PRAGMA foreign_key_check").fetchone() is not None:
                    raise sqlite3.DatabaseError("rows point at tracks that are gone")
        finally:
            self.db.execute("PRAGMA foreign_keys=ON")

    def integrity(self, quick: bool = False) -> list[str]:
        """What SQLite's integrity check finds wrong with the file ([] when sound)."""
        rows = self.db.execute("PRAGMA quick_check" if quick else "PRAGMA integrity_check").fetchall()
        return [r[0] for r in rows if r[0] != "ok"]

    def close(self) -> None:
        if self._segment_file is not None:
            self._segment_file.close()
        self.db.close()

    # -- meta ---------------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @property
    def generation(self) -> int:
        """Bumped by every change to the searchable set; derived indexes compare against it."""
        return int(self.get_meta("generation", "0"))

    def _bump(self) -> None:
        self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    def _log(self, track_ids, op: str) -> None:
        self.db.executemany("INSERT INTO changes (track_id, op) VALUES (?, ?)", [(int(i), op) for i in track_ids])

    # -- writes -------------------------------------------------------------------------------

    def _upsert_track(self, path: str, fields: dict) -> int:
        cols = ["path", *fields, "updated_at"]
        vals = [path, *fields.values(), time.time()]
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols[1:])
        self.db.execute(
            f"INSERT INTO tracks ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            f"ON CONFLICT(path) DO UPDATE SET {updates}",
            vals,
        )
        return self.db.execute("SELECT id FROM tracks WHERE path = ?", (path,)).fetchone()[0]

    def put_ok(self, path: str, *, size: int, mtime: float, content_hash: str, duration: float,
               tags: dict, model_id: str, vector: np.ndarray,
               segments: np.ndarray | None = None, segment_starts: np.ndarray | None = None) -> int:
        """Store a successfully analysed track and its embedding in one transaction. Segments go
        to the sidecar: appended and fsynced inside the transaction, before the row pointing at
        them commits (a crash in between leaves dead bytes, never a row without bytes)."""
        fields = dict(size=size, mtime=mtime, content_hash=content_hash, duration=duration,
                      status="ok", error=None, **{t: tags.get(t) for t in TAG_NAMES})
        has_segments = segments is not None and segment_starts is not None and len(segment_starts) > 0
        with self._transaction():
            track_id = self._upsert_track(path, fields)
            self.db.execute(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, NULL, NULL)",
                (track_id, model_id, np.asarray(vector, dtype=np.float32).tobytes()),
            )
            if has_segments:
                self._put_segments([(track_id, model_id, segment_starts, segments)])
            else:  # MFCC stores none: nothing stale may stay behind
                self.db.execute("DELETE FROM segment_records WHERE track_id = ?", (track_id,))
            self._log([track_id], "put")
            self._bump()
        if has_segments:
            self._after_segment_put(model_id)
        return track_id

    def put_failed(self, path: str, reason: str, *, size: int | None = None, mtime: float | None = None,
                   status: str = "failed") -> int:
        """Record a failure. A previously stored embedding is kept (nothing stored is lost) but
        the track leaves search until it analyses cleanly again. `status`: "failed", or "silent"
        or "too_short" for audio that decoded but is no music to compare."""
        with self._transaction():
            track_id = self._upsert_track(path, dict(size=size, mtime=mtime, status=status, error=reason))
            self._log([track_id], "failed")
            self._bump()
        return track_id

    def touch(self, track_id: int, size: int, mtime: float) -> None:
        """File metadata changed but its content did not: keep the embedding."""
        self.db.execute("UPDATE tracks SET size = ?, mtime = ? WHERE id = ?", (size, mtime, track_id))

    def add_folders(self, folders: list[str]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO folders VALUES (?)", [(f,) for f in folders])

    def put_predictions(self, name: str, model_id: str, rows: list[tuple[int, str, float]]) -> None:
        """Replace every prediction of `name` with rows of (track id, label, confidence)."""
        with self._transaction():
            self.db.execute("DELETE FROM predictions WHERE name = ?", (name,))
            self.db.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?)",
                                [(i, name, label, float(c), model_id) for i, label, c in rows])

    def put_map(self, stamp: str, rows: list[tuple[int, float, float]]) -> None:
        """Replace the cached library map with rows of (track id, x, y) computed for `stamp`."""
        with self._transaction():
            self.db.execute("DELETE FROM map_points")
            self.db.executemany("INSERT INTO map_points VALUES (?, ?, ?)", [(int(i), float(x), float(y)) for i, x, y in rows])
            self.set_meta("map", stamp)

    def remove(self, track_ids: list[int]) -> None:
        with self._transaction():
            self.db.executemany("DELETE FROM tracks WHERE id = ?", [(i,) for i in track_ids])
            self._log(track_ids, "removed")
            self._bump()

    @contextmanager
    def _transaction(self):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- reads --------------------------------------------------------------------------------

    def tracks(self, where: str = "", params: tuple = ()) -> list[Track]:
        sql = f"{_TRACK_SELECT} {('WHERE ' + where) if where else ''} ORDER BY t.id"
        return [Track(*row) for row in self.db.execute(sql, params)]

    def track(self, track_id: int) -> Track | None:
        found = self.tracks("t.id = ?", (track_id,))
        return found[0] if found else None

    def tracks_by_id(self, track_ids) -> list[Track | None]:
        """The tracks with these ids, in that order (None for an unknown id), in few queries."""
        track_ids = [int(i) for i in track_ids]
        found: dict[int, Track] = {}
        for chunk in _chunks(track_ids):
            found.update((t.id, t) for t in self.tracks(f"t.id IN ({','.join('?' * len(chunk))})", tuple(chunk)))
        return [found.get(i) for i in track_ids]

    def folders(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT path FROM folders ORDER BY path")]

    def predictions(self, name: str) -> dict[int, tuple[str, float]]:
        """{track id: (label, confidence)} of what `classify` predicted for `name`."""
        rows = self.db.execute("SELECT track_id, label, confidence FROM predictions WHERE name = ?", (name,))
        return {i: (label, c) for i, label, c in rows}

    def map_points(self) -> tuple[str | None, dict[int, tuple[float, float]]]:
        """(stamp, {track id: (x, y)}) of the cached library map; (None, {}) when there is none."""
        try:
            rows = self.db.execute("SELECT track_id, x, y FROM map_points").fetchall()
        except sqlite3.OperationalError:  # a catalog older than the map, opened read-only
            return None, {}
        return self.get_meta("map"), {i: (x, y) for i, x, y in rows}

    def prediction_names(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT name FROM predictions ORDER BY name")]

    def by_path(self, path: str) -> Track | None:
        found = self.tracks("t.path = ?", (path,))
        return found[0] if found else None

    def search_text(self, text: str) -> list[Track]:
        """Tracks whose 'artist - title' (or file path) contains `text`, case-insensitively."""
        like = f"%{text}%"
        return self.tracks(
            "(COALESCE(t.artist, '') || ' - ' || COALESCE(t.title, '')) LIKE ? OR t.path LIKE ?", (like, like)
        )

    def vectors(self, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of the searchable tracks: status ok and embedded by `model_id`."""
        rows = self.db.execute(
            "SELECT t.id, e.vector FROM tracks t JOIN embeddings e ON e.track_id = t.id "
            "WHERE t.status = 'ok' AND e.model_id = ? ORDER BY t.id",
            (model_id,),
        ).fetchall()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vecs = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
        return ids, vecs

    def embedded_rows(self, model_id: str, batch: int = 10_000):
        """The searchable tracks embedded by `model_id`, in id order, `batch` rows at a time:
        lists of (id, path, title, artist, album, genre, duration, content_hash, vector bytes).
        Pages by id, so memory stays flat whatever the size of the catalog."""
        last = -1
        while True:
            rows = self.db.execute(
                "SELECT t.id, t.path, t.title, t.artist, t.album, t.genre, t.duration, t.content_hash, e.vector "
                "FROM tracks t JOIN embeddings e ON e.track_id = t.id "
                "WHERE t.status = 'ok' AND e.model_id = ? AND t.id > ? ORDER BY t.id LIMIT ?",
                (model_id, last, batch)).fetchall()
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    def last_change(self) -> int:
        """The seq of the newest change-log row (0 when none, or a catalog older than the log)."""
        try:
            return self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]
        except sqlite3.OperationalError:
            return 0

    def changes_since(self, seq: int) -> tuple[int, list[int]] | None:
        """(newest seq, ids of the tracks changed after `seq`), or None when the log cannot say
        (a catalog older than the log)."""
        try:
            rows = self.db.execute("SELECT seq, track_id FROM changes WHERE seq > ? ORDER BY seq", (seq,)).fetchall()
        except sqlite3.OperationalError:
            return None
        return (rows[-1][0] if rows else seq), sorted({r[1] for r in rows})

    def vectors_of(self, track_ids, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of those of `track_ids` that are searchable with `model_id`."""
        ids, vecs = [], []
        for chunk in _chunks(track_ids):
            for i, v in self.db.execute(
                    f"SELECT t.id, e.vector FROM tracks t JOIN embeddings e ON e.track_id = t.id WHERE t.status = 'ok' "
                    f"AND e.model_id = ? AND t.id IN ({','.join('?' * len(chunk))})", (model_id, *chunk)):
                ids.append(i)
                vecs.append(np.frombuffer(v, dtype=np.float32))
        if not ids:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        return np.array(ids, dtype=np.int64), np.stack(vecs)

    def searchable_count(self, model_id: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM tracks t JOIN embeddings e ON e.track_id = t.id "
                               "WHERE t.status = 'ok' AND e.model_id = ?", (model_id,)).fetchone()[0]

    def vector(self, track_id: int) -> tuple[str, np.ndarray] | None:
        row = self.db.execute("SELECT model_id, vector FROM embeddings WHERE track_id = ?", (track_id,)).fetchone()
        return (row[0], np.frombuffer(row[1], dtype=np.float32).copy()) if row else None

    def segments(self, track_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(starts in seconds, (n, dim) float32 unit vectors) of a track's patches, if stored."""
        return self.segments_of([track_id]).get(track_id)

    def segments_of(self, track_ids, model_id: str | None = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """{track id: (starts, vectors)} for those of `track_ids` with stored segments (made by
        `model_id`, if given), read in few queries from the sidecar (or, in a catalog not yet
        migrated and opened read-only, from its BLOBs). Vectors are unit length, in the space
        `segment_projection` names. A record that does not read back is left out, with a warning."""
        found = {}
        for chunk in _chunks(track_ids):
            for attempt in range(2):  # a compaction may have renamed the file since: read again
                name, rows, legacy = self._segment_rows(chunk)
                bad = []
                for track_id, made_by, offset, nbytes in rows:
                    if model_id is None or made_by == model_id:
                        try:
                            found[track_id] = self._segments_in(name).read(offset, nbytes, track_id)
                        except segment_store.SegmentStoreError as e:
                            bad.append(str(e))
                if not bad or attempt or self.get_meta("segments_file", segment_store.DEFAULT_FILE) == name:
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
        marks = ",".join("?" * len(chunk))
        own = not self.db.in_transaction
        if own:
            self.db.execute("BEGIN")
        try:
            name = self.get_meta("segments_file", segment_store.DEFAULT_FILE)
            try:
                rows = self.db.execute(f"SELECT track_id, model_id, offset, nbytes FROM segment_records "
                                       f"WHERE track_id IN ({marks})", chunk).fetchall()
            except sqlite3.OperationalError:  # a catalog older than the sidecar, opened read-only
                rows = []
            legacy = self.db.execute(
                f"SELECT track_id, model_id, segments, segment_starts FROM embeddings "
                f"WHERE track_id IN ({marks}) AND segments IS NOT NULL", chunk).fetchall()
        finally:
            if own:
                self.db.execute("COMMIT")
        return name, rows, legacy

    def _segments_in(self, name: str) -> segment_store.SegmentFile:
        path = self.path.parent / name
        if self._segment_file is None or self._segment_file.path != path:
            if self._segment_file is not None:
                self._segment_file.close()
            self._segment_file = segment_store.SegmentFile(path)
        return self._segment_file

    def counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT status, COUNT(*) FROM tracks GROUP BY status").fetchall()
        return {"ok": 0, "failed": 0, **dict(rows)}

    def models(self, searchable_only: bool = False) -> dict[str, int]:
        """How many tracks each model embedded (only tracks whose status is ok, if asked)."""
        where = "JOIN tracks t ON t.id = e.track_id WHERE t.status = 'ok'" if searchable_only else ""
        return dict(self.db.execute(f"SELECT e.model_id, COUNT(*) FROM embeddings e {where} GROUP BY e.model_id"))

    # -- segments: the sidecar's rows (the bytes: segment_store.py) --------------------------------

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

    def _put_segments(self, items, projections: dict | None = None) -> None:
        """Append [(track id, model id, starts, vectors)] to the sidecar (fsynced) and point their
        rows at them. Inside a write transaction: the SQLite write lock orders the appends."""
        projections = projections or {}
        records, codecs = [], []
        for track_id, model_id, starts, vectors in items:
            proj = projections[model_id] if model_id in projections else self.segment_projection(model_id)
            records.append(segment_store.encode(track_id, starts, vectors, proj))
            codecs.append(segment_store.F16 if proj is None else segment_store.I8)
        name = self.get_meta("segments_file", segment_store.DEFAULT_FILE)
        placed = self._segments_in(name).append(records)
        self.db.executemany("INSERT OR REPLACE INTO segment_records VALUES (?, ?, ?, ?, ?, ?)",
                            [(int(t), m, off, size, len(st), codec)
                             for (t, m, st, _), (off, size), codec in zip(items, placed, codecs)])

    def _after_segment_put(self, model_id: str) -> None:
        """Fit the model's projection once it has enough segments; compact now and then."""
        self._puts += 1
        if self.segment_projection(model_id) is None:
            stored = self.db.execute("SELECT COALESCE(SUM(n), 0) FROM segment_records WHERE model_id = ? AND codec = ?",
                                     (model_id, segment_store.F16)).fetchone()[0]
            if stored >= segment_store.FIT_SEGMENTS:
                self._fit_segments(model_id)
        if self._puts % 256 == 0:
            self.compact_segments()

    def _stored_segments(self, model_id: str, codec: int):
        """[(track id, starts, vectors)] of one model's readable records in one codec. A damaged
        record is left out (`check` reports and drops it): it must not stop the run storing."""
        name = self.get_meta("segments_file", segment_store.DEFAULT_FILE)
        rows = self.db.execute("SELECT track_id, offset, nbytes FROM segment_records WHERE model_id = ? AND codec = ? "
                               "ORDER BY track_id", (model_id, codec)).fetchall()
        found = []
        for t, off, size in rows:
            try:
                found.append((t, *self._segments_in(name).read(off, size, t)))
            except segment_store.SegmentStoreError:
                continue
        return found

    def _fit_segments(self, model_id: str) -> None:
        """Fit the model's projection from its full segments and re-encode them under it."""
        with self._transaction():
            full = self._stored_segments(model_id, segment_store.F16)
            proj = segment_store.fit_projection(np.concatenate([v for _, _, v in full]))
            self.db.execute("INSERT INTO segment_projections VALUES (?, ?, ?)", (model_id, proj.tobytes(), proj.shape[0]))
            self._put_segments([(t, model_id, s, v) for t, s, v in full], {model_id: proj})
            self._bump()  # segment caches keyed on the generation reload them
        self._projections[model_id] = proj
        self.compact_segments()  # the full records just re-encoded are dead bytes now

    def _migrate_segments(self) -> None:
        """Move segment BLOBs of an older catalog into the sidecar (projected once a model has
        enough of them), a few hundred tracks per transaction, so an interrupted migration
        resumes; nothing is analysed again. VACUUM gives the space back when it is quick."""
        models = [r[0] for r in self.db.execute("SELECT DISTINCT model_id FROM embeddings WHERE segments IS NOT NULL")]
        if not models:
            return
        for model_id in models:
            if self.segment_projection(model_id) is None:
                total = self.db.execute("SELECT COALESCE(SUM(LENGTH(segment_starts)), 0) / 4 FROM embeddings "
                                        "WHERE model_id = ? AND segments IS NOT NULL", (model_id,)).fetchone()[0]
                if total >= segment_store.FIT_SEGMENTS:  # fitted from up to ~200k segments spread over the library
                    every = max(1, int(total // 200_000))
                    rows = self.db.execute(
                        "SELECT segments, segment_starts FROM embeddings WHERE model_id = ? AND segments IS NOT NULL "
                        "AND LENGTH(segment_starts) > 0 ORDER BY track_id", (model_id,))
                    sample = [np.frombuffer(seg, np.float16).reshape(len(st) // 4, -1).astype(np.float32)
                              for k, (seg, st) in enumerate(rows) if k % every == 0]  # streamed, never all at once
                    proj = segment_store.fit_projection(np.concatenate(sample))
                    self.db.execute("INSERT INTO segment_projections VALUES (?, ?, ?)",
                                    (model_id, proj.tobytes(), proj.shape[0]))
        last = -1
        while True:
            with self._transaction():
                # Keyset paging: each batch starts after the last, instead of rescanning moved rows.
                rows = self.db.execute("SELECT track_id, model_id, segments, segment_starts FROM embeddings "
                                       "WHERE segments IS NOT NULL AND track_id > ? ORDER BY track_id LIMIT 256",
                                       (last,)).fetchall()
                if rows:
                    last = rows[-1][0]
                items = []
                for track_id, model_id, seg, st in rows:
                    starts = np.frombuffer(st or b"", dtype=np.float32)
                    if len(starts):  # an empty BLOB (MFCC) has nothing to move
                        items.append((track_id, model_id, starts,
                                      np.frombuffer(seg, np.float16).reshape(len(starts), -1).astype(np.float32)))
                if items:
                    self._put_segments(items)
                self.db.executemany("UPDATE embeddings SET segments = NULL, segment_starts = NULL WHERE track_id = ?",
                                    [(r[0],) for r in rows])
                if not rows:
                    self._bump()
                    break
        for model_id in models:  # a model with too few segments for a projection may have enough now
            if self.segment_projection(model_id) is None:
                self._after_segment_put(model_id)
        pages, free = (self.db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count"))
        size = pages * self.db.execute("PRAGMA page_size").fetchone()[0]
        if size <= 512 * 2**20:
            self.db.execute("VACUUM")
        else:
            warnings.warn(f"{self.path}: segment vectors moved to the sidecar; {free} free pages stay in the file "
                          f"until it is vacuumed (sqlite3 {self.path} VACUUM, with the library idle)", stacklevel=2)

    def compact_segments(self, force: bool = False) -> tuple[int, int, list[int]]:
        """Copy the sidecar's live records into a new file when dead bytes (replaced or removed
        tracks, interrupted appends) exceed half of it, or always with `force`: (bytes before,
        bytes after, ids of tracks whose records did not read back and were dropped)."""
        with self._transaction():
            name = self.get_meta("segments_file", segment_store.DEFAULT_FILE)
            current = self._segments_in(name)
            before = current.size()
            live = self.db.execute("SELECT track_id, offset, nbytes FROM segment_records ORDER BY offset").fetchall()
            dead = before - len(segment_store.FILE_MAGIC) - sum(r[2] for r in live)
            if not force and (dead <= before / 2 or before < 2**20):
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
        name = self.get_meta("segments_file", segment_store.DEFAULT_FILE)
        problems, rows = [], self.db.execute("SELECT track_id, offset, nbytes FROM segment_records").fetchall()
        for track_id, offset, nbytes in rows:
            try:
                self._segments_in(name).read(offset, nbytes, track_id)
            except segment_store.SegmentStoreError as e:
                problems.append(str(e))
        return len(rows), problems

    # -- users, playlists, stars, plays (the Subsonic face) --------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Add a user or change their password; the file becomes readable by its owner only,
        since it now holds a password."""
        self.db.execute("INSERT INTO users VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET password = excluded.password",
                        (name, password, time.time()))
        for suffix in ("", "-wal", "-shm"):
            f = Path(f"{self.path}{suffix}")
            if f.exists():
                f.chmod(0o600)

    def remove_user(self, name: str) -> bool:
        return self.db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0

    def users(self) -> list[tuple[str, float]]:
        """(name, created) of every user."""
        return self.db.execute("SELECT name, created FROM users ORDER BY name").fetchall()

    def user_password(self, name: str) -> str | None:
        row = self.db.execute("SELECT password FROM users WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def playlists(self, playlist_id: int | None = None) -> list[dict]:
        """Every playlist (or the one with this id): id, owner, name, comment, public, created,
        changed, track_ids."""
        where, params = ("WHERE id = ?", (playlist_id,)) if playlist_id is not None else ("", ())
        rows = self.db.execute(f"SELECT id, owner, name, comment, public, created, changed FROM playlists {where} "
                               f"ORDER BY id", params)
        found = [dict(zip(("id", "owner", "name", "comment", "public", "created", "changed"), r)) for r in rows]
        for p in found:
            p["public"] = bool(p["public"])
            p["track_ids"] = [r[0] for r in self.db.execute(
                "SELECT track_id FROM playlist_entries WHERE playlist_id = ? ORDER BY position", (p["id"],))]
        return found

    def playlist(self, playlist_id: int) -> dict | None:
        return next(iter(self.playlists(playlist_id)), None)

    def save_playlist(self, playlist_id: int | None, owner: str, name: str, track_ids: list[int],
                      comment: str | None = None, public: bool = False) -> int:
        """Create a playlist (playlist_id None) or replace one's name, comment and tracks; its id."""
        now = time.time()
        with self._transaction():
            if playlist_id is None:
                playlist_id = self.db.execute("INSERT INTO playlists (owner, name, comment, public, created, changed) "
                                              "VALUES (?, ?, ?, ?, ?, ?)", (owner, name, comment, int(public), now, now)).lastrowid
            else:
                self.db.execute("UPDATE playlists SET name = ?, comment = ?, public = ?, changed = ? WHERE id = ?",
                                (name, comment, int(public), now, playlist_id))
                self.db.execute("DELETE FROM playlist_entries WHERE playlist_id = ?", (playlist_id,))
            self.db.executemany("INSERT INTO playlist_entries VALUES (?, ?, ?)",
                                [(playlist_id, i, int(t)) for i, t in enumerate(track_ids)])
        return playlist_id

    def delete_playlist(self, playlist_id: int) -> None:
        self.db.execute("DELETE FROM playlists WHERE id = ?", (playlist_id,))

    def star(self, user: str, items: list[str], starred: bool = True) -> None:
        """Star (or unstar) items, named by the face's ids (songs, albums, artists)."""
        if starred:
            self.db.executemany("INSERT OR IGNORE INTO stars VALUES (?, ?, ?)", [(user, i, time.time()) for i in items])
        else:
            self.db.executemany("DELETE FROM stars WHERE user = ? AND item = ?", [(user, i) for i in items])

    def stars(self, user: str) -> dict[str, float]:
        """{item: when starred} of one user."""
        return dict(self.db.execute("SELECT item, starred FROM stars WHERE user = ?", (user,)))

    def add_plays(self, user: str, plays: list[tuple[int, float]]) -> None:
        """Record (track id, when) plays."""
        self.db.executemany("INSERT INTO plays (user, track_id, played_at) VALUES (?, ?, ?)",
                            [(user, int(t), float(when)) for t, when in plays])

    def play_counts(self) -> dict[int, tuple[int, float]]:
        """{track id: (plays, last played)} over every user."""
        rows = self.db.execute("SELECT track_id, COUNT(*), MAX(played_at) FROM plays GROUP BY track_id")
        return {t: (n, last) for t, n, last in rows}
