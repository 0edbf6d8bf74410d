"""Transcoding for players on small links: a track re-encoded by PyAV (FFmpeg) as it is sent.

What is sent is decided by `plan` from what the request asks (Subsonic's `format`,
`maxBitRate`, `timeOffset`) and the user's defaults (`songspace user stream`):
- `format=raw`, or nothing asked: the original file, byte for byte (streaming.py, with ranges).
- a format the file already has, at a bit rate within `maxBitRate`: the original too.
- otherwise the file is decoded and encoded to `mp3` (LAME), `opus` (in Ogg) or `aac` (ADTS),
  the ones this FFmpeg build can encode (`available`), at the asked bit rate (kbit/s; 0 means
  no limit, so the user's default applies), starting `timeOffset` seconds in.
A format that is unknown or missing from the FFmpeg build is an `InputError` naming it: the
Subsonic face answers it as an error in its envelope, never a 500.

Bounded per stream: one decoder and one encoder thread, one decoded frame at a time, encoded
bytes handed on in chunks of about `CHUNK` as they come (the client's reading paces the work),
and at most `SLOTS.limit` transcodes at once in the process: one more is refused (`Busy`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi.responses import Response, StreamingResponse

from ..errors import InputError, SongspaceError

log = logging.getLogger("songspace")

CHUNK = 32 * 1024


# ---------------------------------------------------------------------------------------------
# Targets: what can be asked for
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str  # as a Subsonic client asks for it (`format=`)
    codec: str  # FFmpeg's encoder
    container: str  # FFmpeg's muxer: all three can be written without seeking back
    content_type: str
    suffix: str
    default_kbps: int  # when no bit rate is asked
    min_kbps: int  # the encoder's useful range: an asked rate is clamped into it
    max_kbps: int
    same_as: tuple[str, ...]  # file suffixes already in this format


TARGETS = {
    "mp3": Target("mp3", "libmp3lame", "mp3", "audio/mpeg", "mp3", 192, 32, 320, (".mp3",)),
    "opus": Target("opus", "libopus", "ogg", "audio/ogg", "opus", 128, 12, 256, (".opus",)),
    "aac": Target("aac", "aac", "adts", "audio/aac", "aac", 192, 32, 320, (".aac",)),
}
DEFAULT_FORMAT = "mp3"  # when only a bit rate is asked: every player plays it


@cache
def available(name: str) -> bool:
    """Whether this FFmpeg build can encode the target `name`."""
    import av

    try:
        av.codec.Codec(TARGETS[name].codec, "w")
        av.format.ContainerFormat(TARGETS[name].container, "w")
    except Exception:  # noqa: BLE001 (an FFmpeg without it raises one of several errors)
        return False
    return True


def formats() -> list[str]:
    """The targets this server can transcode to."""
    return [name for name in TARGETS if available(name)]


def target(name: str) -> Target:
    """The target named `name`; InputError when unknown or not in this FFmpeg build."""
    found = TARGETS.get(name.strip().lower())
    if found is None:
        raise InputError(f"format {name[:40]!r} is not one this server transcodes to (it can: "
                         f"{', '.join(formats()) or 'none'}; raw sends the original)", param="format")
    if not available(found.name):
        raise InputError(f"format {found.name!r}: this server's FFmpeg has no {found.codec} encoder (it can: "
                         f"{', '.join(formats()) or 'none'}; raw sends the original)", param="format")
    return found


# ---------------------------------------------------------------------------------------------
# The plan: original bytes or a transcode, and how
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Defaults:
    """A user's stream defaults (None: none set)."""
    max_bit_rate: int | None = None  # kbit/s
    format: str | None = None


@dataclass(frozen=True)
class Plan:
    target: Target
    kbps: int
    offset: float = 0.0  # seconds into the track


def source_kbps(size: int | None, duration: float | None) -> int | None:
    """The file's mean bit rate (what the song entries say), None when unknown."""
    return int(size * 8 / duration / 1000) if size and duration else None


