"""Companion mode: `songspace index subsonic://USER@HOST:PORT` indexes the library of another Subsonic
server through its API, and `--to-playlist` saves lists where the tracks live. Against a real
supysonic (PyPI) started on loopback over synthesized tracks, against `songspace serve` itself,
and through a proxy in front of it that misbehaves as broken servers do."""

from __future__ import annotations

import glob
import http.server
import os
import tempfile
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from helpers import free_port, serving

from songspace import Library
from songspace.analysis import temp_prefix
from songspace.remote import RemoteServer, SubsonicClient
from songspace.synth import make_demo_library

USER, PASSWORD = "bob", "pass word & more"
LYRICS = "[00:01.00]first line\n[00:02.50]second line"  # an .lrc beside one of the files


@pytest.fixture(scope="module")
def small_music(tmp_path_factory) -> Path:
    """Four short tracks, four styles, mixed codecs."""
    folder = tmp_path_factory.mktemp("companion-music")
    flac = next(p for p in make_demo_library(folder, n_per_style=1, seconds=6.0) if p.suffix == ".flac")
    flac.with_suffix(".lrc").write_text(LYRICS)  # beside the file: only a server reading its folder has it
    return folder


@pytest.fixture(scope="module")
def local_index(small_music, tmp_path_factory) -> Path:
    """The same files indexed from disk, with a Subsonic user: the reference vectors, and the
    library `songspace serve` serves."""
    root = tmp_path_factory.mktemp("companion-local") / "library"
    with Library.open(root) as lib:
        lib.index([small_music], workers=0)
        lib.catalog.add_user(USER, PASSWORD)
    return root


@pytest.fixture(scope="module")
def supysonic(small_music, tmp_path_factory):
    """(port, state folder) of a real supysonic serving `small_music`."""
    pytest.importorskip("supysonic")
    from supysonic_server import running_supysonic

    state, port = tmp_path_factory.mktemp("supysonic"), free_port()
    with running_supysonic(state, small_music, port, USER, PASSWORD):
        yield port, state


@pytest.fixture(scope="module")
def songspace_server(local_index):
    """The port of `songspace serve` over `local_index`."""
    with serving(local_index) as url:
        yield int(url.rsplit(":", 1)[1])


@pytest.fixture
def remote_password(monkeypatch):
    monkeypatch.setenv("SONGSPACE_REMOTE_PASSWORD", PASSWORD)
    monkeypatch.delenv("SONGSPACE_REMOTE_API_KEY", raising=False)


def vectors_by_path(root: Path) -> dict[str, np.ndarray]:
    with Library.open(root, readonly=True) as lib:
        return {t.path: lib.catalog.vector(t.id)[1] for t in lib.catalog.ok_tracks()}


def downloads_logged(state: Path) -> int:
    """Downloads supysonic served so far (werkzeug logs every request)."""
    return (state / "server.log").read_text(errors="replace").count("/rest/download?")


def rest(port: int, method: str, **params) -> dict:
    """An answer of the Subsonic API at `port` as another client asks it (password auth)."""
    query = urllib.parse.urlencode({"u": USER, "p": PASSWORD, "v": "1.12.0", "c": "test", "f": "json", **params})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/rest/{method}?{query}", timeout=30) as r:
        answer = json.load(r)["subsonic-response"]
    assert answer["status"] == "ok", answer
    return answer


def playlist_songs(port: int, name: str) -> list[str]:
    """The song ids of playlist `name`, read back through the server's own API."""
    found = [p for p in rest(port, "getPlaylists")["playlists"].get("playlist", []) if p["name"] == name]
    assert len(found) == 1, found  # saved again: replaced, not duplicated
    return [e["id"] for e in rest(port, "getPlaylist", id=found[0]["id"])["playlist"].get("entry", [])]


