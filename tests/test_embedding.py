"""Model + features → track vector and per-segment vectors."""

import numpy as np
import torch

from songspace.audio import Audio
from songspace.embedding import Embedder, for_inference
from songspace.models.checkpoint import load_model
from songspace.synth import synth_track, write_audio


def test_folded_batch_norm_gives_the_same_embeddings():
    encoder = load_model().encoder
    for m in encoder.modules():  # non-trivial statistics, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    x = torch.randn(3, 96, 192)
    with torch.inference_mode():
        torch.testing.assert_close(for_inference(encoder)(x), encoder.eval()(x), atol=1e-5, rtol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in for_inference(encoder).blocks.modules())


def test_track_and_segment_vectors(tmp_path):
    path = write_audio(tmp_path / "t.flac", synth_track("mid_chords", 20.0, seed=1), 16000)
    embedder = Embedder(device=torch.device("cpu"))
    e = embedder.embed_file(path)
    assert e.vector.dtype == np.float32 and abs(np.linalg.norm(e.vector) - 1) < 1e-5
    n = len(e.segment_starts)
    assert e.segments.shape == (n, embedder.model.encoder.cfg.embed_dim) and n == 13  # 3.07-s patches every 1.54 s over 20 s
    assert np.all(np.diff(e.segment_starts) > 0) and e.segment_starts[0] == 0
    assert abs(e.segment_starts[-1] + 3.072 - 20.0) < 0.05  # the last patch ends with the track
    np.testing.assert_allclose(np.linalg.norm(e.segments.astype(np.float32), axis=1), 1, atol=2e-3)
    mean = e.segments.astype(np.float32).mean(axis=0)
    np.testing.assert_allclose(mean / np.linalg.norm(mean), e.vector, atol=2e-3)


def test_excerpt_samples_map_back_to_track_time():
    a = Audio(np.zeros(3 * 30 * 100, np.float32), 100, 3000.0, True, (0.0, 1485.0, 2970.0), 30.0)
    assert a.seconds_at(0) == 0.0
    assert a.seconds_at(30 * 100 + 50) == 1485.5
    assert a.seconds_at(2 * 30 * 100 + 2999) == 2970.0 + 29.99
    whole = Audio(np.zeros(100, np.float32), 100, 1.0, False)
    assert whole.seconds_at(50) == 0.5


def test_loudness_does_not_move_the_vector():
    embedder = Embedder(device=torch.device("cpu"))
    y = synth_track("noise_beat", 12.0, seed=4)
    y = 0.9 * y / np.abs(y).max()  # mastered to full scale, as released music is
    v = embedder.embed_waveform(y)
    for gain in (0.5, 0.1):  # 6 dB and 20 dB quieter: the same recording
        assert float(embedder.embed_waveform(gain * y) @ v) > 0.999
    other = embedder.embed_waveform(synth_track("mid_chords", 12.0, seed=4))
    assert float(other @ v) < 0.99  # while a different piece stays apart


def test_levelling_is_part_of_the_model_id(tmp_path):
    from dataclasses import replace

    from songspace.models.checkpoint import save_model

    model = load_model()
    a = save_model(tmp_path / "a.safetensors", model.encoder, replace(model.features, patch_power=None))
    b = save_model(tmp_path / "b.safetensors", model.encoder, model.features)
    assert a.model_id.split("-")[1] != b.model_id.split("-")[1]
