"""Tracks: the files indexed, their tags and status, their embedding, and the indexed folders.

Every write is its own transaction, logged in the change log and bumping the generation, so a run
killed at any moment leaves a consistent catalog and re-running picks up where it stopped.
Callers ask by name (`ok_tracks`, `by_path`, `search_text`...), never with SQL.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path
from urllib.parse import unquote

import numpy as np

from ..tags import LISTS, TAG_COLUMNS
from .search import matches, sql_where, terms, track_key
from .store import Store, chunks, marks


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
    # The rest of the file's tags (tags.py; None where it says nothing), and where its pictures and
    # lyrics are: `picture_type` / `picture_mime` describe the picture embedded in the file (read
    # with tags.embedded_picture), `folder_image` and `lyrics_file` are paths beside it.
    albumartist: str | None = None
    artists: tuple[str, ...] = ()
    genres: tuple[str, ...] = ()
    track: int | None = None
    track_total: int | None = None
    disc: int | None = None
    disc_total: int | None = None
    date: str | None = None
    year: int | None = None
    original_date: str | None = None
    original_year: int | None = None
    compilation: bool = False
    mb_track_id: str | None = None
    mb_album_id: str | None = None
    mb_artist_id: str | None = None
    mb_albumartist_id: str | None = None
    artist_sort: str | None = None
    albumartist_sort: str | None = None
    title_sort: str | None = None
    album_sort: str | None = None
    rg_track_gain: float | None = None
    rg_track_peak: float | None = None
    rg_album_gain: float | None = None
    rg_album_peak: float | None = None
    picture_type: int | None = None
    picture_mime: str | None = None
    folder_image: str | None = None
    lyrics: str | None = None
    lyrics_file: str | None = None
    audio_hash: str | None = None
    tags_version: int = 0

    @property
    def label(self) -> str:
        """'artist - title' when tagged, else the file name."""
        if self.artist or self.title:
            return f"{self.artist or '?'} - {self.title or Path(self.path).stem}"
        return Path(self.path).name

    @property
    def remote_id(self) -> str | None:
        """The song id on another Subsonic server for a track indexed from it (companion mode:
        its path is `subsonic://USER@HOST:PORT/SONG_ID`, or `subsonics://` over https), else None.
        The id is percent-encoded in the path (an id may hold "/": remote.RemoteServer.track_path)."""
        if self.path.startswith(REMOTE_SCHEMES):
            return unquote(self.path.rsplit("/", 1)[1])
        return None


# Where a companion-mode track lives: `subsonic://USER@HOST:PORT/SONG_ID` (`subsonics://` for https).
REMOTE_SCHEMES = ("subsonic://", "subsonics://")

_BASE_COLUMNS = "t.id, t.path, t.size, t.mtime, t.content_hash, t.duration, t.title, t.artist, t.album, t.genre, t.status, t.error, e.model_id"
# The other columns in Track's own field order: a row pairs with `_FIELDS` as it comes (`_track`).
_FIELDS = tuple(f.name for f in dataclass_fields(Track))
_EXTRA = _FIELDS[13:]
assert set(_EXTRA) == {*TAG_COLUMNS, "audio_hash", "tags_version"} - {"title", "artist", "album", "genre"}
_TRACK_COLUMNS = _BASE_COLUMNS + "".join(f", t.{c}" for c in _EXTRA)
# A reader of a catalog not yet migrated to step 4 (read-only connections never migrate) sees no tags there.
_OLD_TRACK_COLUMNS = _BASE_COLUMNS + "".join(f", NULL AS {c}" for c in _EXTRA)


def _track(row, lists: dict) -> Track:
    """A Track from a row of `_TRACK_COLUMNS`. `lists`: the JSON lists already decoded while
    reading these rows, by their text (the tracks of an album share their genres and often their
    artists: a 100,000-track library decodes a few thousand, not 100,000; tuples, safe to share).
    The Track's fields are given as one dict, not through its frozen __init__, which makes an
    object.__setattr__ call per field (44): for a library of 100,000 tracks that was as long as
    SQLite's own reading of the rows (bench/library_view.py)."""
    values = dict(zip(_FIELDS, row))
    for name in LISTS:
        text = values[name]
        if not text:
            values[name] = ()
        elif (found := lists.get(text)) is not None:
            values[name] = found
        else:
            values[name] = lists[text] = tuple(json.loads(text))
    values["compilation"] = bool(values["compilation"])
    values["tags_version"] = values["tags_version"] or 0
    track = object.__new__(Track)
    object.__setattr__(track, "__dict__", values)  # every field given: the row has one column per field
    return track


