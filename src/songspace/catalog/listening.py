"""Listening: the Subsonic face's users, playlists, stars, plays, play queues, bookmarks and ratings
(server/subsonic.py)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from .store import Store


class Listening(Store):
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
        """Remove a user (and, by the foreign key, their API keys)."""
        return self.db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0

    def add_api_key(self, user: str, key_sha256: str) -> None:
        """Remember an API key of `user` by its SHA-256 (the key itself is shown once, never kept)."""
        self.db.execute("INSERT INTO api_keys VALUES (?, ?, ?)", (key_sha256, user, time.time()))

    def api_key_user(self, key_sha256: str) -> str | None:
        row = self.db.execute("SELECT user FROM api_keys WHERE key_sha256 = ?", (key_sha256,)).fetchone()
        return row[0] if row else None

    def remove_api_keys(self, user: str) -> int:
        return self.db.execute("DELETE FROM api_keys WHERE user = ?", (user,)).rowcount

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

    def star(self, user: str, items: list[str], starred: bool = True, songs: dict[str, int] | None = None) -> None:
        """Star (or unstar) items, named by the face's ids (songs, albums, artists). `songs`: a
        song of a starred album, by album id, for the star to follow when the album's id changes.
        One transaction: a request is applied whole or not at all, whatever stops the process."""
        songs = songs or {}
        with self._transaction():
            if starred:
                self.db.executemany("INSERT OR IGNORE INTO stars (user, item, starred, song) VALUES (?, ?, ?, ?)",
                                    [(user, i, time.time(), songs.get(i)) for i in items])
            else:
                self.db.executemany("DELETE FROM stars WHERE user = ? AND item = ?", [(user, i) for i in items])

    def stars(self, user: str) -> dict[str, float]:
        """{item: when starred} of one user."""
        return dict(self.db.execute("SELECT item, starred FROM stars WHERE user = ?", (user,)))

    def star_songs(self, user: str) -> dict[str, int]:
        """{starred album's id: the song of it noted when it was starred} of one user."""
        return dict(self.db.execute("SELECT item, song FROM stars WHERE user = ? AND song IS NOT NULL", (user,)))

    def rating_songs(self, user: str) -> dict[str, int]:
        """{rated album's id: the song of it noted when it was rated} of one user (none on a
        catalog older than step 12, opened read-only)."""
        try:
            return dict(self.db.execute("SELECT item, song FROM ratings WHERE user = ? AND song IS NOT NULL", (user,)))
        except sqlite3.OperationalError:
            return {}

    def move_album_marks(self, user: str, stars: dict[str, str], ratings: dict[str, str]) -> None:
        """Re-key stars and ratings {old id: new id} (albums regrouped under new ids), in one
        transaction; where the new id is starred or rated already, the old mark goes."""
        with self._transaction():
            for table, moves in (("stars", stars), ("ratings", ratings)):
                for old, new in moves.items():
                    self.db.execute(f"UPDATE OR IGNORE {table} SET item = ? WHERE user = ? AND item = ?", (new, user, old))
                    self.db.execute(f"DELETE FROM {table} WHERE user = ? AND item = ?", (user, old))

    def add_plays(self, user: str, plays: list[tuple[int, float]]) -> None:
        """Record (track id, when) plays, in one transaction: a scrobble killed halfway and sent
        again would otherwise count its first plays twice."""
        with self._transaction():
            self.db.executemany("INSERT INTO plays (user, track_id, played_at) VALUES (?, ?, ?)",
                                [(user, int(t), float(when)) for t, when in plays])

    def play_counts(self) -> dict[int, tuple[int, float]]:
        """{track id: (plays, last played)} over every user."""
        rows = self.db.execute("SELECT track_id, COUNT(*), MAX(played_at) FROM plays GROUP BY track_id")
        return {t: (n, last) for t, n, last in rows}

    # -- stream defaults (transcoding: server/transcode.py) ---------------------------------------

    def set_stream_defaults(self, user: str, max_bit_rate: int | None, format: str | None) -> None:
        """A user's bit rate cap (kbit/s) and format for streams that ask for neither; both
        None: no defaults (the original files)."""
        if max_bit_rate is None and format is None:
            self.db.execute("DELETE FROM stream_defaults WHERE user = ?", (user,))
            return
        self.db.execute("INSERT INTO stream_defaults VALUES (?, ?, ?) ON CONFLICT(user) DO UPDATE SET "
                        "max_bit_rate = excluded.max_bit_rate, format = excluded.format", (user, max_bit_rate, format))

    def stream_defaults(self, user: str) -> tuple[int | None, str | None]:
        """(max bit rate, format) of a user, (None, None) when none are set."""
        try:
            row = self.db.execute("SELECT max_bit_rate, format FROM stream_defaults WHERE user = ?", (user,)).fetchone()
        except sqlite3.OperationalError:  # a read-only catalog not yet migrated: no defaults
            return None, None
        return (row[0], row[1]) if row else (None, None)

    # -- play queues, bookmarks, ratings (step 7) -------------------------------------------------

    def save_play_queue(self, user: str, track_ids: list[int], current: int | None, position: int,
                        changed_by: str) -> None:
        """Replace `user`'s play queue (no tracks: forget it); `current`: the index in `track_ids`
        of the track playing (a queue may hold a song twice), `position` milliseconds into it."""
        if not track_ids:
            self.db.execute("DELETE FROM play_queues WHERE user = ?", (user,))
            return
        self.db.execute("INSERT OR REPLACE INTO play_queues VALUES (?, ?, ?, ?, ?, ?)",
                        (user, json.dumps([int(t) for t in track_ids]), current, int(position), time.time(), changed_by))

    def play_queue(self, user: str) -> dict | None:
        """{track_ids, current (an index), position, changed, changed_by} of `user`'s saved queue, or None."""
        row = self.db.execute("SELECT track_ids, current, position, changed, changed_by FROM play_queues "
                              "WHERE user = ?", (user,)).fetchone()
        if row is None:
            return None
        return dict(zip(("track_ids", "current", "position", "changed", "changed_by"), (json.loads(row[0]), *row[1:])))

    def save_bookmark(self, user: str, track_id: int, position: int, comment: str | None) -> None:
        now = time.time()
        self.db.execute("INSERT INTO bookmarks VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(user, track_id) DO UPDATE SET "
                        "position = excluded.position, comment = excluded.comment, changed = excluded.changed",
                        (user, int(track_id), int(position), comment, now, now))

    def delete_bookmark(self, user: str, track_id: int) -> bool:
        return self.db.execute("DELETE FROM bookmarks WHERE user = ? AND track_id = ?", (user, int(track_id))).rowcount > 0

    def bookmarks(self, user: str) -> list[dict]:
        """`user`'s bookmarks, {track_id, position, comment, created, changed}, newest change first."""
        rows = self.db.execute("SELECT track_id, position, comment, created, changed FROM bookmarks WHERE user = ? "
                               "ORDER BY changed DESC, track_id", (user,))
        return [dict(zip(("track_id", "position", "comment", "created", "changed"), r)) for r in rows]

    def rate(self, user: str, item: str, rating: int, song: int | None = None) -> None:
        """Rate an item (the face's ids) 1 to 5; 0 removes the rating. `song`: a song of a rated
        album, for the rating to follow when the album's id changes (as stars do)."""
        if rating == 0:
            self.db.execute("DELETE FROM ratings WHERE user = ? AND item = ?", (user, item))
        else:
            self.db.execute("INSERT OR REPLACE INTO ratings (user, item, rating, song) VALUES (?, ?, ?, ?)",
                            (user, item, int(rating), song))

    def ratings(self, user: str) -> dict[str, int]:
        """{item: rating} of one user (none on a catalog older than step 7, opened read-only)."""
        try:
            return dict(self.db.execute("SELECT item, rating FROM ratings WHERE user = ?", (user,)))
        except sqlite3.OperationalError:
            return {}
