"""Analyse one file: hash, tags, decode, embed. Runs in worker processes (local, or Ray's).

Returns an `Analysis` (cheap to send between processes) and never raises for a bad file: the
reason goes into the result so the run goes on and `status` can show it.

Each file is read from disk once: it is opened once, and the decoder, the tag reader and the
content hash all read through that one open (`OneRead`). The hash is taken from the bytes as the
decoder streams them, so memory stays bounded for a 3-hour file; only what the decoder skipped
(the parts between a long track's windows) is read afterwards, for the hash alone. A file whose
bytes came from elsewhere (a Ray worker on a machine without the music's mount, a bucket) goes
through `analyse_bytes`, which reads them from memory through the very same steps, so both
routes give the same vector.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import socket
import stat
import tempfile
from dataclasses import dataclass, field

import numpy as np

from .audio import Audio, degenerate, load
from .errors import DecodeError
from .method import embedder
from .scan import not_a_file
from .status import Outcome
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
    # The track was embedded before the timbre companion: if the file is unchanged, its timbre
    # Gaussian alone is computed (decode + log-mel, no CNN) and returned with UNCHANGED or RETAGGED.
    timbre_only: bool = False


@dataclass(frozen=True)
class Analysis:
    """What analysing one file gave. `status` (status.Outcome): OK (embedded), UNCHANGED (same
    content as the embedding already stored: nothing else is filled in), FAILED (`error` says
    why: the file is to blame, and it is retried once it changes), SILENT or TOO_SHORT (decoded,
    but no music to compare: `error` says why, no vector; audio.degenerate), SKIPPED (`error`
    says why: this run could not get at it, say no worker could read it; reported, not
    recorded, retried by the next run) or DECODED (`Task.decode_only`: `audio` holds the track,
    not yet embedded) or RETAGGED (the same audio as the embedding stored, by `audio_hash`, or
    `Task.tags_only`: only `tags` read)."""

    path: str
    status: Outcome
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
    timbre: bytes | None = None  # the packed timbre Gaussian (timbre.pack): OK, or a Task.timbre_only


class OneRead(io.RawIOBase):
    """A binary file read once by several readers (decoder, tag reader) with its content hash
    taken on the way: bytes extending what has been hashed so far go into the hash as they pass;
    `digest()` reads only the rest. Seekable, as PyAV and mutagen need; `name` names the file
    (decoders guess formats by its suffix, errors name it)."""

    def __init__(self, f, name: str):
        super().__init__()
        self.f, self.name = f, name
        # The catalog's content_hash: BLAKE2b-128 of the whole file. Bytes [0, hashed) are in it.
        self.hash, self.hashed = hashlib.blake2b(digest_size=16), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        start = self.f.tell()
        n = self.f.readinto(b) or 0
        if start <= self.hashed < start + n:
            self.hash.update(memoryview(b)[self.hashed - start : n])
            self.hashed = start + n
        return n

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.f.seek(offset, whence)

    def tell(self) -> int:
        return self.f.tell()

    def digest(self, chunk: int = 1 << 20) -> str:
        """The content hash of the whole file, reading what no reader has passed over yet."""
        self.f.seek(self.hashed)
        while block := self.f.read(chunk):
            self.hash.update(block)
            self.hashed += len(block)
        return self.hash.hexdigest()


class PacketHash:
    """tags.audio_hash taken from the packets as the decoder demuxes them (audio.load's
    `packets`): the same BLAKE2b-128 of the non-empty packets; `ended` once the demuxer's final
    empty packet has passed, so a hash of a stream that broke off is never taken for the whole."""

    def __init__(self):
        self.hash, self.ended = hashlib.blake2b(digest_size=16), False

    def __call__(self, packet) -> None:
        self.ended = not packet.size
        if packet.size:
            self.hash.update(packet)

    def hexdigest(self) -> str:
        return self.hash.hexdigest()


def unreadable(e: OSError) -> str:
    """Why a file could not be read, in the words the catalog records."""
    if isinstance(e, FileNotFoundError):
        return "file not found (deleted while indexing?)"
    if isinstance(e, IsADirectoryError):
        return "is a directory, not an audio file"
    return f"cannot read file: {e.strerror or e}"


def analyse(task: Task) -> Analysis:
    """Analyse the file at `task.path`, opened once."""
    path = task.path
    try:
        # O_NONBLOCK: a FIFO put there since the scan must not block open(); regular files ignore it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        return Analysis(path, Outcome.FAILED, error=unreadable(e))
    with contextlib.ExitStack() as stack:
        stack.callback(os.close, fd)
        try:
            st = os.fstat(fd)
        except OSError as e:
            return Analysis(path, Outcome.FAILED, error=unreadable(e))
        if not stat.S_ISREG(st.st_mode):
            return Analysis(path, Outcome.FAILED, error=not_a_file(path) or "is not a regular file")
        f = open(fd, "rb", buffering=0, closefd=False)  # the decoder reads large blocks itself
        return analyse_file(task, OneRead(f, path), st.st_size, st.st_mtime)


def analyse_bytes(task: Task, data: bytes) -> Analysis:
    """Analyse a file whose bytes came from elsewhere, from memory, by the steps `analyse` takes;
    the result names `task.path` with the size and mtime the sender saw (`task.size`, `task.mtime`)."""
    size = task.size if task.size is not None else len(data)
    return analyse_file(task, OneRead(io.BytesIO(data), task.path), size, task.mtime)


def analyse_file(task: Task, source: OneRead, size: int, mtime: float | None) -> Analysis:
    """Hash, decode, tag and embed one file, every step reading through `source`."""
    path = task.path
    try:
        if task.known_hash is not None:  # maybe only touched: hash first, and decode only if it changed
            if (digest := source.digest()) == task.known_hash:
                blob = timbre_of(task, source) if task.timbre_only else None
                if task.tags_only:  # a newer tag reader: the same audio, its tags read again
                    return Analysis(path, Outcome.RETAGGED, size, mtime, content_hash=digest,
                                    audio_hash=audio_hash(source), tags=read_tags(source), timbre=blob)
                return Analysis(path, Outcome.UNCHANGED, size, mtime, content_hash=digest, timbre=blob)
        sound, packets = None, PacketHash()
        if task.known_audio_hash is not None:
            # Embedded before: are these the same audio packets without the tags (tags.audio_hash)?
            # Then a tag editor rewrote the file, and only its tags are read. A demux of its own,
            # through the same open; a file never embedded has its packets hashed as it decodes.
            sound = audio_hash(source)
            if sound is not None and sound == task.known_audio_hash:
                return Analysis(path, Outcome.RETAGGED, size, mtime, content_hash=source.digest(),
                                audio_hash=sound, tags=read_tags(source),
                                timbre=timbre_of(task, source) if task.timbre_only else None)
        a = load(source, sr=embedder(task.model).sr, packets=None if sound is not None else packets)
        if sound is None:  # decoded in windows, or the stream broke off: demux it all, as tags.audio_hash does
            sound = packets.hexdigest() if packets.ended and not a.excerpted else audio_hash(source)
    except DecodeError as e:
        return Analysis(path, Outcome.FAILED, size, mtime, error=e.reason)
    except OSError as e:  # the hash's own reading failed
        return Analysis(path, Outcome.FAILED, size, mtime, error=unreadable(e))
    tags = read_tags(source)
    try:
        digest = source.digest()
    except OSError as e:
        return Analysis(path, Outcome.FAILED, size, mtime, error=unreadable(e))
    if (judged := degenerate(a)) is not None:  # silent, too short: recorded as such, never embedded
        status, reason = judged
        return Analysis(path, Outcome(status), size, mtime, error=reason, content_hash=digest, duration=a.duration,
                        tags=tags, audio_hash=sound)
    if task.decode_only:
        return Analysis(path, Outcome.DECODED, size, mtime, content_hash=digest, duration=a.duration, tags=tags,
                        audio=a, audio_hash=sound)
    emb = embedder(task.model).embed_audios([a])[0]
    return Analysis(path, Outcome.OK, size, mtime, content_hash=digest, duration=emb.duration, tags=tags,
                    model_id=embedder(task.model).model_id, vector=emb.vector, segments=emb.segments,
                    segment_starts=emb.segment_starts, audio_hash=sound, timbre=emb.timbre)


def timbre_of(task: Task, source: OneRead) -> bytes | None:
    """The timbre Gaussian of a file already embedded: decoded as for embedding, the log-mel and
    no CNN. None for a method without a log-mel, or when the decode fails now: the track and its
    embedding stay as they are (search keeps ranking by cosine, `status` counts it)."""
    e = embedder(task.model)
    if not hasattr(e, "timbre_of"):
        return None
    try:
        source.seek(0)
        return e.timbre_of(load(source, sr=e.sr).y)
    except DecodeError:
        return None


def temp_prefix() -> str:
    """The start of the name of every temporary file or folder a worker makes: the node and the
    worker's pid, so that `remove_stale_temp_files` can tell those of workers that are gone."""
    return f"songspace-{socket.gethostname()}_{os.getpid()}_"  # "_": never in a host name


def remove_stale_temp_files() -> None:
    """Remove this node's songspace temporary files and folders whose process is gone: a Ray
    worker killed leaves its copy of the model.
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
