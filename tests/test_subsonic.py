"""The OpenSubsonic API's contract in-process: XML in the shapes the Subsonic documentation
shows, GET/POST and NAME.view, Subsonic's error codes for bad input (never a 500), users, the
token guard, and cover art."""

from __future__ import annotations

import hashlib
import shutil
import stat
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from fastapi.testclient import TestClient

from songspace import Library
from songspace.server import create_app

NS = "{http://subsonic.org/restapi}"
USER, PASSWORD = "bob", "pässword"
AUTH = {"u": USER, "p": PASSWORD}


@pytest.fixture
def client(indexed_library):
    with Library.open(indexed_library) as lib:
        lib.catalog.add_user(USER, PASSWORD)
    with TestClient(create_app(indexed_library)) as c:
        yield c


def xml(response) -> ET.Element:
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    assert root.tag == f"{NS}subsonic-response"
    assert root.get("version") == "1.16.1" and root.get("type") == "songspace" and root.get("openSubsonic") == "true"
    assert root.get("serverVersion")
    return root


def failed(response, code: int) -> str:
    root = xml(response)
    assert root.get("status") == "failed", response.text
    error = root.find(f"{NS}error")
    assert error is not None and int(error.get("code")) == code, response.text
    return error.get("message")


def json_body(response) -> dict:
    assert response.status_code == 200
    return response.json()["subsonic-response"]


# -- shapes ------------------------------------------------------------------------------------


SONG_ATTRIBUTES = {"id", "parent", "isDir", "title", "album", "artist", "coverArt", "size", "contentType", "suffix",
                   "duration", "path", "isVideo", "albumId", "artistId", "type", "created"}


def test_xml_shapes_follow_the_subsonic_documentation(client):
    root = xml(client.get("/rest/ping.view", params=AUTH))
    assert root.get("status") == "ok"
    artists = xml(client.get("/rest/getArtists", params=AUTH)).find(f"{NS}artists")
    assert artists.get("ignoredArticles")
    entries = artists.findall(f"{NS}index/{NS}artist")
    assert entries and all({"id", "name", "albumCount"} <= set(a.attrib) for a in entries)
    album_id = xml(client.get("/rest/getArtist", params={**AUTH, "id": entries[0].get("id")})).find(f"{NS}artist/{NS}album").get("id")
    album = xml(client.get("/rest/getAlbum", params={**AUTH, "id": album_id})).find(f"{NS}album")
    assert {"id", "name", "songCount", "duration", "created", "artistId"} <= set(album.attrib)
    songs = album.findall(f"{NS}song")
    assert len(songs) == int(album.get("songCount")) > 0
    for song in songs:
        assert SONG_ATTRIBUTES <= set(song.attrib), SONG_ATTRIBUTES - set(song.attrib)
        assert song.get("isDir") == "false" and song.get("albumId") == album_id
        assert int(song.get("duration")) > 0 and int(song.get("size")) > 0
        assert not Path(song.get("path")).is_absolute()  # relative to its music folder
    genres = xml(client.get("/rest/getGenres", params=AUTH)).findall(f"{NS}genres/{NS}genre")
    assert genres and all(g.text and g.get("songCount") for g in genres)  # the genre is the element's text
    extensions = xml(client.get("/rest/getOpenSubsonicExtensions", params=AUTH)).findall(f"{NS}openSubsonicExtensions")
    assert {e.get("name"): [v.text for v in e.findall(f"{NS}versions")] for e in extensions}["sonicSimilarity"] == ["1"]


def test_folder_browsing(client):
    folders = json_body(client.get("/rest/getMusicFolders", params={**AUTH, "f": "json"}))["musicFolders"]["musicFolder"]
    assert [f["id"] for f in folders] == [1]
    indexes = xml(client.get("/rest/getIndexes", params=AUTH)).find(f"{NS}indexes")
    dirs = indexes.findall(f"{NS}index/{NS}artist")
    assert len(dirs) == 4  # one folder per style
    directory = xml(client.get("/rest/getMusicDirectory", params={**AUTH, "id": dirs[0].get("id")})).find(f"{NS}directory")
    children = directory.findall(f"{NS}child")
    assert len(children) == 3 and all(c.get("parent") == dirs[0].get("id") for c in children)
    assert all(SONG_ATTRIBUTES <= set(c.attrib) for c in children)


