"""The library: scan → analyse → store, incremental and resumable. Queries go through the
`Searcher` it hands out (query.py).

A library is a directory holding `catalog.sqlite` (the truth), `models/` (models fitted to this
library) and `scratch/` (separate libraries for music that must not join it, such as the
labelled sets `evaluate` scores). Indexing runs in stages:

  scan     walk the folders; list audio files by extension, and entries that only look like
           audio (a directory named `x.flac`) as failures
  plan     compare with the catalog: skip files whose size and mtime are unchanged and whose
           embedding came from the current model (their tags are read again, only them, when
           an older tag reader filled them; a folder image or .lrc added beside them is noted);
           drop catalog rows of files that are gone. A changed file whose audio packets are
           the same (a tag editor rewrote it) gets its tags read, not its audio analysed
  fit      (optional) adapt the current model to these files, without labels
  analyse  hash, tag, decode and embed in worker processes (a local process pool, or Ray
           workers across a cluster: distributed.py); every result is committed as it
           arrives, so Ctrl-C or kill -9 loses at most the files in flight, and the next run
           resumes from there with no duplicates
  upkeep   between writes and at the end: fit segment projections, compact the segment sidecar

With worker processes (workers >= 1, or Ray) the indexing process never imports torch
(~250 MB); the workers do the embedding. This process stays the catalog's one writer.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterable
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import platformdirs

from .analysis import Analysis, Task, analyse
from .audio import SILENT, TOO_SHORT
from .catalog import Catalog, Track
from .errors import InputError, LibraryBusy, QueryError
from .gpu import embed_in_batches, embedding_device
from . import method as methods
from .query import Searcher
from .scan import is_under, scan, shown, storable
from .tags import TAGS_VERSION, beside
from .workers import run_parallel

if TYPE_CHECKING:
    from .distributed import RayConfig
    from .fit_check import FitCheck

LIBRARY_ENV = "SONGSPACE_LIBRARY"
SET_ASIDE = (SILENT, TOO_SHORT)  # statuses of decoded audio that is no music to compare

# report(phase, done, total, note): how long work tells the caller where it is.
Report = Callable[[str, float, float, str], None]


def default_library_dir() -> Path:
    """$SONGSPACE_LIBRARY, else the per-user data directory (e.g. ~/.local/share/songspace)."""
    return Path(os.environ.get(LIBRARY_ENV) or platformdirs.user_data_dir("songspace"))


# Stored tracks between two segment upkeeps (Catalog.upkeep): a first index stores at most this
# many tracks' segments in full before their model's projection is fitted, then all compact.
UPKEEP_EVERY = 256

FIT_ANCHOR_WEIGHT = 0.1  # L2-SP weight of `fit`, chosen on ost-dev (docs/results.md)


@dataclass
class FitResult(os.PathLike):
    """What `fit` did: `model` is the model the library now embeds with (the fitted one, or the
    starting one kept because the check found the fit no better); as os.PathLike it is that path."""

    model: Path
    fitted: Path  # the fitted model's file, kept in models/ either way (`use` can still take it)
    used: bool  # the fitted model replaced the starting one
    check: "FitCheck"
    steps: int

    def __fspath__(self) -> str:
        return str(self.model)

    def __str__(self) -> str:
        return str(self.model)


@dataclass
class IndexReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    retagged: int = 0  # of the unchanged: tracks whose tags were read again, their audio not analysed
    audio_seconds: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)
    # (path, reason) of audio recorded as silent or too short: not failures, not searchable either
    set_aside: list[tuple[str, str]] = field(default_factory=list)
    kept_empty: list[tuple[str, int]] = field(default_factory=list)  # (folder, tracks kept): see `index`
    # (folder, reason, tracks kept) of folders that could not be read: their tracks stay
    unreadable: list[tuple[str, str, int]] = field(default_factory=list)
    fit: "FitResult | None" = None
    interrupted: bool = False

    @property
    def fitted_model(self) -> str | None:
        """With fit=True: the model embedded with (fitted, or kept)."""
        return None if self.fit is None else str(self.fit.model)


# ---------------------------------------------------------------------------------------------
# The library
# ---------------------------------------------------------------------------------------------


class Library:
    def __init__(self, root: str | Path, readonly: bool = False):
        """`readonly`: an existing library opened to ask questions (query commands): nothing is
        created, migrated or written in the catalog; QueryError when nothing was indexed here."""
        self.root = Path(root).expanduser().resolve()
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"{self.root}: is a file, not a library folder")
        if readonly:
            if not (self.root / "catalog.sqlite").is_file():
                raise QueryError(f"{self.root / 'catalog.sqlite'}: no catalog here (nothing indexed yet)")
            self.catalog = Catalog(self.root / "catalog.sqlite", readonly=True)
        else:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise InputError(f"{self.root}: cannot make the library folder ({e.strerror or e})") from None
            self.catalog = Catalog(self.root / "catalog.sqlite")
        self._searcher: Searcher | None = None
        self._writing = 0  # depth of `writer()`: fit re-enters it through index

    @contextmanager
    def writer(self):
        """Hold the library's writer lock (`writer.lock`, fcntl.flock) while indexing or fitting:
        one writer per library, whatever the process. The kernel releases it when the process
        dies, so a killed run never leaves the library locked."""
        if self._writing:
            self._writing += 1
            try:
                yield
            finally:
                self._writing -= 1
            return
        if self.catalog.readonly:  # a read-only mount or a full disk: say so before anything is scanned
            raise self.catalog.write_refusal()
        f = open(self.root / "writer.lock", "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip()
            f.close()
            raise LibraryBusy(f"library {self.root} is being indexed or fitted by another process"
                              f"{f' (pid {holder})' if holder else ''}; wait for it to finish") from None
        try:
            try:
                os.truncate(f.fileno(), 0)
                os.write(f.fileno(), str(os.getpid()).encode())  # unbuffered: a full disk fails here, not in close
            except OSError:
                pass  # the pid only tells whoever waits; a full disk is met (and reported) by the run
            self._writing = 1
            yield
        finally:
            self._writing = 0
            try:
                os.truncate(f.fileno(), 0)
            finally:
                f.close()  # closing releases the lock

    @classmethod
    def open(cls, root: str | Path | None = None, readonly: bool = False) -> "Library":
        return cls(root if root is not None else default_library_dir(), readonly=readonly)

    def close(self) -> None:
        if self._searcher is not None:
            self._searcher.close()
        self.catalog.close()

    def searcher(self) -> Searcher:
        """The query layer over this library (one, shared; safe to use from many threads)."""
        if self._searcher is None:
            self._searcher = Searcher(self.catalog.path)
        return self._searcher

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the current model ----------------------------------------------------------------------

    @property
    def method(self) -> methods.Method:
        """The embedding method in use (method.py)."""
        return methods.current(self.catalog)

    @property
    def model(self) -> str:
        """The embedding method in use, by its canonical name: a model file, or "mfcc"."""
        return self.method.name

    @property
    def model_id(self) -> str:
        return self.method.id

    def use_model(self, model: str | Path | None) -> None:
        """Embed with this from now on: a model file, "mfcc", or None / "default" for the shipped
        model. Tracks embedded by another model leave search until the next `index` re-embeds
        them: never mixed."""
        method = methods.resolve(model)
        if method.file is not None:
            from .models.checkpoint import load_model  # torch, once: refuse a file that cannot embed

            method = methods.resolve(load_model(method.file).path)
        methods.use(self.catalog, method)

    def scratch(self, name: str) -> "Library":
        """A separate library inside this one (`scratch/NAME`) embedding with the same model:
        for work on music that must not join the user's library, such as a labelled test set."""
        scratch = Library(self.root / "scratch" / name)
        methods.use(scratch.catalog, self.method)
        return scratch

    # -- indexing --------------------------------------------------------------------------------

    def index(self, folders: Iterable[str | Path], *, fit: bool = False, fit_minutes: float = 10.0,
              workers: int | None = None, report: Report | None = None, ray: RayConfig | None = None,
              device: str = "auto", allow_empty: bool = False) -> IndexReport:
        """Bring the catalog up to date with `folders`. Re-running only does what changed.
        A folder that now holds no audio keeps its tracks (`kept_empty`) unless `allow_empty`.
        `ray`: analyse on a Ray cluster instead of local worker processes (distributed.py); this
        process still plans, and stores every result as it arrives. Raises LibraryBusy while
        another process writes to this library, MissingDependency when `ray` is asked for and
        Ray is not installed. `device`: "auto" embeds on a CUDA GPU when there is one (workers
        decode, this process embeds several files per batch: gpu.py), "cpu" in the workers,
        "cuda[:N]" on that GPU or raises InputError."""
        if ray is not None:
            from .distributed import require_ray

            require_ray()  # before anything is scanned or written
        gpu = None
        if ray is None and self.method.file is not None:
            gpu = embedding_device(device)
        elif device not in ("auto", "cpu"):
            raise InputError(f"device {device}: a GPU is used only without Ray and with a model (not mfcc)",
                             param="device")
        with self.writer():
            return self._index(folders, fit=fit, fit_minutes=fit_minutes, workers=workers, report=report, ray=ray,
                               gpu=gpu, allow_empty=allow_empty)

    def _index(self, folders, *, fit, fit_minutes, workers, report, ray=None, gpu=None,
               allow_empty=False) -> IndexReport:
        report = report or (lambda *a: None)
        result = IndexReport()
        folders = list(folders)
        unreadable: list[tuple[str, str]] = []
        files, bad = scan(folders, unreadable)  # before resolving: a broken link given is named as such
        roots = [str(Path(f).expanduser().resolve()) for f in folders]
        self.catalog.add_folders(roots)
        methods.remember(self.catalog, self.method)
        report("scan", len(files), len(files), f"{len(files)} audio files")

        known = {t.path: t for t in self.catalog.tracks() if is_under(t.path, roots)}
        present = set(files) | {path for path, _ in bad}
        # A folder that had tracks and now holds no audio at all is more likely an unmounted
        # drive than deleted music: keep its tracks unless told otherwise.
        if not allow_empty:
            for root in roots:
                if any(is_under(p, [root]) for p in present):  # stops at the first file found
                    continue
                had = [p for p in known if is_under(p, [root])]
                if had:
                    result.kept_empty.append((root, len(had)))
                    present.update(had)
        # A folder that cannot be read (permissions, a failing disk) says nothing about its
        # tracks: keep them, with their playlist entries and stars, and say so.
        for folder, reason in unreadable:
            had = [p for p in known if is_under(p, [folder])]
            present.update(had)
            result.unreadable.append((folder, reason, len(had)))
        gone = [t.id for p, t in known.items() if p not in present]
        if gone:
            self.catalog.remove(gone)
            result.removed = len(gone)

        for path, reason in bad:
            if not storable(path):  # a name SQLite cannot hold: reported on every run instead
                result.failed.append((shown(path), reason))
                continue
            if path not in known or known[path].error != reason:
                self.catalog.put_failed(path, reason)
            result.failed.append((path, reason))

        if fit:
            result.fit = self.fit(files, minutes=fit_minutes, workers=workers, report=report, reembed=False)

        tasks = self._plan(files, known, result)
        total_bytes = sum(t.size for t in tasks) or 1
        done_bytes = 0
        if tasks:
            report("analyse", 0, total_bytes, "")
        if gpu is not None:
            decode = [replace(t, decode_only=True) for t in tasks]
            results = embed_in_batches(run_parallel(analyse, decode, workers), self.model, gpu)
        elif ray is None:
            results = run_parallel(analyse, tasks, workers)
        else:
            from .distributed import analyse_on_ray

            results = analyse_on_ray(tasks, ray, workers=workers)
        try:
            with closing(results):  # an interrupted run stops its workers now, not at garbage collection
                for r in results:
                    self._store(r, known, result)
                    done_bytes += r.size or 0
                    report("analyse", done_bytes, total_bytes, Path(r.path).name)
        except KeyboardInterrupt:
            result.interrupted = True
        self.catalog.upkeep()  # segment projections due and compaction: after the writes, never inside one
        return result

    def _plan(self, files: list[str], known: dict[str, Track], result: IndexReport) -> list[Task]:
        """Tasks for the files that need analysing (with the size and mtime seen here); counts
        the rest as unchanged."""
        model, model_id = self.model, self.model_id
        tasks = []
        listings: dict[str, list[str]] = {}
        for path in files:
            try:
                st = os.stat(path)
            except OSError:
                st = None  # gone already: let the worker record why
            t = known.get(path)
            same_file = t is not None and st is not None and t.size == st.st_size and t.mtime == st.st_mtime
            if same_file and t.status == "failed":
                result.failed.append((path, t.error))  # retried once the file changes
                continue
            if same_file and t.status in SET_ASIDE:
                result.set_aside.append((path, t.error))  # judged again once the file changes
                continue
            if same_file and t.model_id == model_id:
                if t.tags_version < TAGS_VERSION:  # tags read by an older songspace: read them again, only them
                    tasks.append(Task(path, model, t.content_hash, st.st_size, st.st_mtime, tags_only=True))
                    continue
                self._check_beside(t, listings)
                result.unchanged += 1
                continue
            embedded = t is not None and t.status == "ok" and t.model_id == model_id
            tasks.append(Task(path, model, t.content_hash if embedded else None, st.st_size if st else 0,
                              st.st_mtime if st else None, known_audio_hash=t.audio_hash if embedded else None))
        return tasks

    def _check_beside(self, t: Track, listings: dict[str, list[str]]) -> None:
        """A cover or .lrc file added or removed beside an unchanged track: one listing per folder."""
        folder = os.path.dirname(t.path)
        if folder not in listings:
            try:
                listings[folder] = os.listdir(folder)
            except OSError:
                listings[folder] = []
        found = beside(t.path, listings[folder])
        if (found["folder_image"], found["lyrics_file"]) != (t.folder_image, t.lyrics_file):
            self.catalog.put_tags(t.id, found)

    def _store(self, r: Analysis, known: dict[str, Track], result: IndexReport) -> None:
        if r.status == "unchanged":
            self.catalog.touch(known[r.path].id, r.size, r.mtime)
            result.unchanged += 1
        elif r.status == "retagged":  # the same audio: new tags, the embedding kept
            self.catalog.put_tags(known[r.path].id, {**r.tags, **beside(r.path)}, size=r.size, mtime=r.mtime,
                                  content_hash=r.content_hash, audio_hash=r.audio_hash)
            result.unchanged += 1
            result.retagged += 1
        elif r.status == "failed":
            self.catalog.put_failed(r.path, r.error, size=r.size, mtime=r.mtime)
            result.failed.append((r.path, r.error))
        elif r.status == "skipped":  # not the file's fault: not recorded, so the next run tries again
            result.failed.append((r.path, r.error))
        elif r.status in SET_ASIDE:
            self.catalog.put_failed(r.path, r.error, size=r.size, mtime=r.mtime, status=r.status)
            result.set_aside.append((r.path, r.error))
        elif not np.isfinite(r.vector).all():  # the last guard: NaN in the index breaks every query
            reason = "the model gave a vector that is not a number (NaN): not stored"
            self.catalog.put_failed(r.path, reason, size=r.size, mtime=r.mtime)
            result.failed.append((r.path, reason))
        else:
            self.catalog.put_ok(r.path, size=r.size, mtime=r.mtime, content_hash=r.content_hash, duration=r.duration,
                                tags={**r.tags, **beside(r.path)}, model_id=r.model_id, vector=r.vector,
                                segments=r.segments, segment_starts=r.segment_starts, audio_hash=r.audio_hash)
            if r.path in known:
                result.updated += 1
            else:
                result.added += 1
            result.audio_seconds += r.duration
            if (result.added + result.updated) % UPKEEP_EVERY == 0:
                self.catalog.upkeep()

    # -- fitting ----------------------------------------------------------------------------------

    def fit(self, files: list[str] | None = None, *, minutes: float = 10.0, objective: str = "contrastive",
            lr: float = 3e-4, cosine: bool = True, anchor_weight: float = FIT_ANCHOR_WEIGHT, seed: int = 0,
            keep_anyway: bool = False, workers: int | None = None, report: Report | None = None,
            reembed: bool = True) -> FitResult:
        """Adapt the current model to this library's music (no labels); if the fit is better on
        tracks it never saw (or `keep_anyway`), make it current and re-embed the library's folders
        with it (`reembed=False` leaves that to the next `index`; search answers from the old
        vectors until then). Otherwise the current model stays. The FitResult says which, and is
        the path of the model in use.

        A smaller learning rate than from scratch (3e-4 vs 1e-3), annealed to 0, continuing
        with the model's own projection head, and pulled toward its starting weights
        (`anchor_weight`, L2-SP): a small library's tracks are soon told apart, and past that
        point the fit overwrites what the starting model learnt (docs/results.md). A seeded fifth
        of the tracks is held out of the fit to check it on (fit_check.py)."""
        with self.writer():
            return self._fit(files, minutes=minutes, objective=objective, lr=lr, cosine=cosine,
                             anchor_weight=anchor_weight, seed=seed, keep_anyway=keep_anyway, workers=workers,
                             report=report, reembed=reembed)

    def _fit(self, files, *, minutes, objective, lr, cosine, anchor_weight, seed, keep_anyway, workers, report,
             reembed) -> FitResult:
        from .fit_check import check_fit, split_holdout  # torch only when fitting
        from .models.checkpoint import load_model
        from .training import TrainConfig, train

        report = report or (lambda *a: None)
        if files is None:
            files = [t.path for t in self.catalog.ok_tracks()]
        cfg = TrainConfig(objective=objective, minutes=minutes, lr=lr, cosine_decay=cosine, seed=seed,
                          anchor_weight=anchor_weight)
        # The held-out tracks stay out of the fit for good: the model checked is the model used.
        # Fitting again on every track would double the time and give a model nobody checked.
        fit_on, held_out = split_holdout(files, seed)
        out = self.root / "models" / f"fit-{time.strftime('%Y%m%d-%H%M%S')}.safetensors"
        start = load_model(self.method.fit_start)
        fitted, _ = train(fit_on, out, cfg, init=start, workers=workers, report=report)
        check = check_fit(start, fitted, held_out, cfg, workers, lambda d, n: report("fit-check", d, n, ""))
        used = check.improved or keep_anyway
        chosen = fitted if used else start  # the start is the shipped model when the library used MFCC
        if Path(self.model) != chosen.path:
            self.use_model(chosen.path)
            if reembed:
                self.index(self.catalog.folders(), workers=workers, report=report)
        return FitResult(chosen.path, fitted.path, used, check, fitted.info["training"]["steps"])

    # -- status and export --------------------------------------------------------------------------

    def status(self) -> dict:
        """Counts, models, folders and failures. Reads through the Searcher's connection of the
        calling thread, so any thread may ask (a server's do)."""
        searcher = self.searcher()
        catalog = searcher.catalog
        counts = catalog.counts()
        method = methods.current(catalog)
        return {
            "library": str(self.root),
            "model": {"id": method.id, "path": method.name},
            "searched_model": searcher.model_id,
            "folders": catalog.folders(),
            "tracks": sum(counts.values()),
            "ok": counts["ok"],
            "failed": counts["failed"],
            SILENT: counts.get(SILENT, 0),
            TOO_SHORT: counts.get(TOO_SHORT, 0),
            "searchable": len(searcher),
            "embeddings_by_model": catalog.models(),
            "failures": [(t.path, t.error) for t in catalog.failed_tracks()],
            # silent and too short audio: kept out of search and the map, each with its reason
            "set_aside": [(t.path, t.status, t.error) for t in catalog.set_aside_tracks()],
        }

    def export_dataset(self, out: str | Path, rows_per_file: int | None = None):
        """Write the searchable tracks as a sharded Parquet dataset into `out`, a new or empty
        folder (or a bucket URI): what Ray Data, DuckDB and Spark read directly (dataset.py).
        Streamed from the catalog, so memory stays flat at any size. Returns a DatasetSummary."""
        from .dataset import DEFAULT_ROWS_PER_FILE, export_dataset

        searcher = self.searcher()
        return export_dataset(searcher.catalog, searcher.searched_model_id(), out, rows_per_file or DEFAULT_ROWS_PER_FILE)

    def export(self, out: str | Path) -> Path:
        """Write the searchable tracks: .npz (ids, paths, vectors) or .parquet (plus tags)."""
        out = Path(out).expanduser()
        if not out.parent.is_dir():
            raise InputError(f"{out.parent}: no such folder to export to")
        searcher = self.searcher()
        ids, vecs = searcher.all_vectors()
        tracks = searcher.tracks(ids)
        paths = [t.path for t in tracks]
        if out.suffix == ".npz":
            np.savez(out, ids=ids, paths=np.array(paths, dtype=str), vectors=vecs.astype(np.float32))
        elif out.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            dim = vecs.shape[1] if len(vecs) else 0
            columns = {
                "id": pa.array(ids, pa.int64()),
                "paths": pa.array(paths, pa.string()),
                "vectors": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1), pa.float32()), dim),
                **{tag: pa.array([getattr(t, tag) for t in tracks], pa.string()) for tag in ("title", "artist", "album", "genre")},
                "duration": pa.array([t.duration for t in tracks], pa.float64()),
            }
            pq.write_table(pa.table(columns), out)
        else:
            raise InputError(f"{out}: export to .npz or .parquet")
        return out