def radio_ids(songspace, *args) -> list:
    result = songspace("radio", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


# ---------------------------------------------------------------------------------------------
# supysonic
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow  # a real supysonic process
def test_index_from_supysonic_equals_a_local_index_reruns_download_nothing_and_playlists_go_there(
        supysonic, small_music, local_index, songspace, library_dir, remote_password):
    port, state = supysonic
    url = f"subsonic://{USER}@127.0.0.1:{port}"
    first = songspace("index", url)
    assert first.exit_code == 0, first.stderr
    assert "added 4" in first.stderr
    assert downloads_logged(state) == 4

    # keyed by supysonic's song ids, tagged from its entries; the vectors are those of the same
    # files indexed from disk
    songs = {s["id"]: s for s in SubsonicClient(RemoteServer.parse(url), PASSWORD).songs()}
    local = vectors_by_path(local_index)
    with Library.open(library_dir, readonly=True) as lib:
        tracks = lib.catalog.ok_tracks()
        assert sorted(t.remote_id for t in tracks) == sorted(songs)
        for t in tracks:
            assert t.path == f"subsonic://{USER}@127.0.0.1:{port}/{t.remote_id}"
            song = songs[t.remote_id]
            assert (t.title, t.album, t.track, t.genre) == (song["title"], song["album"], song["track"], song["genre"])
            assert t.albumartist == song.get("albumArtist")  # none said, none stored
            np.testing.assert_array_equal(lib.catalog.vector(t.id)[1], local[str(small_music / song["path"])])

    again = songspace("index", url)
    assert again.exit_code == 0, again.stderr
    assert "added 0, updated 0, unchanged 4, removed 0, failed 0" in again.stderr
    assert downloads_logged(state) == 4  # nothing downloaded again

    # a radio saved as a playlist on supysonic, read back through supysonic's API; saved again: replaced
    rows = radio_ids(songspace, "1", "-n", "3", "--to-playlist", "songspace radio")
    with Library.open(library_dir, readonly=True) as lib:
        expected = [lib.catalog.track(r["id"]).remote_id for r in rows]
    assert playlist_songs(port, "songspace radio") == expected
    rows = radio_ids(songspace, "2", "-n", "2", "--to-playlist", "songspace radio")
    with Library.open(library_dir, readonly=True) as lib:
        expected = [lib.catalog.track(r["id"]).remote_id for r in rows]
    assert playlist_songs(port, "songspace radio") == expected


@pytest.mark.slow  # a real supysonic process
def test_wrong_password_and_no_server_are_one_line_and_nothing_is_written(supysonic, songspace, library_dir,
                                                                           monkeypatch):
    port, _ = supysonic
    monkeypatch.setenv("SONGSPACE_REMOTE_PASSWORD", "not it")
    refused = songspace("index", f"subsonic://{USER}@127.0.0.1:{port}")
    assert refused.exit_code == 2
    assert f"user '{USER}' and this password was refused" in refused.stderr
    assert "not it" not in refused.stderr and "Traceback" not in refused.stderr

    down = songspace("index", f"subsonic://{USER}@127.0.0.1:{free_port()}")
    assert down.exit_code == 2 and "cannot reach the server" in down.stderr
    with Library.open(library_dir) as lib:
        assert lib.catalog.tracks() == []


def test_the_password_never_comes_from_the_command_line(songspace, library_dir, monkeypatch):
    given = songspace("index", "subsonic://bob:secret@127.0.0.1:9")
    assert given.exit_code == 2 and "no password in the address" in given.stderr
    assert "secret" not in given.stderr
    monkeypatch.delenv("SONGSPACE_REMOTE_PASSWORD", raising=False)
    monkeypatch.delenv("SONGSPACE_REMOTE_API_KEY", raising=False)
    unasked = songspace("index", "subsonic://bob@127.0.0.1:9")  # no terminal to type it on
    assert unasked.exit_code == 2 and "set $SONGSPACE_REMOTE_PASSWORD" in unasked.stderr
    assert not library_dir.exists()  # refused before the library was made


# ---------------------------------------------------------------------------------------------
# songspace serve as the other server, and playlists in songspace's own catalog
# ---------------------------------------------------------------------------------------------


def test_index_from_songspace_serve_and_path_to_its_playlist(songspace_server, local_index, songspace, library_dir,
                                                              remote_password):
    port = songspace_server
    done = songspace("index", f"subsonic://{USER}@127.0.0.1:{port}")
    assert done.exit_code == 0, done.stderr
    local = vectors_by_path(local_index)
    with Library.open(local_index, readonly=True) as served, Library.open(library_dir, readonly=True) as lib:
        tracks = lib.catalog.ok_tracks()
        assert len(tracks) == len(local) == 4
        for t in tracks:  # songspace's song ids are its catalog ids
            np.testing.assert_array_equal(lib.catalog.vector(t.id)[1], local[served.catalog.track(int(t.remote_id)).path])
    again = songspace("index", f"subsonic://{USER}@127.0.0.1:{port}")
    assert "added 0, updated 0, unchanged 4" in again.stderr

    trip = songspace("path", "1", "2", "-n", "3", "--to-playlist", "a to b", "--json")
    assert trip.exit_code == 0, trip.stderr
    with Library.open(library_dir, readonly=True) as lib:
        expected = [lib.catalog.track(r["id"]).remote_id for r in json.loads(trip.stdout)]
    assert playlist_songs(port, "a to b") == expected

    # served in turn: a song's lyrics are those its server gives (songspace has getLyricsBySongId),
    # here from an .lrc file the download of the audio alone does not bring
    with Library.open(local_index, readonly=True) as served, Library.open(library_dir) as lib:
        sung = next(t for t in served.catalog.ok_tracks() if t.lyrics_file)
        t = next(t for t in lib.catalog.ok_tracks() if t.remote_id == str(sung.id))
        lib.catalog.add_user(USER, PASSWORD)
    with serving(library_dir) as url:
        lyrics = rest(int(url.rsplit(":", 1)[1]), "getLyricsBySongId", id=t.id)["lyricsList"]["structuredLyrics"]
    assert [(x["synced"], x["line"]) for x in lyrics] == \
        [(True, [{"start": 1000, "value": "first line"}, {"start": 2500, "value": "second line"}])]


def test_to_playlist_of_a_local_library_is_served_to_its_apps(indexed_library, songspace):
    with Library.open(indexed_library) as lib:
        lib.catalog.add_user(USER, PASSWORD)
    rows = radio_ids(songspace, "1", "-n", "4", "--to-playlist", "calm")
    rows = radio_ids(songspace, "2", "-n", "3", "--to-playlist", "calm")  # replaces the first
    done = songspace("clusters", "-k", "2", "--to-playlist", "groups")
    assert done.exit_code == 0, done.stderr
    with serving(indexed_library) as url:
        port = int(url.rsplit(":", 1)[1])
        assert playlist_songs(port, "calm") == [str(r["id"]) for r in rows]
        names = [p["name"] for p in rest(port, "getPlaylists")["playlists"]["playlist"]]
    assert sorted(n for n in names if n.startswith("groups: ")) and len(names) == 3


# ---------------------------------------------------------------------------------------------
# A server that breaks: one line per song, the run goes on, nothing stored is lost
# ---------------------------------------------------------------------------------------------


class Misbehaving(http.server.ThreadingHTTPServer):
    """A proxy in front of a real Subsonic server that misbehaves for the songs named in `faults`:
    {song id: "truncate" | "error" | "bigger" | "hangup"}; `newer`: every song entry says it was
    created at that time (a changed library: each song is to be downloaded again)."""

    daemon_threads = True

    def __init__(self, upstream: int):
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.upstream, self.faults, self.newer = upstream, {}, None
        self.no_empty_search = False  # search3 with an empty query refused, as some servers do
        self.hidden: set[str] | None = set()  # songs left out of search3 (None: all songs and albums)
        self.titles: dict[str, str] = {}  # song id -> the title its entry says (retagged on the server)
        self.downloads = 0
        self.no_downloads = False  # download refused (error 50 in an HTTP 200, as most servers answer it)
        self.most_on_disk = 0  # songs in this process's download folders when a download was asked


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        server: Misbehaving = self.server
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query))
        fault = server.faults.get(params.get("id")) if url.path.endswith("/download") else None
        if url.path.endswith("/download"):
            server.downloads += 1
            on_disk = glob.glob(os.path.join(tempfile.gettempdir(), temp_prefix() + "*", "*"))
            server.most_on_disk = max(server.most_on_disk, len(on_disk))
        if fault == "hangup":
            self.connection.close()  # no answer at all
            return
        if url.path.endswith("/download") and server.no_downloads:
            return self.send(200, failed(50, "User is not authorized for the given operation"), "application/json")
        if fault == "error":
            return self.send(200, failed(70, "Song not found"), "application/json")
        if url.path.endswith("/search3") and server.no_empty_search and not params.get("query"):
            return self.send(200, failed(10, "Required parameter is missing: query"), "application/json")
        with urllib.request.urlopen(f"http://127.0.0.1:{server.upstream}{self.path}", timeout=30) as r:
            body, kind = r.read(), r.headers.get("Content-Type")
        if url.path.endswith("/search3"):
            answer = json.loads(body)
            found = answer["subsonic-response"]["searchResult3"]
            found["song"] = [] if server.hidden is None else [x for x in found.get("song", []) if x["id"] not in server.hidden]
            for song in found["song"]:
                song["title"] = server.titles.get(song["id"], song["title"])
                if server.faults.get(song["id"]) == "bigger":
                    song["size"] += 1000  # says more than it sends
                if server.newer:
                    song["created"] = server.newer
            body = json.dumps(answer).encode()
        if url.path.endswith("/getAlbumList2") and server.hidden is None:
            answer = json.loads(body)
            answer["subsonic-response"]["albumList2"]["album"] = []
            body = json.dumps(answer).encode()
        if fault == "truncate":  # announces the whole file, sends half, hangs up
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.close()
            return
        self.send(200, body, kind)

    def send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def failed(code: int, message: str) -> bytes:
    return json.dumps({"subsonic-response": {"status": "failed", "version": "1.16.1",
                                             "error": {"code": code, "message": message}}}).encode()


