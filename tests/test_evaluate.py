"""Leave-one-out retrieval scoring, labels, baselines, and the MFCC embedding method."""

import json
import shutil

import numpy as np
import pytest

from songspace.evaluate import evaluate, read_labels, retrieval_scores, searchable_vectors
from songspace.library import Library


def test_retrieval_scores_by_hand():
    # Unit vectors at 0, 10, 100 and 30 degrees, labelled a, a, a, b. Rankings by angle:
    #   query 0: 1 (a), 3 (b), 2 (a)  → P@1 1, AP (1/1 + 2/3) / 2
    #   query 1: 0 (a), 3 (b), 2 (a)  → P@1 1, AP (1/1 + 2/3) / 2
    #   query 2: 3 (b), 1 (a), 0 (a)  → P@1 0, AP (1/2 + 2/3) / 2
    #   query 3: no other "b", so it is not a query
    angles = np.radians([0, 10, 100, 30])
    v = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    s = retrieval_scores(v, ["a", "a", "a", "b"], ks=(1, 2))
    assert s["queries"] == 3
    assert s["p@1"] == pytest.approx(2 / 3)
    assert s["p@2"] == pytest.approx(0.5)
    assert s["map"] == pytest.approx(((1 + 2 / 3) / 2 * 2 + (1 / 2 + 2 / 3) / 2) / 3)


def test_perfect_and_hopeless_rankings():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 16))
    labels = [i % 3 for i in range(30)]
    clustered = centres[labels] + 0.01 * rng.standard_normal((30, 16))
    assert retrieval_scores(clustered, labels)["map"] == pytest.approx(1.0)
    assert retrieval_scores(clustered, labels)["p@10"] == pytest.approx(0.9)  # only 9 others share a label
    shuffled = retrieval_scores(rng.standard_normal((300, 16)), [i % 3 for i in range(300)])
    assert 0.25 < shuffled["map"] < 0.42


def test_read_labels_csv_and_folder(tmp_path, demo_music):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.mp3").touch()
    (tmp_path / "a" / "y.ogg").touch()
    (tmp_path / "labels.csv").write_text("path,album,artist\na/x.mp3,A,unknown (someone)\na/y.ogg,B,\n")
    data = read_labels(tmp_path / "labels.csv")
    assert data.paths == [str(tmp_path / "a" / "x.mp3"), str(tmp_path / "a" / "y.ogg")]
    assert data.labels == {"album": ["A", "B"], "artist": ["unknown (someone)", ""]}
    folders = read_labels(demo_music)
    assert len(folders.paths) == 12 and set(folders.labels["folder"]) == {"bass_drone", "bright_arpeggio", "noise_beat", "mid_chords"}
    with pytest.raises(ValueError, match="'path' column"):
        (tmp_path / "bad.csv").write_text("file,album\nx,A\n")
        read_labels(tmp_path / "bad.csv")
    for text, reason in (("path,album\na/x.mp3,A\na/gone.mp3,B\n", "1 listed files not found, such as .*gone.mp3"),
                         ("path\na/x.mp3\n", "no label column"), (b"path,album\n\xff\xfe,A\n", "not a UTF-8")):
        bad = tmp_path / "bad.csv"
        bad.write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(ValueError, match=reason):
            read_labels(bad)


def test_evaluate_puts_model_and_baselines_side_by_side(music, library_dir):
    with Library.open(library_dir) as lib:
        results = evaluate(lib, music, workers=0)
        assert lib.status()["tracks"] == 0  # the labelled music went to a scratch library, not the user's
        assert list((library_dir / "scratch").glob("evaluate-*/catalog.sqlite"))
    scores = results["labels"]["folder"]
    # search ranks by the CNN fused with the timbre companion; the embedding alone beside it
    assert set(scores) == {"songspace", "songspace cosine", "mfcc", "random"}
    assert all(s["queries"] == 12 for s in scores.values())
    assert scores["mfcc"]["p@1"] >= 0.75  # four very different synthetic styles


def test_unknown_labels_are_left_out(music, library_dir, tmp_path):
    files = sorted(p for p in music.rglob("*") if p.is_file())
    rows = ["path,album"] + [f"{p.relative_to(music)},{'unknown' if i < 4 else p.parent.name}" for i, p in enumerate(files)]
    (music / "labels.csv").write_text("\n".join(rows) + "\n")
    with Library.open(library_dir) as lib:
        results = evaluate(lib, music / "labels.csv", baselines=("mfcc",), workers=0)
    assert results["labels"]["album"]["mfcc"]["queries"] <= 8
    with Library.open(library_dir) as lib, pytest.raises(ValueError, match="no label column genre"):
        evaluate(lib, music / "labels.csv", ["genre"], workers=0)


def test_mfcc_as_the_library_embedding(music, library_dir, songspace):
    songspace("use", "mfcc", check=True)
    songspace("index", str(music), "--workers", "0", check=True)
    status = json.loads(songspace("status", "--json", check=True).stdout)
    assert status["model"]["id"] == "mfcc-stats-v1" and status["searchable"] == 12
    rows = json.loads(songspace("similar", "1", "-k", "3", "--json", check=True).stdout)
    assert len(rows) == 3 and all(-1 <= r["score"] <= 1 for r in rows)
    with Library.open(library_dir) as lib:
        v = np.stack(list(searchable_vectors(lib, [t.path for t in lib.catalog.tracks()]).values()))
    np.testing.assert_allclose(v.mean(axis=0), 0, atol=0.35)  # standardised over the collection
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    songspace("use", "default", check=True)
    status = json.loads(songspace("status", "--json", check=True).stdout)
    # Search stays on the MFCC vectors until the shipped model has re-embedded: never mixed, never empty.
    assert status["searched_model"] == "mfcc-stats-v1" and status["searchable"] == 12


def test_evaluate_cli_json(music, songspace):
    proc = songspace("evaluate", str(music), "--json", "--workers", "0", check=True)
    results = json.loads(proc.stdout)
    assert results["tracks"] == 12 and set(results["labels"]["folder"]) == {"songspace", "songspace cosine", "mfcc", "random"}
    table = songspace("evaluate", str(music), "--workers", "0", check=True).stdout
    assert "mAP" in table and "mfcc" in table
    assert json.loads(songspace("status", "--json", check=True).stdout)["tracks"] == 0  # a scratch library
    songspace("evaluate", str(music), "--json", "--workers", "0", "--in-library", check=True)
    assert json.loads(songspace("status", "--json", check=True).stdout)["tracks"] == 12  # asked for: the library


def test_labels_with_nothing_to_find_are_refused(demo_music, library_dir, tmp_path):
    # One track per label: no query has a right answer, so there is no score to give.
    for label, track in zip("ab", sorted(demo_music.rglob("*.flac"))[:2]):
        (tmp_path / "lab" / label).mkdir(parents=True)
        shutil.copy(track, tmp_path / "lab" / label)
    with Library.open(library_dir) as lib, pytest.raises(ValueError, match="do 2 analysed tracks share a label"):
        evaluate(lib, tmp_path / "lab", baselines=(), workers=0)
