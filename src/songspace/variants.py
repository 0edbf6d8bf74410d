"""The same recording as users meet it: another encoding, another level, another start.

A track's vector should barely move between these (issue 12's targets: mean cosine >= 0.98,
worst >= 0.95). `bench/encoding_robustness.py` measures it on real music and
`tests/test_encoding_robustness.py` asserts it on synthesized tracks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .synth import write_audio

TRIM_SECONDS = 5.0

# name → (extension, bit rate in bit/s or None, gain in dB, seconds trimmed from the start)
VARIANTS: dict[str, tuple[str, int | None, float, float]] = {
    "mp3-64k": (".mp3", 64_000, 0.0, 0.0),
    "opus-48k": (".opus", 48_000, 0.0, 0.0),
    "quieter-6dB": (".flac", None, -6.0, 0.0),
    "trimmed-5s": (".flac", None, 0.0, TRIM_SECONDS),
}


def write_variants(y: np.ndarray, sr: int, folder: str | Path, stem: str) -> dict[str, Path]:
    """Write each variant of waveform `y` into `folder`: {variant name: file}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (ext, bit_rate, gain_db, trim) in VARIANTS.items():
        z = y[int(trim * sr):] * 10 ** (gain_db / 20)
        out[name] = write_audio(folder / f"{stem}.{name}{ext}", z, sr, bit_rate=bit_rate)
    return out