@contextmanager
def misbehaving(upstream: int):
    proxy = Misbehaving(upstream)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_a_misbehaving_server_costs_one_line_per_song_and_nothing_stored(songspace_server, songspace, library_dir,
                                                                         remote_password):
    with misbehaving(songspace_server) as proxy:
        url = f"subsonic://{USER}@127.0.0.1:{proxy.server_address[1]}"
        assert songspace("index", url).exit_code == 0
        before = vectors_by_path(library_dir)
        ids = sorted(p.rsplit("/", 1)[1] for p in before)
        proxy.newer = "2099-01-01T00:00:00Z"  # every song changed: all four downloaded again
        proxy.faults = {ids[0]: "truncate", ids[1]: "error", ids[2]: "bigger"}
        broken = songspace("index", url)
        assert broken.exit_code == 1, broken.stderr
        lines = [line for line in broken.stderr.splitlines() if line.startswith("failed:")]
        assert len(lines) == 3, broken.stderr
        said = {line.split(": ", 1)[1].split(":")[2].split("/")[-1]: line for line in lines}
        assert "broke off after" in said[ids[0]]
        assert "error 70: Song not found" in said[ids[1]]
        assert "sent more" in said[ids[2]] or "says" in said[ids[2]]
        assert "unchanged 1, removed 0, failed 3" in broken.stderr  # the fourth: downloaded, the same bytes
        after = vectors_by_path(library_dir)
        assert after.keys() == before.keys()  # nothing stored was lost
        for path in before:
            np.testing.assert_array_equal(after[path], before[path])

        # the server goes away mid-run: the run stops asking after a few songs, in one line
        proxy.faults, proxy.newer = {i: "hangup" for i in ids}, "2100-01-01T00:00:00Z"  # all four to download
        gone = songspace("index", url)
        assert gone.exit_code == 1
        assert "cannot reach the server" in gone.stderr and "1 song left for the next run" in gone.stderr
        assert vectors_by_path(library_dir).keys() == before.keys()


