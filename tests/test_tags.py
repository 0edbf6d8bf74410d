"""Reading the tags real libraries have (tags.py), from files encoded by real encoders (PyAV) and
tagged by mutagen in each format's own tag family; absurd values stored sanely, never a crash."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tagged_library import (ALBUM_MBID, ALBUMARTIST_MBID, ARTIST_MBID, GREAT, HITS, JPEG, LRC_TEXT, png_bytes,
                            write_absurd_flac, write_tags)

from songspace.synth import synth_track, write_audio
from songspace.tags import (MAX_LYRICS, MAX_TEXT, MAX_VALUES, TAGS_VERSION, audio_hash, beside, embedded_picture,
                            number_pair, parse_date, read_tags)


def test_every_format_gives_the_same_fields(tagged_music):
    great = {name: read_tags(tagged_music / GREAT / name) for name in
             ("01 Opening.flac", "b-second.mp3", "a-third.ogg", "z first of disc two.m4a", "02 closing.opus")}
    for name, t in great.items():  # FLAC, ID3, Vorbis, MP4, Opus: the album's shared tags alike
        assert (t["album"], t["albumartist"], t["date"], t["year"], t["original_date"], t["original_year"]) == \
            ("Great Album", "The Ensemble", "2004-03-02", 2004, "1999-05-01", 1999), name
        assert (t["mb_album_id"], t["mb_albumartist_id"], t["albumartist_sort"]) == \
            (ALBUM_MBID, ALBUMARTIST_MBID, "Ensemble, The"), name
        assert t["genres"] == ["Jazz", "Fusion"] and t["genre"] == "Jazz", name
        assert (t["rg_album_gain"], t["rg_album_peak"], t["compilation"]) == (-7.25, 0.98, False), name
        assert t["tags_version"] == TAGS_VERSION
    assert [(great[n]["disc"], great[n]["track"]) for n in great] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2)]
    assert [great[n].get("track_total") for n in great] == [3, 3, None, 2, 2]  # "2/3", TRACKTOTAL, trkn totals
    assert [great[n]["disc_total"] for n in great] == [2, 2, 2, 2, 2]
    opening, second = great["01 Opening.flac"], great["b-second.mp3"]
    assert (opening["mb_artist_id"], opening["mb_track_id"], opening["artist_sort"]) == \
        (ARTIST_MBID, "aaaaaaaa-0000-4000-8000-000000000001", "A, Composer")
    assert (opening["rg_track_gain"], opening["rg_track_peak"]) == (-6.54, 0.912345)
    assert (opening["picture_type"], opening["picture_mime"]) == (3, "image/png")
    assert "picture_type" not in second and "lyrics" not in opening
    assert second["artist"] == "Composer B & Composer C" and second["artists"] == ["Composer B", "Composer C"]
    assert second["lyrics"] == "la la la\nsecond verse"
    assert (second["rg_track_gain"], second["rg_track_peak"]) == (-3.0, 0.5)
    for name in ("03 - sunny.mp3", "01 - Ünïcödé — ‘odd’ name #1 [x].mp3", "02 - wave.wav"):  # WAV: ID3 chunk
        t = read_tags(tagged_music / HITS / name)
        assert t["compilation"] is True and t["album"] == "Summer Hits" and t["year"] == 2010, name
        assert "albumartist" not in t
    assert read_tags(tagged_music / "Loose" / "untagged.mp3") == {"tags_version": TAGS_VERSION, "compilation": False}


def test_the_picture_is_described_and_read_from_the_file(tagged_music):
    assert embedded_picture(tagged_music / GREAT / "01 Opening.flac") == (png_bytes(), "image/png")
    assert embedded_picture(tagged_music / GREAT / "a-third.ogg") is None


def test_what_lies_beside_a_track(tagged_music, tmp_path):
    found = beside(tagged_music / GREAT / "a-third.ogg")
    assert found == {"folder_image": str(tagged_music / GREAT / "cover.jpg"),
                     "lyrics_file": str(tagged_music / GREAT / "a-third.lrc")}
    assert Path(found["lyrics_file"]).read_text() == LRC_TEXT
    assert beside(tagged_music / HITS / "03 - sunny.mp3") == {"folder_image": None, "lyrics_file": None}
    # cover before folder before front; a JPEG before a PNG; any case
    for name in ("FRONT.png", "Folder.JPG", "folder.png", "Cover.png"):
        (tmp_path / name).write_bytes(JPEG)
    assert beside(tmp_path / "x.mp3")["folder_image"] == str(tmp_path / "Cover.png")
    (tmp_path / "Cover.png").unlink()
    assert beside(tmp_path / "x.mp3")["folder_image"] == str(tmp_path / "Folder.JPG")


@pytest.mark.parametrize("text, expected", [("3/12", (3, 12)), ("3/x", (3, None)), ("x", (None, None)),
                                            (" 07 ", (7, None)), ("/9", (None, 9)), ("-1", (None, None)),
                                            ("99999999999", (None, None)), ("١٢", (None, None)), (None, (None, None))])
def test_numbers(text, expected):
    assert number_pair(text, 99999) == expected


@pytest.mark.parametrize("text, expected", [("2004", ("2004", 2004)), ("2004-03-02T10:00", ("2004-03-02", 2004)),
                                            ("1999.5.1", ("1999-05-01", 1999)), ("2004-13-40", ("2004", 2004)),
                                            ("99999", (None, None)), ("0000", (None, None)), ("soon", (None, None)),
                                            ("", (None, None))])
def test_dates(text, expected):
    assert parse_date(text) == expected


def test_absurd_tags_are_stored_sanely(tmp_path):
    path = write_absurd_flac(tmp_path / "absurd.flac")
    t = read_tags(path)
    assert t["title"].startswith("bad title") and len(t["title"]) == MAX_TEXT
    assert len(t["artists"]) == MAX_VALUES and t["artists"][0] == "artist 0" and len(t["artist"]) <= MAX_TEXT
    assert (t["track"], t.get("track_total"), t["disc"], t.get("year"), t.get("date")) == (3, None, 1, None, None)
    assert t["genres"] == ["Rock", "Pop"]
    assert not {"rg_track_gain", "rg_track_peak", "rg_album_gain", "mb_album_id"} & set(t)
    assert t["compilation"] is False
    assert len(t["lyrics"]) <= MAX_LYRICS and t["lyrics"].endswith("line")
    assert (t["picture_type"], t["picture_mime"]) == (3, "image/jpeg")  # the bytes stay in the file
    assert len(embedded_picture(path)[0]) == 10 * 2**20 + 2


def test_bytes_that_are_not_utf8_do_not_stop_reading(tmp_path):
    y = synth_track("noise_beat", 3.0, sr=22050)
    for name in ("bad.flac", "bad.mp3", "bad.ogg"):
        path = write_audio(tmp_path / name, y, 22050)
        write_tags(path, {"title": "café", "artist": "ok", "album": "caféé"})
        data = path.read_bytes()
        assert data.count("café".encode()) == 2
        path.write_bytes(data.replace("café".encode(), b"caf\xe9\xff"))  # same length: the tag stays whole
        t = read_tags(path)
        assert t["tags_version"] == TAGS_VERSION and t["artist"] == "ok", name  # the sound tags stay
        for key in ("title", "album"):  # read with replacement characters, or left out; never a crash
            assert t.get(key) is None or (isinstance(t[key], str) and t[key].startswith("caf")), (name, t)


@pytest.mark.parametrize("ext", [".mp3", ".flac", ".ogg", ".opus", ".m4a", ".wav"])
def test_the_audio_hash_ignores_the_tags(tmp_path, ext):
    y = synth_track("mid_chords", 4.0, sr=22050)
    path = write_audio(tmp_path / f"a{ext}", y, 22050)
    write_tags(path, {"title": "before", "artist": "x"})
    before, bytes_before = audio_hash(path), path.read_bytes()
    write_tags(path, {"title": "after, a much longer title than before " * 20, "albumartist": "y",
                      "picture": png_bytes(64, 64), "lyrics": "words " * 500})
    assert path.read_bytes() != bytes_before
    assert audio_hash(path) == before is not None
    other = write_audio(tmp_path / f"b{ext}", synth_track("mid_chords", 4.0, sr=22050, seed=1), 22050)
    assert audio_hash(other) != before


def test_a_file_that_is_no_audio(tmp_path):
    bad = tmp_path / "x.mp3"
    bad.write_bytes(b"not audio at all")
    assert read_tags(bad) == {"tags_version": TAGS_VERSION}
    assert audio_hash(bad) is None and embedded_picture(bad) is None
    copy = shutil.copy(bad, tmp_path / "y.flac")
    assert read_tags(copy)["tags_version"] == TAGS_VERSION


def test_clean_leaves_a_missing_value_missing():
    from songspace.tags import clean

    assert clean(None) is None  # not the text "None": a field left out stays left out
    assert clean("  \x00 ") is None and clean(b"caf\xc3\xa9 ") == "café" and clean(0) == "0"
    assert clean("x" * 50, 10) == "x" * 10
