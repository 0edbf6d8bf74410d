"""clusters: the library grouped into named M3U8 playlists by sound."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from songspace.catalog import Catalog
from songspace.recommend.clusters import default_k, safe_file_name, unique_names
from songspace.synth import STYLES, make_demo_library
from helpers import style_of


@pytest.fixture(scope="module")
def _bigger(tmp_path_factory) -> Path:
    """An indexed library of 6 short tracks per style, 24 in all."""
    from songspace import Library

    root = tmp_path_factory.mktemp("clusters")
    make_demo_library(root / "music", n_per_style=6, seconds=6.0)
    with Library.open(root / "library") as lib:
        lib.index([root / "music"], workers=0)
    return root / "library"


@pytest.fixture
def bigger(_bigger, library_dir) -> Path:
    return Path(shutil.copytree(_bigger, library_dir))


def read_m3u8(path: Path) -> list[Path]:
    """The tracks of a playlist, checked line by line: #EXTM3U, then #EXTINF before each path."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#EXTM3U" and len(lines) % 2 == 1
    for info, _ in zip(lines[1::2], lines[2::2]):
        assert info.startswith("#EXTINF:") and "," in info
    return [Path(p) if Path(p).is_absolute() else (path.parent / p).resolve() for p in lines[2::2]]


def test_k_playlists_hold_every_track_once_keep_styles_together_and_are_named_by_genre(bigger, songspace, tmp_path):
    out = tmp_path / "playlists" / "by-sound"  # made, parents too
    groups = json.loads(songspace("clusters", out, "-k", "4", "--json", check=True).stdout)

    assert len(groups) == 4 and len(list(out.glob("*.m3u8"))) == 4
    ids = [t["id"] for g in groups for t in g["tracks"]]
    assert sorted(ids) == list(range(1, 25))  # every track, exactly once
    kept_together = sum(Counter(style_of(t["path"]) for t in g["tracks"]).most_common(1)[0][1] for g in groups)
    assert kept_together >= 0.9 * 24
    # WAV files carry no tags; the genre tags of the others name each group.
    assert sorted(g["name"] for g in groups) == sorted(STYLES)

    for g in groups:
        listed = read_m3u8(Path(g["file"]))
        assert [str(p) for p in listed] == [t["path"] for t in g["tracks"]]  # relative paths resolve
        assert all(p.exists() for p in listed)
        assert not any(line.startswith("/") for line in Path(g["file"]).read_text().splitlines())


def test_same_seed_same_playlists(bigger, songspace, tmp_path):
    first = songspace("clusters", tmp_path / "a", "-k", "3", "--seed", "7", "--json", check=True).stdout
    second = songspace("clusters", tmp_path / "a", "-k", "3", "--seed", "7", "--json", check=True).stdout
    assert json.loads(first) == json.loads(second)


def test_default_k_and_table_output(bigger, songspace, tmp_path):
    text = songspace("clusters", tmp_path / "out", check=True).stdout
    assert len(list((tmp_path / "out").glob("*.m3u8"))) == default_k(24) == 3
    assert "playlist" in text and ".m3u8" in text
    assert default_k(1) == 1 and default_k(12) == 2 and default_k(1000) == 22


def test_auto_finds_groups_and_lists_every_track_once(bigger, songspace, tmp_path):
    groups = json.loads(songspace("clusters", tmp_path / "auto", "--auto", "--json", check=True).stdout)
    found = [g for g in groups if not g["noise"]]
    assert len(found) >= 2
    assert sorted(t["id"] for g in groups for t in g["tracks"]) == list(range(1, 25))
    assert all(g["name"] == "unclustered" for g in groups if g["noise"])
    assert len({g["name"] for g in groups}) == len(groups)
    assert len(list((tmp_path / "auto").glob("*.m3u8"))) == len(groups)


def test_names_fall_back_to_predictions_then_numbers(bigger, songspace, tmp_path):
    cat = Catalog(bigger / "catalog.sqlite")
    cat.db.execute("UPDATE tracks SET genre = NULL, album = NULL, artist = NULL")
    auto = {name: cat.predictions(name) for name in ("auto-genre", "auto-mood")}  # every index predicts them
    assert all(auto.values())
    cat.db.execute("DELETE FROM predictions")
    cat.close()
    groups = json.loads(songspace("clusters", tmp_path / "a", "-k", "4", "--json", check=True).stdout)
    assert sorted(g["name"] for g in groups) == ["cluster 1", "cluster 2", "cluster 3", "cluster 4"]

    # What classify stored names the groups when no tag does, before the shipped model's guesses.
    db = sqlite3.connect(bigger / "catalog.sqlite")
    paths = dict(db.execute("SELECT id, path FROM tracks"))
    db.close()
    cat = Catalog(bigger / "catalog.sqlite")
    for name, rows in auto.items():
        cat.put_predictions(name, "m", [(i, label, p) for i, (label, p) in rows.items()])
    cat.put_predictions("mood", "m", [(i, f"{style_of(p)} mood", 0.9) for i, p in paths.items()])
    cat.close()
    groups = json.loads(songspace("clusters", tmp_path / "b", "-k", "4", "--json", check=True).stdout)
    assert sorted(g["name"] for g in groups) == sorted(f"{s} mood" for s in STYLES)


def test_absolute_paths_on_request(bigger, songspace, tmp_path):
    groups = json.loads(songspace("clusters", tmp_path / "abs", "-k", "2", "--absolute", "--json", check=True).stdout)
    for g in groups:
        lines = Path(g["file"]).read_text().splitlines()
        assert lines[2::2] == [t["path"] for t in g["tracks"]] and all(p.startswith("/") for p in lines[2::2])


def test_names_are_unique_and_file_names_safe():
    assert unique_names(["rock", "Rock", "jazz", "rock"]) == ["rock", "Rock 2", "jazz", "rock 3"]
    assert safe_file_name("AC/DC: live?") == "AC_DC_ live_"
    assert safe_file_name("..") == "playlist" and safe_file_name("") == "playlist"
    assert "/" not in safe_file_name("a/" * 200) and len(safe_file_name("x" * 300)) == 100


@pytest.mark.parametrize("args, message", [
    (["-k", "0"], "between 1 and the 12"),
    (["-k", "13"], "between 1 and the 12"),
    (["-k", "3", "--auto"], "not both"),
])
def test_bad_parameters_exit_2(args, message, indexed_library, songspace, tmp_path):
    result = songspace("clusters", tmp_path / "out", *args)
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "out").exists()


def test_an_out_path_that_is_a_file_exits_2(indexed_library, songspace, tmp_path):
    (tmp_path / "taken").write_text("x")
    result = songspace("clusters", tmp_path / "taken")
    assert result.exit_code == 2 and "not a folder" in result.stderr
