"""The query layer: everything that asks the library a question reads through a `Searcher`.

A `Searcher` owns the search state, one snapshot (`_Space`) at a time: the searchable vectors
in memory (a `VectorIndex`, vectors.py: exact when small, approximate when large), loaded from
the saved index beside the catalog or built from the catalog; and what is derived from them on
demand, once per snapshot: the segment index (segment_index.py), the Subsonic routes' view of
the library (`derived`); plus the embedders that embed queries from outside the library. When
the catalog changes (its generation or its current model) the next question brings the
snapshot up to date from the change log: a few changed tracks are applied in place, never a
rebuild; a model switch is a new index.

It searches a batch of query vectors at once, takes a set of track ids to leave out, returns
stored vectors by id and fetches tracks in bulk. It is safe to share between threads, as a
server does: each thread reads the catalog through its own read-only SQLite connection,
snapshots are swapped whole under a lock, and the index they share takes its own lock for
every search and change. A question that looks up what it searched (similar: search, then the
hits' vectors and segments) asks inside `snapshot()`: everything it reads comes from one
snapshot, and a change in place waits until no such question is reading (the question never
waits for it: until then the next questions answer from the snapshot they have).

Which vectors are searched: those of the library's current model once it has embedded at least
as many tracks as are searched now (a fresh process: as any other model), else the ones
searched until then. While `fit` or `use` re-embeds, search keeps answering from the previous
model's vectors, all of them, as they were held when the switch began (the catalog keeps one
vector per track, so a new process can only find those not yet re-embedded), and switches once
the new model has caught up: never an empty library, never two models mixed, never a track
missing halfway.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import method as methods
from .baselines import standardise
from .catalog import Catalog, Track
from .errors import InputError, QueryError
from .method import Method
from .snapshot import Readers, Snapshot
from .vectors import EXACT_LIMIT, VectorIndex

log = logging.getLogger("songspace")


@dataclass(frozen=True)
class Match:
    track: Track
    score: float  # cosine similarity, 1.0 = same direction


def one_snapshot(recommend):
    """For a function `recommend(searcher, ...)`: everything it reads comes from one snapshot
    (`Searcher.snapshot`)."""

    @functools.wraps(recommend)
    def asked(searcher: Searcher, *args, **kwargs):
        with searcher.snapshot():
            return recommend(searcher, *args, **kwargs)

    return asked


class Searcher:
    def __init__(self, catalog_path: str | Path, exact_limit: int = EXACT_LIMIT, save: bool = True):
        """`exact_limit`: how many vectors are searched exactly before an approximate index takes
        over; `save`: keep the index beside the catalog (vectors.faiss) for the next process."""
        self.catalog_path = Path(catalog_path)
        self.exact_limit = exact_limit
        self.save = save
        if not self.catalog_path.exists():
            raise QueryError(f"{self.catalog_path}: no catalog here (nothing indexed yet)")
        import faiss

        # FAISS's OpenMP threads spin-wait: with a server's threads each asking one query, they
        # made `similar` 2.5x slower here (35 vs 88 queries/s on 2 cores). One thread per query.
        faiss.omp_set_num_threads(1)
        self._local = threading.local()  # per thread: its catalog connection, its pinned snapshot
        self._connections: list[Catalog] = []
        self._connections_lock = threading.Lock()
        self._lock = threading.RLock()  # one thread brings the snapshot up to date at a time
        self._space: Snapshot | None = None
        self._readers = Readers()
        self._embedders: dict[str, object] = {}  # per method name: loading weights per query would dominate
        self._embedders_lock = threading.Lock()

    def close(self) -> None:
        with self._connections_lock:
            for c in self._connections:
                c.close()
            self._connections.clear()

    # -- the catalog, one read-only connection per thread ---------------------------------------

    @property
    def catalog(self) -> Catalog:
        cat = getattr(self._local, "catalog", None)
        if cat is None:
            cat = self._local.catalog = Catalog(self.catalog_path, readonly=True)
            with self._connections_lock:
                self._connections.append(cat)
        return cat

    # -- the snapshot ----------------------------------------------------------------------------

    @contextmanager
    def snapshot(self):
        """Inside the block, everything this thread asks of the Searcher answers from one
        snapshot, brought up to date first: what a search found can be looked up, a track the
        Subsonic view names can be searched. Re-entrant; for one question, not for long work."""
        if getattr(self._local, "pinned", None) is not None:
            yield self
            return
        space = self.space()
        with self._readers.reading():
            self._local.pinned = self._space or space  # the newest, never changed while we read
            try:
                yield self
            finally:
                self._local.pinned = None

    def space(self) -> Snapshot:
        """The snapshot this thread answers from: the pinned one inside `snapshot()`, else the
        current one, brought up to date first if the catalog changed since it was taken."""
        pinned = getattr(self._local, "pinned", None)
        if pinned is not None:
            return pinned
        cat = self.catalog
        stamp = (cat.generation, cat.get_meta("model"))
        space = self._space
        if space is None or space.stamp != stamp:
            with self._lock:
                if self._space is None or self._space.stamp != stamp:
                    # None: a change in place has to wait for the questions reading (see snapshot.py)
                    self._space = self._build(cat, stamp) or self._space
                space = self._space
        return space

    def _choose(self, cat: Catalog, held: Snapshot | None = None) -> tuple[Method, str]:
        """(method, model id) searched: the one searched now (`held`) until another model has
        embedded as many tracks as it holds; then the current model once it has embedded as
        many as any other model, else the one that embedded the most."""
        current = methods.current(cat)
        counts = cat.models(searchable_only=True)
        if held is not None and held.model_id != current.id and max(counts.values(), default=0) < len(held.index):
            return held.method, held.model_id
        model_id = current.id
        if counts and counts.get(model_id, 0) < max(counts.values()):
            model_id = max(counts, key=lambda m: (counts[m], m))
            current = methods.of_vectors(cat, model_id, current)
        return current, model_id

    def searched_model_id(self) -> str:
        """The id of the model whose vectors search answers from, without loading them."""
        held = getattr(self._local, "pinned", None) or self._space
        return self._choose(self.catalog, held)[1]

    def _build(self, cat: Catalog, stamp: tuple) -> Snapshot | None:
        old = self._space
        searched, model_id = self._choose(cat, old)
        if old is not None and old.model_id == model_id and (old.mfcc_stats is None or model_id != methods.current(cat).id):
            return self._caught_up(cat, old, stamp)
        if searched.standardised:
            # Standardised over the collection: every change moves every vector. Exact, rebuilt.
            seq = cat.last_change()
            ids, vectors = cat.vectors(model_id)
            mfcc_stats = None
            if len(vectors):
                mfcc_stats = vectors.mean(axis=0), vectors.std(axis=0)
                vectors = standardise(vectors, *mfcc_stats)
            index = VectorIndex.build(ids, vectors, model_id, seq, exact_limit=len(ids) + 1)
            return Snapshot(stamp, searched, model_id, index, mfcc_stats)
        index = self._open_index(cat, model_id)
        return Snapshot(stamp, searched, model_id, index, None)

    def _caught_up(self, cat: Catalog, old: Snapshot, stamp: tuple) -> Snapshot | None:
        """`old` with the catalog's changes applied to its index in place (None: not now, a
        question is reading it). A track re-embedded by another model keeps the vector held
        for it (the catalog no longer has it) until search switches to that model: while a
        switch is under way, every track stays searchable, by one model."""
        index = old.index
        found = cat.changes_since(index.seq)
        if found is None:  # a catalog older than the change log: only a rebuild can tell
            return Snapshot(stamp, old.method, old.model_id, self.rebuild(cat, old.model_id), None)
        seq, changed = found
        ids, vectors = cat.vectors_of(changed, old.model_id)
        if old.mfcc_stats is not None and len(ids):  # the statistics searched with stay until the switch
            vectors = standardise(vectors, *old.mfcc_stats)
        others = {t.id for t in cat.tracks_by_id(changed)
                  if t is not None and t.status == "ok" and t.model_id != old.model_id}
        leaving = np.asarray([i for i in changed if i not in others], dtype=np.int64)
        held = np.asarray(sorted(others), dtype=np.int64)
        stale = old.stale or bool(index.contains(held).any())
        limit = max(self.exact_limit, len(index) + 1) if old.mfcc_stats is not None else self.exact_limit
        derived = {}
        if len(ids) or index.contains(leaving).any():
            with self._readers.changing_if_idle() as idle:
                if not idle:
                    return None
                index = index.update(leaving, ids, vectors, seq, limit)
        else:  # no vector a question sees changes: only the seq moves
            index.update([], ids, vectors, seq, limit)
            # While a switch is under way the held model's segments go with its vectors (the
            # catalog is replacing them). Otherwise never: the generation also moves when the
            # sidecar's projections are fitted, which changes every stored segment.
            if stale and "segments" in old.derived:
                derived["segments"] = old.derived["segments"]
        # Saved only while it matches the catalog: held vectors of re-embedded tracks do not.
        if self.save and not stale and old.mfcc_stats is None and index.unsaved > max(1000, len(index) // 20):
            self._save(index)
        return Snapshot(stamp, old.method, old.model_id, index, old.mfcc_stats, derived, stale)

    def _open_index(self, cat: Catalog, model_id: str) -> VectorIndex:
        """The saved index when it can be trusted (brought up to date from the change log and
        counted against the catalog), else one built from the catalog and saved."""
        folder = self.catalog_path.parent
        try:
            index = VectorIndex.load(folder, model_id)
            if index.seq > cat.last_change():
                raise ValueError("it is newer than the catalog (a catalog restored from a backup?)")
            index = self._catch_up(cat, index, rebuild=False)
            expected = cat.searchable_count(model_id)
            if len(index) != expected:
                raise ValueError(f"it holds {len(index)} tracks where the catalog has {expected}")
            if index.outgrown(self.exact_limit):  # saved by a Searcher with another exact limit
                index = index.rebuilt(self.exact_limit)
                if self.save:
                    self._save(index)
            return index
        except ValueError as e:
            if str(e) != "no saved index":
                log.warning("songspace: the vector index in %s cannot be trusted: %s; rebuilding it from the catalog",
                            folder, e)
        return self.rebuild(cat, model_id)

    def rebuild(self, cat: Catalog, model_id: str) -> VectorIndex:
        """A new index of `model_id`'s vectors, built from the catalog (and saved)."""
        seq = cat.last_change()  # first: a change landing during the read is applied again later
        ids, vectors = cat.vectors(model_id)
        index = VectorIndex.build(ids, vectors, model_id, seq, self.exact_limit)
        if self.save:
            self._save(index)
        return index

    def _catch_up(self, cat: Catalog, index: VectorIndex, rebuild: bool = True) -> VectorIndex:
        """`index` with the catalog's changes after its seq applied in place."""
        found = cat.changes_since(index.seq)
        if found is None:  # a catalog older than the change log: only a rebuild can tell
            if not rebuild:
                raise ValueError("the catalog keeps no change log")
            return self.rebuild(cat, index.model_id)
        seq, changed = found
        if not changed:
            return index
        ids, vectors = cat.vectors_of(changed, index.model_id)
        return index.update(changed, ids, vectors, seq, self.exact_limit)

    def _save(self, index: VectorIndex) -> None:
        try:
            index.save(self.catalog_path.parent)
        # FAISS reports a failed write as RuntimeError. A read-only or full disk still answers;
        # the index is just rebuilt by the next process.
        except (OSError, RuntimeError) as e:
            log.warning("songspace: could not save the vector index in %s: %s", self.catalog_path.parent, e)

    def check_index(self) -> tuple[bool, str]:
        """(sound, what was found): whether the saved index matches the catalog exactly, id by
        id and vector by vector; a mismatch is rebuilt from the catalog and saved."""
        with self._lock:
            cat = self.catalog
            searched, model_id = self._choose(cat)
            if searched.standardised:
                return True, "MFCC vectors are searched exactly and rebuilt on change (nothing saved)"
            problem = None
            try:
                index = VectorIndex.load(self.catalog_path.parent, model_id)
                index = self._catch_up(cat, index, rebuild=False)
                ids, vectors = cat.vectors(model_id)
                if not np.array_equal(index.ids, ids):
                    problem = f"it holds {len(index)} tracks, the catalog {len(ids)} (or other ones)"
                elif len(ids) and not np.allclose(index.reconstruct(ids), vectors, atol=1e-6):
                    problem = "its vectors differ from the catalog's"
            except ValueError as e:
                problem = str(e)
            if problem is None:
                if index.unsaved:
                    self._save(index)
                return True, f"{len(index)} vectors of model {model_id} ({index.kind})"
            index = self.rebuild(cat, model_id)
            self._space = None
            return False, f"{problem}; rebuilt {len(index)} vectors of model {model_id} ({index.kind})"

    # -- what is derived from the snapshot, once per snapshot ---------------------------------------

    def derived(self, name: str, build: Callable[[], Any]) -> Any:
        """What `build()` makes from the current snapshot (the Subsonic view...), made once per
        snapshot, shared by every thread until the catalog changes."""
        return self.space().get(name, build)

    def segment_index(self):
        """(SegmentIndex, {track id: (starts, vectors)}) of every searchable track that has
        segments (those embedded before segments were stored have none), built once per snapshot."""
        from . import segment_index

        space = self.space()
        if not space.method.has_segments:
            raise QueryError("the MFCC baseline stores no segment vectors; segments need a model (songspace's encoder)")

        def build():
            segments = self.catalog.segments_of(space.index.ids, space.model_id)
            if not segments:
                raise QueryError("no track in the library has segment vectors to search")
            return segment_index.build(segments), segments

        return space.get("segments", build)

    def embedder(self, method: Method | None = None):
        """The embedder of the searched model (or of `method`): `embed_file`, `patch_vectors`...;
        one per method, made on first use (torch is imported only then)."""
        method = method or self.space().method
        with self._embedders_lock:
            if method.name not in self._embedders:
                self._embedders[method.name] = method.new_embedder()
            return self._embedders[method.name]

    # -- the in-memory vectors ------------------------------------------------------------------

    @property
    def model_id(self) -> str:
        """The model whose vectors are searched."""
        return self.space().model_id

    def __len__(self) -> int:
        return len(self.space().index)

    def require(self, n: int) -> None:
        """Refuse, with a clear message, a list of `n` tracks the library cannot fill."""
        size = len(self)
        if size == 0:
            raise QueryError("the library has no searchable tracks")
        if n > size:
            raise InputError(f"n={n} is more than the {size} searchable tracks in the library")

    def ids(self) -> np.ndarray:
        """Ids of every searchable track, ascending."""
        return self.space().index.ids

    def vectors(self, track_ids) -> np.ndarray:
        """(len(track_ids), dim) vectors as searched; QueryError names any id not searchable."""
        return self.space().lookup(track_ids)

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of every searchable track."""
        return self.space().index.all()

    def search(self, queries: np.ndarray, k: int, exclude: set[int] | frozenset[int] = frozenset()) -> list[list[tuple[int, float]]]:
        """For each row of `queries`, the k nearest searchable tracks as (id, cosine), best
        first, none of them in `exclude`."""
        space = self.space()
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if len(space.index) == 0 or k <= 0:
            return [[] for _ in queries]
        return space.index.search(queries, k, exclude)

    # -- tracks ------------------------------------------------------------------------------------

    def tracks(self, track_ids) -> list[Track]:
        """The tracks with these ids, in that order, fetched in one go."""
        found = self.catalog.tracks_by_id(track_ids)
        unknown = [str(i) for i, t in zip(track_ids, found) if t is None]
        if unknown:
            raise QueryError(f"no track with id {', '.join(unknown)} in the catalog")
        return found

    def track(self, track_id: int) -> Track:
        return self.tracks([track_id])[0]

    def artists(self, track_ids) -> list[str | None]:
        """The artist tag of each of these tracks (None when untagged), without whole rows."""
        return self.catalog.artists_by_id(track_ids)

    def matches(self, hits: list[tuple[int, float]]) -> list[Match]:
        """Search hits as Matches, with their tracks fetched in bulk."""
        return [Match(t, s) for t, (_, s) in zip(self.tracks([i for i, _ in hits]), hits)]

    def segments(self, track_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(starts in seconds, (n, dim) unit vectors) of a searchable track's few-second patches."""
        found = self.segments_of([track_id])
        if track_id not in found:
            raise QueryError(f"track {track_id} has no segment vectors (embedded by {self.model_id})")
        return found[track_id]

    def segments_of(self, track_ids) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """{track id: (starts, vectors)} of those searchable `track_ids` that have segments,
        fetched in bulk (from the segment index when this snapshot has built it); QueryError
        names an id that is not searchable."""
        space = self.space()
        track_ids = np.asarray(track_ids, dtype=np.int64)
        space.require_searchable(track_ids)
        built = space.derived.get("segments")
        if built is not None:
            return {i: built[1][i] for i in track_ids.tolist() if i in built[1]}
        return self.catalog.segments_of(track_ids, space.model_id)

    def as_segments(self, vectors: np.ndarray) -> np.ndarray:
        """Fresh patch vectors of the searched model, (n, dim), put where its stored segments
        are compared: projected and renormalised as the sidecar stores them (segment_store)."""
        from .segment_store import project

        return project(vectors, self.catalog.segment_projection(self.space().model_id))

    def search_text(self, text: str) -> list[Track]:
        return self.catalog.search_text(text)

    # -- what a query names ------------------------------------------------------------------------

    def resolve(self, query: str | int | Path | Track) -> Track | Path:
        """A Track, a catalog id, a path in the library, an audio file outside it, or text
        matching 'artist - title' (or the path)."""
        if isinstance(query, Track):
            return query
        text = str(query).strip()
        if not text:
            raise QueryError("an empty query names no track")
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
        if not found and text.isdigit():
            raise QueryError(f"no track with id {text} in the library (and no track's name contains {text!r})")
        if not found:
            raise QueryError(f"no track matches {text!r} (give an id, a path, or part of 'artist - title')")
        shown = "\n".join(f"  {t.id}: {t.label}" for t in found[:10])
        more = f"\n  … and {len(found) - 10} more" if len(found) > 10 else ""
        raise QueryError(f"{len(found)} tracks match {text!r}; be more specific or use an id:\n{shown}{more}")

    def resolve_track(self, query: str | int | Path | Track) -> Track:
        """Like `resolve`, for queries that must name a searchable track of the library."""
        target = self.resolve(query)
        if isinstance(target, Path):
            raise QueryError(f"{target} is not in the library (index it first)")
        self.vector(target)
        return target

    def vector(self, target: Track) -> np.ndarray:
        if target.status != "ok":
            raise QueryError(f"track {target.id} ({target.path}) has no embedding: {target.error or 'not analysed'}")
        return self.vectors([target.id])[0]

    def embed_file(self, path: str | Path):
        """A file outside the library embedded (not added) by the model searched: a
        TrackEmbedding whose vector lies in the search space. Raises DecodeError."""
        space = self.space()
        emb = self.embedder(space.method).embed_file(path)  # torch is imported only for outside files
        if space.mfcc_stats is not None:
            from dataclasses import replace

            emb = replace(emb, vector=standardise(emb.vector[None], *space.mfcc_stats)[0])
        return emb
