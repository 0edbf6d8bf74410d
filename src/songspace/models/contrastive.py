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

    def loss(self, a: torch.Tensor, b: torch.Tensor, releases: torch.Tensor | None = None,
             release_weight: float = 0.0) -> torch.Tensor:
        """a[i] and b[i] are two excerpts of track i: (batch, n_mels, frames) each. With
        `releases` (batch,), excerpts of other tracks of the same release are positives too,
        in a second term weighted by `release_weight`."""
        return self.loss_and_embeddings(a, b, releases, release_weight)[0]

    def loss_and_embeddings(self, a: torch.Tensor, b: torch.Tensor, releases: torch.Tensor | None = None,
                            release_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """`loss`, and the embeddings of the excerpts it came from ((2 * batch, embed_dim): a's,
        then b's), for another term on the same forward pass (training's teacher loss)."""
        h = self.encoder(torch.cat([a, b]))
        z = F.normalize(self.projection(h), dim=1)
        loss = nt_xent(z, self.temperature)
        if releases is not None and release_weight > 0:
            loss = loss + release_weight * release_nce(z, releases.repeat(2), self.temperature)
        return loss, h


def nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """z: (2n, d) unit vectors, rows i and i+n a positive pair; all other rows are negatives."""
    n = z.shape[0] // 2
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))  # a view is not its own positive
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def release_nce(z: torch.Tensor, releases: torch.Tensor, temperature: float) -> torch.Tensor:
    """Which other track is from my release? z: (2n, d) unit vectors as in `nt_xent`; the
    positives of a view are the views of the other tracks of its release (supervised-contrastive
    style, positives summed), against every other track. Its own track's second view is left
    out of both, as that is `nt_xent`'s job. Views with no release-mate in the batch are skipped."""
    n = z.shape[0] // 2
    logits = z @ z.T / temperature
    index = torch.arange(2 * n, device=z.device)
    same_track = (index[:, None] % n) == (index[None, :] % n)
    logits = logits.masked_fill(same_track, float("-inf"))
    mates = (releases[:, None] == releases[None, :]) & ~same_track
    has_mates = mates.any(dim=1)
    if not has_mates.any():
        return z.new_zeros(())
    log_all = torch.logsumexp(logits, dim=1)
    log_mates = torch.logsumexp(logits.masked_fill(~mates, float("-inf")), dim=1)
    return (log_all - log_mates)[has_mates].mean()