def plan(suffix: str, kbps: int | None, format: str | None = None, max_bit_rate: int = 0,
         offset: float = 0.0, defaults: Defaults = Defaults()) -> Plan | None:
    """What to send for a file with this `suffix` (".flac") and bit rate `kbps`: None for the
    original bytes, else a Plan. `max_bit_rate` 0 (no limit asked) falls back to the user's
    default; a `format` of "raw" always sends the original; a time offset needs a transcode,
    since an offset inside a compressed file is not a byte position (players seek the original
    with byte ranges)."""
    asked = (format or "").strip().lower()
    if asked == "raw":
        return None
    if not 0 <= offset < 1e7:  # `not` also catches NaN
        raise InputError(f"timeOffset must be seconds from the start, not {offset!r}", param="timeOffset")
    suffix = suffix.lower()
    limit = max_bit_rate if max_bit_rate > 0 else (defaults.max_bit_rate or 0)
    fits = kbps is not None and (limit == 0 or kbps <= limit)
    if asked and asked not in TARGETS and asked != suffix.lstrip("."):
        target(asked)  # unknown: InputError, before anything is read
    name = asked if asked in TARGETS else defaults.format  # "flac" for a .flac asks for nothing
    if name is None:
        if offset == 0 and (limit == 0 or fits):
            return None
        name = DEFAULT_FORMAT
    chosen = target(name)
    if suffix in chosen.same_as and offset == 0 and (limit == 0 or fits):
        return None  # already what was asked for: the original bytes
    wanted = limit or chosen.default_kbps
    if kbps is not None:
        wanted = min(wanted, max(kbps, chosen.min_kbps))  # a small file is not inflated
    return Plan(chosen, min(max(wanted, chosen.min_kbps), chosen.max_kbps), float(offset))


def transcoded_fields(suffix: str, kbps: int | None, defaults: Defaults) -> dict:
    """`transcodedContentType` / `transcodedSuffix` for a song entry, when a plain `stream` by
    this user (their defaults, nothing asked) would transcode it; else nothing."""
    try:
        p = plan(suffix, kbps, defaults=defaults)
    except InputError:  # a default format this build lacks: streams would say so
        return {}
    return {} if p is None else {"transcodedContentType": p.target.content_type, "transcodedSuffix": p.target.suffix}


# ---------------------------------------------------------------------------------------------
# How many at once
# ---------------------------------------------------------------------------------------------


class Busy(SongspaceError):
    """Every transcode slot is taken."""


class Slots:
    """At most `limit` transcodes at once; a slot is taken without waiting or refused."""

    def __init__(self, limit: int):
        self.limit = limit
        self._held = 0
        self._lock = threading.Lock()

    def take(self) -> None:
        with self._lock:
            if self._held >= self.limit:
                raise Busy(f"the server is already transcoding {self.limit} streams, its limit: try again "
                           f"shortly, or ask for the original (format=raw)")
            self._held += 1

    def give(self) -> None:
        with self._lock:
            self._held = max(self._held - 1, 0)

    @property
    def held(self) -> int:
        with self._lock:
            return self._held


MAX_TRANSCODES_ENV = "SONGSPACE_MAX_TRANSCODES"


def slot_limit(value: str | None) -> int:
    """How many transcodes at once: `value` ($SONGSPACE_MAX_TRANSCODES), a whole number from 1;
    unset or empty, the machine's cores (at least 2): each transcode keeps about one core busy
    while a client reads fast, and more at once than cores would slow every stream below real
    time. InputError naming the variable for anything else (a typo is not silently a limit)."""
    text = (value or "").strip()
    if not text:
        return max(2, os.cpu_count() or 2)
    if not (text.isascii() and text.isdecimal()) or int(text) < 1:
        raise InputError(f"{MAX_TRANSCODES_ENV}={text[:40]!r}: expected how many transcodes may run at once, "
                         "a whole number from 1 (or unset: the machine's cores)")
    return int(text)


# The machine's cores until the app reads the environment (configure: an error there is the
# server's start failing with the variable named, not a traceback at import)
SLOTS = Slots(slot_limit(None))


def configure() -> None:
    """Set SLOTS' limit from $SONGSPACE_MAX_TRANSCODES (create_app calls it); InputError as slot_limit."""
    SLOTS.limit = slot_limit(os.environ.get(MAX_TRANSCODES_ENV))


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


class _Sink:
    """A write-only file for the muxer: bytes collect here until handed on. It has no `seek`,
    so FFmpeg writes a stream it never goes back into."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, b) -> int:
        self.parts.append(bytes(b))
        self.size += len(b)
        return len(b)

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts, self.size = [], 0
        return out


def _rate(rates, source_rate: int) -> int:
    """The source's rate when the encoder takes it, else the nearest it takes below (not under 32 kHz)."""
    if not rates:
        return source_rate
    if source_rate in rates:
        return source_rate
    lower = [r for r in rates if r <= source_rate]
    return max(lower) if lower and max(lower) >= 32000 else (48000 if 48000 in rates else max(rates))


