"""Synthetic, music-like test audio, written to real codecs with PyAV.

Tests and the demo library need audio whose "style" is known without anyone listening:
four styles that differ in timbre (harmonics), rhythm (note rate, percussive noise hits) and
pitch range, so a working similarity engine must group them. Within a style every track is
drawn from a seed (notes, tempo, gain, background noise that drifts over the track), so two
tracks of one style are close but never identical.

Everything is vectorised numpy: a 20-s track takes a few milliseconds.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# ----------------------------------------------------------------------------------------------
# Writing audio files

# extension -> (encoder, fixed sample rate or None to keep the input's)
_CODECS = {
    ".mp3": ("libmp3lame", None),
    ".flac": ("flac", None),
    ".ogg": ("vorbis", None),  # FFmpeg's own encoder: this PyAV wheel has no libvorbis
    ".opus": ("libopus", 48000),  # libopus only takes 8/12/16/24/48 kHz; 48 kHz is its native rate
    ".m4a": ("aac", None),
    ".wav": ("pcm_s16le", None),
    ".aiff": ("pcm_s16be", None),
    ".aif": ("pcm_s16be", None),
}
_FORMATS = {".aif": "aiff", ".m4a": "ipod", ".opus": "opus"}  # where the extension is not the muxer name
_TAGS = ("title", "artist", "album", "genre")


def write_audio(
    path, y: np.ndarray, sr: int, tags: dict[str, str] | None = None, bit_rate: int | None = None
) -> Path:
    """Encode `y` (mono `(n,)` or `(channels, n)`, float in [-1, 1]) to `path`; codec from the extension.

    `tags` (title/artist/album/genre) become container metadata, where mutagen reads them back.
    `bit_rate` (bits/s) is for lossy codecs; left as None the encoder's default is used.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in _CODECS:
        raise ValueError(f"{path}: cannot write {ext!r}, choose one of {sorted(_CODECS)}")
    codec, fixed_rate = _CODECS[ext]

    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 1:
        y = y[np.newaxis, :]
    if y.ndim != 2 or y.shape[0] not in (1, 2):
        raise ValueError(f"y must be (n,) or (channels, n) with 1 or 2 channels, got {y.shape}")
    y = np.clip(y, -1.0, 1.0)
    if codec == "vorbis" and y.shape[0] == 1:
        y = np.repeat(y, 2, axis=0)  # FFmpeg's Vorbis encoder only does stereo
    layout = "mono" if y.shape[0] == 1 else "stereo"

    with av.open(str(path), "w", format=_FORMATS.get(ext, ext[1:])) as out:
        stream = out.add_stream(codec, rate=fixed_rate or sr)
        stream.layout = layout
        if bit_rate:
            stream.bit_rate = bit_rate
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "experimental"}
        for key, value in (tags or {}).items():
            # Ogg/Opus keep tags as Vorbis comments on the stream, the others on the container;
            # setting both is harmless and lets mutagen find them everywhere.
            out.metadata[key] = str(value)
            stream.metadata[key] = str(value)

        # PyAV's encoder resamples (format, rate) and re-blocks to the codec's frame size itself,
        # so we hand it large planar-float chunks with timestamps in 1/sr.
        chunk = 1 << 15
        for start in range(0, y.shape[1], chunk):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(y[:, start : start + chunk]), format="fltp", layout=layout
            )
            frame.sample_rate = sr
            frame.pts = start
            frame.time_base = Fraction(1, sr)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


# ----------------------------------------------------------------------------------------------
# Synthesising music-like tracks

STYLES: tuple[str, ...] = ("bass_drone", "bright_arpeggio", "noise_beat", "mid_chords")

# Per style: MIDI pitch range, notes per second range, harmonic amplitudes (timbre),
# note decay time in seconds, voices sounding at once.
_STYLE = {
    "bass_drone": dict(pitch=(28, 43), rate=(0.25, 0.6), harmonics=(1.0, 0.7, 0.5, 0.35, 0.25, 0.15), decay=3.0, voices=1),
    "bright_arpeggio": dict(pitch=(72, 91), rate=(5.0, 9.0), harmonics=(1.0, 0.15), decay=0.12, voices=1),
    "noise_beat": dict(pitch=(40, 52), rate=(1.6, 2.4), harmonics=(1.0,), decay=0.25, voices=1),
    "mid_chords": dict(pitch=(55, 70), rate=(0.5, 1.0), harmonics=(1.0, 0.0, 0.33, 0.0, 0.2), decay=1.5, voices=3),
}


