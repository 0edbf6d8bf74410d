"""Self-supervised training of the encoder on a folder of music, with no labels.

Stages:
  1. corpus: decode every track (bounded memory, see `audio.load`) and keep a few log-mel
     segments spread over it, in a float16 memory-mapped file on disk: RAM stays small however
     large the library (10,000 tracks x 8 segments: 3.7 GiB of disk, paged in on demand, and
     1.3 GiB of process memory at peak; bench/training_memory.py).
  2. loop: each step takes a batch of tracks and two random crops from two different segments
     of each, and optimises the chosen objective:
       - contrastive: the two excerpts of a track are positives, the other tracks negatives;
       - autoencoder: rebuild each crop through the embedding bottleneck.
     Augmentation is the random choice of excerpt and nothing else: no time-stretch (it would
     remove tempo from the neighbourhoods) and no pitch-shift (it would remove key and register,
     which are part of how a piece sounds). Crops alone matched crops+gain/noise/masking in the
     prototype at equal steps.
  3. save: safetensors state dict (the encoder, and the rest of the objective for later fitting)
     + JSON config (see `models.checkpoint`).

Training is deterministic under a seed when bounded by `steps`; a `minutes` budget stops after
however many steps fit, which depends on the machine.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import audio
from .augment import augment
from .errors import InputError
from .embedding import pick_device
from .features import FeatureConfig, level, log_mel
from .models.autoencoder import Autoencoder
from .models.checkpoint import Model, load_model, save_model
from .models.contrastive import Contrastive
from .progress import Phase
from .teacher import read_targets, standardise
from .models.encoder import Encoder, EncoderConfig
from .models.files import read_config
from .workers import run_parallel, unwind_on_sigterm

OBJECTIVES = ("contrastive", "autoencoder")


@dataclass(frozen=True)
class TrainConfig:
    objective: str = "contrastive"
    minutes: float | None = 5.0  # wall-clock budget for the loop (corpus decoding not counted)
    steps: int | None = None  # or a fixed number of steps (deterministic under `seed`)
    batch_size: int = 64  # tracks per step
    lr: float = 1e-3
    cosine_decay: bool = False  # anneal lr to 0 over the budget (steps or minutes)
    temperature: float = 0.1  # 0.1 beat 0.5 in the prototype
    seed: int = 0
    segments_per_track: int = 8
    segment_frames: int = 256  # each crop of patch_frames is drawn at a random offset inside a segment
    # Release-level positives: tracks of the same release (a Debian package in the training
    # corpus, see `read_groups`) are pulled together too, with this weight beside the same-track
    # term; 0 turns it off.
    release_weight: float = 0.0
    augment: bool = False  # musical augmentations of each crop, see `augment`
    # L2-SP (Li et al., 2018): continuing from a model, add anchor_weight * ||w - w0||^2 over the
    # encoder's weights, w0 being where they started, so a fit to a small library adapts the
    # model instead of overwriting it. On ost-dev 0.1 kept the encoder 5x closer to its start at
    # almost the same loss, yet album mAP still fell (docs/results.md): `fit`'s held-out check,
    # not this, is what keeps a fit from making things worse. 0 turns it off; training from
    # scratch has nothing to anchor to.
    anchor_weight: float = 0.0
    channels: tuple[int, ...] = EncoderConfig.channels  # of a new encoder (a model to continue from keeps its own)
    # The teacher as an auxiliary loss (issue 21 item 4, docs/results.md): a linear head on each
    # excerpt's embedding learns the teacher's tags of its track (`teacher`: standardised
    # logits, mean squared error), added with this weight to the contrastive loss, so the
    # encoder must keep what the teacher hears. `teacher_tags`: the teacher's npz
    # (scripts/teacher-tags.py); tracks it lacks add no term. 0 turns it off (the tags are then
    # not read, and training is what it was without them, draw for draw).
    teacher_weight: float = 0.0
    teacher_tags: str | None = None

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise InputError(f"objective must be one of {OBJECTIVES}, not {self.objective!r}")
        if self.minutes is None and self.steps is None:
            raise InputError("give a time budget (minutes) or a number of steps")
        # `not x > 0` also refuses NaN; a budget of 0 or less would train forever or not at all.
        if self.minutes is not None and not self.minutes > 0:
            raise InputError(f"minutes must be more than 0, not {self.minutes}")
        if self.steps is not None and self.steps < 1:
            raise InputError(f"steps must be 1 or more, not {self.steps}")
        if self.batch_size < 2:  # a contrastive step needs another track to tell apart
            raise InputError(f"batch size must be 2 or more, not {self.batch_size}")
        if self.segments_per_track < 1:
            raise InputError(f"segments per track must be 1 or more, not {self.segments_per_track}")
        if not self.lr > 0:
            raise InputError(f"learning rate must be more than 0, not {self.lr}")
        if not self.release_weight >= 0:
            raise InputError(f"release weight must be 0 or more, not {self.release_weight}")
        # Each block halves time and frequency: past 6 blocks nothing of 96 mel bands is left.
        if not 1 <= len(self.channels) <= 6 or min(self.channels) < 1:
            raise InputError(f"channels: 1 to 6 blocks of at least 1 channel each, not {self.channels}")
        if not self.anchor_weight >= 0:  # also refuses NaN
            raise InputError(f"anchor_weight must be 0 or more, not {self.anchor_weight}")
        if not self.teacher_weight >= 0:
            raise InputError(f"teacher_weight must be 0 or more, not {self.teacher_weight}")
        if self.teacher_weight > 0 and not self.teacher_tags:
            raise InputError("teacher_weight needs the teacher's tags: give teacher_tags (an npz of "
                             "scripts/teacher-tags.py, e.g. data/teacher/corpus-tags.npz)")
        if self.teacher_weight > 0 and self.objective != "contrastive":
            raise InputError("teacher_weight works with the contrastive objective only")


# ---------------------------------------------------------------------------------------------
# Stage 1: the corpus of log-mel segments
# ---------------------------------------------------------------------------------------------


def track_segments(y: np.ndarray, features: FeatureConfig, n_segments: int, segment_frames: int) -> np.ndarray:
    """(n_segments, n_mels, segment_frames) float16 segments spread evenly over a waveform."""
    S = log_mel(y, features)
    n_frames = S.shape[1]
    if n_frames < segment_frames:
        S = S.repeat(1, -(-segment_frames // max(n_frames, 1)))
        n_frames = S.shape[1]
    starts = np.linspace(0, n_frames - segment_frames, n_segments).astype(int)
    return torch.stack([S[:, s : s + segment_frames] for s in starts]).numpy().astype(np.float16)


def _segments_task(task: tuple[int, str, FeatureConfig, int, int]) -> tuple[int, str, np.ndarray | None, str | None]:
    row, path, features, n_segments, segment_frames = task
    try:
        a = audio.load(path, sr=features.sr)
    except audio.DecodeError as e:
        return row, path, None, e.reason
    return row, path, track_segments(a.y, features, n_segments, segment_frames), None


class Corpus:
    """Log-mel segments of many tracks in a float16 memmap: (n_files, n_segments, n_mels, frames).

    Row i belongs to the i-th path in sorted order whatever order the workers finish in, so a
    seed gives the same training run every time. Rows of undecodable files stay unused."""

    def __init__(self, paths: Sequence[str | Path], features: FeatureConfig, cfg: TrainConfig, workdir: Path,
                 workers: int | None = None, progress: Callable[[int, int], None] | None = None,
                 keep: bool = False):
        """`keep`: workdir is a cache that outlives the run: a corpus decoded there before with the
        same paths, features and segments is opened read-only instead of decoded again (decoding
        2,000 minutes of music takes longer than a short training run on a small machine)."""
        paths = sorted(str(p) for p in paths)
        self.all_paths = paths
        shape = (len(paths), cfg.segments_per_track, features.n_mels, cfg.segment_frames)
        key = json.loads(json.dumps({"paths": paths, "shape": shape, "features": asdict(features)}))
        # Groups are per run (set_groups), not part of what is cached.
        self.groups = np.arange(len(paths), dtype=np.int64)
        if keep and self._open_kept(workdir, key):
            return
        self.data = np.lib.format.open_memmap(workdir / "corpus.npy", mode="w+", dtype=np.float16, shape=shape)
        self.failures: list[tuple[str, str]] = []
        rows = []
        tasks = [(i, p, features, cfg.segments_per_track, cfg.segment_frames) for i, p in enumerate(paths)]
        for done, (row, path, segs, reason) in enumerate(run_parallel(_segments_task, tasks, workers), 1):
            if segs is None:
                self.failures.append((path, reason))
            else:
                self.data[row] = segs
                rows.append(row)
            if progress:
                progress(done, len(tasks))
        self.rows = np.array(sorted(rows), dtype=np.int64)
        self.paths = [paths[i] for i in self.rows]
        if keep:  # written last: a decode cut short is never mistaken for a whole one
            self.data.flush()
            done = {**key, "rows": self.rows.tolist(), "failures": self.failures}
            (workdir / "corpus.json").write_text(json.dumps(done))

    def _open_kept(self, workdir: Path, key: dict) -> bool:
        try:
            kept = json.loads((workdir / "corpus.json").read_text())
        except (OSError, ValueError):
            return False
        if any(kept.get(k) != v for k, v in key.items()):
            return False
        self.data = np.load(workdir / "corpus.npy", mmap_mode="r")
        self.rows = np.array(kept["rows"], dtype=np.int64)
        self.paths = [self.all_paths[i] for i in self.rows]
        self.failures = [tuple(f) for f in kept["failures"]]
        return True

    def set_groups(self, group_of: dict[str, str]) -> None:
        """Name the release of each path (absolute path → release name); others stay alone."""
        names: dict[str, int] = {}
        for row, path in enumerate(self.all_paths):
            if path in group_of:
                self.groups[row] = len(self.all_paths) + names.setdefault(group_of[path], len(names))

    def __len__(self) -> int:
        return len(self.rows)


MANIFEST = "MANIFEST.tsv"


def read_releases(folders: Sequence[str | Path]) -> dict[str, str]:
    """Release of each track, from a MANIFEST.tsv (columns `file`, relative to the folder, and
    `package`) in a training folder, as scripts/fetch-training-corpus.sh writes: resolved
    path → package, paths spelt as `scan` spells them. Folders without one add nothing."""
    releases = {}
    for folder in folders:
        folder = Path(folder).expanduser().resolve()
        manifest = folder / MANIFEST
        if not manifest.is_file():
            continue
        with open(manifest, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                releases[str(folder / row["file"])] = row["package"]
    return releases


# ---------------------------------------------------------------------------------------------
# Stage 2: the loop
# ---------------------------------------------------------------------------------------------


def sample_pairs(data: np.ndarray | torch.Tensor, tracks: np.ndarray, patch_frames: int, rng: np.random.Generator):
    """Two crops per track, from two different segments: (a, b), each (batch, n_mels, patch_frames)
    float32, on the device `data` is on."""
    n_segments, seg_frames = data.shape[1], data.shape[3]
    seg_a = rng.integers(0, n_segments, len(tracks))
    # A different segment for the second view whenever there is more than one.
    seg_b = (seg_a + rng.integers(1, max(n_segments, 2), len(tracks))) % n_segments
    views = []
    for segs in (seg_a, seg_b):
        offsets = rng.integers(0, seg_frames - patch_frames + 1, len(tracks))
        views.append(crops(data, tracks, segs, offsets, patch_frames))
    return views


def crops(data: np.ndarray | torch.Tensor, tracks: np.ndarray, segs: np.ndarray, offsets: np.ndarray,
          patch_frames: int) -> torch.Tensor:
    """data[tracks[i], segs[i], :, offsets[i] : offsets[i] + patch_frames] for every i."""
    if isinstance(data, torch.Tensor):  # on a GPU: one gather, not a Python loop (which bounded the step rate)
        t, s, o = (torch.from_numpy(a).to(data.device) for a in (tracks, segs, offsets))
        frames = (o[:, None] + torch.arange(patch_frames, device=data.device))[:, None, :]
        picked = data[t, s]  # (batch, n_mels, seg_frames)
        return picked.gather(2, frames.expand(-1, picked.shape[1], -1)).float()
    return torch.from_numpy(np.stack([data[t, s, :, o : o + patch_frames]
                                      for t, s, o in zip(tracks, segs, offsets)]).astype(np.float32))


def on_device(data: np.ndarray, device: torch.device) -> np.ndarray | torch.Tensor:
    """The corpus itself on a GPU when it takes at most a quarter of the GPU's free memory, so
    crops are cut there; otherwise it stays where it is (a memmap) and crops travel per step."""
    if device.type != "cuda" or data.nbytes > torch.cuda.mem_get_info(device)[0] // 4:
        return data
    out = torch.empty(data.shape, dtype=torch.float16, device=device)
    for i in range(0, len(data), 256):  # a few tracks at a time: never the whole memmap in RAM
        out[i : i + 256] = torch.from_numpy(np.ascontiguousarray(data[i : i + 256], dtype=np.float16))
    return out


def drift(encoder: nn.Module, start_weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """||w - w0||^2 over the encoder's parameters: how far it moved from where it started."""
    return sum((p - p0).square().sum() for p, p0 in zip(encoder.parameters(), start_weights))


