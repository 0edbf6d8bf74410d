"""Fitting a model to a library never makes it worse: L2-SP toward the starting weights, and a
label-free check on held-out tracks that keeps the starting model unless the fit beats it."""

import json

import numpy as np
import pytest
import torch

from songspace import Library
from songspace.errors import InputError
from songspace.fit_check import FitCheck, check_fit, split_holdout
from songspace.models.checkpoint import load_model
from songspace.synth import STYLES, synth_track, write_audio
from songspace.training import TrainConfig, train

SR = 16000


@pytest.fixture(scope="module")
def tracks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fit-tracks")
    return [write_audio(folder / f"{style}-{i}.wav", synth_track(style, 12.0, SR, seed=i), SR)
            for style in STYLES for i in range(3)]


# ---------------------------------------------------------------------------------------------
# L2-SP
# ---------------------------------------------------------------------------------------------


def test_anchor_weight_pulls_the_encoder_toward_its_start(tracks, tmp_path):
    start = load_model()

    def drift(anchor_weight):
        cfg = TrainConfig(steps=6, minutes=None, batch_size=8, lr=3e-3, anchor_weight=anchor_weight, seed=3)
        model, _ = train(tracks, tmp_path / f"a{anchor_weight}", cfg, init=start, workers=0)
        measured = sum((p - p0).square().sum().item()
                       for p, p0 in zip(model.encoder.parameters(), start.encoder.parameters()))
        assert model.info["training"]["drift"] == pytest.approx(measured, rel=1e-3)
        return measured

    free, anchored = drift(0.0), drift(100.0)
    print(f"||w - w0||^2 after 6 steps: {free:.4f} free, {anchored:.4f} anchored")
    assert anchored < 0.5 * free


@pytest.mark.parametrize("weight", [-0.1, float("nan")])
def test_a_negative_anchor_weight_is_refused(weight):
    with pytest.raises(InputError, match="anchor_weight"):
        TrainConfig(anchor_weight=weight)


def test_an_anchor_needs_a_model_to_start_from(tracks, tmp_path):
    with pytest.raises(InputError, match="anchor_weight"):
        train(tracks[:4], tmp_path / "m", TrainConfig(steps=1, minutes=None, anchor_weight=0.1), workers=0)


# ---------------------------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------------------------


def test_held_out_tracks_are_whole_seeded_and_apart_from_the_fit():
    paths = [f"/m/{i:03d}.flac" for i in range(112)]
    fit_on, held = split_holdout(paths, seed=0)
    assert len(held) == 22 and sorted(fit_on + held) == paths and not set(fit_on) & set(held)
    assert split_holdout(list(reversed(paths)), seed=0) == (fit_on, held)  # the order given does not matter
    assert split_holdout(paths, seed=1)[1] != held
    assert len(split_holdout(paths[:4], seed=0)[1]) == 2  # at least two, to tell apart
    assert len(split_holdout([f"/m/{i}" for i in range(5000)], seed=0)[1]) == 256  # the rest is fitted on
    with pytest.raises(InputError, match="at least 4 tracks"):
        split_holdout(paths[:3], seed=0)


def test_the_fit_must_be_better_by_more_than_the_noise():
    assert FitCheck(start=1.0, fitted=0.8, margin=0.1, tracks=20).improved
    assert not FitCheck(start=1.0, fitted=0.95, margin=0.1, tracks=20).improved  # within the noise
    assert not FitCheck(start=1.0, fitted=1.2, margin=0.1, tracks=20).improved
    assert not FitCheck(start=1.0, fitted=float("nan"), margin=float("nan"), tracks=20).improved  # a diverged fit


def test_a_model_checked_against_itself_is_not_an_improvement(tracks):
    start = load_model()
    check = check_fit(start, start, tracks[:6], TrainConfig(), workers=0)
    assert check.tracks == 6 and check.start == check.fitted and check.margin == 0
    assert not check.improved


def test_the_check_tells_a_ruined_encoder_from_the_start(tracks):
    start, ruined = load_model(), load_model()
    with torch.no_grad():
        for p in ruined.encoder.parameters():
            p.add_(2 * p.abs().mean() * torch.randn_like(p))  # noise twice the weights' size
    check = check_fit(start, ruined, tracks, TrainConfig(), workers=0)
    assert check.fitted > check.start + check.margin


# ---------------------------------------------------------------------------------------------
# fit keeps the starting model unless the fit does better
# ---------------------------------------------------------------------------------------------

DESTRUCTIVE = dict(minutes=0.05, lr=0.5, cosine=False, anchor_weight=0.0)  # Adam at 0.5 wrecks the encoder


def test_a_destructive_fit_leaves_the_library_as_it_was(indexed_library):
    with Library.open(indexed_library) as lib:
        model, model_id = lib.model, lib.model_id
        vectors = {t.id: lib.catalog.vector(t.id)[1] for t in lib.catalog.tracks()}
        result = lib.fit(workers=0, **DESTRUCTIVE)
        assert not result.used and not result.changed and not result.check.improved
        assert result.check.fitted > result.check.start  # worse, not only "not better"
        assert lib.model == model == str(result.model) and lib.model_id == model_id
        assert result.fitted.exists() and result.fitted.parent == indexed_library.resolve() / "models"
        assert lib.catalog.models() == {model_id: len(vectors)}
        for track_id, v in vectors.items():
            np.testing.assert_array_equal(lib.catalog.vector(track_id)[1], v)


def test_keep_anyway_uses_the_fit_whatever_the_check_says(indexed_library):
    with Library.open(indexed_library) as lib:
        shipped = lib.model_id
        result = lib.fit(workers=0, keep_anyway=True, **DESTRUCTIVE)
        assert result.used and result.changed and not result.check.improved
        assert lib.model == str(result.model) == str(result.fitted) and lib.model_id != shipped
        assert lib.catalog.models() == {shipped: 12}  # re-embedding is the caller's
        lib.index(lib.catalog.folders(), workers=0)
        assert lib.catalog.models() == {lib.model_id: 12}


def test_the_command_line_names_the_decision_and_the_scores(indexed_library, songspace):
    options = ["--minutes", "0.05", "--lr", "0.5", "--constant", "--anchor-weight", "0", "--workers", "0"]
    kept = songspace("fit", *options, check=True).output
    assert "kept the starting model" in kept and "held-out same-track loss" in kept
    assert "start " in kept and "fitted " in kept
    used = songspace("fit", *options, "--keep-anyway", check=True).output
    assert "using the fitted model (--keep-anyway" in used
    status = json.loads(songspace("status", "--json", check=True).stdout)  # the command re-embedded
    assert status["embeddings_by_model"] == {status["model"]["id"]: 12}


def test_a_negative_anchor_weight_on_the_command_line_is_refused(indexed_library, songspace):
    result = songspace("fit", "--anchor-weight", "-1")
    assert result.exit_code == 2 and "--anchor-weight" in result.output
