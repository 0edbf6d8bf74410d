"""Any audio file -> mono float32 at one sample rate, with PyAV.

Memory policy (bounded by what we keep, never by the file):

- A track up to `max_seconds` long is decoded whole.
- A longer track is never held whole. We keep `n = max_seconds // window_seconds` windows of
  `window_seconds` each, spread evenly over the track (the first starts at 0, the last ends at the
  end; a single window sits in the middle). For each window we `container.seek(...)` to just before
  it and decode only that window; the windows are concatenated into `y` and `excerpted` is True.
- If seeking does not work for a file (it raises, or yields nothing), one sequential streaming pass
  keeps only the samples that fall inside the windows.
- If the duration is unknown (neither container nor stream declares one), we stream sequentially
  and keep at most the first `max_seconds`; if the track goes on past that, `excerpted` is True
  and `duration` is only what we read (a lower bound).

Decoding streams: decoded frames are mixed to mono and resampled to `sr` (`resample.py`) in
blocks of ~1.5 s of the source, so little of the source is in memory at once; at 16 kHz, 600 s
of kept audio is 38 MB.

Every failure (missing, unreadable, not audio, corrupt, truncated) raises `DecodeError`, whose
message names the file and a human reason, so a library scan can record it and carry on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np

from .errors import DecodeError
from .resample import Resampler
from .status import TrackStatus

AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".wav", ".aif", ".aiff",
     ".wma", ".webm", ".mka"}
)


@dataclass(frozen=True)
class Audio:
    y: np.ndarray  # mono float32, 1-D, at `sr`
    sr: int
    duration: float  # duration of the whole track in seconds (not just what was kept)
    excerpted: bool  # True when only windows spread over the track were kept
    window_starts: tuple[float, ...] = (0.0,)  # where each kept window begins in the track, seconds
    window_seconds: float | None = None  # length of each kept window; None: one continuous run
    nonfinite: int = 0  # samples the file held as NaN or infinity, kept as silence (0)

    def seconds_at(self, sample: int) -> float:
        """Where sample `sample` of `y` lies in the original track, in seconds."""
        if self.window_seconds is None:
            return sample / self.sr
        per_window = int(round(self.window_seconds * self.sr))
        k = min(sample // per_window, len(self.window_starts) - 1)
        return self.window_starts[k] + (sample - k * per_window) / self.sr


# ----------------------------------------------------------------------------------------------
# Public entry point


def load(path, sr: int = 16000, max_seconds: float = 600.0, window_seconds: float = 30.0,
         packets: Callable | None = None) -> Audio:
    """Decode `path` to mono float32 at `sr`, keeping at most ~`max_seconds` (see module docstring).
    `path` may also be a seekable binary file object already open (read from its start, named in
    errors by its `name`): the indexer reads each file through one open (analysis.py).
    `packets`: called with each audio packet demuxed when the file is decoded from its start (not
    when it is decoded in windows), the last one empty (size 0) when the stream ended: analysis.py
    takes the audio hash so, without demuxing the file a second time."""
    if hasattr(path, "read"):
        source, path = path, getattr(path, "name", "<bytes>")
        _check_open(source, path)
    else:
        _check_file(path)
        source = str(path)
    try:
        container = av.open(source, metadata_errors="ignore")
    except PermissionError:  # av.error.PermissionError is also a builtin PermissionError
        raise DecodeError(path, "permission denied") from None
    except av.error.FFmpegError as e:
        # No demuxer accepts these bytes (or the header is cut off, as in a truncated m4a).
        raise DecodeError(path, f"not a recognised audio format ({_why(e)})") from None
    except (OSError, ValueError) as e:
        raise DecodeError(path, f"cannot open file ({e})") from None

    with container:
        try:
            return _finite(_load_open(container, path, sr, max_seconds, window_seconds, packets))
        except DecodeError:
            raise
        except (av.error.FFmpegError, OSError, ValueError) as e:
            # Anything the specific handlers below did not expect still names the file.
            raise DecodeError(path, f"decoding failed ({_why(e)})") from None


def _finite(a: Audio) -> Audio:
    """NaN or infinite samples (a float WAV can hold them) become silence: one of them would
    make every feature, and so the track's vector, NaN."""
    bad = ~np.isfinite(a.y)
    n = int(np.count_nonzero(bad))
    return a if n == 0 else replace(a, y=np.where(bad, np.float32(0), a.y), nonfinite=n)


# ----------------------------------------------------------------------------------------------
# Audio that is not music to compare: a status of its own in the catalog, never a vector

