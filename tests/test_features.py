import librosa
import numpy as np
import torch

from songspace.features import FeatureConfig, log_mel, mel_filterbank, patches


def test_mel_filterbank_matches_librosa():
    ours = mel_filterbank(sr=16000, n_fft=512, n_mels=96, fmin=0.0, fmax=8000.0)
    theirs = librosa.filters.mel(sr=16000, n_fft=512, n_mels=96, fmin=0.0, fmax=8000.0)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)


def test_log_mel_matches_librosa_melspectrogram():
    cfg = FeatureConfig()
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(cfg.sr * 2)).astype(np.float32)
    ours = log_mel(y, cfg).numpy()
    S = librosa.feature.melspectrogram(y=y, sr=cfg.sr, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                       n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax, power=2.0,
                                       center=True, pad_mode="constant")
    np.testing.assert_allclose(ours, np.log(S + cfg.log_offset), atol=2e-3)


def test_tone_lands_in_the_right_mel_band():
    cfg = FeatureConfig()
    t = np.arange(cfg.sr) / cfg.sr
    S = log_mel(np.sin(2 * np.pi * 1000 * t).astype(np.float32), cfg)
    centres = librosa.mel_frequencies(n_mels=cfg.n_mels + 2, fmin=cfg.fmin, fmax=cfg.fmax)[1:-1]
    assert abs(centres[int(S.mean(dim=1).argmax())] - 1000) < 60


def test_patches_overlap_and_cover_the_end():
    S = torch.arange(10 * 500, dtype=torch.float32).reshape(10, 500)
    P = patches(S, patch_frames=192, hop_frames=96)
    assert P.shape == (5, 10, 192)  # starts 0, 96, 192, 288 and the end-aligned 308
    assert torch.equal(P[1], S[:, 96:288])
    assert torch.equal(P[-1], S[:, -192:])


def test_short_input_is_tiled_to_one_patch():
    S = torch.randn(4, 50)
    P = patches(S, patch_frames=192, hop_frames=96)
    assert P.shape == (1, 4, 192)
    assert torch.equal(P[0, :, 50:100], S)
