"""Package-level cross-validation (songspace.crossval) on a synthesized mini corpus: folds are
whole packages, every fold is trained and scored, and the summary has mean and spread."""

import csv

import numpy as np
import pytest

from songspace.crossval import cross_validate, package_folds, paired, summary
from songspace.errors import InputError
from songspace.synth import STYLES, synth_track, write_audio
from songspace.training import TrainConfig


def test_folds_are_whole_packages_balanced_by_tracks():
    packages = ["a"] * 10 + ["b"] * 6 + ["c"] * 5 + ["d"] * 4 + ["e"] * 1
    folds = package_folds(packages, 2)
    assert sorted(p for f in folds for p in f) == ["a", "b", "c", "d", "e"]
    sizes = [sum(packages.count(p) for p in f) for f in folds]
    assert max(sizes) - min(sizes) <= 2
    assert package_folds(packages, 2, seed=0) == folds  # deterministic
    with pytest.raises(InputError, match="3 packages cannot make 4 folds"):
        package_folds(["a", "b", "c"], 4)
    with pytest.raises(InputError, match="folds must be 2"):
        package_folds(packages, 1)


@pytest.fixture(scope="module")
def mini_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("cv")
    music = root / "music"
    rows = []
    for s, style in enumerate(STYLES[:4]):
        (music / f"pkg{s}").mkdir(parents=True)
        for i in range(3):
            name = f"pkg{s}/t{i}.wav"
            write_audio(music / name, synth_track(style, 6.0, seed=10 * s + i), 16000)
            rows.append((f"pkg{s}", name))
    with open(music / "MANIFEST.tsv", "w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["package", "file"])
        w.writerows(rows)
    evaluation = root / "eval"
    evaluation.mkdir()
    with open(evaluation / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "album", "artist"])
        for s, style in enumerate(STYLES[:2]):
            for i in range(2):
                write_audio(evaluation / f"{style}{i}.wav", synth_track(style, 6.0, seed=100 + i), 16000)
                w.writerow([f"{style}{i}.wav", style, "someone"])
    return music, evaluation / "labels.csv"


def test_cross_validation_trains_each_fold_and_summarises(mini_corpus):
    music, labels = mini_corpus
    cfg = TrainConfig(steps=2, minutes=None, batch_size=4, segments_per_track=2, cosine_decay=True)
    rows = cross_validate(music, cfg, k=2, seeds=(0, 1), eval_labels=labels, workers=0, log=lambda m: None)
    recipe = [r for r in rows if r["method"] == "recipe"]
    assert sorted((r["seed"], r["fold"]) for r in recipe) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(r["steps"] == 2 and r["packages"] == 2 and r["tracks"] == 6 for r in recipe)
    for r in rows:
        for key in ("fold_p@1", "fold_map", "album_p@1", "album_map", "artist_map"):
            assert 0.0 <= r[key] <= 1.0, (r["method"], key)
    methods = {e["method"]: e for e in summary(rows)}
    assert set(methods) == {"recipe", "shipped (heard every fold)", "untrained"}
    mean, sd = methods["recipe"]["fold_map"]
    assert mean == pytest.approx(np.mean([r["fold_map"] for r in recipe])) and sd >= 0
    assert "fold_map_seed_sd" in methods["recipe"]


def test_a_folder_without_manifest_is_refused(tmp_path):
    with pytest.raises(InputError, match="no MANIFEST.tsv"):
        cross_validate(tmp_path, TrainConfig(steps=1, minutes=None), k=2, log=lambda m: None)


