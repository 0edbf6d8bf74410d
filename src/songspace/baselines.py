"""Hand-crafted baseline: classic MFCC statistics, the kind of vector bliss and its peers use.

Per track: MFCCs and their deltas (mean and std), spectral contrast, chroma, centroid,
flatness, zero-crossing rate and RMS (mean and std each), and tempo, computed with librosa.
The raw vector mixes units (Hz, dB, BPM), so it is standardised over the collection before
cosine similarity: `standardise`. Selectable as the library's embedding method ("mfcc").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import audio

MFCC_METHOD = "mfcc-stats-v1"
SR = 22050


def mfcc_statistics(y: np.ndarray, sr: int = SR) -> np.ndarray:
    import librosa  # imported here: it takes a second or two, and only this baseline needs it

    y = np.asarray(y, dtype=np.float32)
    S = np.abs(librosa.stft(y, n_fft=2048, hop_length=512))
    mel = librosa.feature.melspectrogram(S=S**2, sr=sr)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=20)
    frames = [
        mfcc,
        librosa.feature.delta(mfcc, mode="nearest"),
        librosa.feature.spectral_contrast(S=S, sr=sr),
        librosa.feature.chroma_stft(S=S**2, sr=sr),
        librosa.feature.spectral_centroid(S=S, sr=sr) / 1000.0,
        librosa.feature.spectral_flatness(S=S),
        librosa.feature.zero_crossing_rate(y, hop_length=512),
        librosa.feature.rms(S=S),
    ]
    stats = [np.concatenate([f.mean(axis=1), f.std(axis=1)]) for f in frames]
    onset = librosa.onset.onset_strength(S=librosa.power_to_db(mel), sr=sr)
    tempo = librosa.feature.tempo(onset_envelope=onset, sr=sr)
    return np.concatenate([*stats, np.atleast_1d(tempo) / 100.0]).astype(np.float32)


def mfcc_file(path: str | Path) -> tuple[np.ndarray, float, bool]:
    """(raw statistics vector, duration, excerpted) for a file; raises audio.DecodeError."""
    a = audio.load(path, sr=SR)
    return mfcc_statistics(a.y, SR), a.duration, a.excerpted


class MfccEmbedder:
    """The baseline behind the same face as `embedding.Embedder`, for the library's workers."""

    model_id = MFCC_METHOD
    sr = SR

    def embed_file(self, path: str | Path):
        return self.embed_audios([audio.load(path, sr=SR)])[0]

    def embed_audios(self, tracks: list[audio.Audio]) -> list:
        from .embedding import TrackEmbedding

        return [TrackEmbedding(mfcc_statistics(a.y, SR), a.duration, a.excerpted) for a in tracks]


_random = []


def random_embedder():
    """The untrained encoder (fixed seed): what the architecture gives before any learning."""
    if not _random:
        import torch

        from .embedding import Embedder
        from .features import FeatureConfig
        from .models.checkpoint import Model
        from .models.encoder import Encoder

        torch.manual_seed(0)
        _random.append(Embedder(Model(Encoder().eval(), FeatureConfig(), "random-init-0"), torch.device("cpu")))
    return _random[0]


def standardise(vectors: np.ndarray, mean: np.ndarray | None = None, std: np.ndarray | None = None) -> np.ndarray:
    """Zero mean and unit variance per dimension over the collection, then unit length."""
    mean = vectors.mean(axis=0) if mean is None else mean
    std = vectors.std(axis=0) if std is None else std
    z = (vectors - mean) / np.maximum(std, 1e-8)
    return (z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)).astype(np.float32)
