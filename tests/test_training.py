"""Self-supervised training: it must help, be reproducible, and save loadable checkpoints."""

import json

import numpy as np
import pytest
import torch

from songspace.embedding import Embedder
from songspace.errors import InputError
from songspace.evaluate import retrieval_scores
from songspace.features import FeatureConfig
from songspace.models.checkpoint import Model, load_model, save_model
from songspace.models.encoder import Encoder
from songspace.synth import STYLES, synth_track, write_audio
from songspace.training import TrainConfig, train

SR = 16000


def with_nuisance(y: np.ndarray, rng: np.random.Generator, seconds: float = 2.0) -> np.ndarray:
    """Every couple of seconds a new gain (-24..0 dB) and a new level and colour of noise.

    Loudness and background noise change within a track, so they cannot tell tracks apart: a
    contrastive encoder must learn to look past them, while an untrained one is swayed by them."""
    out, hop = y.copy(), int(seconds * SR)
    for start in range(0, len(y), hop):
        end = min(len(y), start + hop)
        width = int(rng.integers(1, 200))
        noise = np.convolve(rng.standard_normal(end - start), np.ones(width) / np.sqrt(width), "same")
        out[start:end] = y[start:end] * 10 ** (rng.uniform(-24, 0) / 20) + rng.uniform(0, 0.3) * noise
    return (0.9 * out / np.abs(out).max()).astype(np.float32)


@pytest.fixture(scope="module")
def styled_tracks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("styles")
    paths, labels = [], []
    for s, style in enumerate(STYLES):
        for i in range(6):
            y = with_nuisance(synth_track(style, 16.0, SR, seed=i), np.random.default_rng(1000 * s + i))
            paths.append(write_audio(folder / f"{style}-{i}.wav", y, SR))
            labels.append(style)
    return paths, labels


def style_scores(model: Model, paths, labels) -> dict:
    embedder = Embedder(model, torch.device("cpu"))
    return retrieval_scores(np.stack([embedder.embed_file(p).vector for p in paths]), labels)


@pytest.mark.slow
def test_contrastive_training_separates_styles(styled_tracks, tmp_path):
    paths, labels = styled_tracks
    torch.manual_seed(0)
    untrained = style_scores(Model(Encoder().eval(), FeatureConfig(), "untrained"), paths, labels)
    model, _ = train(paths, tmp_path / "m.safetensors", TrainConfig(steps=30, minutes=None, batch_size=24), workers=0)
    trained = style_scores(model, paths, labels)
    print(f"style retrieval, untrained: {untrained}\nstyle retrieval, trained:   {trained}")
    assert trained["map"] > untrained["map"] + 0.15
    assert trained["p@5"] > untrained["p@5"] + 0.15


@pytest.mark.slow
def test_autoencoder_learns_to_reconstruct(styled_tracks, tmp_path):
    paths, _ = styled_tracks
    cfg = TrainConfig(objective="autoencoder", steps=25, minutes=None, batch_size=8)
    losses = []

    def record(stage, done, total, detail):  # detail: "step N loss X"
        if stage == "fit":
            losses.append(float(detail.split("loss ")[1]))

    train(paths, tmp_path / "ae.safetensors", cfg, workers=0, report=record)
    assert len(losses) == 25
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.slow
def test_checkpoint_round_trip_and_determinism(styled_tracks, tmp_path):
    paths, _ = styled_tracks
    cfg = TrainConfig(steps=3, minutes=None, batch_size=8, seed=7)
    a, _ = train(paths[:8], tmp_path / "a.safetensors", cfg, workers=0)
    b, _ = train(paths[:8], tmp_path / "b", cfg, workers=2)
    assert a.model_id.split("-")[-1] == b.model_id.split("-")[-1]  # same seed, same weights
    assert (tmp_path / "b.safetensors").exists() and (tmp_path / "b.json").exists()

    config = json.loads((tmp_path / "a.json").read_text())
    assert config["model_id"] == a.model_id
    assert config["info"]["training"]["steps"] == 3 and config["info"]["training"]["objective"] == "contrastive"
    loaded = load_model(tmp_path / "a.safetensors")
    assert loaded.model_id == a.model_id
    x = torch.randn(2, 96, 192)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.encoder(x), a.encoder.eval()(x))

    other, _ = train(paths[:8], tmp_path / "c.safetensors", TrainConfig(steps=3, minutes=None, batch_size=8, seed=8), workers=0)
    assert other.model_id.split("-")[-1] != a.model_id.split("-")[-1]


