"""The Subsonic calls player apps make beyond browsing and streaming, through the real client
libraries py-opensonic and py-sonic against a real uvicorn server over a library tagged as real
ones are (tagged_library.py), plus a re-encoded copy of one recording tagged as another song:
search (every word, prefixes, accents), the folder-style shapes, similar songs and artists from
the sound without copies, artist and album info, play queues, bookmarks and ratings per user,
songs by genre, lyrics, now playing, HEAD and download, cover art at a size, songspace's predicted
tags kept apart from the file's genres, startScan, and bad input answered with Subsonic errors.
Every JSON answer is checked against the OpenSubsonic specification's schemas in
tests/test_subsonic_spec.py."""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest

libopensonic = pytest.importorskip("libopensonic")
libsonic = pytest.importorskip("libsonic")

from helpers import free_port, serving  # noqa: E402
from tagged_library import ALBUM_MBID, GREAT, LRC_TEXT, png_bytes, write_tags  # noqa: E402

from songspace import Library, audio, autotags  # noqa: E402
from songspace.catalog import Catalog  # noqa: E402
from songspace.synth import synth_track, write_audio  # noqa: E402

USER, PASSWORD = "carol", "pw c"
OTHER, OTHER_PASSWORD = "dave", "pw d"
COPY_TAGS = {"title": "Geosphere", "artist": "Hoffmann", "album": "Café Colours", "genre": ["Ambient"]}


@pytest.fixture(scope="module")
def library(tagged_music, tmp_path_factory):
    """(library root, music folder): the tagged library, and a 64 kbit/s copy of "Opening"
    tagged as Hoffmann's "Geosphere" on "Café Colours"; indexed, its tags predicted."""
    base = tmp_path_factory.mktemp("calls")
    music = Path(shutil.copytree(tagged_music, base / "music"))
    y = audio.load(music / GREAT / "01 Opening.flac", sr=22050).y
    (music / "Hoffmann").mkdir()
    copy = write_audio(music / "Hoffmann" / "geosphere.mp3", y, 22050, bit_rate=64000)
    write_tags(copy, COPY_TAGS)
    root = base / "library"
    with Library.open(root) as lib:
        lib.index([music], workers=0)
        autotags.refresh(lib.catalog)
        lib.catalog.add_user(USER, PASSWORD)
        lib.catalog.add_user(OTHER, OTHER_PASSWORD)
    return root, music


@pytest.fixture(scope="module")
def server(library):
    root, _ = library
    port = free_port()
    with serving(root, port=port, index_workers=0) as base:
        yield base, port


@pytest.fixture(scope="module")
def opensonic(server):
    conn = libopensonic.Connection("http://127.0.0.1", USER, PASSWORD, port=server[1])
    yield conn
    conn.cleanup()


@pytest.fixture(scope="module")
def other(server):
    conn = libopensonic.Connection("http://127.0.0.1", OTHER, OTHER_PASSWORD, port=server[1])
    yield conn
    conn.cleanup()


@pytest.fixture(scope="module")
def pysonic(server):
    return libsonic.Connection("http://127.0.0.1", USER, PASSWORD, port=server[1])


def rest(server, call: str, method: str = "GET", user: str = USER, password: str = PASSWORD, **params):
    """The raw HTTP answer of a call (JSON unless f is given)."""
    query = {"u": user, "p": password, "c": "tests", "v": "1.16.1", "f": "json", **params}
    return httpx.request(method, f"{server[0]}/rest/{call}", params=query, timeout=60)


def ok(server, call: str, **params) -> dict:
    body = rest(server, call, **params).json()["subsonic-response"]
    assert body["status"] == "ok", body
    return body


def failed(server, call: str, **params) -> int:
    answer = rest(server, call, **params)
    assert answer.status_code == 200
    body = answer.json()["subsonic-response"]
    assert body["status"] == "failed", body
    return body["error"]["code"]


def songs(opensonic) -> dict:
    """{title: song} of the whole library."""
    return {s.title: s for s in opensonic.search3("", artist_count=0, album_count=0, song_count=500).song}


# ---------------------------------------------------------------------------------------------


def test_extensions_answer_without_credentials(server, opensonic):
    body = httpx.get(f"{server[0]}/rest/getOpenSubsonicExtensions", params={"f": "json"}).json()["subsonic-response"]
    assert body["status"] == "ok"
    names = {e["name"] for e in body["openSubsonicExtensions"]}
    assert {"songLyrics", "sonicSimilarity", "apiKeyAuthentication"} <= names
    assert {e.name for e in opensonic.get_open_subsonic_extensions()} == names
    assert failed(server, "ping", password="wrong") == 40  # everything else still asks


