"""The vector index: one model's searchable track vectors, derived from the catalog.

Exact search (a flat inner-product index) below `EXACT_LIMIT` vectors, an inverted-file index
(FAISS IVF-Flat, spherical k-means cells) above it. Track ids are the index's own labels, so a
few tracks added, re-embedded or removed change the index in place (`update`), never rebuild it:
the catalog's change log (`changes`: seq, track id, op) says which tracks changed after the seq
the index includes, and the catalog says what they are now (searchable with this model: add or
replace the vector; anything else: remove it). Removal is physical (`remove_ids`), so a removed
track is gone from every search at once; hits are also checked against the live id set, and an
exclude set is filtered inside the index (an IDSelector), not by over-fetching.

Why IVF and not HNSW (measured on clustered synthetic 256-d unit vectors, 100k, one core, the data
of bench/scale.py): HNSW M=32 built in 15 s and answered at recall@10 0.976-0.990 (efSearch
32-128); IVF (nlist 1,264) trained and filled in 9.6 s and answered at recall 0.956-1.000 (nprobe
8-32) with a p99 of 0.2-0.3 ms against HNSW's ~4 ms tail on this shared machine. IVF also removes
vectors physically (HNSW cannot: tombstones, filters and compaction), reconstructs any stored
vector by id (a hash-table direct map), and costs 256 B/vector of graph less. So: IVF.

Parameters: nlist = 4·sqrt(n) cells; nprobe is calibrated on every build against exact search
over 256 of the library's own vectors: the smallest power of two with recall@10 ≥ 0.97 (a margin
over the 0.95 promised), so the promise holds on the user's data, not only on ours. The cells are
trained on the vectors present at build time; once the index has changed by half its build size
(or grown 4x, or shrunk below the exact limit) `update` rebuilds it from its own vectors
(compaction: no catalog read).

Why 20,000: exact single-query search on one core took p50 0.16 ms at 10k, 0.85 ms at 25k, 3 ms at
50k and 11 ms at 100k (256-d); below ~20k it is well under a millisecond and exact, so approximate
search buys nothing there.

Saved beside the catalog as `vectors.faiss` plus a JSON stamp `vectors.json` (model id, the last
change seq included, vector count, kind, file size and CRC-32), each written to a temporary file,
fsynced and renamed over the old one. The stamp is written last and names the CRC of the index
file, so a save killed at any moment leaves either the old pair, or a pair that does not match
(refused on load, with a warning, and rebuilt from the catalog). Leftover temporary files are
never read, and removed by the next save.

MFCC vectors are standardised over the whole collection, so any change moves every vector: an
MFCC library (a small-scale baseline) is always searched exactly and rebuilt on change, and the
Searcher never saves it (query.py).
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from pathlib import Path

import numpy as np


EXACT_LIMIT = 20_000  # measured: see the module docstring
TARGET_RECALL = 0.97  # calibration target, a margin over the promised 0.95
FORMAT = 1
INDEX_FILE = "vectors.faiss"
STAMP_FILE = "vectors.json"


class VectorIndex:
    """The searchable vectors of one model: a FAISS index labelled by track id, the sorted live
    ids, and the change-log seq it includes. Safe to share between threads (one lock)."""

    builds = 0  # how many indexes were built from scratch in this process (tests count them)

    def __init__(self, index, ids: np.ndarray, model_id: str, seq: int, kind: str, built_n: int, changed: int = 0):
        self.index = index
        self.ids = ids  # (n,) int64 ascending; replaced whole on every change (a snapshot for readers)
        self.model_id = model_id
        self.seq = seq
        self.kind = kind  # "exact" or "ivf"
        self.built_n = built_n  # vectors at the last build (when cells were trained)
        self.changed = changed  # vectors added or removed since that build
        self.unsaved = 0  # changes since the last save
        self.lock = threading.RLock()

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, model_id: str, seq: int,
              exact_limit: int = EXACT_LIMIT) -> "VectorIndex":
        """A new index over (ids, vectors): exact below `exact_limit` vectors, IVF from there."""
        import faiss

        cls.builds += 1
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        order = np.argsort(ids, kind="stable")
        ids, vectors = ids[order], vectors[order]
        dim = vectors.shape[1] if vectors.ndim == 2 and vectors.shape[1] else 1
        if len(ids) < max(exact_limit, 2):
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
            kind = "exact"
        else:
            index = _ivf(vectors, exact_limit)
            kind = "ivf"
        if len(ids):
            index.add_with_ids(vectors, ids)
        if kind == "ivf":
            index.nprobe = _calibrate(index, ids, vectors)
        return cls(index, ids, model_id, seq, kind, built_n=len(ids))

    def rebuilt(self, exact_limit: int = EXACT_LIMIT) -> "VectorIndex":
        """The same vectors in a fresh index (new cells, the right kind for the size)."""
        with self.lock:
            ids = self.ids
            vectors = self.reconstruct(ids)
        return VectorIndex.build(ids, vectors, self.model_id, self.seq, exact_limit)

    # -- changing --------------------------------------------------------------------------------

    def update(self, changed_ids, ids: np.ndarray, vectors: np.ndarray, seq: int,
               exact_limit: int = EXACT_LIMIT) -> "VectorIndex":
        """Apply a batch from the change log: every id in `changed_ids` leaves the index, then
        (ids, vectors), the searchable ones among them, come back with their current vectors.
        Returns this index, or a rebuilt one when the change has outgrown its cells."""
        import faiss

        changed_ids = np.asarray(sorted({int(i) for i in changed_ids}), dtype=np.int64)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        with self.lock:
            present = changed_ids[np.isin(changed_ids, self.ids, assume_unique=True)]
            if len(ids) and vectors.shape[1] != self.index.d:  # an empty index knows no dimension yet
                if len(self.ids) > len(present):
                    raise ValueError(f"{vectors.shape[1]}-d vectors cannot join a {self.index.d}-d index")
                return VectorIndex.build(ids, vectors, self.model_id, max(self.seq, seq), exact_limit)
            if len(present):
                if self.kind == "ivf":  # the hash-table direct map removes by an explicit id array
                    self.index.remove_ids(faiss.IDSelectorArray(len(present), faiss.swig_ptr(present)))
                else:
                    self.index.remove_ids(present)
            if len(ids):
                self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
            self.ids = np.union1d(np.setdiff1d(self.ids, present, assume_unique=True), ids)
            self.seq = max(self.seq, seq)
            self.changed += len(present) + len(ids)
            self.unsaved += len(present) + len(ids)
            if self.outgrown(exact_limit):
                return self.rebuilt(exact_limit)
            return self

    def outgrown(self, exact_limit: int) -> bool:
        """Whether this index should be rebuilt: the wrong kind for its size, or its cells
        trained on a set that has since changed by half."""
        n = len(self.ids)
        if self.kind == "exact":
            return n >= max(exact_limit, 2)
        return n < exact_limit // 2 or n > 4 * self.built_n or self.changed > self.built_n // 2

    # -- reading ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.ids)

    def contains(self, track_ids) -> np.ndarray:
        """Boolean mask: which of `track_ids` are searchable now."""
        ids = self.ids
        track_ids = np.asarray(track_ids, dtype=np.int64)
        if not len(ids):
            return np.zeros(track_ids.shape, dtype=bool)
        rows = np.minimum(np.searchsorted(ids, track_ids), len(ids) - 1)
        return ids[rows] == track_ids

    def all(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of everything in the index, read together: `update` changes the index
        in place, so ids read now and vectors read later could disagree."""
        with self.lock:
            ids = np.array(self.ids, dtype=np.int64)
            return ids, self.reconstruct(ids)

    def reconstruct(self, track_ids) -> np.ndarray:
        """(len(track_ids), dim) stored vectors; KeyError for an id not in the index."""
        track_ids = np.asarray(track_ids, dtype=np.int64)
        with self.lock:
            missing = track_ids[~self.contains(track_ids)]
            if len(missing):
                raise KeyError(missing.tolist())
            if not len(track_ids):
                return np.zeros((0, self.index.d), dtype=np.float32)
            return self.index.reconstruct_batch(track_ids)

    def search(self, queries: np.ndarray, k: int, exclude=frozenset()) -> list[list[tuple[int, float]]]:
        """For each query row, up to k (track id, inner product), best first, none in `exclude`;
        as many as k when the index holds that many outside `exclude`."""
        import faiss

        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        with self.lock:
            ids = self.ids
            excluded = np.asarray(sorted({int(i) for i in exclude}), dtype=np.int64)
            excluded = excluded[self.contains(excluded)] if len(excluded) else excluded
            wanted = min(k, len(ids) - len(excluded))
            if wanted <= 0:
                return [[] for _ in queries]
            sel = None
            if len(excluded):
                inner = faiss.IDSelectorBatch(len(excluded), faiss.swig_ptr(excluded))
                sel = faiss.IDSelectorNot(inner)
            nprobe = getattr(self.index, "nprobe", 1)
            while True:
                if self.kind == "ivf":
                    params = faiss.SearchParametersIVF(nprobe=nprobe, sel=sel) if sel else faiss.SearchParametersIVF(nprobe=nprobe)
                else:
                    params = faiss.SearchParameters(sel=sel) if sel else None
                scores, labels = self.index.search(queries, wanted, params=params)
                short = (labels < 0).any(axis=1).any()
                if not short or self.kind != "ivf" or nprobe >= self.index.nlist:
                    break
                nprobe = min(self.index.nlist, nprobe * 4)  # the probed cells held too few: look wider
            del sel
        results = []
        for srow, lrow in zip(scores, labels):
            live = self.contains(lrow) & (lrow >= 0)  # removed tracks never come back, whatever the index holds
            results.append([(int(i), float(s)) for i, s, ok in zip(lrow, srow, live) if ok])
        return results

    # -- saving and loading ------------------------------------------------------------------------

    def save(self, folder: str | Path) -> None:
        """Write `vectors.faiss` and its stamp into `folder`, each atomically (temp, fsync, rename)."""
        import faiss

        folder = Path(folder)
        with self.lock:
            tmp = _temp_name(folder / INDEX_FILE)
            try:
                faiss.write_index(self.index, str(tmp))
                size, crc = _fsync_and_crc(tmp)
                os.replace(tmp, folder / INDEX_FILE)
            finally:
                tmp.unlink(missing_ok=True)
            stamp = {"format": FORMAT, "model_id": self.model_id, "seq": self.seq, "count": len(self.ids),
                     "kind": self.kind, "built_n": self.built_n, "changed": self.changed, "bytes": size, "crc32": crc}
            tmp = _temp_name(folder / STAMP_FILE)
            try:
                tmp.write_text(json.dumps(stamp))
                _fsync_and_crc(tmp)
                os.replace(tmp, folder / STAMP_FILE)
            finally:
                tmp.unlink(missing_ok=True)
            _fsync_dir(folder)
            self.unsaved = 0
        _remove_stale_temps(folder)

    @classmethod
    def load(cls, folder: str | Path, model_id: str) -> "VectorIndex":
        """The saved index of `model_id` in `folder`. Raises ValueError saying why it cannot be
        trusted (missing, another model, a stamp that does not match the file, unreadable)."""
        import faiss

        folder = Path(folder)
        try:
            stamp = json.loads((folder / STAMP_FILE).read_text())
        except FileNotFoundError:
            raise ValueError("no saved index") from None
        except (OSError, ValueError) as e:
            raise ValueError(f"{folder / STAMP_FILE} is unreadable ({e})") from None
        if not isinstance(stamp, dict) or stamp.get("format") != FORMAT:
            raise ValueError(f"{folder / STAMP_FILE} has an unknown format")
        if stamp.get("model_id") != model_id:
            raise ValueError(f"the saved index holds vectors of model {stamp.get('model_id')}, not {model_id}")
        path = folder / INDEX_FILE
        try:
            size, crc = _crc(path)
        except OSError as e:
            raise ValueError(f"{path} is unreadable ({e})") from None
        if (size, crc) != (stamp.get("bytes"), stamp.get("crc32")):
            raise ValueError(f"{path} does not match its stamp (an interrupted save, or damage)")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as e:
            raise ValueError(f"{path} cannot be read ({str(e).splitlines()[0]})") from None
        ids = _labels(index, stamp["kind"])
        if index.ntotal != stamp["count"] or len(ids) != stamp["count"]:
            raise ValueError(f"{path} holds {index.ntotal} vectors, its stamp says {stamp['count']}")
        return cls(index, ids, model_id, int(stamp["seq"]), stamp["kind"], int(stamp["built_n"]), int(stamp["changed"]))


