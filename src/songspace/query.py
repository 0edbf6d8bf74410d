"""The query layer: everything that asks the library a question reads through a `Searcher`.

A `Searcher` holds the searchable vectors in memory (one FAISS index), loaded once and rebuilt
only when the catalog changed (its generation or its current model). It searches a batch of
query vectors at once, takes a set of track ids to leave out, returns stored vectors by id and
fetches tracks in bulk. It is safe to share between threads, as a server does: each thread reads
the catalog through its own read-only SQLite connection, and the in-memory index is an
immutable snapshot swapped whole under a lock.

Which vectors are searched: those of the library's current model once it has embedded at least
as many tracks as any other model, else those of the model that embedded the most. So after
`fit` or `use`, search keeps answering from the old vectors until re-embedding has caught up;
never an empty library, never two models mixed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .baselines import MFCC_METHOD, standardise
from .catalog import Catalog, Track
from .errors import QueryError
from .models.files import DEFAULT_MODEL, read_config, resolve_model_path

MFCC = "mfcc"  # the embedding method name users type; MFCC_METHOD is the id its vectors carry


@dataclass(frozen=True)
class Match:
    track: Track
    score: float  # cosine similarity, 1.0 = same direction


def method_id(method: str) -> str:
    """The id of the vectors an embedding method makes: a model file's id, or the MFCC one."""
    return MFCC_METHOD if method == MFCC else read_config(method)["model_id"]


def current_method(catalog: Catalog) -> str:
    """The embedding method the library indexes with: a model file path, or "mfcc"."""
    stored = catalog.get_meta("model")
    return stored if stored == MFCC else str(resolve_model_path(stored or DEFAULT_MODEL))


def method_path_key(model_id: str) -> str:
    """Catalog meta key remembering which file made vectors with this id (to embed queries)."""
    return f"method:{model_id}"


@dataclass(frozen=True)
class _Space:
    """An immutable snapshot of the searchable vectors."""

    stamp: tuple
    method: str  # the model file (or "mfcc") that made these vectors
    model_id: str
    ids: np.ndarray  # (n,) int64, ascending
    vectors: np.ndarray  # (n, dim) float32 unit vectors, as searched
    index: object  # faiss.IndexFlatIP over `vectors`, row i = ids[i]
    mfcc_stats: tuple[np.ndarray, np.ndarray] | None  # mean, std: MFCC vectors are standardised

    def rows(self, track_ids) -> np.ndarray:
        rows = np.searchsorted(self.ids, track_ids)
        rows = np.minimum(rows, max(len(self.ids) - 1, 0))
        ok = len(self.ids) > 0 and np.all(self.ids[rows] == track_ids)
        if not ok:
            missing = [int(i) for i in np.atleast_1d(track_ids) if int(i) not in set(self.ids.tolist())]
            raise QueryError(f"track {', '.join(map(str, missing))} is not searchable (not indexed, failed, "
                             f"or not yet embedded by model {self.model_id})")
        return rows


