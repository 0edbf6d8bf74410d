"""Duplicates: copies of one recording (other codec or bitrate, trimmed, quieter, an excerpt)
are paired with the part that matches; different recordings of one album and artist are not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from songspace import Library
from songspace.errors import InputError
from songspace.recommend.duplicates import duplicate_groups, find_duplicates
from songspace.synth import synth_track, write_audio

SR = 22050

# name: (style, seed, seconds, file). Two recordings per album share style, artist and album tags.
ORIGINALS = {
    "drone-a": ("bass_drone", 1, 24.0, ".mp3"),
    "arp-a": ("bright_arpeggio", 2, 24.0, ".flac"),
    "arp-b": ("bright_arpeggio", 3, 24.0, ".mp3"),
    "beat-a": ("noise_beat", 4, 24.0, ".flac"),
    "beat-b": ("noise_beat", 5, 24.0, ".mp3"),
    "chords-a": ("mid_chords", 6, 40.0, ".mp3"),
    "chords-b": ("mid_chords", 7, 24.0, ".flac"),
}


def _copies(y: dict) -> dict:
    """copy file -> (original, waveform, bit rate), one per kind of copy."""
    s = SR
    return {
        "drone-a-reencoded.ogg": ("drone-a", y["drone-a"], 96_000),
        "arp-a-64k.mp3": ("arp-a", y["arp-a"], 64_000),
        "arp-b-trimmed-start.mp3": ("arp-b", y["arp-b"][int(2.3 * s):], 160_000),
        "beat-a-trimmed-end.ogg": ("beat-a", y["beat-a"][: -int(4.1 * s)], 112_000),
        "chords-b-quieter.flac": ("chords-b", y["chords-b"] * 10 ** (-6 / 20), None),
        "chords-a-excerpt.mp3": ("chords-a", y["chords-a"][int(17.2 * s): int(27.2 * s)], 128_000),
    }


@pytest.fixture(scope="module")
def copies_library(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A library of the originals and their copies; and {copy file name: original file name}."""
    root = tmp_path_factory.mktemp("copies")
    music = root / "music"
    music.mkdir()
    waves, names = {}, {}
    for name, (style, seed, seconds, ext) in ORIGINALS.items():
        waves[name] = synth_track(style, seconds, sr=SR, seed=seed)
        names[name] = f"{name}{ext}"
        write_audio(music / names[name], waves[name], SR, tags={"artist": f"{style} band", "album": style,
                                                                "title": name})
    expected = {}
    for file, (original, y, rate) in _copies(waves).items():
        write_audio(music / file, y, SR, bit_rate=rate)
        expected[file] = names[original]
    with Library.open(root / "library") as lib:
        lib.index([music], workers=0)
    return root / "library", expected


def _pairs_by_name(library: Path, **kwargs):
    with Library.open(library) as lib:
        searcher = lib.searcher()
        pairs = find_duplicates(searcher, **kwargs)
        name = {t.id: Path(t.path).name for t in searcher.tracks(searcher.ids().tolist())}
    return pairs, name


def test_copies_are_found_and_different_recordings_are_not(copies_library):
    library, expected = copies_library
    pairs, name = _pairs_by_name(library)
    got = {frozenset((name[p.a], name[p.b])) for p in pairs}
    want = {frozenset(pair) for pair in expected.items()}
    precision = len(got & want) / max(len(got), 1)
    recall = len(got & want) / len(want)
    assert precision >= 0.95 and recall >= 0.95, (sorted(map(sorted, got)), sorted(map(sorted, want)))


def test_each_pair_says_which_parts_match(copies_library):
    library, _ = copies_library
    pairs, name = _pairs_by_name(library)
    by_files = {frozenset((name[p.a], name[p.b])): p for p in pairs}
    excerpt = by_files[frozenset(("chords-a-excerpt.mp3", "chords-a.mp3"))]
    long_span, short_span = ((excerpt.a_span, excerpt.b_span) if name[excerpt.a] == "chords-a.mp3"
                             else (excerpt.b_span, excerpt.a_span))
    assert abs(long_span[0] - 17.2) <= 1.6  # where the excerpt was cut: within a segment hop
    assert short_span[0] <= 1.6 and short_span[1] >= 8.0  # nearly all of the excerpt
    trimmed = by_files[frozenset(("arp-b-trimmed-start.mp3", "arp-b.mp3"))]
    offset = trimmed.offset if name[trimmed.a] == "arp-b-trimmed-start.mp3" else -trimmed.offset
    assert abs(offset - 2.3) <= 1.0  # copy time + 2.3 s = original time
    for p in pairs:
        assert 0.0 <= p.a_span[0] < p.a_span[1] and 0.0 <= p.b_span[0] < p.b_span[1]
        assert 0.9 <= p.similarity <= 1.0001 and p.coverage >= 0.8


def test_groups_join_pairs():
    from songspace.recommend.duplicates import DuplicatePair

    pairs = [DuplicatePair(1, 2, 0.99, 1.0, (0, 1), (0, 1), 0.0), DuplicatePair(2, 5, 0.99, 1.0, (0, 1), (0, 1), 0.0),
             DuplicatePair(3, 4, 0.99, 1.0, (0, 1), (0, 1), 0.0)]
    assert duplicate_groups(pairs) == [[1, 2, 5], [3, 4]]


def test_a_threshold_out_of_range_is_refused(copies_library):
    library, _ = copies_library
    with pytest.raises(InputError, match="threshold"):
        _pairs_by_name(library, threshold=1.5)


def test_cli_duplicates(copies_library, library_dir, songspace):
    library, expected = copies_library
    shutil.copytree(library, library_dir)
    run = songspace
    table = run("duplicates")
    assert table.exit_code == 0, table.output
    assert "chords-a" in table.stdout and "duplicate pairs" in table.stdout
    as_json = run("duplicates", "--json")
    assert as_json.exit_code == 0
    data = json.loads(as_json.stdout)
    assert len(data["pairs"]) == len(expected) and all(len(g) == 2 for g in data["groups"])
    assert {"a", "b", "a_span", "b_span", "similarity"} <= set(data["pairs"][0])
    bad = run("duplicates", "--threshold", "2")
    assert bad.exit_code == 2 and "threshold" in bad.stderr and "Traceback" not in bad.output


def test_align_finds_the_offset_of_a_cut_out_part():
    import numpy as np

    from songspace.recommend.align import align

    rng = np.random.default_rng(0)
    long = rng.standard_normal((30, 16)).astype(np.float32)
    long /= np.linalg.norm(long, axis=1, keepdims=True)
    starts = np.arange(30) * 1.536
    m = align(starts[:6], long[10:16], starts, long)  # segments 10-15, re-timed from 0
    assert abs(m.offset - 10 * 1.536) < 1e-6 and m.coverage == 1.0 and m.similarity > 0.999
    assert np.allclose(m.b_span, (10 * 1.536, 15 * 1.536 + 3.072)) and np.allclose(m.a_span, (0.0, 5 * 1.536 + 3.072))
