"""The library: a folder of music's catalog, and what is done to it: index, fit, status,
export. Queries go through the `Searcher` it hands out (query.py).

A library is a directory holding `catalog.sqlite` (the truth), `models/` (models fitted to this
library) and `scratch/` (separate libraries for music that must not join it, such as the
labelled sets `evaluate` scores). Indexing is a pipeline of named stages (indexing/pipeline.py:
scan → prune → (fit) → plan → analyse → store) whose analyse stage runs on an executor
(indexing/executors.py: local worker processes, a GPU, or Ray). `fit` adapts the model and
makes it current; re-embedding is the next `index`'s.

With worker processes (workers >= 1, or Ray) the indexing process never imports torch
(~250 MB); the workers do the embedding. This process stays the catalog's one writer, and one
process at a time holds a library's writer lock (`writer`).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import platformdirs

from . import method as methods
from .catalog import Catalog
from .errors import InputError, LibraryBusy, QueryError
from .indexing import FitResult, IndexReport, choose_executor, run
from .progress import Phase, Report, silent
from .query import Searcher
from .status import TrackStatus

if TYPE_CHECKING:
    from .distributed import RayConfig
    from .remote import SubsonicClient

__all__ = ["FIT_ANCHOR_WEIGHT", "FitResult", "IndexReport", "LIBRARY_ENV", "Library", "Report", "default_library_dir"]

LIBRARY_ENV = "SONGSPACE_LIBRARY"


def default_library_dir() -> Path:
    """$SONGSPACE_LIBRARY, else the per-user data directory (e.g. ~/.local/share/songspace)."""
    return Path(os.environ.get(LIBRARY_ENV) or platformdirs.user_data_dir("songspace"))


FIT_ANCHOR_WEIGHT = 0.1  # L2-SP weight of `fit`, chosen on ost-dev (docs/results.md)


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

    @contextmanager
    def writer(self) -> Iterator[None]:
        """Hold the library's writer lock (`writer.lock`, fcntl.flock) while indexing or fitting:
        one writer per library, whatever the process (LibraryBusy otherwise, naming the holder's
        pid). The kernel releases it when the process dies, so a killed run never leaves the
        library locked. Not re-entrant: `index` and `fit` each take it once, and neither calls
        the other through it."""
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
            yield
        finally:
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

    def searched_scores(self, paths) -> dict[str, dict[str, float]] | None:
        """How search ranks these tracks among the library's (rerank.among): for `evaluate`."""
        from . import rerank

        return rerank.among(self.searcher(), paths)

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
        `fit`: first adapt the model to these files (`fit`, `fit_minutes` long), then embed
        with the model it leaves current.
        `ray`: analyse on a Ray cluster instead of local worker processes (distributed.py); this
        process still plans, and stores every result as it arrives. Raises LibraryBusy while
        another process writes to this library, MissingDependency when `ray` is asked for and
        Ray is not installed. `device`: "auto" embeds on a CUDA GPU when there is one (workers
        decode, this process embeds several files per batch: gpu.py), "cpu" in the workers,
        "cuda[:N]" on that GPU or raises InputError."""
        executor = choose_executor(self.method, workers=workers, ray=ray, device=device)  # before any writing
        fit_stage = None
        if fit:
            def fit_stage(files: list[str]) -> FitResult:
                return self._fit(files, minutes=fit_minutes, workers=workers, report=report or silent)
        with self.writer():
            return self._tagged(run(self.catalog, folders, executor, allow_empty=allow_empty, report=report,
                                    fit=fit_stage))

    def index_remote(self, client: "SubsonicClient", *, allow_empty: bool = False,
                     report: Report | None = None) -> IndexReport:
        """Bring the catalog up to date with the songs of another Subsonic server (companion mode:
        indexing/remote.py), signing `client` in first (RemoteError: nothing is written). Its
        songs are downloaded one at a time and analysed in this process; re-running downloads
        only new or changed songs."""
        from .indexing.remote import run_remote

        client.sign_in()
        with self.writer():
            return self._tagged(run_remote(self.catalog, client, allow_empty=allow_empty, report=report))

    def _tagged(self, result: IndexReport) -> IndexReport:
        """Tags out of the box after an index run (inside its writer lock): the current model's
        tags head predicts genre and mood for the tracks that changed (autotags.py); and the
        timbre companion's moments of those tracks are measured (proximity.py)."""
        from . import autotags, proximity

        if not result.interrupted:
            result.tags_note = autotags.refresh(self.catalog).note
            result.timbre_note = proximity.refresh(self.catalog).note
        return result

    def update(self, folders: Iterable[str | Path] | None = None, *, workers: int | None = None,
               report: Report | None = None) -> IndexReport:
        """Index again what the library was indexed from (the page's "Update library"): its folders
        (or `folders`), then each Subsonic server of companion mode, signed in with the secret in
        the environment (remote.client_from_env). A server without one, or that cannot be
        reached or refuses the secret, is reported in `unreadable` with the reason: its tracks
        stay. One report for all of it."""
        from .remote import PASSWORD_ENV, RemoteError, RemoteServer, client_from_env

        folders = list(self.catalog.folders() if folders is None else folders)
        result = self.index(folders, workers=workers, report=report) if folders else IndexReport()
        for address in self.catalog.remote_servers():
            if result.interrupted:
                break
            server = RemoteServer.parse(address)
            held = sum(1 for t in self.catalog.tracks() if server.holds(t.path))
            client = client_from_env(server)
            if client is None:
                result.unreadable.append((address, f"no password to sign in with (set ${PASSWORD_ENV} where "
                                                   "songspace runs, or index the server from the command line)", held))
                continue
            try:
                part = self.index_remote(client, report=report)
            except RemoteError as e:
                result.unreadable.append((address, str(e).removeprefix(f"{server}: "), held))
                continue
            for name in ("added", "updated", "unchanged", "removed", "retagged", "timbre_added", "audio_seconds"):
                setattr(result, name, getattr(result, name) + getattr(part, name))
            for name in ("failed", "set_aside", "kept_empty", "unreadable"):
                getattr(result, name).extend(getattr(part, name))
            result.interrupted = part.interrupted
            result.tags_note = part.tags_note or result.tags_note
            result.timbre_note = part.timbre_note or result.timbre_note
        return result

    # -- fitting ----------------------------------------------------------------------------------

    def fit(self, files: list[str] | None = None, *, minutes: float = 10.0, objective: str = "contrastive",
            lr: float = 3e-4, cosine: bool = True, anchor_weight: float = FIT_ANCHOR_WEIGHT, seed: int = 0,
            keep_anyway: bool = False, workers: int | None = None, report: Report | None = None) -> FitResult:
        """Adapt the current model to this library's music (`files`, by default its searchable
        tracks; no labels) and make the result current if it is better on tracks it never saw
        (or `keep_anyway`); otherwise the current model stays. The FitResult says which, and is
        the path of the model in use. Re-embedding is the caller's: when `FitResult.changed`,
        `index(lib.catalog.folders())` re-embeds the library; search answers from the old
        vectors until then.

        A smaller learning rate than from scratch (3e-4 vs 1e-3), annealed to 0, continuing
        with the model's own projection head, and pulled toward its starting weights
        (`anchor_weight`, L2-SP): a small library's tracks are soon told apart, and past that
        point the fit overwrites what the starting model learnt (docs/results.md). A seeded fifth
        of the tracks is held out of the fit to check it on (fit_check.py)."""
        if files is None:  # songs of another server (companion mode) have no file here to read again and again
            files = [t.path for t in self.catalog.ok_tracks() if t.remote_id is None]
            if not files and (servers := self.catalog.remote_servers()):
                raise InputError(f"this library's tracks are songs of {', '.join(servers)} (companion mode): fitting "
                                 "reads each file many times, and their files are not here. Index a folder "
                                 "holding the music (a copy or a mount of the server's) to fit on it")
        with self.writer():
            return self._fit(files, minutes=minutes, objective=objective, lr=lr, cosine=cosine,
                             anchor_weight=anchor_weight, seed=seed, keep_anyway=keep_anyway, workers=workers,
                             report=report or silent)

    def _fit(self, files: list[str] | None, *, minutes: float, workers: int | None, report: Report,
             objective: str = "contrastive", lr: float = 3e-4, cosine: bool = True,
             anchor_weight: float = FIT_ANCHOR_WEIGHT, seed: int = 0, keep_anyway: bool = False) -> FitResult:
        """`fit`'s work, for a caller holding the writer lock (`fit` itself, or `index`'s fit stage)."""
        from .fit_check import check_fit, split_holdout  # torch only when fitting
        from .models.checkpoint import load_model
        from .training import TrainConfig, train

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
        check = check_fit(start, fitted, held_out, cfg, workers, lambda d, n: report(Phase.FIT_CHECK, d, n, ""))
        used = check.improved or keep_anyway
        chosen = fitted if used else start  # the start is the shipped model when the library used MFCC
        changed = Path(self.model) != chosen.path
        if changed:
            self.use_model(chosen.path)
        return FitResult(chosen.path, fitted.path, used, check, fitted.info["training"]["steps"], changed)

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
            "servers": catalog.remote_servers(),  # companion mode: subsonic://USER@HOST:PORT, no password
            "tracks": sum(counts.values()),
            TrackStatus.OK: counts[TrackStatus.OK],
            TrackStatus.FAILED: counts[TrackStatus.FAILED],
            TrackStatus.SILENT: counts.get(TrackStatus.SILENT, 0),
            TrackStatus.TOO_SHORT: counts.get(TrackStatus.TOO_SHORT, 0),
            "searchable": len(searcher),
            "embeddings_by_model": catalog.models(),
            "failures": [(t.path, t.error) for t in catalog.failed_tracks()],
            # silent and too short audio: kept out of search and the map, each with its reason
            "set_aside": [(t.path, t.status, t.error) for t in catalog.set_aside_tracks()],
            "ranking": self._ranking(searcher),
        }

    @staticmethod
    def _ranking(searcher: Searcher) -> dict:
        """What search ranks by (rerank.py): "fused" (the CNN's cosine with the timbre companion)
        or "cosine", and how many searchable tracks have no timbre model yet."""
        from . import proximity
        from .rerank import fused

        space = searcher.space()
        if not proximity.applies(space.method):
            return {"by": "cosine", "lacking_timbre": 0, "note": "MFCC statistics have no timbre companion"}
        lacking = searcher.catalog.lacking_timbre(space.model_id)
        by = "fused" if fused(searcher) else "cosine"
        note = (f"{lacking} tracks have no timbre model yet: search ranks by cosine until `songspace index` "
                "gives them one" if lacking else
                "the CNN fused with timbre" if by == "fused" else "cosine until `songspace index` measures the library")
        return {"by": by, "lacking_timbre": lacking, "note": note}

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