def test_search_every_word_prefixes_accents_and_case(opensonic, pysonic, library):
    def titles(query):
        return sorted(s.title for s in opensonic.search3(query, song_count=50).song or [])

    assert titles("hoffmann geosphere") == ["Geosphere"]  # artist and title, two words
    assert titles("geosphere HOFFMANN") == ["Geosphere"]  # any order, any case
    assert titles("colo*") == ["Geosphere"] == titles("cafe") == titles("CAFÉ colours")
    assert titles("olours*") == []  # a prefix starts a word
    assert titles("band two") == ["Odd One"]  # not "Disc Two Opens", nor Band One's or Band Three's
    assert titles("composer c third") == ["Third"]
    assert titles("composer c") == ["Closing", "Disc Two Opens", "Opening", "Second", "Third"]  # words start "c"
    assert titles("unicode odd") == ["Odd One"]  # the file name "Ünïcödé — ‘odd’ name", folded
    assert titles("hoffmann nowhere") == []
    found = opensonic.search3("cafe")
    assert [a.name for a in found.album] == ["Café Colours"] and [a.name for a in found.artist] == []
    assert [a.name for a in opensonic.search3("ensemb*").artist] == ["The Ensemble"]
    # the catalog's own search (the CLI's names, the page's search): the same matching
    cat = Catalog(library[0] / "catalog.sqlite", readonly=True)
    try:
        assert [t.title for t in cat.search_text("hoffmann geosphere")] == ["Geosphere"]
        assert [t.title for t in cat.search_text("colo*")] == ["Geosphere"] == [t.title for t in cat.search_text("Cafe")]
    finally:
        cat.close()
    # py-sonic's search2 and py-opensonic's (which raised on albums in the ID3 shape)
    legacy = opensonic.search2("cafe")
    assert [(a.title, a.is_dir) for a in legacy.album] == [("Café Colours", True)]
    assert [s.title for s in legacy.song] == ["Geosphere"]
    assert pysonic.search2("hoffmann geosphere")["searchResult2"]["song"][0]["title"] == "Geosphere"


def test_starred_and_indexes_in_the_folder_style_shapes(opensonic, pysonic):
    album = next(a for a in opensonic.get_album_list2("alphabeticalByName", size=50) if a.name == "Great Album")
    opensonic.star(album_ids=[album.id])
    starred = opensonic.get_starred()
    assert [(a.title, a.is_dir, a.parent) for a in starred.album] == [("Great Album", True, album.artist_id)]
    assert [a.name for a in opensonic.get_starred2().album] == ["Great Album"]
    assert pysonic.getStarred()["starred"]["album"][0]["isDir"] is True
    assert "Great Album" in [a.name for a in opensonic.get_album_list("alphabeticalByName", size=50)]  # raised before
    old = pysonic.search(artist="composer c", title="thi*")["searchResult"]  # Subsonic's first search
    assert [m["title"] for m in old["match"]] == ["Third"] and old["totalHits"] == 1
    indexes = opensonic.get_indexes()
    assert {a.name for i in indexes.index for a in i.artist} >= {"The Ensemble", "Compilations", "Hoffmann"}
    opensonic.unstar(album_ids=[album.id])


def test_similar_songs_leave_out_copies_of_the_same_recording(opensonic, pysonic):
    found = songs(opensonic)
    opening, copy = found["Opening"], found["Geosphere"]  # one recording, two files
    for similar in (opensonic.get_similar_songs2(opening.id, count=20), opensonic.get_similar_songs(opening.id, 20)):
        ids = [s.id for s in similar]
        assert ids and opening.id not in ids and copy.id not in ids
    sonic = [m.entry.id for m in opensonic.get_sonic_similar_tracks(opening.id, count=5)]
    assert sonic and copy.id not in sonic and opening.id not in sonic
    by_album = pysonic.getSimilarSongs2(opening.album_id, count=20)["similarSongs2"]["song"]
    assert copy.id not in {s["id"] for s in by_album}  # a copy of a seed song of the album


def test_artist_info_finds_similar_artists_from_the_sound(opensonic, pysonic):
    artists = {a.name: a for i in opensonic.get_artists().index for a in i.artist}
    hoffmann = artists["Hoffmann"]
    info = opensonic.get_artist_info2(hoffmann.id, count=3)
    names = [a.name for a in info.similar_artist]
    # Hoffmann's only song is a copy of Opening: Composer A (Opening, and Closing in the same style) is closest
    assert len(names) == 3 and names[0] == "Composer A" and "Hoffmann" not in names
    assert not {"Various Artists", "Unknown artist"} & set(names)  # no one's peers
    assert all(a.id.startswith("ar-") for a in info.similar_artist)
    legacy = pysonic.getArtistInfo(hoffmann.id, count=3)["artistInfo"]["similarArtist"]
    assert [a["name"] for a in legacy] == names
    ensemble = opensonic.get_artist_info2(artists["The Ensemble"].id)
    assert ensemble.music_brainz_id and "The Ensemble" not in [a.name for a in ensemble.similar_artist]


