"""The vector index: FAISS over the catalog's track vectors.

Derived data: it is built from the catalog, saved beside it with the catalog generation and
model it was built from, and rebuilt whenever either no longer matches. Exact inner-product
search (vectors are unit length, so inner product is cosine similarity); at a few hundred
thousand tracks this still answers in milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np


class VectorIndex:
    def __init__(self, ids: np.ndarray, vectors: np.ndarray, stamp: dict):
        self.stamp = stamp
        self.dim = vectors.shape[1] if len(vectors) else 0
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(max(self.dim, 1)))
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))

    def __len__(self) -> int:
        return self.index.ntotal

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The k nearest (id, cosine similarity), best first."""
        if len(self) == 0:
            return []
        q = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, -1))
        scores, ids = self.index.search(q, min(k, len(self)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    # -- persistence: a cache of the catalog, never the truth ----------------------------------

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))
        Path(f"{path}.json").write_text(json.dumps(self.stamp))

    @classmethod
    def load(cls, path: Path, stamp: dict) -> "VectorIndex | None":
        """The saved index if it was built from exactly this catalog state, else None."""
        try:
            if json.loads(Path(f"{path}.json").read_text()) != stamp:
                return None
            index = faiss.read_index(str(path))
        except (OSError, ValueError, RuntimeError):
            return None
        self = cls.__new__(cls)
        self.stamp, self.index, self.dim = stamp, index, index.d
        return self
