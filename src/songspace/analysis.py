"""Analyse one file: hash, tags, decode, embed. Runs in worker processes.

Returns a plain dict (cheap to send between processes) and never raises for a bad file: the
reason goes into the result so the run goes on and `status` can show it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from .audio import DecodeError
from .tags import read_tags


@dataclass(frozen=True)
class Task:
    path: str
    model: str  # a model file, or "mfcc"
    known_hash: str | None = None  # content hash already embedded by this model, if any


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


def analyse(task: Task) -> dict:
    result = {"path": task.path, "size": None, "mtime": None}
    try:
        st = os.stat(task.path)
        result.update(size=st.st_size, mtime=st.st_mtime)
        digest = content_hash(task.path)
    except FileNotFoundError:
        return {**result, "status": "failed", "error": "file not found (deleted while indexing?)"}
    except IsADirectoryError:
        return {**result, "status": "failed", "error": "is a directory, not an audio file"}
    except OSError as e:
        return {**result, "status": "failed", "error": f"cannot read file: {e.strerror or e}"}
    if digest == task.known_hash:
        return {**result, "status": "unchanged", "content_hash": digest}
    try:
        emb = embedder(task.model).embed_file(task.path)
    except DecodeError as e:
        return {**result, "status": "failed", "error": e.reason}
    return {**result, "status": "ok", "content_hash": digest, "duration": emb.duration,
            "excerpted": emb.excerpted, "tags": read_tags(task.path), "vector": emb.vector,
            "segments": emb.segments, "segment_starts": emb.segment_starts,
            "model_id": embedder(task.model).model_id}
