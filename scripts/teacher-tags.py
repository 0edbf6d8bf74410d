"""The teacher's tags: musicnn's Million Song Dataset tagger run once over a set of tracks.

Run it with its own virtual environment, never songspace's (musicnn needs TensorFlow, which
songspace must not depend on; its outputs are committed so training and indexing never need it):

    python3 -m venv /work/teacher-venv
    /work/teacher-venv/bin/pip install tensorflow-cpu==2.15.1 "numpy<2" librosa av
    /work/teacher-venv/bin/pip install --no-deps musicnn==0.1.0
    /work/teacher-venv/bin/python scripts/teacher-tags.py /work/corpus/music/MANIFEST.tsv \
        --out data/teacher/corpus-tags.npz
    /work/teacher-venv/bin/python scripts/teacher-tags.py ../shared/data/ost-dev/labels.csv \
        --out data/teacher/ost-dev-tags.npz

musicnn (Pons & Serra, 2019; ISC licence) ships `MSD_musicnn`, trained on the Last.fm tags of
the Million Song Dataset: real-world popular music. Each track is decoded with PyAV at 16 kHz,
turned into musicnn's own log-mel (librosa, 96 bands, 512/256, log10(1 + 10^4 x)) and cut into
its 3-s patches, back to back; tracks longer than `--max-patches` patches use that many, evenly
spread. The output holds, per track, the mean over its patches of the sigmoid probability of each
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

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SR)
        chunks = []
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a corpus MANIFEST.tsv or a labels.csv")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="MSD_musicnn")
    parser.add_argument("--max-patches", type=int, default=40, help="3-s patches per track at most (default 40: 2 min)")
    args = parser.parse_args()

    folder, paths = read_set(args.source)
    teacher = Teacher(args.model)
    probs = np.zeros((len(paths), len(teacher.tags)), np.float32)
    counts = np.zeros(len(paths), np.int32)
    failed = []
    began = time.time()
    for n, rel in enumerate(paths):
        try:
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
