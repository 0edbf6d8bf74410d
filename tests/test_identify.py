"""Identify: a 10-s excerpt re-encoded at 64 kbit/s names the track it was cut from and where."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from songspace import Library
from songspace.errors import DecodeError, QueryError
from songspace.recommend.identify import identify
from songspace.synth import synth_track, write_audio

SR = 22050
TRACKS = {"arp": ("bright_arpeggio", 11), "beat": ("noise_beat", 12), "beat-2": ("noise_beat", 13),
          "chords": ("mid_chords", 14)}
# (track, where the excerpt starts, seconds): off the 1.536-s segment grid on purpose
EXCERPTS = [("arp", 3.3), ("beat", 11.9), ("beat-2", 0.0), ("chords", 19.7), ("chords", 7.45)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(library, {name: track path}, {name: waveform}, folder for excerpts)."""
    root = tmp_path_factory.mktemp("identify")
    (root / "music").mkdir()
    waves, paths = {}, {}
    for name, (style, seed) in TRACKS.items():
        waves[name] = synth_track(style, 30.0, sr=SR, seed=seed)
        paths[name] = str(write_audio(root / "music" / f"{name}.flac", waves[name], SR).resolve())
    with Library.open(root / "library") as lib:
        lib.index([root / "music"], workers=0)
    return root / "library", paths, waves, root


def _excerpt(setup, name: str, start: float, seconds: float = 10.0) -> Path:
    _, _, waves, root = setup
    y = waves[name][int(start * SR): int((start + seconds) * SR)]
    return write_audio(root / f"{name}-{start}-{seconds}.mp3", y, SR, bit_rate=64_000)


@pytest.mark.parametrize("name,start", EXCERPTS)
def test_excerpt_names_its_track_and_offset(setup, name, start):
    library, paths, _, _ = setup
    with Library.open(library) as lib:
        found = identify(lib.searcher(), _excerpt(setup, name, start))
    assert found[0].track.path == paths[name]
    assert abs(found[0].offset - start) <= 3.0
    assert found[0].confidence > found[1].confidence  # ranked, best first
    assert 0.0 < found[0].confidence <= 1.0001


def test_a_waveform_works_like_a_file(setup):
    library, paths, waves, _ = setup
    y = waves["chords"][int(12.5 * SR): int(22.5 * SR)]
    with Library.open(library) as lib:
        found = identify(lib.searcher(), y, sr=SR, k=2)
    assert len(found) == 2 and found[0].track.path == paths["chords"] and abs(found[0].offset - 12.5) <= 3.0


def test_an_excerpt_shorter_than_a_segment_is_refused(setup):
    library = setup[0]
    with Library.open(library) as lib, pytest.raises(QueryError, match="shorter than one segment"):
        identify(lib.searcher(), _excerpt(setup, "arp", 2.0, seconds=2.0))


def test_a_missing_file_is_a_decode_error(setup, tmp_path):
    with Library.open(setup[0]) as lib, pytest.raises(DecodeError, match="not found"):
        identify(lib.searcher(), tmp_path / "nothing.mp3")


def test_cli_identify(setup, library_dir, songspace):
    library, paths, _, _ = setup
    shutil.copytree(library, library_dir)
    run = songspace
    excerpt = _excerpt(setup, "chords", 19.7)
    result = run("identify", excerpt)
    assert result.exit_code == 0, result.output
    assert "matches 'chords.flac' from 0:" in result.stdout  # 19.7 s: 0:18-0:21 allowed
    first = result.stdout.split(" from ")[1].split()[0]
    assert abs(int(first.split(":")[1]) - 19.7) <= 3
    rows = json.loads(run("identify", excerpt, "--json").stdout)
    assert rows[0]["path"] == paths["chords"] and abs(rows[0]["offset"] - 19.7) <= 3.0
    short = run("identify", _excerpt(setup, "arp", 2.0, seconds=2.0))
    assert short.exit_code == 2 and "shorter than one segment" in short.stderr and "Traceback" not in short.output