def _tag_fields(tags: dict) -> dict:
    """The tag columns of a row from `tags` (tags.read_tags + tags.beside): lists as JSON."""
    fields = {c: tags.get(c) for c in TAG_COLUMNS}
    for name in LISTS:
        fields[name] = json.dumps(list(fields[name]), ensure_ascii=False) if fields[name] else None
    fields["compilation"] = int(bool(fields["compilation"]))
    fields["tags_version"] = int(tags.get("tags_version", 0))
    return fields


_FROM = "FROM tracks t LEFT JOIN embeddings e ON e.track_id = t.id"
_SEARCHABLE = "FROM tracks t JOIN embeddings e ON e.track_id = t.id WHERE t.status = 'ok' AND e.model_id = ?"


class Tracks(Store):
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
        track_id = self.db.execute("SELECT id FROM tracks WHERE path = ?", (path,)).fetchone()[0]
        self._refold(track_id)
        return track_id

    def _columns(self) -> set[str]:
        have = getattr(self, "_have_columns", None)
        if have is None:
            have = self._have_columns = {row[1] for row in self.db.execute("PRAGMA table_info(tracks)")}
        return have

    def _refold(self, track_id: int) -> None:
        """Store the track's searched text (search.py) as its row now reads, in the caller's
        transaction (a catalog not yet at step 6, opened by an older step list in tests, has none)."""
        if "search_key" not in self._columns():
            return
        title, artist, artists, albumartist, album, genre, genres, path = self.db.execute(
            "SELECT title, artist, artists, albumartist, album, genre, genres, path FROM tracks WHERE id = ?",
            (track_id,)).fetchone()
        key = track_key(title, artist, json.loads(artists) if artists else (), albumartist, album, genre,
                        json.loads(genres) if genres else (), path)
        self.db.execute("UPDATE tracks SET search_key = ? WHERE id = ?", (key, track_id))

    def put_ok(self, path: str, *, size: int, mtime: float, content_hash: str, duration: float,
               tags: dict, model_id: str, vector: np.ndarray,
               segments: np.ndarray | None = None, segment_starts: np.ndarray | None = None,
               audio_hash: str | None = None, timbre: bytes | None = None) -> int:
        """Store a successfully analysed track and its embedding (and its timbre blob: None for a
        method that makes none) in one transaction. Segments go
        to the sidecar: appended and fsynced inside the transaction, before the row pointing at
        them commits (a crash in between leaves dead bytes, never a row without bytes). Fitting
        a model's segment projection and compacting the sidecar are not done here: the indexer
        asks for them between writes (`Segments.upkeep`)."""
        fields = dict(size=size, mtime=mtime, content_hash=content_hash, duration=duration,
                      status="ok", error=None, audio_hash=audio_hash, **_tag_fields(tags))
        has_segments = segments is not None and segment_starts is not None and len(segment_starts) > 0
        with self._transaction():
            track_id = self._upsert_track(path, fields)
            self.db.execute(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, NULL, NULL)",
                (track_id, model_id, np.asarray(vector, dtype=np.float32).tobytes()),
            )
            if has_segments:
                self._put_segments([(track_id, model_id, segment_starts, segments)])
            else:  # a method that makes none (MFCC): nothing stale may stay behind
                self.db.execute("DELETE FROM segment_records WHERE track_id = ?", (track_id,))
            self._put_timbre(track_id, timbre)  # catalog/timbre.py
            self._log([track_id], "put")
            self._bump()
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

    def put_tags(self, track_id: int, tags: dict, **file) -> None:
        """New tags for a track whose audio is unchanged (its embedding stays): the keys of `tags`
        among the tag columns (all of them when it comes from tags.read_tags, else only those
        given, such as tags.beside's), and the file's new size, mtime, content_hash or audio_hash
        in `file`. The generation moves (browsing views rebuild); no change is logged, as the
        searchable vectors are the same."""
        fields = {k: v for k, v in _tag_fields(tags).items() if k in tags}
        fields.update((k, v) for k, v in file.items() if k in ("size", "mtime", "content_hash", "audio_hash"))
        if not fields:
            return
        with self._transaction():
            self.db.execute(f"UPDATE tracks SET {', '.join(f'{c} = ?' for c in fields)}, updated_at = ? WHERE id = ?",
                            (*fields.values(), time.time(), int(track_id)))
            self._refold(int(track_id))
            self._bump()

    def touch(self, track_id: int, size: int, mtime: float) -> None:
        """File metadata changed but its content did not: keep the embedding."""
        self.db.execute("UPDATE tracks SET size = ?, mtime = ? WHERE id = ?", (size, mtime, track_id))

    def remove(self, track_ids: list[int]) -> None:
        with self._transaction():
            self.db.executemany("DELETE FROM tracks WHERE id = ?", [(i,) for i in track_ids])
            self._log(track_ids, "removed")
            self._bump()

    def add_folders(self, folders: list[str]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO folders VALUES (?)", [(f,) for f in folders])

    # -- tracks by name ---------------------------------------------------------------------------

    def _select(self, where: str = "", params: tuple = ()) -> list[Track]:
        columns = getattr(self, "_track_columns", None)
        if columns is None:
            have = {row[1] for row in self.db.execute("PRAGMA table_info(tracks)")}
            columns = self._track_columns = _TRACK_COLUMNS if "tags_version" in have else _OLD_TRACK_COLUMNS
        sql = f"SELECT {columns} {_FROM} {('WHERE ' + where) if where else ''} ORDER BY t.id"
        lists: dict[str, tuple[str, ...]] = {}
        return [_track(row, lists) for row in self.db.execute(sql, params)]

    def tracks(self) -> list[Track]:
        """Every track, ok or failed, in id order."""
        return self._select()

    def ok_tracks(self) -> list[Track]:
        """The tracks that analysed cleanly (searchable once embedded by the searched model)."""
        return self._select("t.status = 'ok'")

    def ok_ids(self) -> list[int]:
        """The ids of `ok_tracks`, in id order, without building the rows (the page lists a
        library of 100,000 tracks a page at a time: server/browse.py)."""
        return [r[0] for r in self.db.execute("SELECT id FROM tracks WHERE status = 'ok' ORDER BY id")]

    def failed_tracks(self) -> list[Track]:
        """The tracks that could not be analysed, with their reason in `error`."""
        return self._select("t.status = 'failed'")

    def set_aside_tracks(self) -> list[Track]:
        """Silent or too short audio: recorded with its reason, kept out of search and the map."""
        return self._select("t.status IN ('silent', 'too_short')")

    def track(self, track_id: int) -> Track | None:
        found = self._select("t.id = ?", (track_id,))
        return found[0] if found else None

    def tracks_by_id(self, track_ids) -> list[Track | None]:
        """The tracks with these ids, in that order (None for an unknown id), in few queries."""
        track_ids = [int(i) for i in track_ids]
        found: dict[int, Track] = {}
        for chunk in chunks(track_ids):
            found.update((t.id, t) for t in self._select(f"t.id IN ({marks(chunk)})", tuple(chunk)))
        return [found.get(i) for i in track_ids]

    def artists_by_id(self, track_ids) -> list[str | None]:
        """The artist tag of each of these tracks, in that order (None when untagged or unknown):
        what a radio's artist window needs of a pool of candidates, without building whole rows."""
        track_ids = [int(i) for i in track_ids]
        found: dict[int, str | None] = {}
        for chunk in chunks(track_ids):
            found.update(self.db.execute(f"SELECT id, artist FROM tracks WHERE id IN ({marks(chunk)})", tuple(chunk)))
        return [found.get(i) for i in track_ids]

    def by_path(self, path: str) -> Track | None:
        found = self._select("t.path = ?", (path,))
        return found[0] if found else None

    def search_text(self, text: str) -> list[Track]:
        """Tracks matching every word of `text` in their title, artists, album or file and folder
        names, ignoring case and accents; `word*` matches at a word's start (catalog/search.py)."""
        return self.tracks_by_id(self.search_ids(text))

    def search_ids(self, text: str) -> list[int]:
        """The ids of the tracks `search_text` finds, in id order (one SQL scan of the stored keys)."""
        found = terms(text)
        if "search_key" in self._columns():
            where, params = sql_where(found, "search_key")
            return [r[0] for r in self.db.execute(f"SELECT id FROM tracks WHERE {where} ORDER BY id", params)]
        # A catalog not yet migrated to step 6, opened read-only: the keys made here, row by row.
        return [t.id for t in self._select() if matches(found, track_key(t.title, t.artist, t.artists, t.albumartist,
                                                                          t.album, t.genre, t.genres, t.path))]

    def folders(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT path FROM folders ORDER BY path")]

    def counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT status, COUNT(*) FROM tracks GROUP BY status").fetchall()
        return {"ok": 0, "failed": 0, **dict(rows)}

    def models(self, searchable_only: bool = False) -> dict[str, int]:
        """How many tracks each model embedded (only tracks whose status is ok, if asked)."""
        where = "JOIN tracks t ON t.id = e.track_id WHERE t.status = 'ok'" if searchable_only else ""
        return dict(self.db.execute(f"SELECT e.model_id, COUNT(*) FROM embeddings e {where} GROUP BY e.model_id"))

    # -- vectors ----------------------------------------------------------------------------------

    def vector(self, track_id: int) -> tuple[str, np.ndarray] | None:
        row = self.db.execute("SELECT model_id, vector FROM embeddings WHERE track_id = ?", (track_id,)).fetchone()
        return (row[0], np.frombuffer(row[1], dtype=np.float32).copy()) if row else None

    def vectors(self, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of the searchable tracks: status ok and embedded by `model_id`."""
        rows = self.db.execute(f"SELECT t.id, e.vector {_SEARCHABLE} ORDER BY t.id", (model_id,)).fetchall()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vecs = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
        return ids, vecs

    def vectors_of(self, track_ids, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of those of `track_ids` that are searchable with `model_id`."""
        ids, vecs = [], []
        for chunk in chunks(track_ids):
            for i, v in self.db.execute(f"SELECT t.id, e.vector {_SEARCHABLE} AND t.id IN ({marks(chunk)})",
                                        (model_id, *chunk)):
                ids.append(i)
                vecs.append(np.frombuffer(v, dtype=np.float32))
        if not ids:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        return np.array(ids, dtype=np.int64), np.stack(vecs)

    def embedded_rows(self, model_id: str, batch: int = 10_000):
        """The searchable tracks embedded by `model_id`, in id order, `batch` rows at a time:
        lists of (id, path, title, artist, album, genre, duration, content_hash, vector bytes).
        Pages by id, so memory stays flat whatever the size of the catalog."""
        last = -1
        while True:
            rows = self.db.execute(
                f"SELECT t.id, t.path, t.title, t.artist, t.album, t.genre, t.duration, t.content_hash, e.vector "
                f"{_SEARCHABLE} AND t.id > ? ORDER BY t.id LIMIT ?", (model_id, last, batch)).fetchall()
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    def searchable_count(self, model_id: str) -> int:
        return self.db.execute(f"SELECT COUNT(*) {_SEARCHABLE}", (model_id,)).fetchone()[0]
