"""The teacher as an auxiliary loss (TrainConfig.teacher_weight, songspace.teacher): off, training
is what it was, draw for draw; on, the encoder changes and a head learns the teacher's tags."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from songspace.errors import InputError
from songspace.features import FeatureConfig
from songspace.models.files import read_config
from songspace.synth import STYLES, synth_track, write_audio
from songspace.teacher import read_targets, standardise
from songspace.training import Corpus, TrainConfig, train_on_corpus

SR = 16000
CFG = TrainConfig(steps=24, minutes=None, batch_size=6, segments_per_track=2, channels=(8, 16), lr=3e-3)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Eight short tracks of four styles in a package folder, decoded once, and a teacher npz
    whose 3 tags follow the style: 7 tracks have a row, the last has none."""
    root = tmp_path_factory.mktemp("teacher")
    (root / "music" / "pkg").mkdir(parents=True)
    paths = [write_audio(root / "music" / "pkg" / f"{STYLES[i % 4]}-{i}.wav", synth_track(STYLES[i % 4], 4.0, SR, seed=i), SR)
             for i in range(8)]
    features = FeatureConfig(**read_config(None)["features"])
    c = Corpus(paths, features, CFG, root, workers=0)
    style_probs = np.array([[0.9, 0.01, 0.002], [0.1, 0.3, 0.001], [0.02, 0.05, 0.2], [0.5, 0.002, 0.05]])
    rel = [f"pkg/{Path(p).name}" for p in c.all_paths]
    probs = np.stack([style_probs[STYLES.index(r.split("/")[1].split("-")[0])] for r in rel[:7]])
    npz = root / "tags.npz"
    np.savez(npz, paths=np.array(rel[:7]), tags=np.array(["a", "b", "c"]), probs=probs.astype(np.float16))
    plain, _ = train_on_corpus(c, features, CFG, device=torch.device("cpu"))
    return c, features, npz, weights(plain)


def weights(objective) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in objective.encoder.state_dict().items()}


def test_weight_zero_is_training_without_a_teacher(corpus):
    c, features, npz, plain = corpus
    zero, stats = train_on_corpus(c, features, replace(CFG, teacher_tags=str(npz)), device=torch.device("cpu"))
    b = weights(zero)
    assert set(plain) == set(b) and all(torch.equal(plain[k], b[k]) for k in plain)
    assert "teacher_loss" not in stats


def test_a_positive_weight_changes_the_encoder_and_the_head_learns_the_tags(corpus):
    c, features, npz, plain = corpus
    taught, stats = train_on_corpus(c, features, replace(CFG, teacher_tags=str(npz), teacher_weight=1.0),
                                    device=torch.device("cpu"))
    b = weights(taught)
    assert set(plain) == set(b) and any(not torch.equal(plain[k], b[k]) for k in plain)
    assert not any(k.startswith("head") for k in taught.state_dict())  # the head is not part of the objective
    assert stats["teacher_tracks"] == 7
    # Standardised targets: a head that knows nothing scores about 1; it learns the styles' tags.
    assert stats["teacher_loss"] < 0.5 * stats["teacher_loss_first"]


def test_targets_match_on_the_path_below_the_corpus_folder(tmp_path):
    npz = tmp_path / "t.npz"
    np.savez(npz, paths=np.array(["pkg/a.ogg", "b.ogg", "other/pkg/a.ogg"]), probs=np.array([[0.5], [0.1], [0.9]]))
    has, logits = read_targets(npz, ["/x/music/pkg/a.ogg", "/y/other/pkg/a.ogg", "/z/b.ogg", "/z/c.ogg"])
    assert has.tolist() == [True, True, True, False]
    assert logits[0, 0] == pytest.approx(0.0) and logits[1, 0] == pytest.approx(np.log(9), rel=1e-5)  # longest tail
    assert logits[3, 0] == 0.0
    # Standardised over the given rows that have a target only (0 and 2: logits 0 and -log 9).
    z = standardise(logits, has, np.array([0, 2, 3]))
    assert z[0, 0] == pytest.approx(1.0) and z[2, 0] == pytest.approx(-1.0) and z[3, 0] == 0.0


def test_bad_teacher_requests_are_refused(corpus, tmp_path):
    c, features, npz, _ = corpus
    with pytest.raises(InputError, match="teacher_weight must be 0 or more, not -1"):
        TrainConfig(teacher_weight=-1.0, teacher_tags=str(npz))
    with pytest.raises(InputError, match="teacher_weight needs the teacher's tags"):
        TrainConfig(teacher_weight=1.0)
    with pytest.raises(InputError, match="contrastive objective only"):
        TrainConfig(objective="autoencoder", teacher_weight=1.0, teacher_tags=str(npz))
    missing = tmp_path / "missing.npz"
    with pytest.raises(InputError, match=f"{missing}: no such file"):
        train_on_corpus(c, features, replace(CFG, teacher_weight=1.0, teacher_tags=str(missing)))
    elsewhere = tmp_path / "elsewhere.npz"
    np.savez(elsewhere, paths=np.array(["other/x.ogg"]), probs=np.array([[0.5]]))
    with pytest.raises(InputError, match="none of the 8 training tracks has a row"):
        train_on_corpus(c, features, replace(CFG, teacher_weight=1.0, teacher_tags=str(elsewhere)))
    broken = tmp_path / "broken.npz"
    np.savez(broken, paths=np.array(["pkg/x.ogg", "pkg/y.ogg"]), probs=np.array([[0.5]]))
    with pytest.raises(InputError, match="one row per path"):
        read_targets(broken, ["/m/pkg/x.ogg"])
    not_npz = tmp_path / "tags.txt"
    not_npz.write_text("rock\n")
    with pytest.raises(InputError, match="not an npz with `paths` and `probs`"):
        read_targets(not_npz, ["/m/pkg/x.ogg"])