def _trim(frame, skip: int):
    """`frame` without its first `skip` samples (the seek lands on a packet before the offset)."""
    import av

    arr = frame.to_ndarray()
    channels = len(frame.layout.channels)
    arr = arr[:, skip:] if frame.format.is_planar else arr[:, skip * channels:]
    out = av.AudioFrame.from_ndarray(arr.copy(), format=frame.format.name, layout=frame.layout.name)
    out.sample_rate = frame.sample_rate
    return out


def _encode(inp, p: Plan) -> Iterator[bytes]:
    """The encoded bytes of `inp` (an open container) as `p` says, in chunks of about CHUNK."""
    import av

    source = inp.streams.audio[0]
    source.codec_context.thread_count = 1
    sink = _Sink()
    out = av.open(sink, "w", format=p.target.container)
    try:
        codec = av.codec.Codec(p.target.codec, "w")
        stream = out.add_stream(p.target.codec, rate=_rate(codec.audio_rates, source.rate or 44100))
        stream.bit_rate = p.kbps * 1000
        stream.layout = "mono" if (source.channels or 2) == 1 else "stereo"
        stream.codec_context.thread_count = 1
        if p.target.name == "opus":  # held to the asked rate, as a cap (unconstrained VBR overshoots it)
            stream.codec_context.options = {"vbr": "constrained"}
        if p.offset > 0:
            inp.seek(int(p.offset * av.time_base), backward=True)  # lands at or before it
        for frame in inp.decode(source):
            if p.offset > 0 and frame.time is not None:
                ahead = round((p.offset - frame.time) * frame.sample_rate)
                if ahead >= frame.samples:
                    continue
                if ahead > 0:
                    frame = _trim(frame, ahead)
            frame.pts = None  # the encoder counts samples itself
            for packet in stream.encode(frame):
                out.mux(packet)
            if sink.size >= CHUNK:
                yield sink.take()
        for packet in stream.encode(None):
            out.mux(packet)
        out.close()
        out = None
        if sink.size:
            yield sink.take()
    finally:
        if out is not None:
            out.close()


class Transcode:
    """One running transcode: an iterator of encoded chunks. It holds a slot from creation until
    it ends, is closed, or is dropped (a client that went away), whichever comes first."""

    def __init__(self, path: Path, p: Plan, slots: Slots = SLOTS):
        import av

        self._done, self._gen, self._input = True, None, None
        slots.take()
        self._slots, self._done = slots, False
        try:
            self._input = av.open(str(path))
            if not self._input.streams.audio:
                raise InputError(f"{path.name}: has no audio stream to transcode", param="id")
        except av.FFmpegError as e:
            self.close()
            raise InputError(f"{path.name}: cannot be decoded for transcoding ({e})", param="id") from None
        except BaseException:
            self.close()
            raise
        self._gen = _encode(self._input, p)  # holds no reference to self: dropping self ends it

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        if self._done:
            raise StopIteration
        try:
            return next(self._gen)
        except StopIteration:
            self.close()
            raise
        except Exception as e:  # noqa: BLE001 (a file that breaks mid-way: the stream ends where it broke)
            log.warning("songspace: transcoding stopped: %s", e)
            self.close()
            raise StopIteration from None

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            if self._gen is not None:
                self._gen.close()
            if self._input is not None:
                self._input.close()
        finally:
            self._slots.give()

    def __del__(self):
        self.close()


def transcoded_response(path: Path, p: Plan, slots: Slots = SLOTS) -> StreamingResponse:
    """The track encoded as `p` says, sent as it is encoded (no length known ahead, no ranges)."""
    chunks = Transcode(path, p, slots)
    return StreamingResponse(chunks, media_type=p.target.content_type, headers={"Accept-Ranges": "none"})


def head_response(p: Plan) -> Response:
    """What a HEAD of the transcode `p` answers: the GET's headers without starting it (no slot,
    no decoder) and without a Content-Length, which a transcode does not know ahead."""
    head = Response(media_type=p.target.content_type, headers={"Accept-Ranges": "none"})
    del head.headers["content-length"]  # Starlette writes 0 for an empty body: not the GET's length
    return head