MIN_SECONDS = 1.0  # shorter is a click, not a track: a third of one ~3 s patch of the model
SILENCE_DBFS = -60.0  # no sample further than this from the track's mean (its DC offset) is silence
SILENT, TOO_SHORT = TrackStatus.SILENT, TrackStatus.TOO_SHORT  # the catalog's statuses for them


def degenerate(a: Audio) -> tuple[str, str] | None:
    """(status, reason) when decoded audio is no music to compare (`SILENT` or `TOO_SHORT`),
    else None. A silent track's vector would be the model's answer to nothing, near every
    other silent track and somewhere arbitrary among the music."""
    if a.duration < MIN_SECONDS or len(a.y) < 2:
        return TOO_SHORT, f"too short: {a.duration:.2f} s of audio, under the {MIN_SECONDS:g} s a track needs"
    mean = float(a.y.mean(dtype=np.float64))
    peak = max(float(a.y.max()) - mean, mean - float(a.y.min()))  # no copy of a long track
    quiet = 10 ** (SILENCE_DBFS / 20)
    if peak <= quiet:
        level = "only a constant (DC) offset" if abs(mean) > quiet else f"no sound above {SILENCE_DBFS:g} dBFS"
        nan = f"; {a.nonfinite} samples were not numbers (NaN or infinite)" if a.nonfinite else ""
        kept = " in the parts analysed" if a.excerpted else ""
        return SILENT, f"silent: {level}{kept}{nan}"
    return None


def _check_file(path) -> None:
    """Cheap checks first, so the common failures get precise reasons rather than FFmpeg's."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise DecodeError(path, "file not found") from None
    except PermissionError:
        raise DecodeError(path, "permission denied") from None
    except OSError as e:
        raise DecodeError(path, f"cannot stat file ({e.strerror or e})") from None
    if p.is_dir():
        raise DecodeError(path, "is a directory, not an audio file")
    if st.st_size == 0:
        raise DecodeError(path, "empty file (0 bytes)")
    if not os.access(p, os.R_OK):
        raise DecodeError(path, "permission denied")


def _check_open(f, path) -> None:
    """The checks of `_check_file` left for a file already open (it exists and is readable)."""
    if f.seek(0, os.SEEK_END) == 0:
        raise DecodeError(path, "empty file (0 bytes)")
    f.seek(0)


def _why(e: Exception) -> str:
    """FFmpeg's own words for an error, without the file name PyAV appends."""
    return getattr(e, "strerror", None) or str(e)


