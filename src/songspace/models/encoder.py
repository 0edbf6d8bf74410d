"""The CNN that turns a log-mel patch into an embedding.

Four convolution → batch-norm → ReLU → max-pool blocks, then average+max pooling over what is
left of frequency and time, then one fully connected layer with a ReLU: the embedding. Small
on purpose (163k parameters): it must run hundreds of times faster than real time on one
laptop core.

Why the embedding stops there: when a second linear layer sat on top, trained as part of the
encoder, it came out worse for retrieval on ost-dev than the layer below it, on every model
measured (docs/results.md, "Which layer is the embedding"). As in SimCLR, the last layers
before the loss specialise in the training task, so they belong to the contrastive projection
head, which search never uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class EncoderConfig:
    n_mels: int = 96
    channels: tuple[int, ...] = (16, 32, 64, 128)
    embed_dim: int = 256

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "EncoderConfig":
        return cls(**{**d, "channels": tuple(d["channels"])})


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class Encoder(nn.Module):
    """(batch, n_mels, frames) log-mel patches → (batch, embed_dim) embeddings (not normalised)."""

    def __init__(self, cfg: EncoderConfig = EncoderConfig()):
        super().__init__()
        self.cfg = cfg
        # Normalising the input with learned statistics keeps the log-mel scale out of the config.
        self.input_norm = nn.BatchNorm2d(1)
        chans = (1, *cfg.channels)
        self.blocks = nn.Sequential(*[conv_block(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.embed = nn.Sequential(nn.Linear(2 * cfg.channels[-1], cfg.embed_dim), nn.ReLU(inplace=True))

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.input_norm(x.unsqueeze(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.feature_map(x)
        # Average says "how much of each pattern", max says "was it there at all": both help.
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return self.embed(pooled)