class Searcher:
    def __init__(self, catalog_path: str | Path):
        self.catalog_path = Path(catalog_path)
        if not self.catalog_path.exists():
            raise QueryError(f"{self.catalog_path}: no catalog here (nothing indexed yet)")
        self._local = threading.local()
        self._connections: list[Catalog] = []
        self._lock = threading.Lock()
        self._space: _Space | None = None

    def close(self) -> None:
        with self._lock:
            for c in self._connections:
                c.close()
            self._connections.clear()

    # -- the catalog, one read-only connection per thread ---------------------------------------

    @property
    def catalog(self) -> Catalog:
        cat = getattr(self._local, "catalog", None)
        if cat is None:
            cat = self._local.catalog = Catalog(self.catalog_path, readonly=True)
            with self._lock:
                self._connections.append(cat)
        return cat

    # -- the in-memory vectors ------------------------------------------------------------------

    def space(self) -> _Space:
        """The current snapshot, rebuilt first if the catalog changed since it was taken."""
        cat = self.catalog
        stamp = (cat.generation, cat.get_meta("model"))
        space = self._space
        if space is None or space.stamp != stamp:
            with self._lock:
                if self._space is None or self._space.stamp != stamp:
                    self._space = self._build(cat, stamp)
                space = self._space
        return space

    def _build(self, cat: Catalog, stamp: tuple) -> _Space:
        import faiss

        current = current_method(cat)
        model_id = method_id(current)
        counts = cat.models(searchable_only=True)
        if counts and counts.get(model_id, 0) < max(counts.values()):
            model_id = max(counts, key=lambda m: (counts[m], m))
            current = cat.get_meta(method_path_key(model_id)) or current
        ids, vectors = cat.vectors(model_id)
        mfcc_stats = None
        if model_id == MFCC_METHOD and len(vectors):
            mfcc_stats = vectors.mean(axis=0), vectors.std(axis=0)
            vectors = standardise(vectors, *mfcc_stats)
        dim = vectors.shape[1] if len(vectors) else 1
        index = faiss.IndexFlatIP(dim)
        if len(vectors):
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return _Space(stamp, current, model_id, ids, vectors, index, mfcc_stats)

    @property
    def model_id(self) -> str:
        """The model whose vectors are searched."""
        return self.space().model_id

    def __len__(self) -> int:
        return len(self.space().ids)

    def ids(self) -> np.ndarray:
        """Ids of every searchable track, ascending."""
        return self.space().ids

    def vectors(self, track_ids) -> np.ndarray:
        """(len(track_ids), dim) vectors as searched; QueryError names any id not searchable."""
        space = self.space()
        return space.vectors[space.rows(np.asarray(track_ids, dtype=np.int64))]

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of every searchable track."""
        space = self.space()
        return space.ids, space.vectors

    def search(self, queries: np.ndarray, k: int, exclude: set[int] | frozenset[int] = frozenset()) -> list[list[tuple[int, float]]]:
        """For each row of `queries`, the k nearest searchable tracks as (id, cosine), best
        first, none of them in `exclude`."""
        space = self.space()
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        n = len(space.ids)
        if n == 0 or k <= 0:
            return [[] for _ in queries]
        fetch = min(n, k + len(exclude))  # enough to fill k after leaving out the excluded
        scores, rows = space.index.search(queries, fetch)
        results = []
        for srow, rrow in zip(scores, rows):
            hits = [(int(space.ids[r]), float(s)) for r, s in zip(rrow, srow) if r >= 0]
            results.append([(i, s) for i, s in hits if i not in exclude][:k])
        return results

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
        fetched in bulk; QueryError names an id that is not searchable."""
        space = self.space()
        space.rows(np.asarray(track_ids, dtype=np.int64))
        return self.catalog.segments_of(track_ids, space.model_id)

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
        from .analysis import embedder  # torch is imported only for outside files

        space = self.space()
        emb = embedder(space.method).embed_file(path)
        if space.mfcc_stats is not None:
            from dataclasses import replace

            emb = replace(emb, vector=standardise(emb.vector[None], *space.mfcc_stats)[0])
        return emb

    def query_vector(self, query: str | int | Path | Track) -> tuple[Track | Path, np.ndarray]:
        target = self.resolve(query)
        if isinstance(target, Path):
            return target, self.embed_file(target).vector
        return target, self.vector(target)

    def similar(self, query: str | int | Path | Track, k: int = 10, exclude: set[int] | frozenset[int] = frozenset()) -> list[Match]:
        """The k tracks that sound most like the query, best first (the query itself excluded)."""
        if k < 1:
            raise QueryError(f"k must be at least 1, not {k}")
        target, vector = self.query_vector(query)
        if isinstance(target, Track):
            exclude = {*exclude, target.id}
        return self.matches(self.search(vector, k, exclude)[0])