def test_album_info(opensonic):
    great = next(a for a in opensonic.get_album_list2("alphabeticalByName", size=50) if a.name == "Great Album")
    assert opensonic.get_album_info2(great.id).music_brainz_id == ALBUM_MBID
    assert opensonic.get_album_info(great.id).music_brainz_id == ALBUM_MBID  # the folder-style call, same album


def test_play_queue_per_user(opensonic, other, pysonic):
    found = songs(opensonic)
    queue = [found["Third"].id, found["Second"].id, found["Wave"].id]
    assert opensonic.save_play_queue(queue, current=queue[1], position=61_500)
    saved = opensonic.get_play_queue()
    assert [s.id for s in saved.entry] == queue and (saved.current, saved.position) == (queue[1], 61_500)
    assert saved.username == USER and saved.changed_by
    assert not other.get_play_queue().entry  # each user their own
    assert pysonic.getPlayQueue()["playQueue"]["current"] == queue[1]
    assert opensonic.save_play_queue([queue[2]], current=queue[2], position=0)
    assert [s.id for s in opensonic.get_play_queue().entry] == [queue[2]]
    # OpenSubsonic's indexBasedQueue: a song twice in the queue, the second time playing
    twice = [queue[0], queue[1], queue[0]]
    assert opensonic.save_play_queue_by_index(twice, current_index=2, position=700)
    by_index = opensonic.get_play_queue_by_index()
    assert [s.id for s in by_index.entry] == twice and (by_index.current_index, by_index.position) == (2, 700)
    assert opensonic.get_play_queue().current == queue[0]  # the same queue, by song id


def test_bookmarks_per_user(opensonic, other):
    third = songs(opensonic)["Third"]
    assert opensonic.create_bookmark(third.id, 95_000, "the good part")
    marks = opensonic.get_bookmarks()
    assert [(b.entry.id, b.position, b.comment, b.username) for b in marks] == \
        [(third.id, 95_000, "the good part", USER)]
    assert not other.get_bookmarks()
    opensonic.create_bookmark(third.id, 100_000)  # the same song: moved, not doubled
    assert [b.position for b in opensonic.get_bookmarks()] == [100_000]
    opensonic.delete_bookmark(third.id)
    assert not opensonic.get_bookmarks()


def test_ratings_per_user(opensonic, other, pysonic):
    found = songs(opensonic)
    sunny = found["Sunny"]
    opensonic.set_rating(sunny.id, 4)
    opensonic.set_rating(sunny.album_id, 5)
    assert opensonic.get_song(sunny.id).user_rating == 4
    assert opensonic.get_album(sunny.album_id).user_rating == 5
    assert other.get_song(sunny.id).user_rating is None
    pysonic.setRating(sunny.id, 0)  # 0 removes it
    assert opensonic.get_song(sunny.id).user_rating is None


def test_songs_by_genre_from_the_files_tags(opensonic, pysonic):
    jazz = opensonic.get_songs_by_genre("jazz", count=50)  # the genre tags Jazz and Fusion: either finds them
    assert sorted(s.title for s in jazz) == sorted(s.title for s in opensonic.get_songs_by_genre("Fusion", count=50)) \
        == sorted(["Opening", "Second", "Third", "Disc Two Opens", "Closing"])
    assert [s.title for s in opensonic.get_songs_by_genre("jazz", count=2, offset=1)] == [s.title for s in jazz[1:3]]
    assert pysonic.getSongsByGenre("Pop")["songsByGenre"]["song"][0]["title"] == "Sunny"
    assert opensonic.get_songs_by_genre("polka") == []


def test_predicted_tags_are_kept_apart_from_the_files_genres(server, opensonic):
    found = songs(opensonic)
    song = ok(server, "getSong", id=found["Opening"].id)["song"]
    assert [g["name"] for g in song["genres"]] == ["Jazz", "Fusion"] and song["genre"] == "Jazz"  # the file's
    kinds = {p["kind"] for p in song["predictedTags"]}
    assert kinds == {"genre", "mood"} and all(0 < p["confidence"] <= 1 for p in song["predictedTags"])
    untagged = ok(server, "getSong", id=found["untagged"].id)["song"]
    assert "genre" not in untagged and untagged["genres"] == [] and untagged["predictedTags"]