def test_get_post_view_and_json(client):
    salt = "c19b2d"
    token = hashlib.md5((PASSWORD + salt).encode()).hexdigest()
    for response in (client.get("/rest/getAlbumList2", params={**AUTH, "type": "alphabeticalByName", "f": "json"}),
                     client.post("/rest/getAlbumList2.view", data={"u": USER, "t": token, "s": salt,
                                                                   "type": "alphabeticalByName", "f": "json"}),
                     client.post("/rest/getAlbumList2.view?f=json&type=alphabeticalByName", data={"u": USER, "t": token, "s": salt})):
        body = json_body(response)
        assert body["status"] == "ok" and body["openSubsonic"] is True
        names = [a["name"] for a in body["albumList2"]["album"]]
        assert names == sorted(names, key=str.casefold) and len(names) == 5
    hexed = "enc:" + PASSWORD.encode().hex()
    assert xml(client.get("/rest/ping", params={"u": USER, "p": hexed})).get("status") == "ok"
    for kind in ("random", "newest", "frequent", "recent", "starred", "alphabeticalByArtist"):
        assert json_body(client.get("/rest/getAlbumList2", params={**AUTH, "type": kind, "f": "json"}))["status"] == "ok"
    by_genre = json_body(client.get("/rest/getAlbumList2", params={**AUTH, "type": "byGenre", "genre": "noise_beat", "f": "json"}))
    assert [a["name"] for a in by_genre["albumList2"]["album"]] == ["noise_beat"]
    random_songs = json_body(client.get("/rest/getRandomSongs", params={**AUTH, "size": 4, "f": "json"}))
    assert len(random_songs["randomSongs"]["song"]) == 4


# -- bad input ---------------------------------------------------------------------------------


def test_credentials(client):
    assert "Wrong username or password" in failed(client.get("/rest/ping", params={"u": USER, "p": "nope"}), 40)
    failed(client.get("/rest/ping", params={"u": "mallory", "p": PASSWORD}), 40)
    failed(client.get("/rest/ping", params={"u": USER, "p": "enc:zz"}), 40)
    failed(client.get("/rest/ping", params={"u": USER, "t": "0" * 32, "s": "abc"}), 40)
    failed(client.get("/rest/ping"), 10)  # no user: even from this machine
    failed(client.get("/rest/ping", params={"u": USER}), 10)


def test_missing_unknown_wrong_kind_and_path_like_ids(client):
    songs = json_body(client.get("/rest/search3", params={**AUTH, "query": "", "f": "json"}))["searchResult3"]
    song, album, artist = songs["song"][0]["id"], songs["album"][0]["id"], songs["artist"][0]["id"]
    failed(client.get("/rest/getSong", params=AUTH), 10)
    failed(client.get("/rest/getAlbumList2", params=AUTH), 10)
    failed(client.get("/rest/findSonicPath", params={**AUTH, "startSongId": song}), 10)
    for method, param, bad in [("getSong", "id", "999999"), ("getSong", "id", album), ("getAlbum", "id", song),
                               ("getAlbum", "id", artist), ("getArtist", "id", album), ("getSong", "id", "../../etc/passwd"),
                               ("stream", "id", "/etc/passwd"), ("download", "id", "..%2F..%2Fetc%2Fpasswd"),
                               ("getMusicDirectory", "id", "/etc"), ("getCoverArt", "id", "../../etc/passwd"),
                               ("getPlaylist", "id", "pl-999"), ("getSimilarSongs2", "id", "al-0000"),
                               ("getSonicSimilarTracks", "id", album), ("star", "id", "nope"),
                               ("getSong", "id", "9" * 40), ("getSong", "id", "１")]:
        failed(client.get(f"/rest/{method}", params={**AUTH, param: bad}), 70)
    failed(client.get("/rest/findSonicPath", params={**AUTH, "startSongId": song, "endSongId": album}), 70)
    failed(client.get("/rest/getRandomSongs", params={**AUTH, "size": "many"}), 0)
    failed(client.get("/rest/noSuchMethod", params=AUTH), 0)


def test_no_method_answers_500_to_garbage(client):
    from songspace.server.subsonic import HANDLERS

    garbage = {"id": "\x00../x", "type": "?", "size": "-5", "count": "99999999999", "offset": "-1", "query": "%",
               "startSongId": "1", "endSongId": "1", "playlistId": "pl-x", "songId": "nope", "name": "", "f": "json"}
    for name in HANDLERS:
        response = client.post(f"/rest/{name}", data={**AUTH, **garbage})
        assert response.status_code in (200, 416), (name, response.status_code)
        if response.headers["content-type"].startswith("application/json"):
            body = response.json()["subsonic-response"]
            assert body["status"] in ("ok", "failed")
            assert not body.get("error", {}).get("message", "").startswith("Internal error"), (name, body)


def test_playlists_belong_to_their_owner(client, indexed_library):
    with Library.open(indexed_library) as lib:
        lib.catalog.add_user("eve", "other")
    made = json_body(client.get("/rest/createPlaylist", params={**AUTH, "name": "mine", "songId": ["1", "2"], "f": "json"}))
    playlist_id = made["playlist"]["id"]
    eve = {"u": "eve", "p": "other"}
    failed(client.get("/rest/getPlaylist", params={**eve, "id": playlist_id}), 70)  # private
    client.get("/rest/updatePlaylist", params={**AUTH, "playlistId": playlist_id, "public": "true"})
    assert xml(client.get("/rest/getPlaylist", params={**eve, "id": playlist_id})).get("status") == "ok"
    failed(client.get("/rest/deletePlaylist", params={**eve, "id": playlist_id}), 50)


