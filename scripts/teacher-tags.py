"""The teacher's tags: musicnn's Million Song Dataset tagger run once over a set of tracks.

Run it with its own virtual environment, never songspace's (musicnn needs TensorFlow, which
songspace must not depend on; its outputs are committed so training and indexing never need it):

    python3 -m venv /work/teacher-venv
    /work/teacher-venv/bin/pip install tensorflow-cpu==2.15.1 "numpy<2" librosa av
    /work/teacher-venv/bin/pip install --no-deps musicnn==0.1.0
    /work/teacher-venv/bin/python scripts/teacher-tags.py /work/corpus/music/MANIFEST.tsv \
        --max-patches 6 --seek --part 1/2 --out /tmp/corpus-1.npz   # and --part 2/2 beside it
    /work/teacher-venv/bin/python scripts/teacher-tags.py /work/corpus/music/MANIFEST.tsv \
        --merge /tmp/corpus-1.npz /tmp/corpus-2.npz --out data/teacher/corpus-tags.npz
    /work/teacher-venv/bin/python scripts/teacher-tags.py ../shared/data/ost-dev/labels.csv \
        --max-patches 15 --out data/teacher/ost-dev-tags.npz

musicnn (Pons & Serra, 2019; ISC licence) ships `MSD_musicnn`, trained on the Last.fm tags of
the Million Song Dataset: real-world popular music. Each track is decoded with PyAV at 16 kHz,
turned into musicnn's own log-mel (librosa, 96 bands, 512/256, log10(1 + 10^4 x)) and cut into
its 3-s patches, back to back; tracks longer than `--max-patches` patches use that many, evenly
spread (with `--seek`, a track longer than 1.5 times that is not decoded whole: each excerpt is
decoded after a seek, and its log-mel computed on the excerpt alone). The output holds, per track, the mean over its patches of the sigmoid probability of each
of the 50 MSD tags (float16), the patch count, and the path relative to the set's folder.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

SR, N_FFT, HOP, N_MELS = 16000, 512, 256, 96  # musicnn.configuration's values
N_FRAMES = 188  # librosa.time_to_frames(3 s) + 1, as musicnn.extractor computes it


def read_set(source: Path) -> tuple[Path, list[str]]:
    """(folder, paths relative to it) of a corpus MANIFEST.tsv (`file`) or a labels.csv (`path`)."""
    with open(source, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t" if source.suffix == ".tsv" else ","))
    column = "file" if source.suffix == ".tsv" else "path"
    return source.parent, [r[column] for r in rows]


def decode(path: Path):
    """Mono float32 at 16 kHz, with PyAV (librosa.load's audioread cannot read every codec here)."""
    import av

    with av.open(str(path), metadata_errors="ignore") as container:  # latin-1 tags in some corpus files
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SR)
        chunks = []
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def excerpts(path: Path, max_patches: int) -> np.ndarray | None:
    """Only the `max_patches` evenly spread 3-s excerpts of a long track, each decoded after a
    seek (decoding and analysing hours of audio to keep a few minutes of it would dominate), as
    musicnn's patches; None when the track is short enough to decode whole."""
    import av
    import librosa

    seconds = (N_FRAMES - 1) * HOP / SR
    with av.open(str(path), metadata_errors="ignore") as container:  # latin-1 tags in some corpus files
        stream = container.streams.audio[0]
        duration = float(container.duration / av.time_base) if container.duration else 0.0
        if duration < seconds * max_patches * 1.5:
            return None
        found = []
        for start in np.linspace(0, duration - seconds - 0.5, max_patches):
            container.seek(int(start * av.time_base), backward=True)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SR)
            chunks, first = [], None
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                first = frame.time if first is None else first
                chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
                if frame.time > start + seconds + 0.2:
                    break
            y = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
            y = y[max(0, int(round((start - first) * SR))) if first is not None else 0:][: int(seconds * SR) + N_FFT]
            if len(y) < int(seconds * SR):
                continue
            mel = librosa.feature.melspectrogram(y=y, sr=SR, hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS).T
            found.append(np.log10(10000 * mel.astype(np.float16) + 1)[:N_FRAMES])
    return np.stack(found).astype(np.float32) if found else None


