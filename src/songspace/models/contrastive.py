"""Contrastive objective (SimCLR's NT-Xent / InfoNCE) over excerpts of tracks.

Two excerpts of the same track are a positive pair; the excerpts of every other track in the
batch are negatives. A small projection head sits between the embedding and the loss, as in
SimCLR: the loss may discard information in the head that the embedding keeps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .encoder import Encoder


class Contrastive(nn.Module):
    def __init__(self, encoder: Encoder, projection_dim: int = 128, temperature: float = 0.1):
        super().__init__()
        self.encoder = encoder
        d = encoder.cfg.embed_dim
        self.projection = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, projection_dim))
        self.temperature = temperature

    def loss(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a[i] and b[i] are two excerpts of track i: (batch, n_mels, frames) each."""
        z = F.normalize(self.projection(self.encoder(torch.cat([a, b]))), dim=1)
        return nt_xent(z, self.temperature)


def nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """z: (2n, d) unit vectors, rows i and i+n a positive pair; all other rows are negatives."""
    n = z.shape[0] // 2
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))  # a view is not its own positive
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)
