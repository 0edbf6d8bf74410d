"""Light, musical augmentations of log-mel training crops.

Each changes how a recording was made or delivered, never what was played: a gentle EQ tilt
(another master or speaker), a codec-like low-pass (a band-limited encode), and a little of
another track underneath (a crossfade, a noisy room). Tempo and pitch stay as they are: they
are part of how a piece sounds (docs/results.md, "Augmentations: chosen on purpose"). Gain is
not needed: `features.level` already removes it.
"""

from __future__ import annotations

import math

import torch

from .features import FeatureConfig

MAX_TILT_DB = 6.0  # lowest vs highest mel band, at most
LOWPASS_CHANCE = 0.3
LOWPASS_LOWEST_BAND = 0.7  # the cut-off falls in the top 30% of mel bands (about 4.5 to 8 kHz)
MIX_CHANCE = 0.3
MIX_MAX = 0.25  # the other track at most a quarter of the power (-6 dB) of this one


def augment(x: torch.Tensor, cfg: FeatureConfig, generator: torch.Generator) -> torch.Tensor:
    """x: (batch, n_mels, frames) log-mel crops, returns augmented crops of the same shape."""
    n, n_mels, _ = x.shape
    power = (x.exp() - cfg.log_offset).clamp_min(0.0)

    # Mix first, so the EQ and low-pass act on the blend as a master or codec would.
    other = power.roll(1, dims=0)
    amount = torch.rand(n, 1, 1, generator=generator) * MIX_MAX
    amount *= torch.rand(n, 1, 1, generator=generator) < MIX_CHANCE
    power = power + amount * other

    bands = torch.linspace(-0.5, 0.5, n_mels)
    tilt_db = (torch.rand(n, 1, generator=generator) * 2 - 1) * MAX_TILT_DB
    power = power * (10 ** (tilt_db * bands / 10)).unsqueeze(-1)

    lowest = int(LOWPASS_LOWEST_BAND * n_mels)
    cutoff = torch.randint(lowest, n_mels, (n, 1), generator=generator)
    cut = (torch.arange(n_mels) >= cutoff) & (torch.rand(n, 1, generator=generator) < LOWPASS_CHANCE)
    power = power.masked_fill(cut.unsqueeze(-1), 0.0)
    return torch.log(power + cfg.log_offset)