def patches(y: np.ndarray, max_patches: int) -> np.ndarray:
    """musicnn.extractor.batch_data's patches (no overlap), at most `max_patches`, evenly spread."""
    import librosa

    if len(y) < N_FFT:
        y = np.pad(y, (0, N_FFT - len(y)))
    mel = librosa.feature.melspectrogram(y=y, sr=SR, hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS).T
    mel = np.log10(10000 * mel.astype(np.float16) + 1)
    if len(mel) < N_FRAMES:  # shorter than one patch: musicnn would give nothing; repeat it
        mel = np.tile(mel, (N_FRAMES // len(mel) + 1, 1))
    starts = np.arange(0, len(mel) - N_FRAMES + 1, N_FRAMES)
    if len(starts) > max_patches:
        starts = starts[np.linspace(0, len(starts) - 1, max_patches).round().astype(int)]
    return np.stack([mel[s : s + N_FRAMES] for s in starts]).astype(np.float32)


class Teacher:
    """musicnn's graph restored once, one session for every track (its extractor rebuilds both per file)."""

    def __init__(self, model: str = "MSD_musicnn"):
        import tensorflow as tf

        tf.compat.v1.disable_eager_execution()
        import musicnn
        from musicnn import configuration, models

        self.tags = configuration.MSD_LABELS if "MSD" in model else configuration.MTT_LABELS
        tf.compat.v1.reset_default_graph()
        with tf.name_scope("model"):
            self.x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, N_MELS])
            self.is_training = tf.compat.v1.placeholder(tf.bool)
            logits = models.define_model(self.x, self.is_training, model, len(self.tags))[0]
            self.y = tf.nn.sigmoid(logits)
        self.session = tf.compat.v1.Session(config=tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=1, inter_op_parallelism_threads=1))
        self.session.run(tf.compat.v1.global_variables_initializer())
        tf.compat.v1.train.Saver().restore(self.session, os.path.join(os.path.dirname(musicnn.__file__), model) + "/")

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(self.y, feed_dict={self.x: batch, self.is_training: False})


def merge(paths: list[str], parts: list[Path], out: Path) -> int:
    """One output in the set's order from the outputs of `--part` runs over it."""
    loaded = [np.load(p) for p in parts]
    row = {str(p): (d, i) for d in loaded for i, p in enumerate(d["paths"])}
    missing = [p for p in paths if p not in row]
    if missing:
        raise SystemExit(f"{len(missing)} tracks in no part, e.g. {missing[0]}")
    first = loaded[0]
    np.savez_compressed(out, paths=np.array(paths), tags=first["tags"], model=first["model"],
                        probs=np.stack([row[p][0]["probs"][row[p][1]] for p in paths]),
                        patches=np.array([row[p][0]["patches"][row[p][1]] for p in paths]))
    print(f"{len(paths)} tracks from {len(parts)} parts -> {out}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a corpus MANIFEST.tsv or a labels.csv")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="MSD_musicnn")
    parser.add_argument("--max-patches", type=int, default=40, help="3-s patches per track at most (default 40: 2 min)")
    parser.add_argument("--seek", action="store_true", help="long tracks: decode only the excerpts, after a seek")
    parser.add_argument("--part", default="1/1", metavar="K/N", help="only every N-th track from the K-th (parallel runs)")
    parser.add_argument("--merge", type=Path, nargs="+", metavar="PART", help="join the outputs of --part runs into --out")
    args = parser.parse_args()

    folder, paths = read_set(args.source)
    if args.merge:
        return merge(paths, args.merge, args.out)
    k, n_parts = map(int, args.part.split("/"))
    paths = paths[k - 1 :: n_parts]
    teacher = Teacher(args.model)
    probs = np.zeros((len(paths), len(teacher.tags)), np.float32)
    counts = np.zeros(len(paths), np.int32)
    failed = []
    began = time.time()
    for n, rel in enumerate(paths):
        try:
            batch = excerpts(folder / rel, args.max_patches) if args.seek else None
            if batch is None:
                batch = patches(decode(folder / rel), args.max_patches)
        except Exception as e:  # a file that does not decode is reported and left at zero
            failed.append(rel)
            print(f"{rel}: skipped ({type(e).__name__}: {e})", file=sys.stderr)
            continue
        probs[n] = teacher(batch).mean(axis=0)
        counts[n] = len(batch)
        if n % 25 == 0:
            print(f"{n + 1}/{len(paths)} {time.time() - began:.0f} s", file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, paths=np.array(paths), tags=np.array(teacher.tags), probs=probs.astype(np.float16),
                        patches=counts, model=np.array(args.model))
    print(f"{len(paths) - len(failed)} tracks, {counts.sum()} patches, {time.time() - began:.0f} s -> {args.out}"
          + (f"; {len(failed)} skipped" if failed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
