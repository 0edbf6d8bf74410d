"""The faster indexing path gives the vectors the plain one gave.

Faster: mono mixing and resampling in `resample.py` instead of FFmpeg's resampler, bfloat16
where the CPU has it, pooling before the ReLU, 16 patches per batch. Plain: FFmpeg's resampler
frame by frame, the encoder as trained in float32, 32 patches per batch. The tolerance is the
one the indexing-speed work promises: cosine >= 0.999 per track.
"""

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from songspace import audio
from songspace.embedding import PRECISION_ENV, Embedder, pick_precision
from songspace.errors import InputError
from songspace.features import level, log_mel, patches
from songspace.models.checkpoint import load_model
from songspace.resample import Resampler
from songspace.synth import synth_track, write_audio


def ffmpeg_resample(x: np.ndarray, rate_in: int, rate_out: int = 16000) -> np.ndarray:
    frame = av.AudioFrame.from_ndarray(x[None, :], format="fltp", layout="mono")
    frame.sample_rate = rate_in
    r = av.AudioResampler(format="flt", layout="mono", rate=rate_out, options={"filter_size": "16"})
    return np.concatenate([o.to_ndarray().reshape(-1) for o in r.resample(frame) + r.resample(None)])


def plain_decode(path) -> np.ndarray:
    """How `audio.load` decoded before: FFmpeg mixes and resamples frame by frame."""
    with av.open(str(path)) as c:
        r = av.AudioResampler(format="flt", layout="mono", rate=16000, frame_size=4096, options={"filter_size": "16"})
        out = [o.to_ndarray().reshape(-1) for f in c.decode(c.streams.audio[0]) for o in r.resample(f)]
        out += [o.to_ndarray().reshape(-1) for o in r.resample(None)]
    return np.concatenate(out)


@pytest.mark.parametrize("rate_in", [44100, 48000, 22050, 32000, 96000, 11025, 8000])
def test_resampler_matches_ffmpeg(rate_in):
    rng = np.random.default_rng(rate_in)
    t = np.arange(rate_in * 3 + 123) / rate_in
    x = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 3100 * t)
         + 0.1 * rng.standard_normal(len(t))).astype(np.float32)
    ref = ffmpeg_resample(x, rate_in)
    r, parts, i = Resampler(rate_in, 16000), [], 0
    while i < len(x):  # fed in uneven pieces, as decoded frames arrive
        n = int(rng.integers(1, 20000))
        parts.append(r.process(x[i : i + n]))
        i += n
    y = np.concatenate(parts + [r.flush()])
    assert abs(len(y) - len(ref)) <= 1  # FFmpeg rounds a length ending on half a sample either way
    inner = slice(64, min(len(y), len(ref)) - 64)  # and treats the first and last few samples differently
    err = np.sqrt(np.mean((y[inner] - ref[inner]) ** 2) / np.mean(ref[inner] ** 2))
    # Downsampling copies FFmpeg's filter; upsampling (rare for music) uses it too, where
    # FFmpeg's own is a little longer.
    assert err < (1e-4 if rate_in > 16000 else 3e-2)
    whole = Resampler(rate_in, 16000)
    np.testing.assert_allclose(np.concatenate([whole.process(x), whole.flush()]), y, atol=1e-5)


@pytest.fixture(scope="module")
def coded_tracks(tmp_path_factory):
    """Music-like tracks through real codecs at the rates and channel counts music comes in."""
    folder = tmp_path_factory.mktemp("coded")
    specs = [("a.mp3", "bright_arpeggio", 44100, 2), ("b.opus", "mid_chords", 48000, 2),
             ("c.ogg", "noise_beat", 44100, 2), ("d.flac", "bass_drone", 22050, 1),
             ("e.m4a", "mid_chords", 44100, 2), ("f.wav", "noise_beat", 16000, 1)]
    paths = []
    for i, (name, style, sr, channels) in enumerate(specs):
        y = synth_track(style, 20.0, sr=sr, seed=i)
        if channels == 2:  # a little different on each side, as in a stereo mix
            y = np.stack([y, np.roll(y, sr // 100) * 0.8])
        paths.append(write_audio(folder / name, y, sr))
    return paths


def test_decoding_matches_ffmpeg_resampling(coded_tracks):
    for path in coded_tracks:
        ref, y = plain_decode(path), audio.load(path).y
        assert abs(len(y) - len(ref)) <= 1, path
        n = min(len(y), len(ref)) - 64
        assert np.abs(y[64:n] - ref[64:n]).max() < 1e-3, path


@pytest.mark.parametrize("precision", [torch.float32, torch.bfloat16])
def test_vectors_match_the_plain_path(coded_tracks, precision):
    model = load_model()
    encoder, cfg = model.encoder.eval(), model.features
    fast = Embedder(model, torch.device("cpu"), precision=precision)
    for path in coded_tracks:
        with torch.inference_mode():
            S = log_mel(torch.from_numpy(plain_decode(path)), cfg)
            P = level(patches(S, cfg.patch_frames, cfg.patch_frames // 2), cfg)
            plain = F.normalize(torch.cat([encoder(P[i : i + 32]) for i in range(0, len(P), 32)]), dim=1)
        e = fast.embed_file(path)
        reference = F.normalize(plain.mean(0), dim=0).numpy()
        assert float(e.vector @ reference) >= 0.999, path
        segments = (e.segments.astype(np.float32) * plain.numpy()).sum(1)
        assert len(segments) == len(plain) and segments.min() >= 0.99, path


def test_precision_is_chosen_by_cpu_unless_set(monkeypatch):
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    assert pick_precision(torch.device("cpu")) in (torch.float32, torch.bfloat16)
    monkeypatch.setenv(PRECISION_ENV, "float32")
    assert pick_precision(torch.device("cpu")) == torch.float32
    monkeypatch.setenv(PRECISION_ENV, "BFloat16")
    assert pick_precision(torch.device("cpu")) == torch.bfloat16
    monkeypatch.setenv(PRECISION_ENV, "fp8")
    with pytest.raises(InputError, match=PRECISION_ENV):
        pick_precision(torch.device("cpu"))


@pytest.mark.parametrize("layout, fmt, codec", [("5.1", "s16", "pcm_s16le"), ("stereo", "u8", "pcm_u8"),
                                                ("mono", "s32", "pcm_s32le")])
def test_other_layouts_and_sample_formats_decode_as_ffmpeg_does(tmp_path, layout, fmt, codec):
    """Surround (FFmpeg's downmix matrix) and u8 go through FFmpeg's converter; s32 is read directly."""
    sr, n = 44100, 44100 * 4
    channels = len(av.AudioLayout(layout).channels)
    rng = np.random.default_rng(channels)
    y = np.stack([synth_track("mid_chords", n / sr, sr=sr, seed=c) * rng.uniform(0.3, 0.9) for c in range(channels)])
    path = tmp_path / f"{layout}.wav"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=sr, layout=layout)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(y, np.float32), format="fltp", layout=layout)
        frame.sample_rate = sr
        for packet in stream.encode(frame):
            out.mux(packet)
        out.mux(stream.encode(None))
    with av.open(str(path)) as c:
        assert c.streams.audio[0].format.name == fmt
    ref, got = plain_decode(path), audio.load(path).y
    assert abs(len(got) - len(ref)) <= 1
    m = min(len(got), len(ref)) - 64
    assert np.abs(got[64:m] - ref[64:m]).max() < 1e-3
