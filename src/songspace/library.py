"""The library: scan → analyse → store, incremental and resumable; and queries over it.

A library is a directory holding `catalog.sqlite` (the truth), `vectors.faiss` (derived) and
`models/` (models fitted to this library). Indexing runs in stages:

  scan     walk the folders; list audio files by extension, and entries that only look like
           audio (a directory named `x.flac`) as failures
  plan     compare with the catalog: skip files whose size and mtime are unchanged and whose
           embedding came from the current model; drop catalog rows of files that are gone
  fit      (optional) adapt the current model to these files, without labels
  analyse  hash, tag, decode and embed in worker processes; every result is committed as it
           arrives, so Ctrl-C or kill -9 loses at most the files in flight, and the next run
           resumes from there with no duplicates

The indexing process never imports torch (~250 MB); the workers do the embedding.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import platformdirs

from .analysis import Task, analyse, embedder
from .audio import AUDIO_EXTENSIONS
from .baselines import MFCC_METHOD, standardise
from .catalog import Catalog, Track
from .models.files import DEFAULT_MODEL, read_config, resolve_model_path
from .vectors import VectorIndex
from .workers import run_parallel

LIBRARY_ENV = "SONGSPACE_LIBRARY"
MFCC = "mfcc"

# report(phase, done, total, note): how long work tells the caller where it is.
Report = Callable[[str, float, float, str], None]


def default_library_dir() -> Path:
    """$SONGSPACE_LIBRARY, else the per-user data directory (e.g. ~/.local/share/songspace)."""
    return Path(os.environ.get(LIBRARY_ENV) or platformdirs.user_data_dir("songspace"))


class QueryError(LookupError):
    """A query that names no track, or too many."""


@dataclass
class IndexReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    audio_seconds: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)
    fitted_model: str | None = None
    interrupted: bool = False


@dataclass(frozen=True)
class Match:
    track: Track
    score: float  # cosine similarity, 1.0 = same direction


# ---------------------------------------------------------------------------------------------
# Scan
# ---------------------------------------------------------------------------------------------


def is_audio_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS and not name.startswith("._")


def scan(folders: Iterable[str | Path]) -> tuple[list[str], list[tuple[str, str]]]:
    """(audio file paths, [(path, reason)] for entries that look like audio but are not files)."""
    files, bad = [], []
    for folder in folders:
        folder = Path(folder).resolve()
        if folder.is_file():
            files.append(str(folder))
            continue
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder")
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for d in dirnames:
                if is_audio_name(d):
                    bad.append((os.path.join(dirpath, d), "is a directory, not an audio file"))
            files.extend(os.path.join(dirpath, f) for f in sorted(filenames) if is_audio_name(f))
    return sorted(set(files)), bad


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


# ---------------------------------------------------------------------------------------------
# The library
# ---------------------------------------------------------------------------------------------


class Library:
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(self.root / "catalog.sqlite")

    @classmethod
    def open(cls, root: str | Path | None = None) -> "Library":
        return cls(root if root is not None else default_library_dir())

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the current model ----------------------------------------------------------------------

    @property
    def model(self) -> str:
        """The embedding method in use: a model file, or "mfcc" for the hand-crafted baseline."""
        stored = self.catalog.get_meta("model")
        return stored if stored == MFCC else str(resolve_model_path(stored or DEFAULT_MODEL))

    @property
    def model_id(self) -> str:
        return MFCC_METHOD if self.model == MFCC else read_config(self.model)["model_id"]

    def use_model(self, model: str | Path | None) -> None:
        """Embed with this from now on: a model file, "mfcc", or None / "default" for the shipped
        model. Tracks embedded by another model leave search until the next `index` re-embeds
        them: never mixed."""
        if model is None or str(model) == "default":
            model = DEFAULT_MODEL
        if str(model) != MFCC:
            from .models.checkpoint import load_model  # torch, once: refuse a file that cannot embed

            model = load_model(model).path
        self.catalog.set_meta("model", str(model))

    # -- indexing --------------------------------------------------------------------------------

    def index(self, folders: Iterable[str | Path], *, fit: bool = False, fit_minutes: float = 10.0,
              workers: int | None = None, report: Report | None = None) -> IndexReport:
        """Bring the catalog up to date with `folders`. Re-running only does what changed."""
        report = report or (lambda *a: None)
        result = IndexReport()
        roots = [str(Path(f).resolve()) for f in folders]
        files, bad = scan(roots)
        report("scan", len(files), len(files), f"{len(files)} audio files")

        known = {t.path: t for t in self.catalog.tracks() if _under(t.path, roots)}
        present = set(files) | {path for path, _ in bad}
        gone = [t.id for p, t in known.items() if p not in present]
        if gone:
            self.catalog.remove(gone)
            result.removed = len(gone)

        for path, reason in bad:
            if path not in known or known[path].error != reason:
                self.catalog.put_failed(path, reason)
            result.failed.append((path, reason))

        if fit:
            result.fitted_model = str(self.fit(files, minutes=fit_minutes, workers=workers, report=report))

        tasks = self._plan(files, known, result)
        model = self.model
        total_bytes = sum(t[1] for t in tasks) or 1
        done_bytes = 0
        if tasks:
            report("analyse", 0, total_bytes, "")
        try:
            for r in run_parallel(analyse, [Task(p, model, h) for p, _, h in tasks], workers):
                self._store(r, known, result)
                done_bytes += r["size"] or 0
                report("analyse", done_bytes, total_bytes, Path(r["path"]).name)
        except KeyboardInterrupt:
            result.interrupted = True
        return result

    def _plan(self, files: list[str], known: dict[str, Track], result: IndexReport) -> list[tuple[str, int, str | None]]:
        """[(path, size, known hash)] of files that need analysing; counts the rest as unchanged."""
        model_id = self.model_id
        tasks = []
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
            if same_file and t.model_id == model_id:
                result.unchanged += 1
                continue
            known_hash = t.content_hash if t is not None and t.status == "ok" and t.model_id == model_id else None
            tasks.append((path, st.st_size if st else 0, known_hash))
        return tasks

    def _store(self, r: dict, known: dict[str, Track], result: IndexReport) -> None:
        path, status = r["path"], r["status"]
        if status == "unchanged":
            self.catalog.touch(known[path].id, r["size"], r["mtime"])
            result.unchanged += 1
        elif status == "failed":
            self.catalog.put_failed(path, r["error"], size=r["size"], mtime=r["mtime"])
            result.failed.append((path, r["error"]))
        else:
            self.catalog.put_ok(path, size=r["size"], mtime=r["mtime"], content_hash=r["content_hash"],
                                duration=r["duration"], tags=r["tags"], model_id=r["model_id"], vector=r["vector"],
                                segments=r["segments"], segment_starts=r["segment_starts"])
            if path in known:
                result.updated += 1
            else:
                result.added += 1
            result.audio_seconds += r["duration"]

    # -- fitting ----------------------------------------------------------------------------------

    def fit(self, files: list[str] | None = None, *, minutes: float = 10.0, objective: str = "contrastive",
            lr: float = 3e-4, cosine: bool = True, seed: int = 0, workers: int | None = None,
            report: Report | None = None) -> Path:
        """Adapt the current model to this library's music (no labels) and make it current.

        A smaller learning rate than from scratch (3e-4 vs 1e-3), annealed to 0, continuing
        with the model's own projection head: a small library's tracks are soon told apart,
        and past that point a large rate overwrites what the shipped model learnt
        (docs/results.md)."""
        from .training import TrainConfig, train  # torch only when fitting

        if files is None:
            files = [t.path for t in self.catalog.tracks("t.status = 'ok'")]
        cfg = TrainConfig(objective=objective, minutes=minutes, lr=lr, cosine_decay=cosine, seed=seed)
        out = self.root / "models" / f"fit-{time.strftime('%Y%m%d-%H%M%S')}.safetensors"
        init = DEFAULT_MODEL if self.model == MFCC else self.model
        model, _ = train(files, out, cfg, init=init, workers=workers, report=report)
        self.use_model(model.path)
        return model.path

    # -- search -----------------------------------------------------------------------------------

    def vector_index(self) -> VectorIndex:
        """The FAISS index of the searchable tracks, rebuilt from the catalog when stale."""
        stamp = {"generation": self.catalog.generation, "model_id": self.model_id}
        path = self.root / "vectors.faiss"
        index = VectorIndex.load(path, stamp)
        if index is None:
            ids, vecs = self.catalog.vectors(stamp["model_id"])
            index = VectorIndex(ids, self._search_space(vecs), stamp)
            index.save(path)
        return index

    def _search_space(self, vectors: np.ndarray) -> np.ndarray:
        """Vectors as searched: model vectors as stored; MFCC statistics standardised over the
        collection (their dimensions have different units)."""
        if self.model_id != MFCC_METHOD or len(vectors) == 0:
            return vectors
        _, collection = self.catalog.vectors(MFCC_METHOD)
        return standardise(vectors, collection.mean(axis=0), collection.std(axis=0))

    def searchable_vectors(self, paths: Iterable[str]) -> dict[str, np.ndarray]:
        """{path: vector as searched} for those of `paths` that the current model embedded."""
        ids, vecs = self.catalog.vectors(self.model_id)
        path_of = {t.id: t.path for t in self.catalog.tracks()}
        by_path = dict(zip((path_of[int(i)] for i in ids), self._search_space(vecs)))
        return {p: by_path[p] for p in paths if p in by_path}

    def resolve(self, query: str | int | Path) -> Track | Path:
        """A catalog id, a path in the library, an audio file outside it, or text matching
        'artist - title' (or the path)."""
        text = str(query).strip()
        if text.isdigit() and (t := self.catalog.track(int(text))):
            return t
        p = Path(text).expanduser()
        if p.exists():
            t = self.catalog.by_path(str(p.resolve()))
            return t if t is not None else p.resolve()
        found = self.catalog.search_text(text)
        exact = [t for t in found if t.label.lower() == text.lower()]
        if len(exact) == 1 or len(found) == 1:
            return (exact or found)[0]
        if not found:
            raise QueryError(f"no track matches {text!r} (try an id, a path, or part of 'artist - title')")
        shown = "\n".join(f"  {t.id}: {t.label}" for t in found[:10])
        more = f"\n  … and {len(found) - 10} more" if len(found) > 10 else ""
        raise QueryError(f"{len(found)} tracks match {text!r}; be more specific or use an id:\n{shown}{more}")

    def query_vector(self, query: str | int | Path | Track) -> tuple[Track | Path, np.ndarray]:
        target = query if isinstance(query, Track) else self.resolve(query)
        if isinstance(target, Path):  # an outside file is embedded on the fly, not added
            return target, self._search_space(embedder(self.model).embed_file(target).vector[None])[0]
        stored = self.catalog.vector(target.id)
        if target.status != "ok" or stored is None:
            raise QueryError(f"track {target.id} ({target.path}) has no embedding: {target.error or 'not analysed'}")
        if stored[0] != self.model_id:
            raise QueryError(f"track {target.id} was embedded by another model; run `songspace index` to re-embed")
        return target, self._search_space(stored[1][None])[0]

    def similar(self, query: str | int | Path | Track, k: int = 10) -> list[Match]:
        """The k tracks that sound most like the query, best first (the query itself excluded)."""
        target, vector = self.query_vector(query)
        exclude = target.id if isinstance(target, Track) else None
        hits = self.vector_index().search(vector, k + 1)
        return [Match(self.catalog.track(i), s) for i, s in hits if i != exclude][:k]

    # -- status and export --------------------------------------------------------------------------

    def status(self) -> dict:
        counts = self.catalog.counts()
        by_model = self.catalog.models()
        model_id = self.model_id
        return {
            "library": str(self.root),
            "model": {"id": model_id, "path": self.model},
            "tracks": counts["ok"] + counts["failed"],
            "ok": counts["ok"],
            "failed": counts["failed"],
            "searchable": len(self.vector_index()),
            "embeddings_by_model": by_model,
            "failures": [(t.path, t.error) for t in self.catalog.tracks("t.status = 'failed'")],
        }

    def export(self, out: str | Path) -> Path:
        """Write the searchable tracks: .npz (ids, paths, vectors) or .parquet (plus tags)."""
        out = Path(out)
        ids, vecs = self.catalog.vectors(self.model_id)
        tracks = [self.catalog.track(int(i)) for i in ids]
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
            raise ValueError(f"{out}: export to .npz or .parquet")
        return out
