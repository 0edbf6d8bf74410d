"""Albums as player apps expect them, over a library tagged as real ones are (tagged_library.py),
through the real client libraries py-opensonic and py-sonic against a real uvicorn server:
grouped by album artist (Various Artists for a compilation), songs in disc and track order,
track, disc, year, album artists and ReplayGain in entries, albums by year, cover art from the
files and their folders."""

from __future__ import annotations


import pytest

libopensonic = pytest.importorskip("libopensonic")
libsonic = pytest.importorskip("libsonic")

from helpers import free_port, serving  # noqa: E402
from tagged_library import ALBUM_MBID, ALBUMARTIST_MBID, JPEG, png_bytes  # noqa: E402

from songspace import Library  # noqa: E402

USER, PASSWORD = "bob", "pw"
GREAT_ORDER = ["Opening", "Second", "Third", "Disc Two Opens", "Closing"]  # not the file names' order


@pytest.fixture(scope="module")
def server(tagged_music, tmp_path_factory):
    root = tmp_path_factory.mktemp("albums") / "library"
    with Library.open(root) as lib:
        lib.index([tagged_music], workers=0)
        lib.catalog.add_user(USER, PASSWORD)
    port = free_port()
    with serving(root, port=port):
        yield port


@pytest.fixture(scope="module")
def opensonic(server):
    conn = libopensonic.Connection("http://127.0.0.1", USER, PASSWORD, port=server)
    yield conn
    conn.cleanup()


@pytest.fixture(scope="module")
def pysonic(server):
    return libsonic.Connection("http://127.0.0.1", USER, PASSWORD, port=server)


def albums(opensonic) -> dict:
    return {a.name: a for a in opensonic.get_album_list2("alphabeticalByName", size=50)}


def test_albums_group_by_album_artist_and_compilations_by_various_artists(opensonic):
    found = albums(opensonic)
    assert sorted(found) == ["Great Album", "Loose", "Summer Hits"]  # 4 composers, 3 bands: still one album each
    assert (found["Great Album"].artist, found["Great Album"].song_count, found["Great Album"].year) == \
        ("The Ensemble", 5, 2004)
    assert (found["Summer Hits"].artist, found["Summer Hits"].is_compilation, found["Summer Hits"].year) == \
        ("Various Artists", True, 2010)
    artists = {a.name: a for index in opensonic.get_artists().index for a in index.artist}
    assert sorted(artists) == ["The Ensemble", "Unknown artist", "Various Artists"]  # album artists, as apps list them
    ensemble = opensonic.get_artist(artists["The Ensemble"].id)
    assert (ensemble.music_brainz_id, ensemble.sort_name) == (ALBUMARTIST_MBID, "Ensemble, The")


def test_an_album_plays_in_disc_and_track_order(opensonic):
    found = albums(opensonic)
    great = opensonic.get_album(found["Great Album"].id)
    assert [s.title for s in great.song] == GREAT_ORDER
    assert [(s.disc_number, s.track) for s in great.song] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2)]
    assert great.music_brainz_id == ALBUM_MBID and [g.name for g in great.genres] == ["Jazz", "Fusion"]
    assert (great.release_date.year, great.release_date.month, great.original_release_date.year) == (2004, 3, 1999)
    second = great.song[1]
    assert second.artist == "Composer B & Composer C" and [a.name for a in second.artists] == ["Composer B", "Composer C"]
    assert second.display_album_artist == "The Ensemble" and [a.name for a in second.album_artists] == ["The Ensemble"]
    assert (second.year, second.replay_gain.track_gain, second.replay_gain.album_gain) == (2004, -3.0, -7.25)
    hits = opensonic.get_album(found["Summer Hits"].id)
    assert [(s.track, s.title, s.artist) for s in hits.song] == [(1, "Odd One", "Band Two"), (2, "Wave", "Band Three"),
                                                                 (3, "Sunny", "Band One")]


def test_a_track_artist_without_albums_of_their_own(opensonic):
    second = opensonic.get_album(albums(opensonic)["Great Album"].id).song[1]
    composer = opensonic.get_artist(second.artists[1].id)
    assert composer.name == "Composer C" and [a.name for a in composer.album] == ["Great Album"]


