"""One index run at a time, in a background thread, with its progress readable meanwhile.

The run opens its own Library (its own writer connection: SQLite connections stay in the
thread that made them); queries keep answering from WAL readers, and the shared Searcher
picks up the new vectors by itself once the catalog's generation moves.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from .. import autotags
from ..errors import SongspaceError
from ..library import Library
from ..progress import Phase


class IndexJob:
    """The library's index run: `start()` one, `progress()` any time from any thread."""

    def __init__(self, root: str | Path, workers: int | None = None):
        self.root, self.workers = Path(root), workers
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
            self._thread = threading.Thread(target=self._run, args=(folders,), name="songspace-index", daemon=True)
        self._thread.start()
        return True

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

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
                tags = None if r.interrupted else autotags.refresh(lib.catalog).note  # as the CLI's index does
            report = {"added": r.added, "updated": r.updated, "unchanged": r.unchanged, "removed": r.removed,
                      "failed": len(r.failed), "set_aside": len(r.set_aside), "interrupted": r.interrupted,
                      "tags": tags, "notes": [f"{where}: {why}; its {n} tracks stay" for where, why, n in r.unreadable]}
        except SongspaceError as e:
            error = str(e)
        except Exception as e:  # a bug: keep the server up, and say what happened
            error = f"{type(e).__name__}: {e}"
        finally:
            with self._lock:
                self._state.update(running=False, finished=time.time(), report=report, error=error,
                                   phase=Phase.DONE if error is None else Phase.FAILED)