def test_lyrics_synced_from_the_lrc_and_plain_from_the_tags(server, opensonic, pysonic):
    found = songs(opensonic)
    [third] = opensonic.get_lyrics_by_song_id(found["Third"].id)
    assert third.synced and [(line.start, line.value) for line in third.line] == \
        [(1000, "third, first line"), (3500, "third, second line")]
    [second] = opensonic.get_lyrics_by_song_id(found["Second"].id)
    assert not second.synced and [line.value for line in second.line] == ["la la la", "second verse"]
    assert opensonic.get_lyrics_by_song_id(found["Sunny"].id) == []
    lyrics = opensonic.get_lyrics(artist="composer c", title="THIRD")
    assert lyrics.value == "third, first line\nthird, second line" and LRC_TEXT.startswith("[00:01.00]")
    assert pysonic.getLyrics(artist="Nobody", title="Nothing")["lyrics"].get("value", "") == ""
    xml = ElementTree.fromstring(rest(server, "getLyricsBySongId", id=found["Third"].id, f="xml").content)
    lines = xml.findall(".//{http://subsonic.org/restapi}line")
    assert [(line.get("start"), line.text) for line in lines] == [("1000", "third, first line"),
                                                                 ("3500", "third, second line")]


def test_now_playing_from_streams_and_notices(server, opensonic, other):
    found = songs(opensonic)
    streamed = rest(server, "stream", id=found["Wave"].id, c="phone")
    assert streamed.status_code == 200 and streamed.content
    other.scrobble(found["Sunny"].id, submission=False)  # a "now playing" notice
    entries = {(e.username, e.title) for e in opensonic.get_now_playing()}
    assert {(USER, "Wave"), (OTHER, "Sunny")} <= entries
    rest(server, "stream", id=found["Third"].id, c="phone")  # the same player moves on
    mine = [e.title for e in opensonic.get_now_playing() if e.username == USER and e.player_name == "phone"]
    assert mine == ["Third"]


def test_head_and_download(server, opensonic, library):
    found = songs(opensonic)
    odd = found["Odd One"]
    path = next(library[1].rglob("01 - Ünïcödé*"))
    head = rest(server, "stream", method="HEAD", id=odd.id)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == path.stat().st_size and head.headers["accept-ranges"] == "bytes"
    got = rest(server, "download", id=odd.id)
    assert got.content == path.read_bytes()
    disposition = got.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''01%20-%20%C3%9Cn" in disposition
    assert rest(server, "download", method="HEAD", id=odd.id).headers["content-disposition"] == disposition


def test_cover_art_at_the_asked_size(server, opensonic):
    from PIL import Image

    opening = songs(opensonic)["Opening"]  # its file embeds an 8x8 PNG
    original = rest(server, "getCoverArt", id=opening.id)
    assert original.content == png_bytes()
    small = rest(server, "getCoverArt", id=opening.id, size=4)
    with Image.open(io.BytesIO(small.content)) as im:
        assert im.size == (4, 4) and small.headers["content-type"] == "image/jpeg"
    assert rest(server, "getCoverArt", id=opening.id, size=500).content == png_bytes()  # never scaled up


def test_bad_input_is_a_subsonic_error(server):
    for call, params, code in [
        ("getArtistInfo2", {}, 10), ("getArtistInfo2", {"id": "ar-nope"}, 70), ("getAlbumInfo2", {"id": "../etc"}, 70),
        ("getLyricsBySongId", {"id": "999999"}, 70), ("getLyrics", {}, 10), ("getSongsByGenre", {}, 10),
        ("createBookmark", {"id": "1"}, 10), ("createBookmark", {"id": "x", "position": "1"}, 70),
        ("createBookmark", {"id": "1", "position": "soon"}, 0), ("deleteBookmark", {}, 10),
        ("savePlayQueue", {"id": "nope"}, 70), ("savePlayQueue", {"id": "1", "current": "2"}, 0),
        ("savePlayQueueByIndex", {"id": "1", "currentIndex": "1"}, 0),
        ("savePlayQueueByIndex", {"id": "1", "currentIndex": "first"}, 0),
        ("setRating", {"id": "1"}, 10), ("setRating", {"id": "1", "rating": "7"}, 0),
        ("setRating", {"id": "1", "rating": "x"}, 0), ("setRating", {"id": "al-nope", "rating": "1"}, 70),
        ("getCoverArt", {"id": "1", "size": "big"}, 0), ("download", {"id": "-1"}, 70),
    ]:
        assert failed(server, call, **params) == code, (call, params)


def test_start_scan_runs_the_library_update(server, opensonic, library):
    _, music = library
    write_audio(music / "Loose" / "new arrival.flac", synth_track("mid_chords", 5.0, seed=77), 22050)
    write_tags(music / "Loose" / "new arrival.flac", {"title": "New Arrival", "artist": "Late Band"})
    status = opensonic.start_scan()
    assert status.scanning
    deadline = time.monotonic() + 300
    while opensonic.get_scan_status().scanning:
        assert time.monotonic() < deadline, "the scan did not finish"
        time.sleep(0.2)
    assert [s.title for s in opensonic.search3("late arrival").song] == ["New Arrival"]
    assert opensonic.get_scan_status().count == len(songs(opensonic))