# -- users, auth, cover art --------------------------------------------------------------------


def test_user_commands_and_private_catalog(songspace, indexed_library):
    songspace("user", "add", "carol", "--password", "pw1", check=True)
    catalog = indexed_library / "catalog.sqlite"
    assert stat.S_IMODE(catalog.stat().st_mode) == 0o600
    listed = songspace("user", "list", check=True).stdout
    assert "carol" in listed
    with TestClient(create_app(indexed_library)) as c:
        assert xml(c.get("/rest/ping", params={"u": "carol", "p": "pw1"})).get("status") == "ok"
        songspace("user", "remove", "carol", check=True)
        failed(c.get("/rest/ping", params={"u": "carol", "p": "pw1"}), 40)
    assert songspace("user", "remove", "carol").exit_code == 2


def test_password_prompt(indexed_library):
    from typer.testing import CliRunner

    from songspace.cli import app

    result = CliRunner().invoke(app, ["--library", str(indexed_library), "user", "add", "dave"], input="hidden\nhidden\n")
    assert result.exit_code == 0, result.output
    with Library.open(indexed_library) as lib:
        assert lib.catalog.user_password("dave") == "hidden"


def test_rest_uses_its_own_users_when_the_app_has_a_token(indexed_library):
    with Library.open(indexed_library) as lib:
        lib.catalog.add_user(USER, PASSWORD)
    with TestClient(create_app(indexed_library, token="secret-token")) as c:
        assert c.get("/api/status").status_code == 401  # the token guard still stands for the rest
        assert xml(c.get("/rest/ping", params=AUTH)).get("status") == "ok"
        failed(c.get("/rest/ping", headers={"Authorization": "Bearer secret-token"}), 10)  # the token is no user


def test_cover_art_embedded_or_placeholder(demo_music, tmp_path):
    from mutagen.flac import FLAC, Picture

    folder = tmp_path / "music"
    folder.mkdir()
    flac = shutil.copy(next(demo_music.rglob("*.flac")), folder / "with-cover.flac")
    shutil.copy(next(demo_music.rglob("*.mp3")), folder / "without.mp3")
    picture = Picture()
    picture.type, picture.mime, picture.data = 3, "image/png", b"\x89PNG\r\n\x1a\n-not-really-a-png-but-the-bytes"
    f = FLAC(flac)
    f.add_picture(picture)
    f.save()
    with Library.open(tmp_path / "library") as lib:
        lib.index([folder], workers=0)
        lib.catalog.add_user(USER, PASSWORD)
        ids = {Path(t.path).name: t.id for t in lib.catalog.tracks()}
    with TestClient(create_app(tmp_path / "library")) as c:
        got = c.get("/rest/getCoverArt", params={**AUTH, "id": ids["with-cover.flac"]})
        assert got.content == picture.data and got.headers["content-type"] == "image/png"
        album = json_body(c.get("/rest/getSong", params={**AUTH, "id": ids["with-cover.flac"], "f": "json"}))["song"]["albumId"]
        assert c.get("/rest/getCoverArt", params={**AUTH, "id": album}).content == picture.data
        placeholder = c.get("/rest/getCoverArt", params={**AUTH, "id": ids["without.mp3"], "size": 32})
        assert placeholder.headers["content-type"] == "image/png" and placeholder.content.startswith(b"\x89PNG")


def test_absurd_scrobble_times_are_refused_and_stored_ones_do_not_break_listings(client, indexed_library):
    song = xml(client.get("/rest/getRandomSongs", params={**AUTH, "size": 1})).find(f"{NS}randomSongs/{NS}song").get("id")
    for when in ("99999999999999999999999", "-5", "NaN", "1e30", "253402300800000"):
        assert "milliseconds since 1970" in failed(
            client.get("/rest/scrobble", params={**AUTH, "id": song, "time": when}), 0)
    assert xml(client.get("/rest/scrobble", params={**AUTH, "id": song, "time": "1700000000000"})).get("status") == "ok"
    with Library.open(indexed_library) as lib:
        assert [t for _, t in lib.catalog.db.execute("SELECT track_id, played_at FROM plays")] == [1_700_000_000.0]
        # What a server before this check stored: every listing showing that song must still answer.
        lib.catalog.add_plays(USER, [(int(song), 1e20), (int(song), float("inf"))])
    for name, params in (("getSong", {"id": song}), ("search3", {"query": ""}), ("getRandomSongs", {"size": 50}),
                         ("getSimilarSongs2", {"id": song})):
        root = xml(client.get(f"/rest/{name}", params={**AUTH, **params}))
        assert root.get("status") == "ok", (name, ET.tostring(root)[:300])