def _midi_hz(m: np.ndarray) -> np.ndarray:
    return 440.0 * 2.0 ** ((m - 69.0) / 12.0)


def _tone(f: np.ndarray, sr: int, harmonics, phase0: float = 0.0) -> np.ndarray:
    """Additive tone following a per-sample frequency track; harmonics above Nyquist are dropped."""
    # Integrate in float64 (long tracks), then wrap so float32 is precise enough for the sines.
    phase = np.mod(phase0 + np.cumsum(2 * np.pi * f / sr), 2 * np.pi).astype(np.float32)
    f = f.astype(np.float32)
    y = np.zeros(len(f), dtype=np.float32)
    for k, a in enumerate(harmonics, start=1):
        if a == 0.0:
            continue
        gain = np.where(k * f < sr / 2, np.float32(a), np.float32(0.0))
        y += gain * np.sin(np.float32(k) * phase)
    return y


def synth_track(style: str, seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """A mono float32 track in [-1, 1] of the given style; the seed varies notes, tempo, gain and noise."""
    if style not in _STYLE:
        raise ValueError(f"unknown style {style!r}, choose one of {STYLES}")
    p = _STYLE[style]
    rng = np.random.default_rng([seed, STYLES.index(style)])
    n = int(round(seconds * sr))
    t = np.arange(n) / sr

    # Notes on a regular grid at a random tempo within the style's band.
    rate = rng.uniform(*p["rate"])
    note_index = np.floor(t * rate).astype(np.int64)
    since_onset = (t - note_index / rate).astype(np.float32)
    n_notes = int(note_index[-1]) + 1 if n else 0
    envelope = np.exp(-since_onset / p["decay"]) * np.minimum(1.0, since_onset / 0.005)

    y = np.zeros(n, dtype=np.float32)
    for _ in range(p["voices"]):
        pitches = rng.integers(p["pitch"][0], p["pitch"][1] + 1, size=n_notes)
        f = _midi_hz(pitches.astype(np.float64))[note_index]
        y += _tone(f, sr, p["harmonics"], rng.uniform(0, 2 * np.pi)) * envelope.astype(np.float32)
    y /= p["voices"]

    if style == "noise_beat":
        # Drum-machine bar: a noise hit on every beat, louder on the downbeat, over the low tone.
        beat = note_index % 4
        accent = np.where(beat == 0, 1.0, 0.55).astype(np.float32)
        hits = rng.standard_normal(n).astype(np.float32) * np.exp(-since_onset / 0.05) * accent
        y = 0.35 * y + 1.4 * hits

    # Background noise whose level drifts slowly over the track, and an overall random gain.
    knots = rng.uniform(0.0, 1.0, size=max(2, int(seconds / 5) + 2))
    level = np.interp(t, np.linspace(0, seconds, len(knots)), knots).astype(np.float32)
    noise_level = rng.uniform(0.005, 0.04)
    y += noise_level * level * rng.standard_normal(n).astype(np.float32)

    peak = float(np.max(np.abs(y))) if n else 1.0
    gain = rng.uniform(0.3, 0.9)
    return (y * (gain / max(peak, 1e-9))).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Demo library

_DEMO_EXTENSIONS = (".mp3", ".flac", ".ogg", ".m4a", ".opus", ".wav")


def make_demo_library(
    folder, n_per_style: int = 6, seconds: float = 20.0, sr: int = 22050, seed: int = 0
) -> list[Path]:
    """Write `n_per_style` tagged tracks per style as folder/<style>/<style>-<i>.<ext>, cycling codecs."""
    folder = Path(folder)
    paths = []
    for s, style in enumerate(STYLES):
        (folder / style).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_style):
            ext = _DEMO_EXTENSIONS[(s + i) % len(_DEMO_EXTENSIONS)]
            y = synth_track(style, seconds, sr=sr, seed=seed * 1000 + i)
            tags = {"artist": f"{style} synth", "title": f"{style} {i}", "album": style, "genre": style}
            paths.append(write_audio(folder / style / f"{style}-{i}{ext}", y, sr, tags=tags))
    return paths
