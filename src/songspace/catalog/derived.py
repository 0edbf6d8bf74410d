"""Derived data: what songspace computed from the vectors and keeps beside the tracks, each
rebuildable from them: predicted labels (classify) and the 2-D library map (map.py), stored
so the page draws it at once."""

from __future__ import annotations

import sqlite3

from .store import Store, chunks, marks


class Derived(Store):
    def put_predictions(self, name: str, model_id: str, rows: list[tuple[int, str, float]],
                        only: list[int] | None = None) -> None:
        """Replace every prediction of `name` with rows of (track id, label, confidence); with
        `only`, the predictions of those tracks (those without a row lose theirs)."""
        with self._transaction():
            if only is None:
                self.db.execute("DELETE FROM predictions WHERE name = ?", (name,))
            for chunk in chunks(only or []):
                self.db.execute(f"DELETE FROM predictions WHERE name = ? AND track_id IN ({marks(chunk)})",
                                (name, *chunk))
            self.db.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?)",
                                [(i, name, label, float(c), model_id) for i, label, c in rows])

    def predictions(self, name: str) -> dict[int, tuple[str, float]]:
        """{track id: (label, confidence)} of what `classify` predicted for `name`."""
        rows = self.db.execute("SELECT track_id, label, confidence FROM predictions WHERE name = ?", (name,))
        return {i: (label, c) for i, label, c in rows}

    def predictions_of(self, name: str, track_ids) -> dict[int, tuple[str, float]]:
        """`predictions(name)` of these tracks only: what a list of answers shows beside each row."""
        found: dict[int, tuple[str, float]] = {}
        for chunk in chunks([int(i) for i in track_ids]):
            rows = self.db.execute(f"SELECT track_id, label, confidence FROM predictions WHERE name = ? "
                                   f"AND track_id IN ({marks(chunk)})", (name, *chunk))
            found.update((i, (label, c)) for i, label, c in rows)
        return found

    def prediction_names(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT name FROM predictions ORDER BY name")]

    def put_map(self, stamp: str, rows: list[tuple[int, float, float]], method: str = "umap") -> None:
        """Replace the stored library map with rows of (track id, x, y) brought up to date for
        `stamp`, laid out by `method` (pca: the quick layout, umap: the final one)."""
        with self._transaction():
            self.db.execute("DELETE FROM map_points")
            self.db.executemany("INSERT INTO map_points VALUES (?, ?, ?)", [(int(i), float(x), float(y)) for i, x, y in rows])
            self.set_meta("map", stamp)
            self.set_meta("map_method", method)

    def map_points(self) -> tuple[str | None, dict[int, tuple[float, float]]]:
        """(stamp, {track id: (x, y)}) of the stored library map; (None, {}) when there is none."""
        try:
            rows = self.db.execute("SELECT track_id, x, y FROM map_points").fetchall()
        except sqlite3.OperationalError:  # a catalog older than the map, opened read-only
            return None, {}
        return self.get_meta("map"), {i: (x, y) for i, x, y in rows}

    def map_names(self) -> dict[int, tuple]:
        """{track id: (title, artist, album, genre, path)} of the analysed tracks, in one pass:
        what the map shows of each dot (whole Track rows for 100k dots cost seconds)."""
        rows = self.db.execute("SELECT id, title, artist, album, genre, path FROM tracks WHERE status = 'ok'")
        return {r[0]: r[1:] for r in rows}

    def map_method(self) -> str | None:
        """How the stored map was laid out: "pca" or "umap" (None: no map, or one older than this)."""
        return self.get_meta("map_method")