def _load_open(container, path, sr, max_seconds, window_seconds, packets=None) -> Audio:
    if not container.streams.audio:
        raise DecodeError(path, "no audio stream")
    stream = container.streams.audio[0]
    duration = _declared_duration(container, stream)

    if duration is not None and duration > max_seconds:
        window_seconds = min(window_seconds, max_seconds)
        n = max(1, int(max_seconds // window_seconds))
        starts = _window_starts(duration, n, window_seconds)
        y = _decode_windows(container, stream, path, sr, starts, window_seconds)
        return Audio(y=y, sr=sr, duration=duration, excerpted=True, window_starts=tuple(starts),
                     window_seconds=window_seconds)

    # Decode whole. Allow a little past max_seconds for a slightly short declared duration; if
    # the file runs on far beyond what it declared (or declares nothing), stop at max_seconds.
    slack = max_seconds if duration is None else 1.05 * max_seconds + 5.0
    y, complete = _decode_head(container, stream, path, sr, int(round(slack * sr)), packets)
    decoded = len(y) / sr
    if not complete:
        y = y[: int(round(max_seconds * sr))]
        return Audio(y=y, sr=sr, duration=max(decoded, duration or 0.0), excerpted=True)
    if duration is not None and decoded < 0.9 * duration - 1.0:
        raise DecodeError(path, f"truncated: decoded {decoded:.1f}s of {duration:.1f}s declared")
    # Whole track decoded: what we got is the truth (mp3 durations without a header are guesses).
    return Audio(y=y, sr=sr, duration=decoded, excerpted=False)


def _declared_duration(container, stream) -> float | None:
    """Seconds the file says it lasts, or None. The stream's figure is exact more often."""
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None


def _window_starts(duration: float, n: int, window_seconds: float) -> list[float]:
    """Evenly spread window starts: first at 0, last ending at `duration`; one window is centred."""
    if n == 1:
        return [max(0.0, (duration - window_seconds) / 2)]
    span = max(0.0, duration - window_seconds)
    return [span * i / (n - 1) for i in range(n)]


# ----------------------------------------------------------------------------------------------
# Decoding: frames -> resampler -> float32 chunks


def _native_mono_converter(rate: int) -> av.AudioResampler:
    """FFmpeg's converter to mono float at the source's own rate, for the sample formats and
    channel layouts `_mono_block` does not handle itself (surround downmix matrices, u8)."""
    return av.AudioResampler(format="flt", layout="mono", rate=rate, frame_size=4096)


# Sample formats read directly (numpy dtype, scale to [-1, 1)), as FFmpeg converts them to float.
_SAMPLE_FORMATS = {"fltp": ("<f4", 1.0), "flt": ("<f4", 1.0), "dblp": ("<f8", 1.0), "dbl": ("<f8", 1.0),
                   "s16p": ("<i2", 2.0**-15), "s16": ("<i2", 2.0**-15),
                   "s32p": ("<i4", 2.0**-31), "s32": ("<i4", 2.0**-31)}
_BLOCK = 1 << 16  # source samples per resampling step: large for BLAS, small for memory


def _mono_block(frames: list, converter) -> np.ndarray:
    """Mono float32 samples of consecutive decoded frames of one format, layout and rate.
    Mono and stereo in the common sample formats are read straight from the frames' planes
    (PyAV's per-frame conversion cost as much as decoding); stereo is mixed as FFmpeg does,
    (left + right) / sqrt(2)."""
    if converter is not None:
        out = [o.to_ndarray().reshape(-1) for f in frames for o in converter.resample(f)]
        return np.concatenate(out) if out else np.zeros(0, np.float32)
    first = frames[0]
    dtype, scale = _SAMPLE_FORMATS[first.format.name]
    channels = first.layout.nb_channels
    planar = first.format.is_planar
    width = first.format.bytes * (1 if planar else channels)
    planes = [b"".join([memoryview(f.planes[c])[: f.samples * width] for f in frames])
              for c in range(channels if planar else 1)]
    x = [np.frombuffer(p, dtype) for p in planes]
    if not planar and channels == 2:
        x = [x[0][0::2], x[0][1::2]]
    y = x[0].astype(np.float32)  # a copy: frombuffer's arrays are read-only
    if len(x) == 2:
        y += x[1]
        scale *= np.sqrt(0.5)
    if scale != 1.0:
        y *= np.float32(scale)
    return y


class _MonoStream:
    """Frames of one sample format, channel count and rate -> mono float32 at `sr`, in blocks."""

    def __init__(self, frame, sr: int):
        self.kind = _kind(frame)
        direct = frame.format.name in _SAMPLE_FORMATS and frame.layout.nb_channels <= 2
        self.converter = None if direct else _native_mono_converter(frame.sample_rate)
        self.resampler = Resampler(frame.sample_rate, sr)
        self.held, self.held_samples = [], 0

    def add(self, frame) -> np.ndarray | None:
        self.held.append(frame)
        self.held_samples += frame.samples
        return self._drain() if self.held_samples >= _BLOCK else None

    def finish(self) -> np.ndarray:
        out = [self._drain()]
        if self.converter is not None:
            tail = [o.to_ndarray().reshape(-1) for o in self.converter.resample(None)]
            out += [self.resampler.process(t) for t in tail]
        return np.concatenate(out + [self.resampler.flush()])

    def _drain(self) -> np.ndarray:
        if not self.held:
            return np.zeros(0, np.float32)
        y = self.resampler.process(_mono_block(self.held, self.converter))
        self.held, self.held_samples = [], 0
        return y


def _kind(frame) -> tuple:
    return frame.format.name, frame.layout.nb_channels, frame.sample_rate


def _resampled(frames, sr: int):
    """Yield mono float32 arrays at `sr` for a stream of decoded frames, flushing at the end.
    A source that changes rate, channels or sample format mid-stream is finished with its old
    settings and goes on with new ones."""
    stream = None
    for frame in frames:
        if stream is not None and stream.kind != _kind(frame):
            yield stream.finish()
            stream = None
        if stream is None:
            stream = _MonoStream(frame, sr)
        if (y := stream.add(frame)) is not None:
            yield y
    if stream is not None:
        yield stream.finish()


def _frames(container, stream, packets=None):
    """Decoded frames of one audio stream (a generator, so errors surface where we iterate).
    `packets` sees each packet before it is decoded (container.decode is this same loop)."""
    if packets is None:
        yield from container.decode(stream)
        return
    for packet in container.demux(stream):
        packets(packet)
        yield from packet.decode()


def _decode_head(container, stream, path, sr, limit: int, packets=None) -> tuple[np.ndarray, bool]:
    """Decode from the start, keeping at most `limit` samples. Returns (y, stream ended first)."""
    chunks, kept = [], 0
    try:
        for chunk in _resampled(_frames(container, stream, packets), sr):
            if kept + len(chunk) > limit:
                chunks.append(chunk[: limit - kept])
                return np.concatenate(chunks), False
            chunks.append(chunk)
            kept += len(chunk)
    except av.error.FFmpegError as e:
        # Mid-stream failure: a damaged file. Keep what decoded if it is (nearly) the whole
        # track, as the caller's truncation check judges; otherwise report the damage here.
        if kept == 0:
            raise DecodeError(path, f"no audio could be decoded (corrupt or truncated: {_why(e)})") from None
        duration = _declared_duration(container, stream)
        if duration is None or kept / sr < 0.9 * duration - 1.0:
            where = f"{kept / sr:.1f}s" + (f" of {duration:.1f}s declared" if duration else "")
            raise DecodeError(path, f"truncated: decoding failed after {where} ({_why(e)})") from None
    if kept == 0:
        raise DecodeError(path, "no audio could be decoded (corrupt or truncated)")
    return np.concatenate(chunks), True


def _decode_windows(container, stream, path, sr, starts, window_seconds) -> np.ndarray:
    """Keep len(starts) windows of window_seconds: by seeking, else by one sequential pass."""
    n_win = int(round(window_seconds * sr))
    y = np.zeros(len(starts) * n_win, dtype=np.float32)
    try:
        for i, start in enumerate(starts):
            if not _seek_window(container, stream, sr, start, y[i * n_win : (i + 1) * n_win]):
                break
        else:
            return y
    except av.error.FFmpegError:
        pass  # this demuxer cannot seek (or decoding right after a seek failed): stream instead
    try:
        container.seek(0)
    except av.error.FFmpegError:
        pass  # fresh position not available: we continue from wherever the stream is
    return _stream_windows(container, stream, path, sr, starts, n_win, y)


# A seek landing further than this before its target means the demuxer has no index and would
# make us decode from the start for every window.
_MAX_SEEK_MISS = 60.0


def _seek_window(container, stream, sr, start, out: np.ndarray) -> bool:
    """Seek to `start` seconds and fill `out` with the audio from there. False if seeking failed."""
    origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    container.seek(int((origin + start) / stream.time_base), stream=stream)

    # Frame timestamps tell us where the seek actually landed (a keyframe at or before `start`);
    # the resampler's output is contiguous from the first frame, so we skip up to `start`.
    first_time = None

    def frames():
        nonlocal first_time
        for frame in _frames(container, stream):
            if first_time is None:
                if frame.time is None:
                    return
                first_time = frame.time - origin
            yield frame

    skip, filled = None, 0
    for chunk in _resampled(frames(), sr):
        if skip is None:
            if start - first_time > _MAX_SEEK_MISS:
                return False  # no usable index (landed far before): sequential is cheaper
            # Landing after `start` (imprecise index) just shifts the window a little later.
            skip = max(0, int(round((start - first_time) * sr)))
        if skip >= len(chunk):
            skip -= len(chunk)
            continue
        chunk = chunk[skip:]
        skip = 0
        take = min(len(chunk), len(out) - filled)
        out[filled : filled + take] = chunk[:take]
        filled += take
        if filled == len(out):
            return True
    # Stream ended early: fine for the last window (a slightly long declared duration) as long
    # as the seek produced audio at all; the unfilled tail stays silent.
    return filled > 0


def _stream_windows(container, stream, path, sr, starts, n_win, y) -> np.ndarray:
    """Fallback: one sequential pass, copying out only the samples that fall inside the windows."""
    bounds = [(int(round(s * sr)), i * n_win) for i, s in enumerate(starts)]
    wanted = bounds[-1][0] + n_win
    pos = 0  # position in the decoded track, in output samples
    try:
        for chunk in _resampled(_frames(container, stream), sr):
            end = pos + len(chunk)
            for w_start, offset in bounds:
                lo, hi = max(pos, w_start), min(end, w_start + n_win)
                if lo < hi:
                    y[offset + lo - w_start : offset + hi - w_start] = chunk[lo - pos : hi - pos]
            pos = end
            if pos >= wanted:
                return y
    except av.error.FFmpegError:
        pass  # damaged from here on: judged below like a file that simply ends early
    if pos == 0:
        raise DecodeError(path, "no audio could be decoded (corrupt or truncated)")
    # The windows were placed by the declared duration, so ending well short of it is the same
    # truncation the whole-track path reports; a slightly long declaration is tolerated.
    duration = wanted / sr
    if pos / sr < 0.9 * duration - 1.0:
        raise DecodeError(path, f"truncated: decoded {pos / sr:.1f}s of {duration:.1f}s declared")
    return y
