"""The catalog's connection: opening (and migrating), transactions, meta, the generation and the
change log. Every concern of the catalog (tracks.py, segments.py, listening.py, derived.py) is a
part of `Catalog` built on this one.

What the file system can do to it, and what this does back:
- a read-only catalog (read-only mount, no write permission): opened for reading; every write
  raises ReadOnlyLibrary, never a traceback;
- a full disk: a write raises DiskFull (the transaction rolls back, what was stored stays); a
  writer that cannot even open is opened for reading, so reading commands and a server still work;
- the write-ahead log (catalog.sqlite-wal) deleted while in use: the writer notices after its
  next commit, checkpoints what the deleted log holds into the catalog (its own open handle still
  reads it) and reopens (also as it closes: beside a reader, closing does not checkpoint, and
  the changes would go with the deleted file); a reader that then meets "disk I/O error"
  reopens once.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
from contextlib import contextmanager
from pathlib import Path

from ..errors import CatalogError, DiskFull, ReadOnlyLibrary, SongspaceError
from . import migrations

log = logging.getLogger("songspace")

# SQLite's primary result codes (the low byte of sqlite_errorcode)
SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_FULL = 8, 10, 14, 13
LOW_SPACE = 1 << 20  # below this many free bytes, an I/O error while writing is taken for a full disk


def chunks(track_ids) -> list[list[int]]:
    """Ids in chunks small enough for one `IN (...)` (SQLite allows at most 999 parameters)."""
    track_ids = [int(i) for i in track_ids]
    return [track_ids[start : start + 900] for start in range(0, len(track_ids), 900)]


def marks(chunk: list) -> str:
    """The `?, ?, ...` of an `IN (...)` over `chunk`."""
    return ",".join("?" * len(chunk))


def _sqlite_code(e: BaseException) -> int:
    return (getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF


def _low_space(path: Path) -> bool:
    try:
        return shutil.disk_usage(path.parent).free < LOW_SPACE
    except OSError:
        return False


def read_only(path: Path) -> ReadOnlyLibrary:
    return ReadOnlyLibrary(f"library {path.parent} is read-only ({path.name} cannot be written): reading and "
                           "searching work, changing it does not")


def disk_full(path: Path) -> DiskFull:
    return DiskFull(f"disk full: no space left to write {path}; everything stored before is kept. Free some "
                    "space and run the command again (an index run resumes where it stopped)")


def write_failure(e: BaseException, path: str | Path) -> SongspaceError | None:
    """ReadOnlyLibrary or DiskFull when `e` (from SQLite or the OS) is one, naming `path`; else None."""
    path = Path(path)
    if isinstance(e, sqlite3.Error):
        code = _sqlite_code(e)
        if code == SQLITE_READONLY:
            return read_only(path)
        if code == SQLITE_FULL or (code in (SQLITE_IOERR, SQLITE_CANTOPEN) and _low_space(path)):
            return disk_full(path)
    elif isinstance(e, OSError):
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            return disk_full(path)
        if e.errno == errno.EROFS:
            return read_only(path)
    return None


class _Connection(sqlite3.Connection):
    """sqlite3's connection, whose failures to write say why (Store._failed)."""

    store: "Store"

    def execute(self, sql, params=()):
        try:
            return super().execute(sql, params)
        except sqlite3.OperationalError as e:
            return self.store._failed(e, lambda db: db.execute(sql, params))

    def executemany(self, sql, rows):
        try:
            return super().executemany(sql, rows)
        except sqlite3.OperationalError as e:
            return self.store._failed(e, None)  # the rows may be a spent generator: no retry