def test_an_api_key_and_a_server_that_lists_songs_only_by_album(songspace_server, local_index, songspace, library_dir,
                                                                 monkeypatch):
    import hashlib
    import secrets

    key = secrets.token_urlsafe(24)
    with Library.open(local_index) as lib:
        lib.catalog.add_api_key(USER, hashlib.sha256(key.encode()).hexdigest())
    monkeypatch.delenv("SONGSPACE_REMOTE_PASSWORD", raising=False)
    monkeypatch.setenv("SONGSPACE_REMOTE_API_KEY", key)
    with misbehaving(songspace_server) as proxy:
        proxy.no_empty_search = True  # getAlbumList2 + getAlbum instead
        done = songspace("index", f"subsonic://{USER}@127.0.0.1:{proxy.server_address[1]}")
    assert done.exit_code == 0, done.stderr
    with Library.open(local_index, readonly=True) as served, Library.open(library_dir, readonly=True) as lib:
        assert sorted(int(t.remote_id) for t in lib.catalog.ok_tracks()) == [t.id for t in served.catalog.ok_tracks()]


def test_songs_gone_from_the_server_are_removed_but_an_empty_listing_keeps_them(songspace_server, songspace,
                                                                                library_dir, remote_password):
    with misbehaving(songspace_server) as proxy:
        url = f"subsonic://{USER}@127.0.0.1:{proxy.server_address[1]}"
        assert songspace("index", url).exit_code == 0
        assert proxy.downloads == 4 and 1 <= proxy.most_on_disk <= 2  # the one asked for, and the one analysed
        paths = sorted(vectors_by_path(library_dir))
        proxy.hidden = {paths[0].rsplit("/", 1)[1]}
        fewer = songspace("index", url)
        assert "removed 1" in fewer.stderr, fewer.stderr
        assert sorted(vectors_by_path(library_dir)) == paths[1:]

        proxy.hidden = None  # lists nothing at all: a server rescanning, more likely than a library deleted
        empty = songspace("index", url)
        assert empty.exit_code == 0 and "removed 0" in empty.stderr, empty.stderr
        assert "lists no songs now (rescanning?); its 3 tracks stay" in " ".join(empty.stderr.split())
        assert sorted(vectors_by_path(library_dir)) == paths[1:]

        proxy.hidden = set()
        back = songspace("index", url)
        assert "added 1, updated 0, unchanged 3" in back.stderr, back.stderr

        # retagged on the server: the new title stored, nothing downloaded
        proxy.titles, downloads = {paths[1].rsplit("/", 1)[1]: "Renamed on the server"}, proxy.downloads
        retagged = songspace("index", url)
        assert "unchanged 4, removed 0, failed 0, tags read again 1" in retagged.stderr, retagged.stderr
        assert proxy.downloads == downloads
        with Library.open(library_dir, readonly=True) as lib:
            assert lib.catalog.by_path(paths[1]).title == "Renamed on the server"


