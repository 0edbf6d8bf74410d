"""Indexing as a pipeline of named stages, read top to bottom like beets' importer:

  scan     walk the folders: audio files by extension, and entries that only look like audio
           (a directory named `x.flac`, a FIFO, a broken link, a name that is not UTF-8)
  prune    compare with the catalog: drop rows of files that are gone (but keep a folder's
           tracks when it holds no audio at all: likely an unmounted drive, and the tracks of a
           folder that could not be read); record the entries that only look like audio as failures
  (fit)    optional, the caller's: adapt the model to these files (Library.fit)
  plan     skip files whose size and mtime are unchanged and whose embedding came from the
           current model (their tags are read again, only them, when an older tag reader filled
           them; their timbre Gaussian is computed, only it, when they were embedded before the
           timbre companion; a folder image or .lrc added beside them is noted); the rest become `Task`s,
           with the audio hash already embedded: a changed file whose audio packets are the same
           (a tag editor rewrote it) gets its tags read, not its audio analysed
  analyse  an executor (executors.py: local processes, a GPU, Ray) hashes, tags, decodes and
           embeds each task, yielding results as they finish
  store    commit every result as it arrives, so Ctrl-C or kill -9 loses at most the files in
           flight and the next run resumes from there with no duplicates
  upkeep   every UPKEEP_EVERY stored tracks and at the end: fit segment projections, compact the
           segment sidecar (never inside a write)

Each stage is a small function with a typed result; `run` chains them. Only this process writes
to the catalog, whatever executes the analysis.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import method as methods
from .. import proximity
from ..analysis import Analysis, Task
from ..catalog import Catalog, Track
from ..progress import Phase, Report, silent
from ..scan import is_under, scan, shown, storable
from ..status import SET_ASIDE, Outcome, TrackStatus
from ..tags import TAGS_VERSION, beside
from .executors import Executor
from .report import FitResult, IndexReport

# Stored tracks between two segment upkeeps (Catalog.upkeep): a first index stores at most this
# many tracks' segments in full before their model's projection is fitted, then all compact.
UPKEEP_EVERY = 256

Fit = Callable[[list[str]], FitResult]  # the optional fit stage: the scanned files -> what it did


@dataclass(frozen=True)
class Scanned:
    """What the folders hold now."""

    roots: list[str]  # the folders (or files) given, resolved
    files: list[str]  # audio files, sorted
    bad: list[tuple[str, str]]  # (path, reason): entries that look like audio but are not files
    unreadable: list[tuple[str, str]]  # (folder, reason): folders that could not be read
    listings: dict[str, list[str]]  # folder -> its pictures and .lrc files, as the walk saw them


@dataclass(frozen=True)
class Plan:
    """The files to analyse, for one model."""

    tasks: list[Task]
    model: str  # the embedding method's canonical name (method.py)

    @property
    def total_bytes(self) -> int:
        return sum(t.size or 0 for t in self.tasks) or 1


def run(catalog: Catalog, folders: Iterable[str | Path], executor: Executor, *, allow_empty: bool = False,
        report: Report | None = None, fit: Fit | None = None) -> IndexReport:
    """Bring the catalog up to date with `folders`, stage by stage (module docstring). The caller
    holds the library's writer lock."""
    report = report or silent
    result = IndexReport()
    scanned = scan_folders(catalog, folders, report)
    known = prune(catalog, scanned, allow_empty, result)
    if fit is not None:
        result.fit = fit(scanned.files)
    plan = plan_tasks(catalog, methods.current(catalog), scanned.files, known, result, scanned.listings)
    try:
        with closing(analyse(executor, plan, report)) as results:
            for r in results:
                store(catalog, r, known, result)
    except KeyboardInterrupt:
        result.interrupted = True
    catalog.upkeep()  # segment projections due and compaction: after the writes, never inside one
    return result


# ---------------------------------------------------------------------------------------------
# scan, prune
# ---------------------------------------------------------------------------------------------


