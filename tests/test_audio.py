"""audio.load and synth.write_audio against real codecs (PyAV encode -> PyAV decode), no mocks."""

from __future__ import annotations

import os
import pickle
from fractions import Fraction

import av
import mutagen
import numpy as np
import pytest

from songspace import audio
from songspace.audio import AUDIO_EXTENSIONS, Audio, DecodeError, load
from songspace.synth import STYLES, make_demo_library, synth_track, write_audio

ALL_EXTENSIONS = (".mp3", ".flac", ".ogg", ".opus", ".m4a", ".wav", ".aiff")


def tone(freq: float, seconds: float, sr: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    y = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    # Stereo: the same tone in both channels at different levels, so the mono mix keeps it.
    return y if channels == 1 else np.stack([y, 0.6 * y])


def peak_hz(y: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spectrum) * sr / len(y))


# ----------------------------------------------------------------------------------------------
# Round trips through every codec


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("source_sr", [44100, 22050, 48000])
@pytest.mark.parametrize("ext", ALL_EXTENSIONS)
def test_round_trip(tmp_path, ext, source_sr, channels):
    path = write_audio(tmp_path / f"tone{ext}", tone(1000.0, 3.0, source_sr, channels), source_sr)
    a = load(path, sr=16000)
    assert isinstance(a, Audio)
    assert a.sr == 16000 and a.y.dtype == np.float32 and a.y.ndim == 1
    assert not a.excerpted
    # mp3/aac priming and padding is mostly trimmed by FFmpeg; allow what remains.
    assert abs(a.duration - 3.0) < 0.1, a.duration
    assert abs(len(a.y) / a.sr - a.duration) < 1e-3
    assert abs(peak_hz(a.y, a.sr) - 1000.0) < 2.0
    assert 0.1 < np.abs(a.y).max() <= 1.01


def test_other_sample_rate(tmp_path):
    path = write_audio(tmp_path / "tone.flac", tone(3000.0, 2.0, 44100), 44100)
    a = load(path, sr=22050)
    assert a.sr == 22050 and abs(len(a.y) - 2 * 22050) <= 2
    assert abs(peak_hz(a.y, a.sr) - 3000.0) < 2.0


def test_extensions_are_lowercase_with_dot():
    assert all(e.startswith(".") and e == e.lower() for e in AUDIO_EXTENSIONS)
    assert set(ALL_EXTENSIONS) <= AUDIO_EXTENSIONS


# ----------------------------------------------------------------------------------------------
# Long files: bounded memory, windows spread over the track

LONG_SR, LONG_SECONDS = 16000, 25 * 60
F0, F_SPAN = 200.0, 3000.0  # the position marker: a chirp from 200 Hz rising 2 Hz per second


def marker_hz(t):
    return F0 + F_SPAN * t / LONG_SECONDS


def marker_time(y_second: np.ndarray, sr: int) -> float:
    """Where in the original track a one-second excerpt came from, read off the chirp."""
    return (peak_hz(y_second, sr) - F0) * LONG_SECONDS / F_SPAN - 0.5


@pytest.fixture(scope="module")
def long_signal():
    t = np.arange(LONG_SECONDS * LONG_SR) / LONG_SR
    phase = 2 * np.pi * (F0 * t + 0.5 * F_SPAN * t * t / LONG_SECONDS)  # integral of marker_hz
    return (0.3 * np.sin(phase)).astype(np.float32)


@pytest.mark.parametrize("ext, bit_rate", [(".flac", None), (".mp3", 32000)])
def test_long_file_keeps_windows_from_start_middle_end(tmp_path, long_signal, ext, bit_rate):
    path = write_audio(tmp_path / f"long{ext}", long_signal, LONG_SR, bit_rate=bit_rate)
    a = load(path, sr=16000, max_seconds=120, window_seconds=30)
    assert a.excerpted
    assert abs(a.duration - LONG_SECONDS) < 1.0
    n_win = 30 * 16000
    assert abs(len(a.y) - 4 * n_win) <= 0.01 * 4 * n_win

    # Windows start at 0, 490, 980, 1470 s (evenly spread, the last ending at the end).
    expected = [0.0, 490.0, 980.0, 1470.0]
    for i, start in enumerate(expected):
        window = a.y[i * n_win : (i + 1) * n_win]
        assert abs(marker_time(window[:16000], 16000) - start) < 1.5, (i, start)
        assert abs(marker_time(window[-16000:], 16000) - (start + 29.0)) < 1.5, (i, start)
        assert np.abs(window).max() > 0.1  # filled, not left silent

    # Cut to 40%: the later windows' seeks find nothing, and the fallback pass reports truncation.
    data = path.read_bytes()
    (tmp_path / f"cut{ext}").write_bytes(data[: int(len(data) * 0.4)])
    with pytest.raises(DecodeError, match="truncated"):
        load(tmp_path / f"cut{ext}", sr=16000, max_seconds=120, window_seconds=30)