class Store:
    """One connection. A writer (the default) creates or migrates the schema; `readonly=True`
    opens an existing catalog for reading only, as each query thread does (WAL lets readers run
    beside the one writer). A connection is used by one thread at a time; check_same_thread=False
    lets another thread take its turn (the server's Subsonic writes, under a lock) or close it at
    shutdown."""

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly  # True also for a writer that found the catalog read-only or the disk full
        self._why_readonly: SongspaceError | None = None  # what a write raises when the writer fell back
        self._opening = False  # while opening, SQLite's errors go to _open as they are
        try:
            self._open_quiet(readonly)
        except BaseException as e:
            self._close_quietly()
            # OperationalError (locked, no permission) is not damage
            if isinstance(e, sqlite3.DatabaseError) and not isinstance(e, sqlite3.OperationalError):
                raise CatalogError(f"{self.path}: not a songspace catalog or damaged ({e}); move it aside and index "
                                   f"the music again to rebuild it, or restore it from a backup") from None
            raise

    @property
    def _wal(self) -> Path:
        return self.path.with_name(self.path.name + "-wal")

    def _close_quietly(self) -> None:
        if hasattr(self, "db"):
            try:
                self.db.close()
            except sqlite3.Error:
                pass

    def _connect(self, target: str, uri: bool = False) -> None:
        self.db = sqlite3.connect(target, uri=uri, isolation_level=None, timeout=30, check_same_thread=False,
                                  factory=_Connection)
        self.db.store = self

    def _open_quiet(self, readonly: bool) -> None:
        self._opening = True
        try:
            self._open(readonly)
        finally:
            self._opening = False

    def _open(self, readonly: bool) -> None:
        if not readonly and self.path.exists() and not (os.access(self.path, os.W_OK)
                                                        and os.access(self.path.parent, os.W_OK)):
            self.readonly, self._why_readonly = True, read_only(self.path)
            log.info("songspace: %s", self._why_readonly)
            readonly = True
        if readonly:
            self._open_readonly()
            return
        if self.path.parent.is_dir() and not os.access(self.path.parent, os.W_OK):
            raise read_only(self.path)  # no catalog yet, and none can be made here
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open_writer()
        except (sqlite3.OperationalError, OSError) as e:
            why = write_failure(e, self.path)
            if not isinstance(why, DiskFull) or not self.path.exists():
                raise why or e from None
            # A full disk: reading needs no space. A writer opened for reading answers every write with DiskFull.
            self._close_quietly()
            self.readonly, self._why_readonly = True, why
            log.warning("songspace: %s", why)
            self._open_readonly()

    def _open_writer(self) -> None:
        # isolation_level=None: we open transactions ourselves, one per logical write.
        self._connect(str(self.path))
        self.db.execute("PRAGMA journal_mode=WAL")
        # The writer checks the file's structure once per open (a few seconds at a million tracks):
        # damage found now is an error naming the file, not a traceback halfway through a run.
        problems = self.integrity(quick=True)
        if problems:
            raise sqlite3.DatabaseError("; ".join(problems[:3]))
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process kills
        self.db.execute("PRAGMA foreign_keys=ON")
        migrations.migrate(self)

    def _open_readonly(self) -> None:
        uri = self.path.resolve().as_uri()
        try:
            self._connect(f"{uri}?mode=ro", uri=True)
            migrations.check_version(self)  # a file that is not a database fails here
            return
        except sqlite3.OperationalError as e:
            # A WAL catalog closed cleanly, on a read-only mount or a full disk: SQLite cannot make
            # the -shm it reads through. With no log to read, the file alone is the whole catalog
            # (no writer is at work: a writer keeps a log): read it as immutable.
            no_shm = _sqlite_code(e) == SQLITE_CANTOPEN or isinstance(write_failure(e, self.path), DiskFull)
            if not no_shm or (self._wal.exists() and self._wal.stat().st_size):
                raise
            self._close_quietly()
        self._connect(f"{uri}?mode=ro&immutable=1", uri=True)
        migrations.check_version(self)

    def write_refusal(self) -> SongspaceError:
        """What a write to this catalog raises when it is open for reading only."""
        return self._why_readonly or read_only(self.path)

    def _failed(self, e: sqlite3.OperationalError, retry):
        """What a failed statement raises: ReadOnlyLibrary or DiskFull when it is one of those; a
        reader's "disk I/O error" (a log deleted and made anew under it) reopens and retries once."""
        if self._opening:
            raise e  # _open decides what a failure to open means
        code = _sqlite_code(e)
        if code == SQLITE_READONLY and self._why_readonly is not None:
            raise self._why_readonly from None
        if code == SQLITE_IOERR and self.readonly and retry is not None and not _low_space(self.path):
            log.warning("songspace: %s: %s; reopened the catalog (was its write-ahead log deleted?)", self.path, e)
            self._close_quietly()
            self._open_quiet(True)
            return retry(self.db)
        why = write_failure(e, self.path)
        if why is not None:
            raise why from None
        raise e

    def _wal_lost(self, reopen: bool = True) -> None:
        """After a commit and before closing: the log this writer writes to must still be on disk.
        When it was deleted, the committed changes live only in the deleted file this connection
        still holds open (and would go with it once closed beside a reader): checkpoint them into
        the catalog now, then go on with a new log."""
        if self.readonly or self._wal.exists():
            return
        busy = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        log.warning("songspace: %s: its write-ahead log %s was deleted while in use; what it held %s",
                    self.path, self._wal.name, "was saved into the catalog" if not busy else
                    "could not all be saved (a reader held it): run `songspace check`")
        if reopen:
            self.db.close()
            self._opening = True
            try:
                self._open_writer()
            finally:
                self._opening = False

    def integrity(self, quick: bool = False) -> list[str]:
        """What SQLite's integrity check finds wrong with the file ([] when sound)."""
        rows = self.db.execute("PRAGMA quick_check" if quick else "PRAGMA integrity_check").fetchall()
        return [r[0] for r in rows if r[0] != "ok"]

    @property
    def schema_version(self) -> int:
        """Which of `migrations.STEPS` the file has been through (0: written before versioning)."""
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        try:
            self._wal_lost(reopen=False)
        except sqlite3.ProgrammingError:
            pass  # closed already
        finally:
            self.db.close()

    @contextmanager
    def _transaction(self):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.db.in_transaction:  # SQLite may have rolled back already (a full disk)
                try:
                    self.db.execute("ROLLBACK")
                except (sqlite3.Error, SongspaceError):
                    pass  # the error that brought us here says more
            raise
        self.db.execute("COMMIT")
        self._wal_lost()

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
