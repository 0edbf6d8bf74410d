"""Companion mode's part of the catalog: the Subsonic servers a library was indexed from (their
addresses as `subsonic://USER@HOST:PORT[/BASE]`, never a password: `status` shows them and the
page's update runs them again), and for each track indexed from one, the ids that server gives
its artist and album (the AudioMuse-AI plugin names artists by them) and its file suffix (the
Subsonic song entries songspace serves say it). The track's own path holds its song id
(`Track.remote_id`)."""

from __future__ import annotations

import sqlite3
import time

from .store import Store, chunks, marks


class Companion(Store):
    def add_remote_server(self, address: str) -> None:
        """Remember a server indexed from (again: its time updated)."""
        with self._transaction():
            self.db.execute("INSERT OR REPLACE INTO remote_servers VALUES (?, ?)", (address, time.time()))

    def remote_servers(self) -> list[str]:
        """The addresses of the servers this library was indexed from, oldest first."""
        try:
            rows = self.db.execute("SELECT address FROM remote_servers ORDER BY indexed_at, address").fetchall()
        except sqlite3.OperationalError:  # a catalog older than companion mode, opened read-only
            return []
        return [r[0] for r in rows]

    def put_remote_ids(self, rows: list[tuple[str, str | None, str | None, str | None]]) -> None:
        """(track path, artist id, album id, file suffix) as the server gives them, for the tracks stored at
        those paths (a path with no track is skipped). Unchanged rows are not written; a change
        moves the generation, so what a search snapshot derived from them is derived again."""
        with self._transaction():
            before = self.db.total_changes
            self.db.executemany(
                "INSERT INTO remote_songs (track_id, artist_id, album_id, suffix) "
                "SELECT id, ?2, ?3, ?4 FROM tracks WHERE path = ?1 "
                "ON CONFLICT(track_id) DO UPDATE SET artist_id = excluded.artist_id, album_id = excluded.album_id, "
                "suffix = excluded.suffix WHERE artist_id IS NOT excluded.artist_id "
                "OR album_id IS NOT excluded.album_id OR suffix IS NOT excluded.suffix",
                rows)
            if self.db.total_changes != before:
                self._bump()

    def remote_ids(self, track_ids) -> dict[int, tuple[str | None, str | None]]:
        """{track id: (artist id, album id) on its server} for those of `track_ids` indexed from one."""
        found: dict[int, tuple[str | None, str | None]] = {}
        try:
            for chunk in chunks([int(i) for i in track_ids]):
                rows = self.db.execute(f"SELECT track_id, artist_id, album_id FROM remote_songs "
                                       f"WHERE track_id IN ({marks(chunk)})", chunk)
                found.update((i, (artist, album)) for i, artist, album in rows)
        except sqlite3.OperationalError:  # older than companion mode, read-only
            return {}
        return found

    def remote_suffixes(self, track_ids) -> dict[int, str]:
        """{track id: file suffix on its server ("flac")} for those of `track_ids` whose server named one."""
        found: dict[int, str] = {}
        try:
            for chunk in chunks([int(i) for i in track_ids]):
                rows = self.db.execute(f"SELECT track_id, suffix FROM remote_songs WHERE suffix IS NOT NULL "
                                       f"AND track_id IN ({marks(chunk)})", chunk)
                found.update(rows)
        except sqlite3.OperationalError:  # older than the suffix column, read-only
            return {}
        return found