def test_sequential_fallback_matches_seeking(tmp_path, long_signal):
    # The fallback runs when a demuxer cannot seek; here we call it directly on a real file.
    y = long_signal[: 200 * LONG_SR]
    path = write_audio(tmp_path / "mid.ogg", y, LONG_SR)
    sought = load(path, sr=16000, max_seconds=60, window_seconds=20)
    starts = audio._window_starts(sought.duration, 3, 20.0)
    assert starts == [0.0, 90.0, 180.0]
    with av.open(str(path)) as container:
        out = np.zeros(3 * 20 * 16000, dtype=np.float32)
        streamed = audio._stream_windows(container, container.streams.audio[0], path, 16000, starts, 20 * 16000, out)
    for i, start in enumerate(starts):
        a = sought.y[i * 320000 : i * 320000 + 16000]
        b = streamed[i * 320000 : i * 320000 + 16000]
        assert abs(marker_time(a, 16000) - marker_time(b, 16000)) < 0.6


def test_short_file_is_decoded_whole_even_with_small_windows(tmp_path):
    path = write_audio(tmp_path / "short.wav", tone(440.0, 50.0, 16000), 16000)
    a = load(path, max_seconds=50.5, window_seconds=10)
    assert not a.excerpted and abs(a.duration - 50.0) < 0.01 and len(a.y) == 50 * 16000