def scan_folders(catalog: Catalog, folders: Iterable[str | Path], report: Report) -> Scanned:
    """Walk `folders` (InputError for one that does not exist), and remember them and the
    current method in the catalog."""
    folders = list(folders)
    unreadable: list[tuple[str, str]] = []
    listings: dict[str, list[str]] = {}
    files, bad = scan(folders, unreadable, listings)  # before resolving: a broken link given is named as such
    roots = [str(Path(f).expanduser().resolve()) for f in folders]
    catalog.add_folders(roots)
    methods.remember(catalog, methods.current(catalog))
    report(Phase.SCAN, len(files), len(files), f"{len(files)} audio files")
    return Scanned(roots, files, bad, unreadable, listings)


def prune(catalog: Catalog, scanned: Scanned, allow_empty: bool, result: IndexReport) -> dict[str, Track]:
    """Remove the catalog's tracks under the roots whose files are gone, and record the entries
    that only look like audio. Returns the catalog's tracks under the roots that remain, by path."""
    known = {t.path: t for t in catalog.tracks() if is_under(t.path, scanned.roots)}
    present = set(scanned.files) | {path for path, _ in scanned.bad}
    # A folder that had tracks and now holds no audio at all is more likely an unmounted
    # drive than deleted music: keep its tracks unless told otherwise.
    if not allow_empty:
        for root in scanned.roots:
            if any(is_under(p, [root]) for p in present):  # stops at the first file found
                continue
            had = [p for p in known if is_under(p, [root])]
            if had:
                result.kept_empty.append((root, len(had)))
                present.update(had)
    # A folder that cannot be read (permissions, a failing disk) says nothing about its
    # tracks: keep them, with their playlist entries and stars, and say so.
    for folder, reason in scanned.unreadable:
        had = [p for p in known if is_under(p, [folder])]
        present.update(had)
        result.unreadable.append((folder, reason, len(had)))
    gone = [t.id for p, t in known.items() if p not in present]
    if gone:
        catalog.remove(gone)
        result.removed = len(gone)
        known = {p: t for p, t in known.items() if p in present}

    for path, reason in scanned.bad:
        if not storable(path):  # a name SQLite cannot hold: reported on every run instead
            result.failed.append((shown(path), reason))
            continue
        if path not in known or known[path].error != reason:
            catalog.put_failed(path, reason)
        result.failed.append((path, reason))
    return known


# ---------------------------------------------------------------------------------------------
# plan
# ---------------------------------------------------------------------------------------------


def plan_tasks(catalog: Catalog, method: methods.Method, files: list[str], known: dict[str, Track],
               result: IndexReport, listings: dict[str, list[str]] | None = None) -> Plan:
    """Tasks for the files that need analysing with `method` (with the size and mtime seen
    here); counts the rest as unchanged, or as failed or set aside as before. An unchanged
    track's folder image and .lrc are checked here, from the scan's `listings` (a folder it
    did not list is listed once)."""
    tasks = []
    listings = dict(listings or {})
    # Embedded before the timbre companion (catalog step 13): the Gaussian alone is computed.
    no_timbre = catalog.without_timbre() if proximity.applies(method) else set()
    for path in files:
        try:
            st = os.stat(path)
        except OSError:
            st = None  # gone already: let the worker record why
        t = known.get(path)
        same_file = t is not None and st is not None and t.size == st.st_size and t.mtime == st.st_mtime
        if same_file and t.status == TrackStatus.FAILED:
            result.failed.append((path, t.error))  # retried once the file changes
            continue
        if same_file and t.status in SET_ASIDE:
            result.set_aside.append((path, t.error))  # judged again once the file changes
            continue
        if same_file and t.model_id == method.id:
            stale_tags, timbre_only = t.tags_version < TAGS_VERSION, t.id in no_timbre
            if stale_tags or timbre_only:  # read again only the tags, or compute only the timbre, or both
                tasks.append(Task(path, method.name, t.content_hash, st.st_size, st.st_mtime, tags_only=stale_tags,
                                  timbre_only=timbre_only))
                continue
            check_beside(catalog, t, listings)
            result.unchanged += 1
            continue
        ok_here = t is not None and t.status == TrackStatus.OK and t.model_id == method.id
        tasks.append(Task(path, method.name, t.content_hash if ok_here else None,
                          st.st_size if st else 0, st.st_mtime if st else None,
                          known_audio_hash=t.audio_hash if ok_here else None,
                          timbre_only=ok_here and t.id in no_timbre))
    return Plan(tasks, method.name)


