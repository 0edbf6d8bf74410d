"""`similar` with manners: other artists or albums only, a duration range, copies shown once."""

import json

import pytest

from songspace import Library, QueryError
from songspace import audio
from songspace.recommend.similar import Manners, similar
from songspace.synth import synth_track, write_audio


@pytest.fixture
def library(music, library_dir):
    """The demo music (4 styles; artist and album name the style), plus two other files of one
    recording (re-encoded at a low bitrate, and 6 dB quieter) and tracks of other lengths."""
    original = sorted(music.rglob("*.flac"))[0]
    y = audio.load(original, sr=16000).y
    write_audio(music / "copy-low-bitrate.mp3", y, 16000, bit_rate=64000)
    write_audio(music / "copy-quieter.ogg", 0.5 * y, 16000)
    write_audio(music / "short.flac", synth_track("mid_chords", 4.0, seed=50), 16000)
    write_audio(music / "long.flac", synth_track("mid_chords", 16.0, seed=51), 16000)
    with Library.open(library_dir) as lib:
        lib.index([music], workers=0)
        yield lib, lib.catalog.by_path(str(original.resolve()))


def test_copies_of_the_query_are_one_entry(library):
    lib, original = library
    found = similar(lib.searcher(), original, k=5)
    first = found[0]
    assert first.copy_of_query and len(first.copies) == 1  # two other files of it: one entry
    ids = [m.track.id for m in found] + list(first.copies)
    names = {lib.catalog.track(i).path.rsplit("/", 1)[1] for i in ids[:1] + list(first.copies)}
    assert names == {"copy-low-bitrate.mp3", "copy-quieter.ogg"}
    assert len(set(ids)) == len(ids) and original.id not in ids
    assert not any(m.copy_of_query for m in found[1:])
    every = similar(lib.searcher(), original, k=5, manners=Manners(collapse_copies=False))
    assert {lib.catalog.track(m.track.id).path.rsplit("/", 1)[1] for m in every[:2]} == names


def test_other_artists_and_albums(library):
    lib, original = library
    searcher = lib.searcher()
    plain = similar(searcher, original, k=6)
    assert any(m.track.artist == original.artist for m in plain)  # the manners below change something
    for manners, field in ((Manners(other_artists=True), "artist"), (Manners(other_albums=True), "album")):
        found = similar(searcher, original, k=6, manners=manners)
        assert len(found) == 6
        assert all(getattr(m.track, field) != getattr(original, field) for m in found)


def test_duration_range(library):
    lib, original = library
    found = similar(lib.searcher(), original, k=20, manners=Manners(min_duration=10))
    assert [m.track.path.rsplit("/", 1)[1] for m in found] == ["long.flac"]
    found = similar(lib.searcher(), original, k=20, manners=Manners(max_duration=5))
    assert [m.track.path.rsplit("/", 1)[1] for m in found] == ["short.flac"]
    with pytest.raises(QueryError, match="above the longest"):
        similar(lib.searcher(), original, k=3, manners=Manners(min_duration=9, max_duration=5))


def test_cli_similar_manners_json_and_m3u8(library, songspace, tmp_path):
    lib, original = library
    rows = json.loads(songspace("similar", original.id, "-k", "4", "--other-albums", "--json", check=True).stdout)
    assert len(rows) == 4 and all(r["album"] != original.album for r in rows)
    assert set(rows[0]) >= {"id", "score", "path", "artist", "title", "album", "duration", "copies", "copy_of_query"}
    rows = json.loads(songspace("similar", original.id, "-k", "3", "--json", check=True).stdout)
    assert rows[0]["copy_of_query"] and len(rows[0]["copies"]) == 1
    playlist = tmp_path / "out" / "similar.m3u8"
    playlist.parent.mkdir()
    songspace("similar", original.id, "-k", "3", "--m3u8", playlist, check=True)
    lines = playlist.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#EXTM3U" and len(lines) == 7 and lines[1].startswith("#EXTINF:")
    assert all((playlist.parent / line).resolve().exists() for line in lines[2::2])  # relative paths
    songspace("similar", original.id, "-k", "3", "--m3u8", playlist, "--absolute", check=True)
    assert all(line.startswith("/") for line in playlist.read_text().splitlines()[2::2])
    # A mistyped playlist path never replaces a file that is not a playlist (the catalog, a song).
    for target, reason in ((lib.root / "catalog.sqlite", "ends in .m3u8"), (tmp_path / "notes.m3u", "not a playlist")):
        if not target.exists():
            target.write_text("my notes")
        before = target.read_bytes()
        bad = songspace("similar", original.id, "--m3u8", target)
        assert bad.exit_code == 2 and reason in bad.stderr and target.read_bytes() == before
    bad = songspace("similar", original.id, "--min-duration", "9", "--max-duration", "5")
    assert bad.exit_code == 2 and "above the longest" in bad.stderr
    bad = songspace("similar", original.id, "--min-duration", "nan")
    assert bad.exit_code == 2 and "a duration bound must be a number of seconds" in bad.stderr
    bad = songspace("similar", original.id, "-k", "0")
    assert bad.exit_code == 2 and "k must be at least 1" in bad.stderr
