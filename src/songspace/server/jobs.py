"""The server's background work, each in its own thread with its state readable meanwhile:
one index run at a time (IndexJob), and the library map brought up to date after it (MapJob).

An index run opens its own Library (its own writer connection: SQLite connections stay in the
thread that made them); queries keep answering from WAL readers, and the shared Searcher
picks up the new vectors by itself once the catalog's generation moves. The map job reads the
vectors through the shared Searcher and writes through a connection of its own; UMAP runs in a
child process that `stop()` kills, so a server asked to stop does not wait for a layout.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from .. import map as library_map
from ..catalog import Catalog
from ..errors import SongspaceError
from ..library import Library
from ..map_layout import MapCancelled
from ..progress import Phase


class IndexJob:
    """The library's index run: `start()` one, `progress()` any time from any thread."""

    def __init__(self, root: str | Path, workers: int | None = None, then: Callable[[], object] | None = None):
        """`then`: called in the run's thread once it has ended (the map job's `start`)."""
        self.root, self.workers, self.then = Path(root), workers, then
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._state = {"running": False, "done": 0, "total": 0, "files": 0, "phase": "", "note": "", "started": None,
                       "finished": None, "report": None, "error": None}

    def progress(self) -> dict:
        with self._lock:
            return dict(self._state)

    def start(self, folders: list[str]) -> bool:
        """Start indexing `folders`; False (and nothing started) while a run is going."""
        with self._lock:
            if self._state["running"]:
                return False
            self._state.update(running=True, done=0, total=0, files=0, phase=Phase.STARTING, note="", started=time.time(),
                               finished=None, report=None, error=None)
            thread = threading.Thread(target=self._run, args=(folders,), name="songspace-index", daemon=True)
            thread.start()  # before it is published: `join` may be called at any moment
            self._thread = thread
        return True

    def join(self, timeout: float | None = None) -> None:
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _report(self, phase: str, done: float, total: float, note: str) -> None:
        with self._lock:
            # Analysis reports bytes done after each file (its name in the note): count the
            # files too, so the page can say how many are finished.
            files = self._state["files"] if phase == self._state["phase"] else 0
            if phase == Phase.ANALYSE and note:
                files += 1
            self._state.update(phase=phase, done=done, total=total, note=note, files=files)

    def _run(self, folders: list[str]) -> None:
        report = error = None
        try:
            with Library(self.root) as lib:
                r = lib.update(folders, workers=self.workers, report=self._report)  # companion mode's servers too
            report = {"added": r.added, "updated": r.updated, "unchanged": r.unchanged, "removed": r.removed,
                      "failed": len(r.failed), "set_aside": len(r.set_aside), "interrupted": r.interrupted,
                      "tags": r.tags_note, "timbre": r.timbre_note, "timbre_added": r.timbre_added, "notes": [f"{where}: {why}; its {n} tracks stay" for where, why, n in r.unreadable]}
        except SongspaceError as e:
            error = str(e)
        except Exception as e:  # a bug: keep the server up, and say what happened
            error = f"{type(e).__name__}: {e}"
        finally:
            with self._lock:
                self._state.update(running=False, finished=time.time(), report=report, error=error,
                                   phase=Phase.DONE if error is None else Phase.FAILED)
        if self.then is not None:  # even after a failure: what was stored before it is searched
            self.then()


class MapJob:
    """The stored library map kept up to date (map.refresh) in a background thread: `start()`
    after an index run, at start-up, or asked for a full recompute; `state()` any time."""

    def __init__(self, searcher, catalog_path: str | Path):
        self.searcher, self.catalog_path = searcher, Path(catalog_path)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._again = self._again_full = False  # asked while running: run once more (full or not) after
        self._state = {"running": False, "step": None, "full": False, "note": "", "error": None, "finished": None}

    def state(self) -> dict:
        with self._lock:
            return dict(self._state)

    def start(self, full: bool = False) -> bool:
        """Bring the map up to date (`full`: lay everything out again with UMAP). A request while
        a run is going is remembered: one more run follows (new tracks arrived meanwhile, or a
        recompute was asked during a placement). False: a full run is going already, or the
        server is stopping."""
        with self._lock:
            if self._cancel.is_set():
                return False
            if self._state["running"]:
                if full and self._state["full"]:
                    return False
                self._again, self._again_full = True, self._again_full or full
                return True
            self._state.update(running=True, step=None, full=full, note="", error=None)
            thread = threading.Thread(target=self._run, args=(full,), name="songspace-map", daemon=True)
            thread.start()  # before it is published: `stop` may join it at any moment
            self._thread = thread
        return True

    def start_if_needed(self, needed: bool | None = None) -> bool:
        """Start a plain run when the stored map is behind the vectors or UMAP is due (`needed`:
        already known by the caller), unless a run already failed for this very state of the
        library (a read-only catalog: the page gets quick maps computed as it asks)."""
        with self._lock:
            if self._state["running"] or (self._state["error"] and self._state.get("failed_at") == self._stamp()):
                return False
        if needed is None:
            try:
                needed = library_map.needs_refresh(self.searcher)
            except SongspaceError:
                return False
        return self.start() if needed else False

    def stop(self, timeout: float = 5) -> None:
        """Kill a UMAP run and wait (briefly) for the thread; nothing starts after this."""
        self._cancel.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _stamp(self) -> tuple:
        return (self.searcher.catalog.generation, self.searcher.searched_model_id())

    def _step(self, step: str) -> None:
        with self._lock:
            self._state["step"] = step

    def _run(self, full: bool) -> None:
        note = error = None
        stamp = None
        try:
            writer = Catalog(self.catalog_path)  # this thread's own connection
            try:
                while True:
                    stamp = self._stamp()
                    note = library_map.refresh(self.searcher, writer, full=full, cancel=self._cancel, report=self._step)
                    with self._lock:
                        again, full = self._again, self._again_full
                        self._again = self._again_full = False
                        self._state["full"] = full
                    if not again and self._stamp() == stamp:
                        break
            finally:
                writer.close()
        except MapCancelled:
            error = "stopped"
        except SongspaceError as e:  # a read-only library or a full disk: the page gets quick maps
            error = str(e)
        except Exception as e:  # a bug, or UMAP failing: keep the server up, and say what happened
            error = f"{type(e).__name__}: {e}"
        finally:
            with self._lock:
                self._state.update(running=False, step=None, note=note or "", error=error, finished=time.time(),
                                   failed_at=stamp if error else None)
