"""Indexing with a GPU: worker processes decode (hash, tags, audio), this process embeds.

A GPU is fast only on batches of hundreds of patches, more than one track has, and CUDA belongs
in one process. So with a GPU the indexer's executor (indexing/executors.py: `OnGpu`) asks its
workers for decoded audio (`Task.decode_only`) and passes their results through
`embed_in_batches`, which embeds the patches of several files per batch and hands on results of
the same form the CPU path gives.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import replace

from .analysis import Analysis
from .errors import InputError
from .status import Outcome


def embedding_device(requested: str = "auto") -> str | None:
    """The torch device this process embeds on, or None where the workers embed on CPU
    ("auto": a CUDA GPU if torch sees one). Torch is imported only where a GPU may exist."""
    requested = (requested or "auto").strip().lower()
    if requested == "cpu":
        return None
    if requested != "auto" and not requested.startswith("cuda"):
        raise InputError(f"device {requested!r}: expected auto, cpu, cuda or cuda:N", param="device")
    if not os.path.exists("/proc/driver/nvidia/version") and requested == "auto":
        return None  # no NVIDIA driver: a CPU-only machine never pays for importing torch here
    import torch

    if not torch.cuda.is_available():
        if requested == "auto":
            return None
        raise InputError(f"device {requested}: torch sees no CUDA GPU here (a CPU-only torch, or no driver)",
                         param="device")
    return requested if requested != "auto" else "cuda"


def embed_in_batches(results: Iterable[Analysis], model: str, device: str,
                     max_patches: int = 1024) -> Iterator[Analysis]:
    """Embed the "decoded" results `max_patches` patches at a time (of as many files as that
    takes); every other result passes straight through."""
    import torch

    from .embedding import Embedder

    embedder = Embedder(model, device=torch.device(device))
    held, patches = [], 0
    try:
        for r in results:
            if r.status != Outcome.DECODED:
                yield r
                continue
            held.append(r)
            patches += len(embedder.patch_offsets(len(r.audio.y)))
            if patches >= max_patches:
                yield from _embed(held, embedder)
                held, patches = [], 0
        yield from _embed(held, embedder)
    finally:
        close = getattr(results, "close", None)
        if close is not None:  # an interrupted run stops its workers now
            close()


def _embed(held: list[Analysis], embedder) -> Iterator[Analysis]:
    if not held:
        return
    for r, e in zip(held, embedder.embed_audios([r.audio for r in held])):
        yield replace(r, status=Outcome.OK, audio=None, model_id=embedder.model_id, vector=e.vector,
                      segments=e.segments, segment_starts=e.segment_starts, timbre=e.timbre)
