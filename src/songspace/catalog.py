"""The catalog: SQLite (WAL) holding tracks, tags, per-track status and embeddings.

It is the source of truth; the vector index and everything else are derived from it. It knows
nothing about audio. Every write is its own transaction, so a run killed at any moment leaves
a consistent catalog, and re-running picks up where it stopped.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
    status       TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
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


class Catalog:
    """One connection. A writer (the default) creates the schema; `readonly=True` opens an
    existing catalog for reading only, as each query thread does (SQLite connections must not be
    shared between threads, and WAL lets readers run beside the one writer)."""

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        if readonly:
            self.db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                                      timeout=30)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we open transactions ourselves, one per logical write.
        self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process kills
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
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
        """Store a successfully analysed track and its embedding in one transaction."""
        fields = dict(size=size, mtime=mtime, content_hash=content_hash, duration=duration,
                      status="ok", error=None, **{t: tags.get(t) for t in TAG_NAMES})
        with self._transaction():
            track_id = self._upsert_track(path, fields)
            self.db.execute(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?)",
                (track_id, model_id, np.asarray(vector, dtype=np.float32).tobytes(),
                 None if segments is None else np.asarray(segments, dtype=np.float16).tobytes(),
                 None if segment_starts is None else np.asarray(segment_starts, dtype=np.float32).tobytes()),
            )
            self._bump()
        return track_id

    def put_failed(self, path: str, reason: str, *, size: int | None = None, mtime: float | None = None) -> int:
        """Record a failure. A previously stored embedding is kept (nothing stored is lost) but
        the track leaves search until it analyses cleanly again."""
        with self._transaction():
            track_id = self._upsert_track(path, dict(size=size, mtime=mtime, status="failed", error=reason))
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
        for start in range(0, len(track_ids), 900):  # SQLite allows at most 999 parameters
            chunk = track_ids[start : start + 900]
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

    def vector(self, track_id: int) -> tuple[str, np.ndarray] | None:
        row = self.db.execute("SELECT model_id, vector FROM embeddings WHERE track_id = ?", (track_id,)).fetchone()
        return (row[0], np.frombuffer(row[1], dtype=np.float32).copy()) if row else None

    def segments(self, track_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(starts in seconds, (n, dim) float32 unit vectors) of a track's patches, if stored."""
        return self.segments_of([track_id]).get(track_id)

    def segments_of(self, track_ids, model_id: str | None = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """{track id: (starts, vectors)} for those of `track_ids` with stored segments (made by
        `model_id`, if given), read in few queries."""
        track_ids = [int(i) for i in track_ids]
        found = {}
        for start in range(0, len(track_ids), 900):  # SQLite allows at most 999 parameters
            chunk = track_ids[start : start + 900]
            rows = self.db.execute(
                f"SELECT track_id, model_id, segments, segment_starts FROM embeddings "
                f"WHERE track_id IN ({','.join('?' * len(chunk))}) AND segments IS NOT NULL", chunk)
            for track_id, made_by, segments, starts in rows:
                starts = np.frombuffer(starts, dtype=np.float32).copy()
                if len(starts) and (model_id is None or made_by == model_id):  # MFCC stores none
                    found[track_id] = starts, np.frombuffer(segments, np.float16).reshape(len(starts), -1).astype(np.float32)
        return found

    def counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT status, COUNT(*) FROM tracks GROUP BY status").fetchall()
        return {"ok": 0, "failed": 0, **dict(rows)}

    def models(self, searchable_only: bool = False) -> dict[str, int]:
        """How many tracks each model embedded (only tracks whose status is ok, if asked)."""
        where = "JOIN tracks t ON t.id = e.track_id WHERE t.status = 'ok'" if searchable_only else ""
        return dict(self.db.execute(f"SELECT e.model_id, COUNT(*) FROM embeddings e {where} GROUP BY e.model_id"))

