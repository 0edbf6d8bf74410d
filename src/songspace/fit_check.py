"""Did a fit help? A label-free check on tracks the fit never saw.

`Library.fit` holds out a seeded share of the library's tracks, fits on the rest, and then asks
the starting model and the fitted one the same question about the held-out tracks: of a few
excerpts spread over each track, which of the others come from the same track? The score is the
contrastive (InfoNCE) loss of that question, per track, on the embeddings search uses (lower is
better): smooth, so it sees small changes, and needing no labels.

Whole tracks are held out, not excerpts: the fit optimises telling its own tracks apart, so
excerpts of those tracks would flatter it whatever it did to the rest of the space.

The fitted model wins only when it is better by more than twice the standard error of the
per-track differences (paired: the same tracks and excerpts for both models). A small library's
check is noisy, and a fit that is not clearly better is not worth what the starting model
already knew.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError
from .features import level
from .models.checkpoint import Model
from .training import Corpus, TrainConfig
from .workers import unwind_on_sigterm

HOLDOUT = 0.2  # share of the tracks held out of the fit to check it on
MAX_HELD_OUT = 256  # enough for a tight check; a large library keeps the rest for fitting
MIN_HELD_OUT = 2  # the score needs other tracks to tell a track's excerpts from
CHECK_TEMPERATURE = 0.1  # the shipped model's training temperature


@dataclass(frozen=True)
class FitCheck:
    start: float  # mean held-out same-track loss of the starting model
    fitted: float  # ... and of the fitted one
    margin: float  # twice the standard error of the per-track differences
    tracks: int  # held-out tracks scored

    SCORE = "held-out same-track loss"

    @property
    def improved(self) -> bool:
        return self.fitted + self.margin < self.start

    def describe(self) -> str:
        return (f"{self.SCORE} (lower is better, {self.tracks} tracks the fit never saw): "
                f"start {self.start:.4f}, fitted {self.fitted:.4f}; the fit must be lower by more than "
                f"{self.margin:.4f} (2 standard errors)")


def split_holdout(paths: Sequence[str], seed: int, fraction: float = HOLDOUT) -> tuple[list[str], list[str]]:
    """(fit on, held out): a seeded share of the tracks, whole tracks, at least MIN_HELD_OUT and
    at most MAX_HELD_OUT held out, and at least 2 left to fit on."""
    paths = sorted(paths)
    n_held = min(MAX_HELD_OUT, max(MIN_HELD_OUT, round(fraction * len(paths))))
    if len(paths) - n_held < 2:
        raise InputError(f"fitting needs at least {MIN_HELD_OUT + 2} tracks ({MIN_HELD_OUT} are held out to "
                         f"check the fit on); found {len(paths)}")
    held = set(np.random.default_rng(seed).permutation(len(paths))[:n_held].tolist())
    return [p for i, p in enumerate(paths) if i not in held], [p for i, p in enumerate(paths) if i in held]


def excerpts(corpus: Corpus, patch_frames: int) -> np.ndarray:
    """(tracks, segments, n_mels, patch_frames): the middle of each stored segment, so the check
    asks the same question every time."""
    offset = (corpus.data.shape[3] - patch_frames) // 2
    return np.asarray(corpus.data[corpus.rows, :, :, offset : offset + patch_frames], dtype=np.float32)


@torch.inference_mode()
def same_track_losses(model: Model, x: np.ndarray, temperature: float = CHECK_TEMPERATURE) -> np.ndarray:
    """Per track, the mean InfoNCE loss of its excerpts finding the track's other excerpts
    among all excerpts of all tracks: x is (tracks, segments, n_mels, frames)."""
    n_tracks, n_seg = x.shape[:2]
    patches = level(torch.from_numpy(x.reshape(-1, *x.shape[2:])), model.features)
    encoder = model.encoder.eval()
    z = F.normalize(torch.cat([encoder(b) for b in patches.split(64)]), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))  # an excerpt is not its own match
    track = torch.arange(n_tracks).repeat_interleave(n_seg)
    same = (track[:, None] == track[None, :]).fill_diagonal_(False)
    losses = torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~same, float("-inf")), 1)
    return losses.view(n_tracks, n_seg).mean(1).numpy()


def check_fit(start: Model, fitted: Model, held_out: Sequence[str], cfg: TrainConfig, workers: int | None = None,
              progress: Callable[[int, int], None] | None = None) -> FitCheck:
    """Score both models on the held-out tracks (read here: the fit never read them)."""
    with unwind_on_sigterm(), tempfile.TemporaryDirectory(prefix="songspace-check-") as tmp:
        corpus = Corpus(held_out, start.features, cfg, Path(tmp), workers, progress)
        if len(corpus) < MIN_HELD_OUT:
            raise InputError(f"only {len(corpus)} of the {len(held_out)} held-out tracks could be read; "
                             "the fit cannot be checked")
        x = excerpts(corpus, start.features.patch_frames)
        del corpus.data  # release the memmap before its file is deleted
    before, after = same_track_losses(start, x), same_track_losses(fitted, x)
    diff = after - before
    margin = 2 * float(np.std(diff, ddof=1)) / math.sqrt(len(diff))
    return FitCheck(float(before.mean()), float(after.mean()), margin, len(diff))