def test_server_addresses_and_track_paths():
    from songspace.catalog import Track

    cases = {"subsonic://bob@Music.Example:4533": ("http://music.example:4533/rest/", "subsonic://bob@music.example:4533/"),
             "subsonics://bob@example.org/navidrome/": ("https://example.org:443/navidrome/rest/",
                                                        "subsonics://bob@example.org:443/navidrome/"),
             "https://bob@[::1]:8443/rest": ("https://[::1]:8443/rest/", "subsonics://bob@[::1]:8443/"),
             "http://b%40b@h": ("http://h:80/rest/", "subsonic://b%40b@h:80/")}
    for url, (api, prefix) in cases.items():
        server = RemoteServer.parse(url)
        assert (server.api, server.prefix) == (api, prefix), url
        for song_id in ("42", "al-1/tr 2", "100%", "ünï"):  # an id is opaque: any text comes back whole
            path = server.track_path(song_id)
            track = Track(1, path, None, None, None, None, None, None, None, None, "ok", None)
            assert track.remote_id == song_id and server.holds(path) and RemoteServer.of_track(path) == server
    for bad, why in (("subsonic://example.org", "give the user"), ("ftp://bob@h", "starts with subsonic://"),
                     ("subsonic://bob@h:99999", "not a server address"), ("subsonic://bob@h/?x=1", r"no \?query")):
        with pytest.raises(ValueError, match=why):
            RemoteServer.parse(bad)


