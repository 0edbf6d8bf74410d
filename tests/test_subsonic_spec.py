"""Every Subsonic call songspace answers, checked against the OpenSubsonic specification's own
JSON schemas (tests/opensubsonic-spec/, validated by tests/opensubsonic_schema.py), over a real
server on a library tagged as real ones are, with something in every list (stars, a playlist,
a bookmark, a play queue, a rating, plays, now playing, predicted tags, lyrics). A call added
to the server without a case here fails `test_every_call_is_checked`."""

from __future__ import annotations

import httpx
import pytest

from helpers import free_port, serving
from opensubsonic_schema import errors, has_json

from songspace import Library, autotags
from songspace.server.subsonic_request import HANDLERS

USER, PASSWORD = "erin", "pw e"


@pytest.fixture(scope="module")
def server(tagged_music, tmp_path_factory):
    root = tmp_path_factory.mktemp("spec") / "library"
    with Library.open(root) as lib:
        lib.index([tagged_music], workers=0)
        autotags.refresh(lib.catalog)
        lib.catalog.add_user(USER, PASSWORD)
    port = free_port()
    with serving(root, port=port, index_workers=0) as base:
        yield base


def call(base: str, method: str, /, **params) -> dict:
    answer = httpx.get(f"{base}/rest/{method}", params={"u": USER, "p": PASSWORD, "c": "spec", "v": "1.16.1",
                                                      "f": "json", **params}, timeout=60)
    assert answer.status_code == 200
    return answer.json()


@pytest.fixture(scope="module")
def ids(server) -> dict:
    """Ids of each kind, and every list filled."""
    found = call(server, "search3", query="", songCount=500)["subsonic-response"]["searchResult3"]
    songs = {s["title"]: s for s in found["song"]}
    third, second = songs["Third"], songs["Second"]
    album, artist = third["albumId"], third["artistId"]
    folder = call(server, "getMusicFolders")["subsonic-response"]["musicFolders"]["musicFolder"][0]["id"]
    directory = call(server, "getIndexes")["subsonic-response"]["indexes"]["index"][0]["artist"][0]["id"]
    made = [call(server, "star", id=third["id"], albumId=album, artistId=artist),
            call(server, "createPlaylist", name="mix", songId=[third["id"], second["id"]]),
            call(server, "createBookmark", id=third["id"], position=1234, comment="here"),
            call(server, "savePlayQueue", id=[third["id"], second["id"]], current=second["id"], position=5),
            call(server, "setRating", id=third["id"], rating=3),
            call(server, "scrobble", id=third["id"]),
            call(server, "scrobble", id=second["id"], submission="false")]
    assert all(m["subsonic-response"]["status"] == "ok" for m in made)
    playlist = made[1]["subsonic-response"]["playlist"]["id"]
    return {"song": third["id"], "other": second["id"], "album": album, "artist": artist, "folder": folder,
            "dir": directory, "playlist": playlist, "artist_name": third["artist"], "title": third["title"]}


# (call, its parameters from `ids`): every call with a JSON answer. Those that change something
# come after the reads, so each read sees the lists filled by `ids`.
CASES = [
    ("ping", lambda i: {}),
    ("getLicense", lambda i: {}),
    ("getOpenSubsonicExtensions", lambda i: {}),
    ("getUser", lambda i: {"username": USER}),
    ("tokenInfo", lambda i: {}),
    ("getScanStatus", lambda i: {}),
    ("getMusicFolders", lambda i: {}),
    ("getIndexes", lambda i: {}),
    ("getMusicDirectory", lambda i: {"id": i["dir"]}),
    ("getArtists", lambda i: {}),
    ("getArtist", lambda i: {"id": i["artist"]}),
    ("getAlbum", lambda i: {"id": i["album"]}),
    ("getSong", lambda i: {"id": i["song"]}),
    ("getGenres", lambda i: {}),
    ("getSongsByGenre", lambda i: {"genre": "Jazz"}),
    ("getArtistInfo", lambda i: {"id": i["artist"]}),
    ("getArtistInfo2", lambda i: {"id": i["artist"]}),
    ("getAlbumInfo", lambda i: {"id": i["album"]}),
    ("getAlbumInfo2", lambda i: {"id": i["album"]}),
    ("getAlbumList", lambda i: {"type": "alphabeticalByName"}),
    ("getAlbumList2", lambda i: {"type": "byYear", "fromYear": 1990, "toYear": 2020}),
    ("getRandomSongs", lambda i: {"size": 5}),
    ("search", lambda i: {"artist": i["artist_name"], "any": "third"}),
    ("search2", lambda i: {"query": "great"}),
    ("search3", lambda i: {"query": "third"}),
    ("getStarred", lambda i: {}),
    ("getStarred2", lambda i: {}),
    ("getPlaylists", lambda i: {}),
    ("getPlaylist", lambda i: {"id": i["playlist"]}),
    ("getBookmarks", lambda i: {}),
    ("getPlayQueue", lambda i: {}),
    ("getPlayQueueByIndex", lambda i: {}),
    ("getNowPlaying", lambda i: {}),
    ("getLyrics", lambda i: {"artist": i["artist_name"], "title": i["title"]}),
    ("getLyricsBySongId", lambda i: {"id": i["song"]}),
    ("getSimilarSongs", lambda i: {"id": i["song"], "count": 5}),
    ("getSimilarSongs2", lambda i: {"id": i["artist"], "count": 5}),
    ("getTopSongs", lambda i: {"artist": i["artist_name"]}),
    ("getSonicSimilarTracks", lambda i: {"id": i["song"], "count": 3}),
    ("findSonicPath", lambda i: {"startSongId": i["song"], "endSongId": i["other"], "count": 4}),
    ("scrobble", lambda i: {"id": i["song"]}),
    ("star", lambda i: {"id": i["other"]}),
    ("unstar", lambda i: {"id": i["other"]}),
    ("setRating", lambda i: {"id": i["album"], "rating": 5}),
    ("createBookmark", lambda i: {"id": i["other"], "position": 10}),
    ("deleteBookmark", lambda i: {"id": i["other"]}),
    ("savePlayQueue", lambda i: {"id": i["song"]}),
    ("savePlayQueueByIndex", lambda i: {"id": [i["song"], i["other"]], "currentIndex": 1, "position": 3}),
    ("createPlaylist", lambda i: {"name": "another", "songId": i["song"]}),
    ("updatePlaylist", lambda i: {"playlistId": i["playlist"], "songIdToAdd": i["other"]}),
    ("deletePlaylist", lambda i: {"id": i["playlist"]}),
    ("startScan", lambda i: {}),
]
BINARY = {"stream", "download", "getCoverArt"}  # the specification describes no JSON for these


