"""Convolutional autoencoder: the classic unsupervised recipe.

The encoder squeezes a log-mel patch into the embedding (the bottleneck); a mirror-image
decoder must rebuild the patch from it alone. What survives the bottleneck is what the
embedding keeps. Reconstruction favours loud, broad spectral shape over what makes two pieces
sound alike, which is why the contrastive objective usually wins; both are here to compare.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .encoder import Encoder


def upconv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class Autoencoder(nn.Module):
    def __init__(self, encoder: Encoder, patch_frames: int):
        super().__init__()
        self.encoder = encoder
        cfg = encoder.cfg
        n_down = len(cfg.channels)
        if cfg.n_mels % 2**n_down or patch_frames % 2**n_down:
            raise ValueError(f"n_mels and patch_frames must be divisible by {2**n_down}")
        self.grid = (cfg.channels[-1], cfg.n_mels // 2**n_down, patch_frames // 2**n_down)
        c, h, w = self.grid
        self.expand = nn.Sequential(nn.Linear(cfg.embed_dim, c * h * w), nn.ReLU(inplace=True))
        chans = (*reversed(cfg.channels), 8)
        self.decoder = nn.Sequential(*[upconv_block(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.out = nn.Conv2d(8, 1, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x)
        h = self.expand(z).view(-1, *self.grid)
        return self.out(self.decoder(h)).squeeze(1)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean squared error against the patch standardised on its own (level-independent)."""
        mean = x.mean(dim=(1, 2), keepdim=True)
        std = x.std(dim=(1, 2), keepdim=True) + 1e-5
        return F.mse_loss(self(x), (x - mean) / std)