def check_beside(catalog: Catalog, t: Track, listings: dict[str, list[str]]) -> None:
    """A cover or .lrc file added or removed beside an unchanged track: one listing per folder
    (`listings`: those known already)."""
    folder = os.path.dirname(t.path)
    if folder not in listings:
        try:
            listings[folder] = os.listdir(folder)
        except OSError:
            listings[folder] = []
    found = beside(t.path, listings[folder])
    if (found["folder_image"], found["lyrics_file"]) != (t.folder_image, t.lyrics_file):
        catalog.put_tags(t.id, found)


# ---------------------------------------------------------------------------------------------
# analyse, store
# ---------------------------------------------------------------------------------------------


def analyse(executor: Executor, plan: Plan, report: Report) -> Iterator[Analysis]:
    """The planned files' results as the executor finishes them, reporting progress in bytes
    once each has been stored. Closing this stops the executor's workers at once."""
    if not plan.tasks:
        return
    total, done = plan.total_bytes, 0
    report(Phase.ANALYSE, 0, total, "")
    with closing(executor.analyse(plan.tasks, plan.model)) as results:
        for r in results:
            yield r
            done += r.size or 0
            report(Phase.ANALYSE, done, total, Path(r.path).name)


def store(catalog: Catalog, r: Analysis, known: dict[str, Track], result: IndexReport) -> None:
    """Commit one file's result, and count it in `result`."""
    if r.status in (Outcome.UNCHANGED, Outcome.RETAGGED) and r.timbre is not None:  # a Task.timbre_only
        catalog.put_timbre(known[r.path].id, r.timbre)
        result.timbre_added += 1
    if r.status == Outcome.UNCHANGED:
        catalog.touch(known[r.path].id, r.size, r.mtime)
        result.unchanged += 1
    elif r.status == Outcome.RETAGGED:  # the same audio: new tags, the embedding kept
        catalog.put_tags(known[r.path].id, {**r.tags, **beside(r.path)}, size=r.size, mtime=r.mtime,
                         content_hash=r.content_hash, audio_hash=r.audio_hash)
        result.unchanged += 1
        result.retagged += 1
    elif r.status == Outcome.FAILED:
        catalog.put_failed(r.path, r.error, size=r.size, mtime=r.mtime)
        result.failed.append((r.path, r.error))
    elif r.status == Outcome.SKIPPED:  # not the file's fault: not recorded, so the next run tries again
        result.failed.append((r.path, r.error))
    elif r.status in SET_ASIDE:
        catalog.put_failed(r.path, r.error, size=r.size, mtime=r.mtime, status=TrackStatus(r.status))
        result.set_aside.append((r.path, r.error))
    elif not np.isfinite(r.vector).all():  # the last guard: NaN in the index breaks every query
        reason = "the model gave a vector that is not a number (NaN): not stored"
        catalog.put_failed(r.path, reason, size=r.size, mtime=r.mtime)
        result.failed.append((r.path, reason))
    else:
        catalog.put_ok(r.path, size=r.size, mtime=r.mtime, content_hash=r.content_hash, duration=r.duration,
                       tags={**r.tags, **beside(r.path)}, model_id=r.model_id, vector=r.vector,
                       segments=r.segments, segment_starts=r.segment_starts, audio_hash=r.audio_hash,
                       timbre=r.timbre)
        if r.path in known:
            result.updated += 1
        else:
            result.added += 1
        result.audio_seconds += r.duration
        if (result.added + result.updated) % UPKEEP_EVERY == 0:
            catalog.upkeep()