def test_fine_tuning_starts_from_the_given_model(styled_tracks, tmp_path):
    paths, _ = styled_tracks
    base = load_model()
    tuned, _ = train(paths[:8], tmp_path / "t.safetensors", TrainConfig(steps=1, minutes=None, batch_size=8),
                     init=base.path, workers=0)
    assert tuned.info["init"] == base.model_id
    # One small step from the shipped weights stays close to them; a fresh start would not.
    before = torch.cat([p.flatten() for p in base.encoder.parameters()])
    after = torch.cat([p.flatten() for p in tuned.encoder.parameters()])
    assert torch.nn.functional.cosine_similarity(before, after, dim=0) > 0.9
    # The projection head ships with the model and fitting continues from it, not from random.
    assert base.objective == "contrastive" and "projection.0.weight" in base.objective_state
    for name, shipped in base.objective_state.items():
        if shipped.is_floating_point():
            cos = torch.nn.functional.cosine_similarity(shipped.flatten(), tuned.objective_state[name].flatten(), dim=0)
            assert cos > 0.9, name


def test_objective_state_is_saved_beside_the_encoder_without_changing_its_id(styled_tracks, tmp_path):
    paths, _ = styled_tracks
    model, _ = train(paths[:8], tmp_path / "a.safetensors", TrainConfig(steps=2, minutes=None, batch_size=8), workers=0)
    loaded = load_model(model.path)
    assert set(loaded.objective_state) == set(model.objective_state) and "projection.2.weight" in loaded.objective_state
    without_head = save_model(tmp_path / "b.safetensors", loaded.encoder, loaded.features)
    assert without_head.model_id.split("-")[-1] == loaded.model_id.split("-")[-1]


def test_bad_training_requests_are_refused():
    with pytest.raises(ValueError, match="objective"):
        TrainConfig(objective="magic")
    with pytest.raises(ValueError, match="minutes"):
        TrainConfig(minutes=None, steps=None)
    # Budgets that would train forever (steps -1 never reaches its fraction) or not at all.
    for bad, match in (({"minutes": None, "steps": -1}, "steps must be 1 or more, not -1"),
                       ({"minutes": None, "steps": 0}, "steps"), ({"minutes": 0.0}, "minutes must be more than 0"),
                       ({"minutes": float("nan")}, "minutes"), ({"batch_size": 1}, "batch size must be 2"),
                       ({"segments_per_track": 0}, "segments per track"), ({"lr": 0.0}, "learning rate"),
                       ({"release_weight": -1.0}, "release weight")):
        with pytest.raises(ValueError, match=match):
            TrainConfig(**bad)


def test_crops_cut_on_a_device_are_the_crops_cut_from_the_memmap():
    """A GPU cuts training crops with one gather over the corpus held on it; the memmap path
    slices them one by one. Both must give the same crops (here the tensor is on the CPU)."""
    from songspace.training import sample_pairs

    data = np.random.default_rng(0).standard_normal((7, 4, 8, 30)).astype(np.float16)
    tracks = np.array([0, 2, 3, 6])
    a = sample_pairs(data, tracks, 12, np.random.default_rng(5))
    b = sample_pairs(torch.from_numpy(data), tracks, 12, np.random.default_rng(5))
    for x, y in zip(a, b):
        assert x.dtype == y.dtype == torch.float32 and x.shape == (4, 8, 12)
        assert torch.equal(x, y)
    assert not torch.equal(a[0], a[1])  # two views, two different segments


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_the_corpus_moves_there_and_gives_the_same_crops(tmp_path):
    from songspace.training import on_device, sample_pairs

    data = np.lib.format.open_memmap(tmp_path / "c.npy", mode="w+", dtype=np.float16, shape=(300, 4, 8, 30))
    data[:] = np.random.default_rng(0).standard_normal(data.shape)
    held = on_device(data, torch.device("cuda"))
    assert isinstance(held, torch.Tensor) and held.is_cuda
    tracks = np.array([0, 17, 256, 299])
    for x, y in zip(sample_pairs(data, tracks, 12, np.random.default_rng(5)),
                    sample_pairs(held, tracks, 12, np.random.default_rng(5))):
        assert y.is_cuda and torch.equal(x, y.cpu())


def test_release_term_rewards_release_mates_being_close():
    from songspace.models.contrastive import release_nce

    torch.manual_seed(0)
    releases = torch.tensor([0, 0, 1, 1, 2, 2])
    centres = torch.nn.functional.normalize(torch.randn(3, 32), dim=1)
    noise = 0.3 * torch.randn(12, 32)
    together = torch.nn.functional.normalize(centres[releases.repeat(2)] + noise, dim=1)
    apart = torch.nn.functional.normalize(torch.randn(12, 32), dim=1)
    assert release_nce(together, releases.repeat(2), 0.1) < release_nce(apart, releases.repeat(2), 0.1) - 1.0
    # With no release-mates in the batch the term says nothing.
    assert release_nce(apart, torch.arange(6).repeat(2), 0.1) == 0


