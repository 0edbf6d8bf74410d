"""Analyse one file: hash, tags, decode, embed. Runs in worker processes (local, or Ray's).

Returns an `Analysis` (cheap to send between processes) and never raises for a bad file: the
reason goes into the result so the run goes on and `status` can show it. A file whose bytes
came from elsewhere (a Ray worker on a machine without the music's mount, a bucket) goes
through `analyse_bytes`, which lands them in a temporary file and runs the very same steps, so
both routes give the same vector.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import stat
import tempfile
from dataclasses import dataclass, field, replace

import numpy as np

from .audio import Audio, degenerate, load
from .errors import DecodeError
from .method import embedder
from .scan import not_a_file
from .tags import audio_hash, read_tags


@dataclass(frozen=True)
class Task:
    path: str
    model: str  # the embedding method's canonical name (method.py)
    known_hash: str | None = None  # content hash already embedded by this model, if any
    # What the planner saw (None: unknown). A worker on another machine compares them with the
    # file at `path` there, to tell the same file from a different one or none.
    size: int | None = None
    mtime: float | None = None
    # Decode only: the result carries the audio, for a GPU in the parent to embed (gpu.py).
    decode_only: bool = False
    # Tags: the hash of the audio alone already embedded (tags.audio_hash): a file whose bytes
    # changed but whose audio did not (a tag editor rewrote it) only has its tags read again.
    known_audio_hash: str | None = None
    tags_only: bool = False  # the file is unchanged, its tags are to be read again (a newer tag reader)


@dataclass(frozen=True)
class Analysis:
    """What analysing one file gave. `status`: "ok" (embedded), "unchanged" (same content as
    the embedding already stored: nothing else is filled in), "failed" (`error` says why: the
    file is to blame, and it is retried once it changes), "silent" or "too_short" (decoded, but
    no music to compare: `error` says why, no vector; audio.degenerate) or "skipped" (`error` says why: this
    run could not get at it, say no worker could read it; reported, not recorded, retried by
    the next run) or "decoded" (`Task.decode_only`: `audio` holds the track, not yet embedded)."""

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
    audio: Audio | None = None
    audio_hash: str | None = None


def content_hash(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def unreadable(e: OSError) -> str:
    """Why a file could not be read, in the words the catalog records."""
    if isinstance(e, FileNotFoundError):
        return "file not found (deleted while indexing?)"
    if isinstance(e, IsADirectoryError):
        return "is a directory, not an audio file"
    return f"cannot read file: {e.strerror or e}"


def analyse(task: Task) -> Analysis:
    path = task.path
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):  # replaced by a FIFO since the scan: open() would block
            return Analysis(path, "failed", error=not_a_file(path) or "is not a regular file")
        digest = content_hash(path)
    except OSError as e:
        return Analysis(path, "failed", error=unreadable(e))
    size, mtime = st.st_size, st.st_mtime
    if task.tags_only and digest == task.known_hash:  # (changed after all: analysed as any changed file)
        return Analysis(path, "retagged", size, mtime, content_hash=digest,
                        audio_hash=audio_hash(path), tags=read_tags(path))
    if digest == task.known_hash:
        return Analysis(path, "unchanged", size, mtime, content_hash=digest)
    sound = audio_hash(path)
    if sound is not None and sound == task.known_audio_hash:
        return Analysis(path, "retagged", size, mtime, content_hash=digest, audio_hash=sound, tags=read_tags(path))
    try:
        a = load(path, sr=embedder(task.model).sr)
    except DecodeError as e:
        return Analysis(path, "failed", size, mtime, error=e.reason)
    if (judged := degenerate(a)) is not None:  # silent, too short: recorded as such, never embedded
        status, reason = judged
        return Analysis(path, status, size, mtime, error=reason, content_hash=digest, duration=a.duration,
                        tags=read_tags(path), audio_hash=sound)
    if task.decode_only:
        return Analysis(path, "decoded", size, mtime, content_hash=digest, duration=a.duration,
                        tags=read_tags(path), audio=a, audio_hash=sound)
    emb = embedder(task.model).embed_audios([a])[0]
    return Analysis(path, "ok", size, mtime, content_hash=digest, duration=emb.duration, tags=read_tags(path),
                    model_id=embedder(task.model).model_id, vector=emb.vector, segments=emb.segments,
                    segment_starts=emb.segment_starts, audio_hash=sound)


def analyse_bytes(task: Task, data: bytes) -> Analysis:
    """Analyse a file whose bytes came from elsewhere. They are written to a temporary file with
    the same suffix, so decoders and tag readers meet a file as they would at home, and the
    result names `task.path` with the size and mtime the sender saw (`task.size`, `task.mtime`)."""
    suffix = os.path.splitext(task.path)[1]
    with tempfile.NamedTemporaryFile(prefix=temp_prefix(), suffix=suffix) as f:
        f.write(data)
        f.flush()
        r = analyse(Task(f.name, task.model, task.known_hash, known_audio_hash=task.known_audio_hash,
                         tags_only=task.tags_only))
    size = task.size if task.size is not None else len(data)
    return replace(r, path=task.path, size=size, mtime=task.mtime)


def temp_prefix() -> str:
    """The start of the name of every temporary file or folder a worker makes: the node and the
    worker's pid, so that `remove_stale_temp_files` can tell those of workers that are gone."""
    return f"songspace-{socket.gethostname()}_{os.getpid()}_"  # "_": never in a host name


def remove_stale_temp_files() -> None:
    """Remove this node's songspace temporary files and folders whose process is gone: a Ray
    worker killed mid-file leaves the sent file (up to `ship_below` bytes) and its model copy.
    Those of a live process, or of another node sharing the folder, are left alone."""
    mine = f"songspace-{socket.gethostname()}_"
    with os.scandir(tempfile.gettempdir()) as entries:
        for entry in entries:
            pid = entry.name[len(mine):].split("_", 1)[0] if entry.name.startswith(mine) else ""
            if pid.isdigit() and not process_alive(int(pid)):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal sent: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's
        pass
    return True
