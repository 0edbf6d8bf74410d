"""Explain: the moments of two tracks that sound most alike, as time ranges with similarities."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from songspace import Library
from songspace.errors import InputError, QueryError
from songspace.recommend.explain import explain
from songspace.synth import synth_track, write_audio


@pytest.fixture
def with_copy(music, library_dir) -> tuple[Path, int, int, int]:
    """The demo music plus a re-encoded copy of one of its tracks, indexed:
    (library, original id, copy id, another track's id)."""
    y = synth_track("mid_chords", 16.0, sr=22050, seed=77)
    write_audio(music / "chords-77.flac", y, 22050)
    write_audio(music / "chords-77-copy.mp3", y, 22050, bit_rate=96_000)
    with Library.open(library_dir) as lib:
        lib.index([music], workers=0)
        by_name = {Path(t.path).name: t.id for t in lib.searcher().tracks(lib.searcher().ids().tolist())}
    other = next(i for n, i in by_name.items() if n.startswith("bass_drone"))
    return library_dir, by_name["chords-77.flac"], by_name["chords-77-copy.mp3"], other


def test_pairs_lie_inside_both_tracks_best_first(indexed_library):
    with Library.open(indexed_library) as lib:
        s = lib.searcher()
        a, b = s.ids()[:2].tolist()
        found = explain(s, a, b, top=3)
        dur_a, dur_b = (t.duration for t in s.tracks([a, b]))
    assert 1 <= len(found) <= 3  # 8-s demo tracks hold only two moments that do not overlap
    sims = [m.similarity for m in found]
    assert sims == sorted(sims, reverse=True)
    for m in found:
        assert 0.0 <= m.a_span[0] < m.a_span[1] <= dur_a + 1e-6
        assert 0.0 <= m.b_span[0] < m.b_span[1] <= dur_b + 1e-6
    # Different moments: no two pairs overlap in A or in B.
    for m, n in zip(found, found[1:]):
        assert m.a_span[1] <= n.a_span[0] or n.a_span[1] <= m.a_span[0]
        assert m.b_span[1] <= n.b_span[0] or n.b_span[1] <= m.b_span[0]


def test_a_copy_matches_at_the_same_times_near_one(with_copy):
    library, original, copy, other = with_copy
    with Library.open(library) as lib:
        found = explain(lib.searcher(), original, copy, top=4)
        unrelated = explain(lib.searcher(), original, other, top=1)
    for m in found:
        assert m.similarity > 0.98
        assert abs(m.a_span[0] - m.b_span[0]) < 0.5  # the same moment of the recording
    assert unrelated[0].similarity < found[-1].similarity


def test_a_track_against_itself_and_unknown_ids_are_refused(indexed_library):
    with Library.open(indexed_library) as lib:
        s = lib.searcher()
        a = int(s.ids()[0])
        with pytest.raises(QueryError, match="itself"):
            explain(s, a, a)
        with pytest.raises(QueryError, match="9999"):
            explain(s, a, 9999)
        with pytest.raises(InputError, match="top"):
            explain(s, a, int(s.ids()[1]), top=0)


def test_cli_explain(indexed_library, songspace):
    table = songspace("explain", "1", "2", "--top", "2", check=True)
    assert "Why" in table.stdout and "similarity" in table.stdout
    data = json.loads(songspace("explain", "1", "2", "--json", check=True).stdout)
    assert data["a"]["id"] == 1 and data["b"]["id"] == 2 and 1 <= len(data["pairs"]) <= 5
    assert {"a_span", "b_span", "similarity"} == set(data["pairs"][0])
    same = songspace("explain", "1", "1")
    assert same.exit_code == 2 and "itself" in same.stderr
    unknown = songspace("explain", "1", "9999")
    assert unknown.exit_code == 2 and "9999" in unknown.stderr and "Traceback" not in unknown.output
