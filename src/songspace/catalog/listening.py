"""Listening: the Subsonic face's users, playlists, stars and plays (server/subsonic.py)."""

from __future__ import annotations

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

    def star(self, user: str, items: list[str], starred: bool = True) -> None:
        """Star (or unstar) items, named by the face's ids (songs, albums, artists). One
        transaction: a request is applied whole or not at all, whatever stops the process."""
        with self._transaction():
            if starred:
                self.db.executemany("INSERT OR IGNORE INTO stars VALUES (?, ?, ?)", [(user, i, time.time()) for i in items])
            else:
                self.db.executemany("DELETE FROM stars WHERE user = ? AND item = ?", [(user, i) for i in items])

    def stars(self, user: str) -> dict[str, float]:
        """{item: when starred} of one user."""
        return dict(self.db.execute("SELECT item, starred FROM stars WHERE user = ?", (user,)))

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