# -- helpers -----------------------------------------------------------------------------------


def _ivf(vectors: np.ndarray, exact_limit: int):
    """An empty trained IVF-Flat index (inner product, spherical cells, ids by hash table)."""
    import faiss

    n, dim = vectors.shape
    nlist = int(min(65536, max(16, 4 * np.sqrt(n), np.sqrt(exact_limit))))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.spherical = True
    index.cp.niter = 10
    index.cp.max_points_per_centroid = 64  # a sample of 64 per cell trains as well and far faster
    index.cp.min_points_per_centroid = 16
    rng = np.random.default_rng(0)
    sample = vectors if n <= 64 * nlist else vectors[np.sort(rng.choice(n, 64 * nlist, replace=False))]
    index.train(sample)
    index.own_fields = True
    quantizer.this.disown()
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    return index


def _calibrate(index, ids: np.ndarray, vectors: np.ndarray, n_queries: int = 256, k: int = 10) -> int:
    """The smallest power-of-two nprobe with recall@k ≥ TARGET_RECALL against exact search, on
    a sample of the index's own vectors."""
    import faiss

    rng = np.random.default_rng(1)
    queries = vectors[rng.choice(len(vectors), min(n_queries, len(vectors)), replace=False)]
    _, exact = faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)
    truth = ids[exact]
    nprobe = 1
    while nprobe < index.nlist:
        _, found = index.search(queries, k, params=faiss.SearchParametersIVF(nprobe=nprobe))
        recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(truth, found)])
        if recall >= TARGET_RECALL:
            break
        nprobe *= 2
    return min(nprobe, index.nlist)


def _labels(index, kind: str) -> np.ndarray:
    """The sorted track ids an index holds."""
    import faiss

    if kind == "exact":
        return np.sort(faiss.vector_to_array(index.id_map).astype(np.int64))
    invlists = faiss.extract_index_ivf(index).invlists
    parts = []
    for cell in range(invlists.nlist):
        size = invlists.list_size(cell)
        if size:
            parts.append(faiss.rev_swig_ptr(invlists.get_ids(cell), size).copy())
    return np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def _temp_name(path: Path) -> Path:
    return path.with_name(f"{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")


def _crc(path: Path) -> tuple[int, int]:
    crc, size = 0, 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    return size, crc


def _fsync_and_crc(path: Path) -> tuple[int, int]:
    with open(path, "rb") as f:
        os.fsync(f.fileno())
    return _crc(path)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_temps(folder: Path) -> None:
    """Temporary files of saves whose process is gone (killed mid-save)."""
    for tmp in folder.glob("vectors.*.tmp-*"):
        try:
            pid = int(tmp.name.split(".tmp-")[1].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (ValueError, IndexError, PermissionError, OSError):
            pass
