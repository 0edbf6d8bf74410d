"""Model + features → vectors: one L2-normalised vector per track.

A track's log-mel spectrogram is cut into patches with 50% overlap, each patch is embedded by
the CNN and normalised, and the track vector is the normalised mean of the patch vectors (mean
and mean+std pooling measured the same; the mean is simpler).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from . import audio, timbre
from .errors import InputError
from .features import level, log_mel, patch_starts, patches
from .models.checkpoint import Model, load_model
from .models.encoder import Encoder


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


PRECISION_ENV = "SONGSPACE_CNN_PRECISION"  # "float32" or "bfloat16": overrides the choice below


def pick_precision(device: torch.device) -> torch.dtype:
    """bfloat16 where the CPU computes it natively (AVX512-BF16, AMX): 1.6x the CNN's speed on
    the 2-core machines, track vectors within cosine 0.99999 of float32 (docs/results.md,
    "Indexing speed"). Elsewhere it would be emulated and slower, so float32."""
    choice = os.environ.get(PRECISION_ENV, "").strip().lower()
    if choice in ("float32", "bfloat16"):
        return getattr(torch, choice)
    if choice:
        raise InputError(f"{PRECISION_ENV}={choice!r}: expected float32 or bfloat16 (or unset: chosen by CPU)")
    if device.type != "cpu":
        return torch.float32
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return torch.float32
    return torch.bfloat16 if {"avx512_bf16", "amx_bf16"} & set(flags) else torch.float32


class MaxPool2x2(torch.nn.Module):
    """nn.MaxPool2d(2) for channels_last tensors as two element-wise maxima: the same values at
    twice the speed on CPU (torch's pooling kernel was 35% of the CNN's time)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        v = x[:, :, : H - H % 2, : W - W % 2].permute(0, 2, 3, 1).reshape(B, H // 2, 2, W // 2, 2, C)
        rows = torch.maximum(v[:, :, 0], v[:, :, 1])
        return torch.maximum(rows[:, :, :, 0], rows[:, :, :, 1]).permute(0, 3, 1, 2)


def for_inference(encoder: Encoder) -> Encoder:
    """A copy that gives the same outputs faster: each batch-norm folded into the convolution
    before it (batch-norm was a quarter of the CNN's time on CPU), and each block pooled before
    its ReLU (they commute, and the ReLU then touches a quarter of the values)."""
    fused = copy.deepcopy(encoder).eval()
    for i, block in enumerate(fused.blocks):
        conv, _, relu, pool = block
        assert isinstance(pool, torch.nn.MaxPool2d) and pool.kernel_size in (2, (2, 2)) and pool.stride in (2, (2, 2))
        fused.blocks[i] = torch.nn.Sequential(fuse_conv_bn_eval(conv, block[1]), MaxPool2x2(), relu)
    return fused


@dataclass(frozen=True)
class TrackEmbedding:
    vector: np.ndarray  # (embed_dim,) float32, unit length
    duration: float  # of the whole track, seconds
    excerpted: bool  # only windows spread over a long track were analysed
    # One unit vector per patch (a few seconds each), to say which part of a track matches.
    segments: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float16))
    segment_starts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # seconds
    # The timbre companion's Gaussian (timbre.pack, 460 bytes), from the same log-mel frames the
    # patches were cut from: None for a method that computes no log-mel (MFCC statistics).
    timbre: bytes | None = None


class Embedder:
    def __init__(self, model: Model | str | Path | None = None, device: torch.device | None = None,
                 batch_size: int | None = None, precision: torch.dtype | None = None):
        self.model = model if isinstance(model, Model) else load_model(model)
        self.device = device or pick_device()
        # channels_last roughly doubles CNN throughput on CPU (measured on the 2-core machines).
        self.encoder = for_inference(self.model.encoder).to(self.device, memory_format=torch.channels_last)
        self.features = self.model.features
        # On CPU 8-16 patches per batch stay in cache: 1.45x the speed of 32 on one core
        # (measured); a GPU wants hundreds.
        self.batch_size = batch_size if batch_size is not None else (16 if self.device.type == "cpu" else 256)
        self.precision = precision or pick_precision(self.device)

    @property
    def model_id(self) -> str:
        return self.model.model_id

    @property
    def sr(self) -> int:
        """The sample rate to decode for this model."""
        return self.features.sr

    @torch.inference_mode()
    def patch_vectors(self, y: np.ndarray) -> torch.Tensor:
        """(n_patches, embed_dim) unit vectors for a waveform at the model's sample rate."""
        return self._encode(self._patches(y))

    def _patches(self, y: np.ndarray) -> torch.Tensor:
        return self._features(y)[0]

    def _features(self, y: np.ndarray) -> tuple[torch.Tensor, bytes]:
        """(levelled patches, packed timbre Gaussian) of a waveform: one log-mel for both, so the
        timbre companion costs a DCT and a covariance, not a second spectrogram (~1% of indexing)."""
        cfg = self.features
        S = log_mel(torch.from_numpy(y).to(self.device), cfg)
        return level(patches(S, cfg.patch_frames, cfg.patch_frames // 2), cfg), timbre_blob(S)

    def timbre_of(self, y: np.ndarray) -> bytes:
        """The packed timbre Gaussian of a waveform alone (a track embedded before the companion
        existed: its log-mel, no CNN)."""
        return timbre_blob(log_mel(torch.from_numpy(y).to(self.device), self.features))

    def _encode(self, P: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.precision, enabled=self.precision != torch.float32):
            out = [self.encoder(P[i : i + self.batch_size]) for i in range(0, len(P), self.batch_size)]
        return F.normalize(torch.cat(out).float(), dim=1)

    def patch_offsets(self, n_samples: int) -> list[int]:
        """The sample where each of `patch_vectors`' patches starts, for a waveform this long."""
        cfg = self.features
        n_frames = n_samples // cfg.hop_length + 1  # frames of a centred STFT
        return [s * cfg.hop_length for s in patch_starts(n_frames, cfg.patch_frames, cfg.patch_frames // 2)]

    def embed_waveform(self, y: np.ndarray) -> np.ndarray:
        return track_vector(self.patch_vectors(y))

    def embed_file(self, path: str | Path) -> TrackEmbedding:
        """Decode (bounded memory, see `audio.load`) and embed; raises audio.DecodeError."""
        return self.embed_audios([audio.load(path, sr=self.features.sr)])[0]

    @torch.inference_mode()
    def embed_audios(self, tracks: list[audio.Audio]) -> list[TrackEmbedding]:
        """Embed decoded tracks with their patches batched together across tracks: a GPU wants
        batches of hundreds of patches, more than one track has (`batch_size` sets how many)."""
        P, timbres = zip(*(self._features(a.y) for a in tracks))
        vectors = self._encode(torch.cat(P)).split([len(p) for p in P])
        out = []
        for a, V, blob in zip(tracks, vectors, timbres):
            seconds = np.array([a.seconds_at(s) for s in self.patch_offsets(len(a.y))], dtype=np.float32)
            out.append(TrackEmbedding(track_vector(V), a.duration, a.excerpted,
                                      V.cpu().numpy().astype(np.float16), seconds, blob))
        return out


def timbre_blob(S: torch.Tensor) -> bytes:
    """timbre.pack of the Gaussian of a (n_mels, frames) log-mel (on any device)."""
    return timbre.pack(*timbre.gaussian(S.float().cpu().numpy()))


def track_vector(patch_vectors: torch.Tensor) -> np.ndarray:
    return F.normalize(patch_vectors.mean(dim=0), dim=0).cpu().numpy().astype(np.float32)