def train_on_corpus(corpus: Corpus, features: FeatureConfig, cfg: TrainConfig, init: Model | None = None,
                    device: torch.device | None = None,
                    progress: Callable[[float, int, float], None] | None = None) -> tuple[nn.Module, dict]:
    """Optimise the objective; progress(fraction_done, step, loss). Returns (objective, stats):
    objective.encoder is the trained encoder."""
    if len(corpus) < 2:
        raise InputError(f"need at least 2 decodable tracks to train, found {len(corpus)}")
    device = device or pick_device()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)  # augmentations
    encoder = copy.deepcopy(init.encoder) if init else Encoder(EncoderConfig(n_mels=features.n_mels, channels=tuple(cfg.channels)))
    if cfg.objective == "contrastive":
        objective = Contrastive(encoder, temperature=cfg.temperature)
    else:
        objective = Autoencoder(encoder, features.patch_frames)
    if init and init.objective == cfg.objective and init.objective_state:
        # Continue with the model's own projection head (or decoder): see models.checkpoint.
        objective.load_state_dict({**objective.state_dict(), **init.objective_state})
    # channels_last: 1.7x faster training steps on CPU (measured), same results.
    objective.to(device, memory_format=torch.channels_last).train()
    params = list(objective.parameters())
    head = has_target = targets = None
    taught_losses: list[float] = []
    if cfg.teacher_weight > 0:
        # Made after the encoder and its projection (same initial weights as without it); it
        # draws from torch's generator only here, never from `rng` (same batches and crops).
        has, targets = read_targets(cfg.teacher_tags, corpus.all_paths)
        if not has[corpus.rows].any():
            raise InputError(f"teacher tags {cfg.teacher_tags}: none of the {len(corpus)} training tracks has a "
                             "row there (rows are matched on the path below the corpus folder, e.g. package/file.ogg)")
        targets = torch.from_numpy(standardise(targets, has, corpus.rows)).to(device)
        has_target = torch.from_numpy(has).to(device)
        head = nn.Linear(objective.encoder.cfg.embed_dim, targets.shape[1]).to(device).train()
        params += list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    # Where the encoder starts (not the head: it is free to re-learn the task), for L2-SP.
    start_weights = [p.detach().clone() for p in objective.encoder.parameters()]
    batch = min(cfg.batch_size, len(corpus))
    data = on_device(corpus.data, device)
    start, step, losses = time.monotonic(), 0, []
    order, cursor = rng.permutation(corpus.rows), 0

    def fraction_done() -> float:
        by_steps = step / cfg.steps if cfg.steps else 0.0
        by_time = (time.monotonic() - start) / (60 * cfg.minutes) if cfg.minutes else 0.0
        return min(1.0, max(by_steps, by_time))

    while fraction_done() < 1.0:
        if cursor + batch > len(order):  # a new epoch: every track once per epoch
            order, cursor = rng.permutation(corpus.rows), 0
        tracks = np.sort(order[cursor : cursor + batch])  # sorted: sequential reads of the memmap
        cursor += batch
        views = sample_pairs(data, tracks, features.patch_frames, rng)
        if cfg.augment:  # on the CPU, where `generator` lives: the same crops on any device
            views = [augment(level(v.cpu(), features), features, generator) for v in views]
        a, b = (level(v.to(device), features) for v in views)  # levelled where the model runs
        taught = None
        if cfg.objective == "contrastive":
            releases = torch.from_numpy(corpus.groups[tracks]).to(device)
            if head is None:
                loss = objective.loss(a, b, releases, cfg.release_weight)
            else:
                loss, h = objective.loss_and_embeddings(a, b, releases, cfg.release_weight)
                taught = teacher_loss(head, h, has_target, targets, tracks)
        else:
            loss = objective.loss(torch.cat([a, b]))
        total = loss + cfg.anchor_weight * drift(objective.encoder, start_weights) if cfg.anchor_weight > 0 else loss
        if taught is not None:  # `loss` (reported) stays the objective's own
            total = total + cfg.teacher_weight * taught
            taught_losses.append(taught.item())
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if cfg.cosine_decay:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * fraction_done()))
        optimizer.step()
        step += 1
        losses.append(loss.item())
        if progress:
            progress(fraction_done(), step, float(np.mean(losses[-20:])))
    objective.eval().cpu()
    with torch.no_grad():
        moved = drift(objective.encoder, [p.cpu() for p in start_weights]).item()
    stats = {"steps": step, "seconds": round(time.monotonic() - start, 1), "final_loss": float(np.mean(losses[-20:])),
             "tracks": len(corpus), "device": str(device), "drift": round(moved, 4)}
    if head is not None:  # the head itself is not kept: it only shaped the encoder
        stats["teacher_tracks"] = int(has_target.cpu().numpy()[corpus.rows].sum())
        w = max(1, min(20, len(taught_losses) // 4))  # the first and last 20 steps, or quarters of a short run
        stats["teacher_loss_first"] = float(np.mean(taught_losses[:w])) if taught_losses else None
        stats["teacher_loss"] = float(np.mean(taught_losses[-w:])) if taught_losses else None
    return objective, stats


def teacher_loss(head: nn.Module, h: torch.Tensor, has: torch.Tensor, targets: torch.Tensor,
                 tracks: np.ndarray) -> torch.Tensor | None:
    """Mean squared error of the head's tags from each excerpt's embedding h ((2 * batch, dim):
    both views) against its track's standardised teacher logits (targets[row], where has[row]);
    None when no track of the batch has any."""
    rows = torch.from_numpy(tracks).to(h.device).repeat(2)
    mask = has[rows]
    if not mask.any():
        return None
    return (head(h[mask]) - targets[rows[mask]]).square().mean()


# ---------------------------------------------------------------------------------------------
# Everything together
# ---------------------------------------------------------------------------------------------


def train(paths: Sequence[str | Path], out: str | Path, cfg: TrainConfig = TrainConfig(),
          init: Model | str | Path | None = None, features: FeatureConfig | None = None,
          workers: int | None = None, device: torch.device | None = None,
          report: Callable[[str, float, float, str], None] | None = None,
          releases: dict[str, str] | None = None, corpus_cache: Path | None = None) -> tuple[Model, Corpus]:
    """Train on `paths`, save to `out` (.safetensors + .json). `init` continues from a model
    (e.g. the shipped default, to adapt it to a library); None starts from random weights with
    the shipped model's features. `releases` (path → release, see `read_releases`) is needed
    when cfg.release_weight > 0. `corpus_cache`: a folder where the decoded corpus is kept for the
    next run with the same tracks and features (see `Corpus`).
    report(stage, done, total, detail) follows both stages: Phase.FIT_CORPUS counts tracks read,
    Phase.FIT the fraction of the training budget spent."""
    report = report or (lambda *a: None)
    if init is not None and not isinstance(init, Model):
        init = load_model(init)
    if cfg.anchor_weight > 0 and init is None:
        raise InputError("anchor_weight pulls the encoder toward the model it starts from: give one to start from")
    if cfg.release_weight > 0 and not releases:
        raise InputError("release_weight needs each track's release: a MANIFEST.tsv with `file` and `package` "
                         "columns in the training folder (scripts/fetch-training-corpus.sh writes one)")
    features = init.features if init else (features or FeatureConfig(**read_config(None)["features"]))
    with unwind_on_sigterm(), tempfile.TemporaryDirectory(prefix="songspace-train-") as tmp:
        if corpus_cache is not None:
            Path(corpus_cache).mkdir(parents=True, exist_ok=True)
        corpus = Corpus(paths, features, cfg, Path(corpus_cache or tmp), workers,
                        lambda d, n: report(Phase.FIT_CORPUS, d, n, ""), keep=corpus_cache is not None)
        corpus.set_groups(releases or {})
        objective, stats = train_on_corpus(corpus, features, cfg, init, device,
                                         lambda f, step, loss: report(Phase.FIT, f, 1.0, f"step {step} loss {loss:.3f}"))
        del corpus.data  # release the memmap before its file is deleted
    info = {"training": {**asdict(cfg), **stats}, "init": init.model_id if init else None}
    rest = {k: v for k, v in objective.state_dict().items() if not k.startswith("encoder.")}
    return save_model(out, objective.encoder, features, info, rest), corpus