def test_absurd_song_entries_are_stored_sanely():
    from songspace.indexing.remote import song_of

    server = RemoteServer.parse("subsonic://bob@h:4533")
    song = song_of(server, {"id": 7, "title": "x" * 5000 + "\x00", "artist": None, "album": ["a"], "track": "3/x",
                            "discNumber": -1, "year": 99999, "genre": True, "size": "big", "created": "soon",
                            "suffix": "../../etc/passwd", "genres": [{"name": f"g{i}"} for i in range(500)]})
    assert song.path == "subsonic://bob@h:4533/7" and song.size is None and song.mtime is None and song.suffix == ""
    assert len(song.tags["title"]) == 1000 and "\x00" not in song.tags["title"]
    assert not {"artist", "album", "track", "disc", "year"} & song.tags.keys()
    assert len(song.tags["genres"]) == 100 and song.tags["genre"] == "g0"
    ok = song_of(server, {"id": "a/b", "title": "T", "track": 3, "discNumber": 2, "year": 1999, "size": 10,
                          "created": "2020-01-02T03:04:05.000Z", "suffix": "FLAC"})
    assert (ok.tags["track"], ok.tags["disc"], ok.tags["year"], ok.size, ok.suffix) == (3, 2, 1999, 10, ".flac")
    assert ok.mtime == 1577934245.0


def test_a_playlist_the_server_refuses_leaves_the_one_it_replaces(songspace_server):
    """Saving again replaces the playlist; when the server refuses the new list (an unknown song
    id here), the old playlist is still there, songs and all."""
    from songspace.remote import RemoteError, RemoteServer, SubsonicClient

    port = songspace_server
    client = SubsonicClient(RemoteServer.parse(f"subsonic://{USER}@127.0.0.1:{port}"), PASSWORD)
    client.save_playlist("kept", ["1", "2"])
    with pytest.raises(RemoteError, match="createPlaylist"):
        client.save_playlist("kept", ["3", "no-such-song"])
    assert playlist_songs(port, "kept") == ["1", "2"]
    client.save_playlist("kept", ["2", "3"])
    assert playlist_songs(port, "kept") == ["2", "3"]


def test_a_user_not_allowed_to_download_is_indexed_and_played_through_stream(songspace_server, local_index,
                                                                            songspace, library_dir, remote_password):
    """A server refusing `download` (error 50, in an HTTP 200): indexing and the page's player take
    the song through `stream` with format=raw instead, the same bytes."""
    from songspace.remote import RemoteServer, SubsonicClient

    with misbehaving(songspace_server) as proxy:
        proxy.no_downloads = True
        url = f"subsonic://{USER}@127.0.0.1:{proxy.server_address[1]}"
        done = songspace("index", url)
        assert done.exit_code == 0 and "added 4" in done.stderr and "failed 0" in done.stderr, done.stderr
        client = SubsonicClient(RemoteServer.parse(url), PASSWORD)
        with Library.open(local_index, readonly=True) as served:
            t = served.catalog.ok_tracks()[0]
            with client.open_audio(str(t.id), download=True) as answer:
                assert answer.read() == Path(t.path).read_bytes()