def test_a_grown_corpus_keeps_the_base_folds_and_only_trains_on_the_rest(mini_corpus, tmp_path):
    music, labels = mini_corpus
    base = tmp_path / "base"  # the smaller corpus: pkg0..pkg2, the same files
    base.mkdir()
    for s in range(3):
        (base / f"pkg{s}").symlink_to(music / f"pkg{s}", target_is_directory=True)
    lines = (music / "MANIFEST.tsv").read_text().splitlines()
    (base / "MANIFEST.tsv").write_text("\n".join(line for line in lines if not line.startswith("pkg3")) + "\n")
    cfg = TrainConfig(steps=2, minutes=None, batch_size=4, segments_per_track=2, cosine_decay=True)
    cache = tmp_path / "cache"
    rows = cross_validate(music, cfg, k=2, seeds=(0,), workers=0, references=False, base=base,
                          corpus_cache=cache, log=lambda m: None)
    assert sorted({r["method"] for r in rows}) == ["recipe on base", "recipe on corpus"]
    for f in (0, 1):
        small, grown = (next(r for r in rows if r["method"] == m and r["fold"] == f)
                        for m in ("recipe on base", "recipe on corpus"))
        assert small["tracks"] == grown["tracks"]  # the same held-out fold
        assert grown["trained_tracks"] == small["trained_tracks"] + 3  # pkg3 only ever trains
    assert sum(r["tracks"] for r in rows if r["method"] == "recipe on base") == 9  # pkg3 is never held out
    d = paired(rows, "recipe on corpus", "recipe on base")
    assert d["n"] == 2 and d["mean"] == pytest.approx(np.mean(d["diffs"]))
    # The decoded corpus was kept: a second run opens it instead of decoding, with the same result.
    assert (cache / "corpus.json").is_file()
    written = (cache / "corpus.npy").stat().st_mtime_ns
    again = cross_validate(music, cfg, k=2, seeds=(0,), workers=0, references=False, base=base,
                           corpus_cache=cache, log=lambda m: None)
    assert [r["fold_map"] for r in again] == [r["fold_map"] for r in rows]
    assert (cache / "corpus.npy").stat().st_mtime_ns == written
    # The base's runs are the base's own cross-validation (same folds, seed, tracks in the same order),
    # which is what lets --grown-only reuse an earlier run of the base.
    alone = cross_validate(base, cfg, k=2, seeds=(0,), workers=0, references=False, log=lambda m: None)
    assert [r["fold_map"] for r in alone] == [r["fold_map"] for r in rows if r["method"] == "recipe on base"]
    grown = cross_validate(music, cfg, k=2, seeds=(0,), workers=0, references=False, base=base,
                           corpus_cache=cache, grown_only=True, log=lambda m: None)
    assert [r["fold_map"] for r in grown] == [r["fold_map"] for r in rows if r["method"] == "recipe on corpus"]
    with pytest.raises(InputError, match="lacks packages of the base"):
        cross_validate(base, cfg, k=2, workers=0, base=music, log=lambda m: None)


def test_the_teacher_term_runs_through_cross_validation(mini_corpus, tmp_path):
    """Rows with the teacher are named so (to pair them with the recipe's); tracks without a
    teacher row (here pkg3, like the grown corpus's added tracks) train without the term."""
    music, _ = mini_corpus
    rel = [line.split("\t")[1] for line in (music / "MANIFEST.tsv").read_text().splitlines()[1:]]
    known = [p for p in rel if not p.startswith("pkg3")]
    npz = tmp_path / "tags.npz"
    np.savez(npz, paths=np.array(known), probs=np.linspace(0.01, 0.9, 2 * len(known)).reshape(len(known), 2))
    cfg = TrainConfig(steps=2, minutes=None, batch_size=4, segments_per_track=2, cosine_decay=True,
                      teacher_weight=0.5, teacher_tags=str(npz))
    rows = cross_validate(music, cfg, k=2, seeds=(0,), workers=0, references=False, log=lambda m: None)
    assert {r["method"] for r in rows} == {"recipe + teacher 0.5"}
    folds = package_folds(sorted(p.split("/")[0] for p in rel), 2)
    for r in sorted(rows, key=lambda r: r["fold"]):
        assert r["trained_tracks"] == 6
        # pkg3 held out: all 6 trained tracks have a target; pkg3 trained on: only the other 3.
        assert r["teacher_tracks"] == (6 if "pkg3" in folds[r["fold"]] else 3)
        assert r["teacher_loss"] > 0
