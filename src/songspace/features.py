"""Waveform → log-mel spectrogram → fixed-size patches.

Pure functions, arrays in, arrays out. Parameter names follow librosa (`sr`, `n_fft`,
`hop_length`, `n_mels`, `fmin`, `fmax`) and the mel scale is librosa's default (Slaney
scale and area normalisation), so a spectrogram here can be checked against
`librosa.feature.melspectrogram`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class FeatureConfig:
    sr: int = 16000
    n_fft: int = 512  # 32 ms window
    hop_length: int = 256  # 16 ms hop: 62.5 frames per second
    n_mels: int = 96
    fmin: float = 0.0
    fmax: float = 8000.0
    patch_frames: int = 192  # ~3 s patches: long enough for rhythm, short enough to be many
    log_offset: float = 1e-4  # log(S + offset): keeps silence finite without flattening quiet music
    # Each patch's mel power is scaled to this mean before the log (see `level`); None: as recorded.
    patch_power: float | None = None

    @property
    def frames_per_second(self) -> float:
        return self.sr / self.hop_length

    @property
    def patch_seconds(self) -> float:
        return self.patch_frames / self.frames_per_second

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Mel filterbank (Slaney scale, as librosa.filters.mel with htk=False, norm="slaney")
# ---------------------------------------------------------------------------------------------


def hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asanyarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asanyarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters, shape (n_mels, 1 + n_fft // 2), float32."""
    fmax = sr / 2 if fmax is None else fmax
    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_freqs = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_freqs[2 : n_mels + 2] - mel_freqs[:n_mels]))[:, None]
    return weights.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Spectrogram and patches
# ---------------------------------------------------------------------------------------------

_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _window_and_filters(cfg: FeatureConfig, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # Built once per config and device: rebuilding them per track costs more than the STFT itself.
    key = (cfg.sr, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax, str(device))
    if key not in _cache:
        window = torch.hann_window(cfg.n_fft, device=device)
        filters = torch.from_numpy(mel_filterbank(cfg.sr, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)).to(device)
        _cache[key] = (window, filters)
    return _cache[key]


def log_mel(y: np.ndarray | torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """Log-mel power spectrogram of a mono waveform: (n_mels, n_frames) float32 tensor."""
    y = torch.as_tensor(y, dtype=torch.float32)
    window, filters = _window_and_filters(cfg, y.device)
    spec = torch.stft(y, cfg.n_fft, cfg.hop_length, window=window, center=True,
                      pad_mode="constant", return_complex=True)
    power = spec.real.square_() + spec.imag.square_()
    return torch.log(filters @ power + cfg.log_offset)


def patch_starts(n_frames: int, patch_frames: int, hop_frames: int) -> list[int]:
    """First frame of each patch; the last patch is aligned to the end so no tail is left out."""
    starts = list(range(0, max(n_frames - patch_frames, 0) + 1, hop_frames))
    if starts[-1] < n_frames - patch_frames:
        starts.append(n_frames - patch_frames)
    return starts


def patches(S: torch.Tensor, patch_frames: int, hop_frames: int) -> torch.Tensor:
    """Cut a (n_mels, n_frames) spectrogram into (n_patches, n_mels, patch_frames) at
    `patch_starts`. A spectrogram shorter than one patch is tiled to fill it, so even a 1-s
    jingle gets an embedding."""
    if S.shape[1] < patch_frames:
        S = S.repeat(1, -(-patch_frames // max(S.shape[1], 1)))[:, :patch_frames]
    return torch.stack([S[:, s : s + patch_frames] for s in patch_starts(S.shape[1], patch_frames, hop_frames)])


MAX_BOOST = 1e4  # +40 dB at most: near-silence is not blown up into loud noise


def level(P: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    """Log-mel patches (..., n_mels, frames) with each patch's power scaled to mean
    `cfg.patch_power`, so loudness cannot move a vector: a track and the same track 20 dB
    quieter give the same patches (measured: their cosine was 0.51-0.91 before; with it ost-dev
    album mAP 0.563 vs 0.559, docs/results.md). Works on log-mel, so stored log-mel segments
    (training) and fresh ones (embedding) are levelled the same way."""
    if cfg.patch_power is None:
        return P
    power = (P.exp() - cfg.log_offset).clamp_min(0.0)
    gain = (cfg.patch_power / power.mean(dim=(-2, -1), keepdim=True).clamp_min(1e-12)).clamp_max(MAX_BOOST)
    return torch.log(power * gain + cfg.log_offset)
