"""The catalog's connection: opening (and migrating), transactions, meta, the generation and the
change log. Every concern of the catalog (tracks.py, segments.py, listening.py, derived.py) is a
part of `Catalog` built on this one."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path

from ..errors import CatalogError
from . import migrations


def chunks(track_ids) -> list[list[int]]:
    """Ids in chunks small enough for one `IN (...)` (SQLite allows at most 999 parameters)."""
    track_ids = [int(i) for i in track_ids]
    return [track_ids[start : start + 900] for start in range(0, len(track_ids), 900)]


def marks(chunk: list) -> str:
    """The `?, ?, ...` of an `IN (...)` over `chunk`."""
    return ",".join("?" * len(chunk))


class Store:
    """One connection. A writer (the default) creates or migrates the schema; `readonly=True`
    opens an existing catalog for reading only, as each query thread does (WAL lets readers run
    beside the one writer). A connection is used by one thread at a time; check_same_thread=False
    lets another thread take its turn (the server's Subsonic writes, under a lock) or close it at
    shutdown."""

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        try:
            self._open(readonly)
        except BaseException as e:
            if hasattr(self, "db"):
                self.db.close()
            # OperationalError (locked, no permission) is not damage
            if isinstance(e, sqlite3.DatabaseError) and not isinstance(e, sqlite3.OperationalError):
                raise CatalogError(f"{self.path}: not a songspace catalog or damaged ({e}); move it aside and index "
                                   f"the music again to rebuild it, or restore it from a backup") from None
            raise

    def _open(self, readonly: bool) -> None:
        if readonly:
            self.db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                                      timeout=30, check_same_thread=False)
            migrations.check_version(self)  # a file that is not a database fails here
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
        migrations.migrate(self)

    def integrity(self, quick: bool = False) -> list[str]:
        """What SQLite's integrity check finds wrong with the file ([] when sound)."""
        rows = self.db.execute("PRAGMA quick_check" if quick else "PRAGMA integrity_check").fetchall()
        return [r[0] for r in rows if r[0] != "ok"]

    @property
    def schema_version(self) -> int:
        """Which of `migrations.STEPS` the file has been through (0: written before versioning)."""
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _transaction(self):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- meta ---------------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- the generation and the change log --------------------------------------------------------

    @property
    def generation(self) -> int:
        """Bumped by every change to the searchable set; derived indexes compare against it."""
        return int(self.get_meta("generation", "0"))

    def _bump(self) -> None:
        self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")

    def _log(self, track_ids, op: str) -> None:
        """One change-log row per track, in the transaction of the change itself."""
        self.db.executemany("INSERT INTO changes (track_id, op) VALUES (?, ?)", [(int(i), op) for i in track_ids])

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
