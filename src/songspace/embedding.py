"""Model + features → vectors: one L2-normalised vector per track.

A track's log-mel spectrogram is cut into patches with 50% overlap, each patch is embedded by
the CNN and normalised, and the track vector is the normalised mean of the patch vectors (mean
and mean+std pooling measured the same; the mean is simpler).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from . import audio
from .features import level, log_mel, patch_starts, patches
from .models.checkpoint import Model, load_model
from .models.encoder import Encoder


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def for_inference(encoder: Encoder) -> Encoder:
    """A copy with each batch-norm folded into the convolution before it: same outputs, and
    batch-norm was a quarter of the CNN's time on CPU."""
    fused = copy.deepcopy(encoder).eval()
    for block in fused.blocks:
        block[0] = fuse_conv_bn_eval(block[0], block[1])
        block[1] = torch.nn.Identity()
    return fused


@dataclass(frozen=True)
class TrackEmbedding:
    vector: np.ndarray  # (embed_dim,) float32, unit length
    duration: float  # of the whole track, seconds
    excerpted: bool  # only windows spread over a long track were analysed
    # One unit vector per patch (a few seconds each), to say which part of a track matches.
    segments: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float16))
    segment_starts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # seconds


class Embedder:
    def __init__(self, model: Model | str | Path | None = None, device: torch.device | None = None,
                 batch_size: int = 32):
        self.model = model if isinstance(model, Model) else load_model(model)
        self.device = device or pick_device()
        # channels_last roughly doubles CNN throughput on CPU (measured on the 2-core machines).
        self.encoder = for_inference(self.model.encoder).to(self.device, memory_format=torch.channels_last)
        self.features = self.model.features
        self.batch_size = batch_size

    @property
    def model_id(self) -> str:
        return self.model.model_id

    @torch.inference_mode()
    def patch_vectors(self, y: np.ndarray) -> torch.Tensor:
        """(n_patches, embed_dim) unit vectors for a waveform at the model's sample rate."""
        cfg = self.features
        S = log_mel(torch.from_numpy(y).to(self.device), cfg)
        P = level(patches(S, cfg.patch_frames, cfg.patch_frames // 2), cfg)
        out = [self.encoder(P[i : i + self.batch_size]) for i in range(0, len(P), self.batch_size)]
        return F.normalize(torch.cat(out), dim=1)

    def patch_offsets(self, n_samples: int) -> list[int]:
        """The sample where each of `patch_vectors`' patches starts, for a waveform this long."""
        cfg = self.features
        n_frames = n_samples // cfg.hop_length + 1  # frames of a centred STFT
        return [s * cfg.hop_length for s in patch_starts(n_frames, cfg.patch_frames, cfg.patch_frames // 2)]

    def embed_waveform(self, y: np.ndarray) -> np.ndarray:
        return track_vector(self.patch_vectors(y))

    def embed_file(self, path: str | Path) -> TrackEmbedding:
        """Decode (bounded memory, see `audio.load`) and embed; raises audio.DecodeError."""
        cfg = self.features
        a = audio.load(path, sr=cfg.sr)
        P = self.patch_vectors(a.y)
        seconds = np.array([a.seconds_at(s) for s in self.patch_offsets(len(a.y))], dtype=np.float32)
        return TrackEmbedding(track_vector(P), a.duration, a.excerpted,
                              P.cpu().numpy().astype(np.float16), seconds)


def track_vector(patch_vectors: torch.Tensor) -> np.ndarray:
    return F.normalize(patch_vectors.mean(dim=0), dim=0).cpu().numpy().astype(np.float32)