def test_augment_keeps_shapes_and_changes_the_sound_not_the_music():
    from songspace.augment import augment

    cfg = FeatureConfig(patch_power=0.46)
    x = torch.log(torch.rand(16, 96, 192) + cfg.log_offset)
    y = augment(x, cfg, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert not torch.equal(x, y)
    torch.testing.assert_close(y, augment(x, cfg, torch.Generator().manual_seed(0)))  # seeded
    # A low-pass empties the top bands of some crops: they sit at the silence floor.
    floor = np.log(cfg.log_offset)
    assert ((y[:, -1, :] - floor).abs().amax(dim=1) < 1e-4).any()
    # The EQ is a gentle tilt: within 6 dB between lowest and highest band, plus what mixing adds.
    assert ((y - x)[:, 0].mean() - (y - x)[:, 60].mean()).abs() < np.log(10 ** 0.6)


def test_training_with_releases_and_augmentations(styled_tracks, tmp_path):
    from songspace.training import read_releases

    paths, labels = styled_tracks
    folder = tmp_path / "corpus"
    folder.mkdir()
    lines = ["package\tfile"]
    for p, style in zip(paths, labels):
        (folder / f"{style}-{len(lines)}.wav").symlink_to(p)
        lines.append(f"{style}-pkg\t{style}-{len(lines)}.wav")
    (folder / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")
    releases = read_releases([folder])
    assert len(releases) == len(paths) and set(releases.values()) == {f"{s}-pkg" for s in STYLES}

    from songspace.scan import scan
    files, _ = scan([folder])
    cfg = TrainConfig(steps=4, minutes=None, batch_size=12, release_weight=0.5, augment=True)
    model, corpus = train(files, tmp_path / "r.safetensors", cfg, workers=0, releases=releases)
    assert len(set(corpus.groups.tolist())) == len(STYLES)  # every track found its release
    assert model.info["training"]["release_weight"] == 0.5 and model.info["training"]["augment"]
    assert model.features.patch_power is not None  # a new model levels its patches, as the shipped one

    with pytest.raises(InputError, match="MANIFEST.tsv"):
        train(files, tmp_path / "s.safetensors", cfg, workers=0)


@pytest.mark.parametrize("channels", [(0, 16), (), (8,) * 7])
def test_impossible_encoder_widths_are_refused(channels):
    with pytest.raises(InputError, match="channels"):
        TrainConfig(channels=channels)


def test_a_new_encoder_takes_the_channels_asked_for(styled_tracks, tmp_path):
    paths, _ = styled_tracks
    model, _ = train(paths[:4], tmp_path / "w.safetensors", TrainConfig(steps=1, minutes=None, batch_size=4, channels=(16, 32)),
                     workers=0)
    assert load_model(model.path).encoder.cfg.channels == (16, 32)


def test_a_kept_corpus_is_reused_only_for_the_same_tracks_and_segments(tmp_path):
    paths = [write_audio(tmp_path / f"t{i}.wav", synth_track(STYLES[i], 4.0, SR, seed=i), SR) for i in range(3)]
    cache = tmp_path / "cache"
    cfg = TrainConfig(steps=1, minutes=None, batch_size=2, segments_per_track=2)
    _, first = train(paths, tmp_path / "a.safetensors", cfg, workers=0, corpus_cache=cache)
    written = (cache / "corpus.npy").stat().st_mtime_ns
    _, again = train(paths, tmp_path / "b.safetensors", cfg, workers=0, corpus_cache=cache)
    assert (cache / "corpus.npy").stat().st_mtime_ns == written  # opened, not decoded again
    same_weights = [load_model(tmp_path / f"{n}.safetensors").model_id.split("-")[-1] for n in "ab"]
    assert same_weights[0] == same_weights[1]  # the id's hash is of the weights: the same training
    # Other segments per track, or other tracks: decoded again, never the stale excerpts.
    _, other = train(paths, tmp_path / "c.safetensors", TrainConfig(steps=1, minutes=None, batch_size=2,
                     segments_per_track=3), workers=0, corpus_cache=cache)
    assert json.loads((cache / "corpus.json").read_text())["shape"][1] == 3
    _, fewer = train(paths[:2], tmp_path / "d.safetensors", cfg, workers=0, corpus_cache=cache)
    assert len(fewer) == 2 and len(json.loads((cache / "corpus.json").read_text())["paths"]) == 2
