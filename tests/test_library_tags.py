"""Tags in the catalog: indexing stores every field; re-reading tags never analyses audio again
(a file a tag editor rewrote, a catalog from before the tag fields, a cover added later)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from tagged_library import ALBUM_MBID, GREAT, HITS, write_absurd_flac, write_tags

from songspace import Library
from songspace import analysis
from songspace.catalog import migrations
from songspace.synth import synth_track, write_audio
from songspace.tags import TAGS_VERSION


@pytest.fixture
def embeds(monkeypatch) -> list[str]:
    """The paths of the files the model embedded (workers=0: in this process), in order."""
    seen: list[str] = []
    real_load = analysis.load

    def load(path, *args, **kwargs):
        seen.append(getattr(path, "name", str(path)))  # a path, or the file open once (analysis.OneRead)
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(analysis, "load", load)  # every embedding starts with decoding the file
    return seen


@pytest.fixture
def tagged_copy(tagged_music, tmp_path) -> Path:
    return Path(shutil.copytree(tagged_music, tmp_path / "music"))


def test_the_catalog_holds_every_field(tagged_copy, library_dir, embeds):
    with Library.open(library_dir) as lib:
        report = lib.index([tagged_copy], workers=0)
        assert report.added == 9 and not report.failed and len(embeds) == 9
        t = {Path(x.path).relative_to(tagged_copy).as_posix(): x for x in lib.catalog.ok_tracks()}
    opening, second, third = (t[f"{GREAT}/{n}"] for n in ("01 Opening.flac", "b-second.mp3", "a-third.ogg"))
    assert (opening.albumartist, opening.track, opening.track_total, opening.disc, opening.disc_total) == \
        ("The Ensemble", 1, 3, 1, 2)
    assert (opening.date, opening.year, opening.original_date, opening.original_year) == \
        ("2004-03-02", 2004, "1999-05-01", 1999)
    assert (opening.mb_album_id, opening.genres, opening.compilation) == (ALBUM_MBID, ("Jazz", "Fusion"), False)
    assert (opening.rg_track_gain, opening.rg_album_gain, opening.picture_type, opening.picture_mime) == \
        (-6.54, -7.25, 3, "image/png")
    assert opening.folder_image == str(tagged_copy / GREAT / "cover.jpg") and opening.lyrics_file is None
    assert second.artists == ("Composer B", "Composer C") and second.lyrics == "la la la\nsecond verse"
    assert third.lyrics_file == str(tagged_copy / GREAT / "a-third.lrc") and third.picture_mime is None
    assert opening.audio_hash and opening.tags_version == TAGS_VERSION
    wav = t[f"{HITS}/02 - wave.wav"]
    assert (wav.title, wav.compilation, wav.track, wav.albumartist) == ("Wave", True, 2, None)
    loose = t["Loose/untagged.mp3"]
    assert (loose.title, loose.artists, loose.tags_version) == (None, (), TAGS_VERSION)


def test_retagging_a_file_does_not_analyse_it_again(tagged_copy, library_dir, embeds):
    path = tagged_copy / GREAT / "b-second.mp3"
    with Library.open(library_dir) as lib:
        lib.index([tagged_copy], workers=0)
        before = lib.catalog.by_path(str(path))
        vector = lib.catalog.vector(before.id)[1]
        embeds.clear()
        write_tags(path, {"title": "Second (remastered title)", "tracknumber": "7/9", "lyrics": "new words " * 300})
        assert path.stat().st_size != before.size  # the file's bytes changed, its audio did not
        report = lib.index([tagged_copy], workers=0)
        assert embeds == [] and (report.retagged, report.updated, report.unchanged) == (1, 0, 9)
        after = lib.catalog.by_path(str(path))
        assert (after.id, after.title, after.track, after.track_total) == (before.id, "Second (remastered title)", 7, 9)
        assert after.content_hash != before.content_hash and after.audio_hash == before.audio_hash
        assert after.size == path.stat().st_size
        assert np.array_equal(lib.catalog.vector(after.id)[1], vector)
        assert lib.index([tagged_copy], workers=0).retagged == 0 and embeds == []  # settled

        # New audio under the same tags is analysed again.
        write_audio(path, synth_track("noise_beat", 5.0, sr=22050, seed=77), 22050)
        write_tags(path, {"title": "Second"})
        report = lib.index([tagged_copy], workers=0)
        assert embeds == [str(path)] and (report.updated, report.retagged) == (1, 0)
        assert lib.catalog.by_path(str(path)).audio_hash != before.audio_hash


def test_a_catalog_from_before_the_tag_fields_gets_them_without_embedding(tagged_copy, library_dir, embeds):
    with Library.open(library_dir) as lib:
        lib.index([tagged_copy], workers=0)
        vectors = lib.catalog.vectors(lib.model_id)
    # Make it the catalog songspace wrote at schema 3: no tag columns, only the four old tags.
    db = sqlite3.connect(library_dir / "catalog.sqlite")
    for field in migrations.TAG_FIELDS.split(";"):
        db.execute(f"ALTER TABLE tracks DROP COLUMN {field.split()[0]}")
    db.execute("UPDATE tracks SET title = NULL WHERE path LIKE '%Opening.flac'")  # as an old reader left it
    db.execute("PRAGMA user_version = 3")
    db.commit()
    db.close()
    embeds.clear()
    with Library.open(library_dir) as lib:
        assert lib.catalog.schema_version == migrations.LATEST
        stale = lib.catalog.ok_tracks()
        assert {t.tags_version for t in stale} == {0} and all(t.albumartist is None for t in stale)
        report = lib.index([tagged_copy], workers=0)
        assert embeds == [] and (report.retagged, report.unchanged, report.updated, report.added) == (9, 9, 0, 0)
        tracks = {Path(t.path).name: t for t in lib.catalog.ok_tracks()}
        assert tracks["01 Opening.flac"].title == "Opening" and tracks["01 Opening.flac"].albumartist == "The Ensemble"
        assert tracks["z first of disc two.m4a"].disc == 2 and all(t.audio_hash for t in tracks.values())
        after = lib.catalog.vectors(lib.model_id)
        assert np.array_equal(after[0], vectors[0]) and np.array_equal(after[1], vectors[1])
        assert lib.index([tagged_copy], workers=0).retagged == 0 and embeds == []


def test_a_cover_or_lrc_added_later_is_found_without_analysis(tagged_copy, library_dir, embeds):
    folder = tagged_copy / HITS
    with Library.open(library_dir) as lib:
        lib.index([tagged_copy], workers=0)
        embeds.clear()
        (folder / "folder.png").write_bytes(b"\x89PNG\r\n\x1a\n")
        (folder / "03 - sunny.lrc").write_text("[00:00.00]sunny\n")
        lib.index([tagged_copy], workers=0)
        assert embeds == []
        sunny = lib.catalog.by_path(str(folder / "03 - sunny.mp3"))
        assert (sunny.folder_image, sunny.lyrics_file) == (str(folder / "folder.png"), str(folder / "03 - sunny.lrc"))
        os.unlink(folder / "03 - sunny.lrc")
        lib.index([tagged_copy], workers=0)
        assert lib.catalog.by_path(str(folder / "03 - sunny.mp3")).lyrics_file is None and embeds == []



def test_an_index_with_nothing_new_lists_no_folder_again(tagged_copy, library_dir, embeds, monkeypatch):
    """The scan walked every folder: what lies beside unchanged tracks is read from that walk,
    not from a second listing of each folder."""
    listed = []
    listdir = os.listdir

    def counting(path="."):
        listed.append(str(path))
        return listdir(path)

    with Library.open(library_dir) as lib:
        lib.index([tagged_copy], workers=0)
        embeds.clear()
        monkeypatch.setattr(os, "listdir", counting)
        report = lib.index([tagged_copy], workers=0)
    assert report.unchanged == 9 and embeds == []
    assert [p for p in listed if p.startswith(str(tagged_copy))] == []

def test_absurd_tags_are_stored_and_served(tmp_path, library_dir):
    from fastapi.testclient import TestClient

    from songspace.server import create_app

    music = tmp_path / "music"
    music.mkdir()
    path = write_absurd_flac(music / "absurd.flac")
    with Library.open(library_dir) as lib:
        assert lib.index([music], workers=0).added == 1
        t = lib.catalog.by_path(str(path))
        lib.catalog.add_user("ann", "pw")
    assert (t.track, t.disc, t.year, t.rg_track_gain, t.mb_album_id, t.picture_mime) == (3, 1, None, None, None,
                                                                                         "image/jpeg")
    assert len(t.artists) == 100 and len(t.title) == 1000 and len(t.lyrics) <= 32 * 1024
    with TestClient(create_app(library_dir)) as client:
        auth = {"u": "ann", "p": "pw", "f": "json"}
        song = client.get("/rest/getSong", params={**auth, "id": t.id}).json()["subsonic-response"]["song"]
        assert song["track"] == 3 and len(song["artists"]) == 100 and "year" not in song
        cover = client.get("/rest/getCoverArt", params={**auth, "id": t.id})
        assert cover.status_code == 200 and len(cover.content) == 10 * 2**20 + 2


def test_tracks_read_in_bulk_are_the_tracks_their_fields_make(tmp_path):
    """The catalog makes each Track of a bulk read without its __init__ (catalog/tracks.py: the
    frozen __init__ was a large share of building a 100,000-track library's view); each must
    still be the Track its fields make: equal, same hash and repr, frozen, lists as tuples."""
    from dataclasses import FrozenInstanceError, replace

    from songspace.catalog import Catalog

    tags = {"title": "One", "artist": "A & B", "artists": ["A", "B"], "genre": "Jazz", "genres": ["Jazz", "Fusion"],
            "compilation": True, "track": 2, "rg_track_gain": -6.5, "tags_version": TAGS_VERSION}
    cat = Catalog(tmp_path / "catalog.db")
    try:
        for i, t in enumerate([tags, {**tags, "title": "Two"}, {}]):
            cat.put_ok(f"/music/{i}.flac", size=10, mtime=1.5, content_hash=f"{i}", duration=3.0, tags=t,
                       model_id="m", vector=np.ones(4, np.float32))
        cat.put_failed("/music/bad.flac", "no audio")
        tracks = cat.tracks()
    finally:
        cat.close()
    for t in tracks:
        made = replace(t)  # every field read back and given to __init__
        assert made == t and hash(made) == hash(t) and repr(made) == repr(t)
        with pytest.raises(FrozenInstanceError):
            t.title = "changed"
    one, two, untagged, failed = tracks
    assert (one.title, one.artists, one.genres, one.compilation, one.track, one.model_id) == \
        ("One", ("A", "B"), ("Jazz", "Fusion"), True, 2, "m")
    assert (two.title, two.artists) == ("Two", ("A", "B"))
    assert (untagged.title, untagged.artists, untagged.genres, untagged.compilation) == (None, (), (), False)
    assert (failed.status, failed.error, failed.tags_version, failed.model_id) == ("failed", "no audio", 0, None)
