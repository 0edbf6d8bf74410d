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
    existing catalog for reading only, as each query thread does (WAL lets readers run beside
    the one writer). A connection is used by one thread at a time; check_same_thread=False only
    lets another thread close it, as a server does at shutdown."""

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
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

    def integrity(self, quick: bool = False) -> list[str]:
        """What SQLite's integrity check finds wrong with the file ([] when sound)."""
        rows = self.db.execute("PRAGMA quick_check" if quick else "PRAGMA integrity_check").fetchall()
        return [r[0] for r in rows if r[0] != "ok"]

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
            self._log([track_id], "put")
            self._bump()
        return track_id

    def put_failed(self, path: str, reason: str, *, size: int | None = None, mtime: float | None = None) -> int:
        """Record a failure. A previously stored embedding is kept (nothing stored is lost) but
        the track leaves search until it analyses cleanly again."""
        with self._transaction():
            track_id = self._upsert_track(path, dict(size=size, mtime=mtime, status="failed", error=reason))
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
        track_ids = [int(i) for i in track_ids]
        for start in range(0, len(track_ids), 900):  # SQLite allows at most 999 parameters
            chunk = track_ids[start : start + 900]
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

    def playlists(self) -> list[dict]:
        """Every playlist: id, owner, name, comment, public, created, changed, track_ids."""
        rows = self.db.execute("SELECT id, owner, name, comment, public, created, changed FROM playlists ORDER BY id")
        found = [dict(zip(("id", "owner", "name", "comment", "public", "created", "changed"), r)) for r in rows]
        for p in found:
            p["public"] = bool(p["public"])
            p["track_ids"] = [r[0] for r in self.db.execute(
                "SELECT track_id FROM playlist_entries WHERE playlist_id = ? ORDER BY position", (p["id"],))]
        return found

    def playlist(self, playlist_id: int) -> dict | None:
        return next((p for p in self.playlists() if p["id"] == playlist_id), None)

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
