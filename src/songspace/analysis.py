"""Analyse one file: hash, tags, decode, embed. Runs in worker processes.

Returns an `Analysis` (cheap to send between processes) and never raises for a bad file: the
reason goes into the result so the run goes on and `status` can show it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np

from .errors import DecodeError
from .tags import read_tags


@dataclass(frozen=True)
class Task:
    path: str
    model: str  # a model file, or "mfcc"
    known_hash: str | None = None  # content hash already embedded by this model, if any


@dataclass(frozen=True)
class Analysis:
    """What analysing one file gave. `status`: "ok" (embedded), "unchanged" (same content as
    the embedding already stored: nothing else is filled in) or "failed" (`error` says why)."""

    path: str
    status: str
    size: int | None = None
    mtime: float | None = None
    error: str | None = None
    content_hash: str | None = None
    duration: float | None = None
    tags: dict = field(default_factory=dict)
    model_id: str | None = None
    vector: np.ndarray | None = None
    segments: np.ndarray | None = None
    segment_starts: np.ndarray | None = None


_embedders: dict = {}  # one per model per worker process: loading weights per file would dominate


def embedder(model: str):
    """`model` is a model file, or "mfcc" for the hand-crafted baseline."""
    if model not in _embedders:
        if model == "mfcc":
            from .baselines import MfccEmbedder

            _embedders[model] = MfccEmbedder()
        else:
            from .embedding import Embedder  # torch is imported in workers only

            _embedders[model] = Embedder(model)
    return _embedders[model]


def content_hash(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def analyse(task: Task) -> Analysis:
    path = task.path
    try:
        st = os.stat(path)
        digest = content_hash(path)
    except FileNotFoundError:
        return Analysis(path, "failed", error="file not found (deleted while indexing?)")
    except IsADirectoryError:
        return Analysis(path, "failed", error="is a directory, not an audio file")
    except OSError as e:
        return Analysis(path, "failed", error=f"cannot read file: {e.strerror or e}")
    size, mtime = st.st_size, st.st_mtime
    if digest == task.known_hash:
        return Analysis(path, "unchanged", size, mtime, content_hash=digest)
    try:
        emb = embedder(task.model).embed_file(path)
    except DecodeError as e:
        return Analysis(path, "failed", size, mtime, error=e.reason)
    return Analysis(path, "ok", size, mtime, content_hash=digest, duration=emb.duration, tags=read_tags(path),
                    model_id=embedder(task.model).model_id, vector=emb.vector, segments=emb.segments,
                    segment_starts=emb.segment_starts)
