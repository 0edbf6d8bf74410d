"""classify: learn a label from the tracks that carry it, predict it for the others."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from songspace.catalog import Catalog
from songspace.recommend.classify import choose_folds
from songspace.synth import STYLES, make_demo_library
from helpers import style_of


@pytest.fixture(scope="module")
def _bigger(tmp_path_factory) -> tuple[Path, Path]:
    """(music, indexed library): 8 short tracks per style, 32 in all."""
    from songspace import Library

    root = tmp_path_factory.mktemp("classify")
    make_demo_library(root / "music", n_per_style=8, seconds=6.0)
    with Library.open(root / "library") as lib:
        lib.index([root / "music"], workers=0)
    return root / "music", root / "library"


@pytest.fixture
def bigger(_bigger, library_dir) -> Path:
    """`library_dir` holding the bigger library (a private copy); returns its music folder."""
    shutil.copytree(_bigger[1], library_dir)
    return _bigger[0]


def rows(library_dir: Path, sql: str, params=()) -> list[tuple]:
    db = sqlite3.connect(library_dir / "catalog.sqlite")
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def untag_genre(library_dir: Path, per_style: int) -> set[int]:
    """Remove the genre tag (in the catalog only) from the first `per_style` tracks of each style;
    the ids of every track without one (WAV files carry no tags at all)."""
    tracks = rows(library_dir, "SELECT id, path FROM tracks ORDER BY id")
    chosen = {i for s in STYLES for i in [i for i, p in tracks if style_of(p) == s][:per_style]}
    cat = Catalog(library_dir / "catalog.sqlite")
    cat.db.executemany("UPDATE tracks SET genre = NULL WHERE id = ?", [(i,) for i in chosen])
    cat.close()
    return {i for i, in rows(library_dir, "SELECT id FROM tracks WHERE COALESCE(genre, '') = ''")}


def file_hashes(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_genre_learned_well_above_majority_and_predicted_for_untagged_tracks_only(bigger, library_dir, songspace):
    untagged = untag_genre(library_dir, per_style=2)
    before = file_hashes(bigger)

    result = json.loads(songspace("classify", "--column", "genre", "--json", "--workers", "0", check=True).stdout)

    assert len(untagged) >= 8
    assert result["labelled"] == 32 - len(untagged) and sorted(result["classes"]) == sorted(STYLES)
    assert result["folds"] == 5
    assert result["majority"] <= 0.3
    assert result["accuracy"] >= 0.9
    assert isinstance(result["baseline"], float) and 0 <= result["baseline"] <= 1
    assert result["baseline_tracks"] == result["labelled"]

    predicted = {p["id"]: p for p in result["predictions"]}
    assert set(predicted) == untagged
    assert all(0 <= p["confidence"] <= 1 for p in predicted.values())
    right = sum(p["label"] == style_of(p["path"]) for p in predicted.values())
    assert right >= 0.9 * len(predicted)

    stored = {i: (label, c) for i, label, c in rows(library_dir, "SELECT track_id, label, confidence FROM predictions "
                                                                 "WHERE name = 'genre'")}
    assert stored == {i: (p["label"], pytest.approx(p["confidence"], abs=1e-4)) for i, p in predicted.items()}
    # The tags stay the user's: predictions live apart, and the audio files are untouched.
    assert rows(library_dir, "SELECT COUNT(*) FROM tracks WHERE genre IS NULL")[0][0] == len(untagged)
    assert file_hashes(bigger) == before


def test_text_output_shows_model_beside_mfcc_and_majority(indexed_library, songspace):
    untagged = untag_genre(indexed_library, per_style=1)
    text = songspace("classify", "--column", "genre", "--workers", "0", check=True).stdout
    for word in ("songspace", "mfcc", "majority", f"predicted 'genre' for {len(untagged)} tracks", "confidence"):
        assert word in text


def test_a_csv_labels_a_subset_and_every_other_track_is_predicted(bigger, library_dir, songspace, tmp_path):
    tracks = rows(library_dir, "SELECT id, path FROM tracks ORDER BY id")
    mood = {"bass_drone": "calm", "mid_chords": "calm", "bright_arpeggio": "lively", "noise_beat": "lively"}
    labelled = [(i, p) for s in STYLES for i, p in [(i, p) for i, p in tracks if style_of(p) == s][:5]]
    lone = tracks[-1]  # a label only one track carries cannot be learned: left out, not predicted
    folder = tmp_path / "labels"
    folder.mkdir()
    with open(folder / "mood.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "mood"])
        for n, (i, p) in enumerate(labelled):  # half relative to the csv, half absolute
            w.writerow([p if n % 2 else os.path.relpath(p, folder), mood[style_of(p)]])
        w.writerow([lone[1], "angry"])
        w.writerow([str(tmp_path / "not-in-library.mp3"), "calm"])

    result = json.loads(songspace("classify", "--column", "mood", "--labels", folder / "mood.csv", "--no-baseline",
                                  "--json", check=True).stdout)

    assert result["csv_rows"] == 22 and result["csv_matched"] == 21
    assert result["classes"] == {"calm": 10, "lively": 10} and result["dropped"] == {"angry": 1}
    assert result["baseline"] is None
    predicted = {p["id"]: p["label"] for p in result["predictions"]}
    assert set(predicted) == {i for i, _ in tracks} - {i for i, _ in labelled} - {lone[0]}
    paths = dict(tracks)
    assert sum(label == mood[style_of(paths[i])] for i, label in predicted.items()) >= 0.9 * len(predicted)
    assert len(rows(library_dir, "SELECT * FROM predictions WHERE name = 'mood'")) == len(predicted)


def test_folds_follow_the_rarest_label():
    assert choose_folds(["a"] * 20 + ["b"] * 20) == 5
    assert choose_folds(["a"] * 20 + ["b"] * 3) == 3
    assert choose_folds(["a"] * 20 + ["b"] * 2) == 2


def _csv(path: Path, header: list[str], body: list[list[str]]) -> Path:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *body])
    return path


BAD_INPUTS = {
    "unknown column": (lambda lib, tmp: ["--column", "mood"], "unknown label column 'mood'"),
    "one class": (lambda lib, tmp: ["--column", "genre", "--labels",
                                    _csv(tmp / "one.csv", ["path", "genre"], [[p, "rock"] for _, p in lib])],
                  "at least two labels"),
    "no labelled tracks": (lambda lib, tmp: ["--column", "genre", "--labels",
                                             _csv(tmp / "empty.csv", ["path", "genre"], [[p, ""] for _, p in lib])],
                           "no searchable track has a label"),
    "csv missing": (lambda lib, tmp: ["--column", "genre", "--labels", tmp / "missing.csv"], "no such labels file"),
    "csv without the column": (lambda lib, tmp: ["--column", "mood", "--labels",
                                                 _csv(tmp / "genre.csv", ["path", "genre"], [[lib[0][1], "x"]])],
                               "no column 'mood' (columns: genre)"),
    "csv paths not in the library": (lambda lib, tmp: ["--column", "genre", "--labels",
                                                       _csv(tmp / "elsewhere.csv", ["path", "genre"],
                                                            [["a.mp3", "x"], ["b.mp3", "y"], ["c.mp3", "x"]])],
                                     "none of its 3 paths is a searchable track"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_exits_2_with_a_clear_message_and_changes_nothing(case, indexed_library, songspace, tmp_path):
    cat = Catalog(indexed_library / "catalog.sqlite")
    cat.put_predictions("genre", "some-model", [(1, "earlier", 0.5)])
    cat.close()
    snapshot = [rows(indexed_library, f"SELECT * FROM {t} ORDER BY 1") for t in ("tracks", "predictions")]
    make_args, message = BAD_INPUTS[case]
    args = make_args(rows(indexed_library, "SELECT id, path FROM tracks ORDER BY id"), tmp_path)

    result = songspace("classify", *args, "--no-baseline")

    assert result.exit_code == 2, result.stdout
    assert message in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
    assert [rows(indexed_library, f"SELECT * FROM {t} ORDER BY 1") for t in ("tracks", "predictions")] == snapshot


def test_one_tag_everywhere_is_one_class(indexed_library, songspace):
    cat = Catalog(indexed_library / "catalog.sqlite")
    cat.db.execute("UPDATE tracks SET genre = 'rock'")
    cat.close()
    result = songspace("classify", "--column", "genre", "--no-baseline")
    assert result.exit_code == 2 and "'rock' (12)" in result.stderr
    assert rows(indexed_library, "SELECT COUNT(*) FROM predictions WHERE name NOT LIKE 'auto-%'")[0][0] == 0


def test_importing_the_cli_does_not_import_sklearn():
    import subprocess
    import sys

    code = "import sys, songspace.cli; print('sklearn' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