def test_every_call_is_checked():
    assert {name for name, _ in CASES} == set(HANDLERS) - BINARY
    assert not any(has_json(name) for name in BINARY)


@pytest.mark.parametrize("name, params", CASES, ids=[name for name, _ in CASES])
def test_answers_follow_the_specification(server, ids, name, params):
    body = call(server, name, **params(ids))
    assert body["subsonic-response"]["status"] == "ok", body
    assert errors(name, body) == []


def test_lists_are_not_empty_where_the_schemas_look(server, ids):
    """What the schema checks above looked inside: the lists filled, the optional parts there."""
    r = {name: call(server, name, **params(ids))["subsonic-response"] for name, params in CASES[: [n for n, _ in CASES].index("scrobble")]}
    assert r["getBookmarks"]["bookmarks"]["bookmark"] and r["getPlayQueue"]["playQueue"]["entry"]
    assert r["getPlayQueueByIndex"]["playQueueByIndex"]["currentIndex"] == 1
    assert r["getNowPlaying"]["nowPlaying"]["entry"] and r["getStarred"]["starred"]["album"]
    assert r["getLyricsBySongId"]["lyricsList"]["structuredLyrics"][0]["line"][0]["start"] == 1000
    assert r["getArtistInfo2"]["artistInfo2"]["similarArtist"] and r["getSong"]["song"]["predictedTags"]
    assert r["getSong"]["song"]["userRating"] == 3 and r["getSong"]["song"]["replayGain"]
    assert r["search2"]["searchResult2"]["album"][0]["isDir"] is True and r["tokenInfo"]["tokenInfo"]["username"] == USER
    assert [m["title"] for m in r["search"]["searchResult"]["match"]] == ["Third"]
    assert r["getSongsByGenre"]["songsByGenre"]["song"] and r["getLyrics"]["lyrics"]["value"]


@pytest.mark.parametrize("name, params", [
    ("getSong", {"id": "nope"}), ("getArtistInfo2", {}), ("getLyricsBySongId", {"id": "12345678"}),
    ("getAlbumList2", {"type": "sideways"}), ("setRating", {"id": "1", "rating": "9"}),
    ("savePlayQueue", {"id": "1", "current": "nope"}), ("getSongsByGenre", {"genre": "x", "count": "many"}),
])
def test_errors_follow_the_specification(server, name, params):
    body = call(server, name, **params)
    assert body["subsonic-response"]["status"] == "failed"
    assert errors(name, body) == []


def test_a_wrong_answer_is_caught():
    """The validation can fail: an album without its required fields, a song with a text year."""
    envelope = {"status": "ok", "version": "1.16.1", "type": "songspace", "serverVersion": "1", "openSubsonic": True}
    assert errors("getAlbum", {"subsonic-response": {**envelope, "album": {"name": "x"}}})
    assert errors("getSong", {"subsonic-response": {**envelope, "song": {"id": "1", "isDir": False, "title": "t",
                                                                          "year": "2004"}}})
    assert errors("ping", {"subsonic-response": {**envelope, "openSubsonic": "yes"}})