def test_unknown_duration_keeps_first_max_seconds(tmp_path):
    # Matroska written as a live stream declares no duration anywhere.
    path = tmp_path / "live.mka"
    sr, y = 16000, tone(440.0, 50.0, 16000)
    with av.open(str(path), "w", format="matroska", options={"live": "1"}) as out:
        stream = out.add_stream("flac", rate=sr)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(y[np.newaxis], format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = sr, 0, Fraction(1, sr)
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with av.open(str(path)) as c:
        assert c.duration is None and c.streams.audio[0].duration is None
    a = load(path, max_seconds=20, window_seconds=5)
    assert a.excerpted and len(a.y) == 20 * 16000


# ----------------------------------------------------------------------------------------------
# Errors: one type, naming the file and the reason


@pytest.fixture
def mp3_bytes(tmp_path):
    path = write_audio(tmp_path / "good.mp3", synth_track("mid_chords", 20.0, 44100, seed=1), 44100)
    return path.read_bytes()


def assert_decode_error(path, reason_part):
    with pytest.raises(DecodeError) as info:
        load(path)
    assert str(path) in str(info.value)
    assert reason_part in info.value.reason
    assert str(info.value) == f"{path}: {info.value.reason}"
    return info.value


def test_missing_file(tmp_path):
    error = assert_decode_error(tmp_path / "nope.mp3", "file not found")
    # Worker processes send errors back pickled.
    again = pickle.loads(pickle.dumps(error))
    assert (again.path, again.reason, str(again)) == (error.path, error.reason, str(error))


def test_directory(tmp_path):
    (tmp_path / "x.flac").mkdir()
    assert_decode_error(tmp_path / "x.flac", "is a directory")


def test_empty_file(tmp_path):
    (tmp_path / "empty.ogg").write_bytes(b"")
    assert_decode_error(tmp_path / "empty.ogg", "empty file (0 bytes)")


def test_text_file(tmp_path):
    (tmp_path / "notes.mp3").write_text("this is not audio at all\n" * 40)
    assert_decode_error(tmp_path / "notes.mp3", "not a recognised audio format")


def test_mp3_cut_to_300_bytes(tmp_path, mp3_bytes):
    (tmp_path / "stub.mp3").write_bytes(mp3_bytes[:300])
    assert_decode_error(tmp_path / "stub.mp3", "")  # any clear reason; FFmpeg rejects the stub


def test_mp3_cut_in_half_is_truncated(tmp_path, mp3_bytes):
    (tmp_path / "half.mp3").write_bytes(mp3_bytes[: len(mp3_bytes) // 2])
    error = assert_decode_error(tmp_path / "half.mp3", "truncated")
    assert "of 20.0s declared" in error.reason


def test_flac_cut_in_half_is_truncated(tmp_path):
    data = write_audio(tmp_path / "good.flac", synth_track("noise_beat", 20.0, 22050), 22050).read_bytes()
    (tmp_path / "half.flac").write_bytes(data[: len(data) // 2])
    assert_decode_error(tmp_path / "half.flac", "truncated")


def test_slightly_short_file_is_not_called_truncated(tmp_path, mp3_bytes):
    # Losing the last second of a long recording is common and harmless: keep what decodes.
    (tmp_path / "most.mp3").write_bytes(mp3_bytes[: int(len(mp3_bytes) * 0.97)])
    a = load(tmp_path / "most.mp3")
    assert 18.5 < a.duration < 20.0


def test_unreadable_file(tmp_path, mp3_bytes):
    if os.geteuid() == 0:
        pytest.skip("root can read a chmod 000 file")
    path = tmp_path / "locked.mp3"
    path.write_bytes(mp3_bytes)
    path.chmod(0)
    try:
        assert_decode_error(path, "permission denied")
    finally:
        path.chmod(0o644)


def test_file_without_audio_stream(tmp_path):
    path = tmp_path / "video.mkv"  # a few black video frames, no sound
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("mjpeg", rate=5)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuvj420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    assert_decode_error(path, "no audio stream")


# ----------------------------------------------------------------------------------------------
# Synthesis and tags


@pytest.mark.parametrize("ext", [".mp3", ".flac", ".ogg", ".m4a", ".opus"])
def test_tags_read_back_by_mutagen(tmp_path, ext):
    tags = {"title": "Song ä 1", "artist": "Someone", "album": "Record", "genre": "Test"}
    path = write_audio(tmp_path / f"tagged{ext}", tone(440.0, 1.0, 44100), 44100, tags=tags)
    f = mutagen.File(path, easy=True)
    assert f is not None
    for key, value in tags.items():
        assert f[key] == [value], key


def test_synth_styles_are_distinct_and_seeded():
    sr = 16000
    for style in STYLES:
        a, b = synth_track(style, 5.0, sr, seed=0), synth_track(style, 5.0, sr, seed=1)
        assert a.dtype == np.float32 and a.shape == (5 * sr,) and np.abs(a).max() <= 1.0
        assert not np.allclose(a, b)
        assert np.array_equal(a, synth_track(style, 5.0, sr, seed=0))

    # The power spectrum's centroid orders the styles' pitch ranges; the noise beat is brightest.
    def centroid(y):
        s = np.abs(np.fft.rfft(y)) ** 2
        return float((s * np.fft.rfftfreq(len(y), 1 / sr)).sum() / s.sum())

    c = {style: np.mean([centroid(synth_track(style, 5.0, sr, seed=k)) for k in range(3)]) for style in STYLES}
    assert c["bass_drone"] < c["mid_chords"] < c["bright_arpeggio"] < c["noise_beat"]
    with pytest.raises(ValueError):
        synth_track("polka", 1.0)


def test_demo_library(tmp_path):
    paths = make_demo_library(tmp_path, n_per_style=2, seconds=2.0)
    assert len(paths) == 2 * len(STYLES)
    assert {p.suffix for p in paths} <= AUDIO_EXTENSIONS
    for p in paths:
        style = p.parent.name
        assert p.name.startswith(f"{style}-")
        a = load(p)
        assert abs(a.duration - 2.0) < 0.1
        if p.suffix != ".wav":
            f = mutagen.File(p, easy=True)
            assert f["artist"] == [f"{style} synth"] and f["album"] == [style]