def test_albums_by_year(opensonic, pysonic):
    assert [a.name for a in opensonic.get_album_list2("byYear", from_year=2005, to_year=2015)] == ["Summer Hits"]
    assert [a.name for a in opensonic.get_album_list2("byYear", from_year=2020, to_year=1990)] == \
        ["Summer Hits", "Great Album"]  # newest first when asked backwards
    legacy = pysonic.getAlbumList2("byYear", fromYear=1990, toYear=2020)["albumList2"]["album"]
    assert [a["name"] for a in legacy] == ["Great Album", "Summer Hits"] and legacy[0]["year"] == 2004


def test_folder_browsing_shows_track_numbers_in_order(opensonic, pysonic):
    great = albums(opensonic)["Great Album"]
    children = pysonic.getMusicDirectory(great.id)["directory"]["child"]
    assert [(c["title"], c["discNumber"], c["track"]) for c in children] == \
        list(zip(GREAT_ORDER, [1, 1, 1, 2, 2], [1, 2, 3, 1, 2]))
    ensemble = next(a for index in opensonic.get_artists().index for a in index.artist if a.name == "The Ensemble")
    assert [(c["title"], c["year"]) for c in pysonic.getMusicDirectory(ensemble.id)["directory"]["child"]] == \
        [("Great Album", 2004)]


def test_cover_art_from_the_file_then_its_folder(opensonic, pysonic):
    great = opensonic.get_album(albums(opensonic)["Great Album"].id)
    assert pysonic.getCoverArt(great.id).read() == png_bytes()  # the first song embeds it
    assert pysonic.getCoverArt(great.song[2].id).read() == JPEG  # "Third" embeds none: the folder's cover.jpg
    hits = albums(opensonic)["Summer Hits"]
    assert pysonic.getCoverArt(hits.id, size=32).read().startswith(b"\x89PNG")  # neither: a placeholder


def test_the_xml_answer_carries_the_same(opensonic, server):
    import httpx
    from xml.etree import ElementTree as ET

    great = albums(opensonic)["Great Album"]
    body = httpx.get(f"http://127.0.0.1:{server}/rest/getAlbum", params={"u": USER, "p": PASSWORD, "id": great.id})
    ns = {"s": "http://subsonic.org/restapi"}
    album = ET.fromstring(body.content).find("s:album", ns)
    assert (album.get("year"), album.get("isCompilation"), album.find("s:releaseDate", ns).get("month")) == \
        ("2004", "false", "3")
    songs = album.findall("s:song", ns)
    assert [s.get("title") for s in songs] == GREAT_ORDER and songs[0].get("discNumber") == "1"
    assert songs[0].find("s:replayGain", ns).get("trackGain") == "-6.54"
    assert [a.get("name") for a in songs[1].findall("s:artists", ns)] == ["Composer B", "Composer C"]


def test_a_starred_album_keeps_its_star_and_rating_when_new_tags_regroup_it(tagged_music, tmp_path):
    """Re-read tags can give an album a new id (its album artist changed): the star and the
    rating follow the album's songs to it, show there, and unstarring the new id removes it."""
    import shutil

    from tagged_library import HITS, write_tags

    music = tmp_path / "music"
    shutil.copytree(tagged_music / HITS, music / HITS)
    root = tmp_path / "library"
    with Library.open(root) as lib:
        lib.index([music], workers=0)
        lib.catalog.add_user(USER, PASSWORD)
        port = free_port()
        with serving(root, port=port):
            conn = libopensonic.Connection("http://127.0.0.1", USER, PASSWORD, port=port)
            try:
                before = albums(conn)["Summer Hits"]
                conn.star(album_ids=[before.id])
                conn.set_rating(before.id, 4)
                for f in (music / HITS).iterdir():
                    write_tags(f, {"albumartist": "DJ Summer"})  # no longer a compilation of Various Artists
                lib.index([music], workers=0)
                after = albums(conn)["Summer Hits"]
                assert (after.artist, after.id != before.id) == ("DJ Summer", True)
                assert [a.id for a in conn.get_starred2().album] == [after.id]
                assert (conn.get_album(after.id).starred is not None, conn.get_album(after.id).user_rating) == (True, 4)
                conn.unstar(album_ids=[after.id])
                assert not conn.get_starred2().album
            finally:
                conn.cleanup()
