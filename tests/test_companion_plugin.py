"""A companion library (indexed from a real supysonic with `index subsonic://...`) served by
`songspace serve`: the AudioMuse-AI Navidrome plugin's requests replayed exactly as the plugin
makes them (audiomuse_plugin.py) answer in the other server's ids (songs and artists), in the
order of `songspace similar` / `songspace path`; the page's player and Subsonic's stream and
download play the songs from that server (with its password in the environment; else they say
so); what needs the audio files (fit, --m3u8) says where the songs are instead of failing;
the page's "Update library" and `status` cover the server; covers and lyrics are the server's."""

from __future__ import annotations

import io
import json
import time
import urllib.parse

import httpx
import pytest
from typer.testing import CliRunner

import audiomuse_plugin as plugin
from helpers import free_port, serving
from tagged_library import png_bytes, write_tags

from songspace import Library
from songspace.remote import RemoteServer, SubsonicClient
from songspace.synth import make_demo_library

USER, PASSWORD, TOKEN = "bob", "pass word & more", "plugin-token"
PICTURE = png_bytes(64, 64, (30, 160, 90))  # embedded in one song on the server
LYRICS = "[00:01.00]first line\n[00:02.50]second line"

pytestmark = pytest.mark.slow  # a real supysonic process, indexed in companion mode


@pytest.fixture(scope="module")
def supysonic(tmp_path_factory):
    """(address, {song id: song entry}) of a real supysonic serving four short tracks by four artists."""
    pytest.importorskip("supysonic")
    from supysonic_server import running_supysonic

    music = tmp_path_factory.mktemp("plugin-music")
    flac = next(p for p in make_demo_library(music, n_per_style=1, seconds=6.0) if p.suffix == ".flac")
    write_tags(flac, {"picture": PICTURE})  # the picture: read from the file, which is not kept here
    flac.with_suffix(".txt").write_text(LYRICS)  # supysonic's lyrics beside a file: the audio alone does not bring it
    port = free_port()
    with running_supysonic(tmp_path_factory.mktemp("plugin-supysonic"), music, port, USER, PASSWORD):
        address = f"subsonic://{USER}@127.0.0.1:{port}"
        songs = {s["id"]: s for s in SubsonicClient(RemoteServer.parse(address), PASSWORD).songs()}
        for song in songs.values():
            song["file"] = music / song["path"]  # where supysonic reads it (for a test that needs a local copy)
        yield address, songs


@pytest.fixture(scope="module")
def companion(supysonic, tmp_path_factory):
    """(base URL of `songspace serve` with a token, library root, {song id: catalog track})."""
    address, songs = supysonic
    root = tmp_path_factory.mktemp("plugin-companion") / "library"
    with Library.open(root) as lib:
        done = lib.index_remote(SubsonicClient(RemoteServer.parse(address), PASSWORD))
        assert done.added == len(songs) == 4 and not done.failed
        lib.catalog.add_user(USER, PASSWORD)
        tracks = {t.remote_id: t for t in lib.catalog.ok_tracks()}
    with serving(root, token=TOKEN) as base:
        yield base, root, tracks


def cli(root, *args):
    from songspace.cli import app

    return CliRunner().invoke(app, ["--library", str(root), *map(str, args)], env={"COLUMNS": "200"})


def cli_json(root, *args) -> list[dict]:
    result = cli(root, *args, "--json")
    assert result.exit_code == 0, result.stdout
    return json.loads(result.stdout)


def ask(base: str, path: str):
    answer = plugin.replay(base, path, TOKEN)
    assert answer.status_code == 200, answer.text
    return answer.json()


def remote_ids(rows: list[dict], tracks: dict) -> list[str]:
    """The other server's song ids of CLI rows (which carry catalog ids)."""
    by_catalog_id = {t.id: song_id for song_id, t in tracks.items()}
    return [by_catalog_id[r["id"]] for r in rows]


def test_similar_tracks_and_find_path_answer_in_the_servers_song_ids(supysonic, companion):
    _, songs = supysonic
    base, root, tracks = companion
    assert set(tracks) == set(songs)  # keyed by supysonic's own ids (UUIDs: nothing like catalog ids)
    seed, end = sorted(songs)[:2]

    answer = ask(base, plugin.similar_tracks(seed, 10))  # more than the library holds: all the others
    plugin.check_tracks(answer)
    expected = [r for r in cli_json(root, "similar", tracks[seed].id, "-k", 3) if not r["copy_of_query"]]
    assert [a["item_id"] for a in answer] == remote_ids(expected, tracks)
    assert {a["item_id"] for a in answer} == set(songs) - {seed}
    for a in answer:  # what Navidrome shows: the server's own tags of that song
        song = songs[a["item_id"]]
        assert (a["title"], a["author"], a["album"]) == (song["title"], song["artist"], song["album"])
    assert [1 - a["distance"] for a in answer] == pytest.approx([r["score"] for r in expected], abs=1e-3)

    path = ask(base, plugin.find_path(seed, end))
    plugin.check_path(path)
    ids = [e["item_id"] for e in path["path"]]
    assert ids == remote_ids(cli_json(root, "path", tracks[seed].id, tracks[end].id, "-n", 4), tracks)
    assert ids[0] == seed and ids[-1] == end and set(ids) <= set(songs)

    # a catalog id is not what Navidrome sends: not found, not someone else's song
    assert plugin.replay(base, plugin.similar_tracks(str(tracks[seed].id), 3), TOKEN).status_code == 404


def test_similar_artists_take_and_give_the_servers_artist_ids(supysonic, companion):
    _, songs = supysonic
    base, root, tracks = companion
    artist_of = {s["artistId"]: s["artist"] for s in songs.values()}
    assert len(artist_of) == 4
    seed = sorted(songs)[0]
    asked = songs[seed]["artistId"]  # what the plugin sends: Navidrome's (here supysonic's) artist id

    plain = ask(base, plugin.similar_artists(asked, False))
    plugin.check_artists(plain)
    assert {a["artist_id"] for a in plain} == set(artist_of) - {asked}
    assert all(artist_of[a["artist_id"]] == a["artist"] for a in plain)
    assert [a["distance"] for a in plain] == sorted(a["distance"] for a in plain)
    assert ask(base, plugin.similar_artists(songs[seed]["artist"], False)) == plain  # by name: the same

    mixed = ask(base, plugin.similar_artists(asked, True))
    plugin.check_artists(mixed)
    assert [a["artist_id"] for a in mixed] == [a["artist_id"] for a in plain]
    for a in mixed:
        (cm,) = a["component_matches"]
        assert {songs[s["item_id"]]["artistId"] for s in cm["artist1_representative_songs"]} == {asked}
        assert {songs[s["item_id"]]["artistId"] for s in cm["artist2_representative_songs"]} == {a["artist_id"]}
        assert all(s["title"] == songs[s["item_id"]]["title"] for s in cm["artist2_representative_songs"])
    mix = plugin.songs_by_artist(mixed, 4)  # GetSimilarSongsByArtist's mix: the server's songs
    assert len(mix) == 4 and set(mix) == set(songs)

    assert plugin.replay(base, plugin.similar_artists("no-such-artist-id", False), TOKEN).status_code == 404


def test_the_page_and_subsonic_apps_play_the_songs_from_the_server(supysonic, companion, monkeypatch):
    address, songs = supysonic
    base, root, tracks = companion
    song_id = sorted(songs)[0]
    t = tracks[song_id]
    original = io.BytesIO()
    SubsonicClient(RemoteServer.parse(address), PASSWORD).download(song_id, original)
    page_url = f"{base}/api/tracks/{t.id}/audio"
    bearer = {"Authorization": f"Bearer {TOKEN}"}

    def rest(method: str) -> httpx.Response:
        query = urllib.parse.urlencode({"u": USER, "p": PASSWORD, "v": "1.16.1", "c": "test", "f": "json", "id": t.id})
        return httpx.get(f"{base}/rest/{method}?{query}")

    # no password where songspace serve runs: 404 / Subsonic error 70, naming the server and what to do
    monkeypatch.delenv("SONGSPACE_REMOTE_API_KEY", raising=False)
    monkeypatch.delenv("SONGSPACE_REMOTE_PASSWORD", raising=False)
    page = httpx.get(page_url, headers=bearer)
    assert page.status_code == 404 and address in page.json()["detail"]
    assert "SONGSPACE_REMOTE_PASSWORD" in page.json()["detail"]
    for method in ("stream", "download"):
        answer = rest(method).json()["subsonic-response"]
        assert answer["status"] == "failed" and answer["error"]["code"] == 70, answer
        assert address in answer["error"]["message"]

    # with it: the song's bytes, from supysonic, through songspace; a range is a range
    monkeypatch.setenv("SONGSPACE_REMOTE_PASSWORD", PASSWORD)
    page = httpx.get(page_url, headers=bearer)
    assert page.status_code == 200 and page.content == original.getvalue()
    assert page.headers["content-type"].startswith("audio/")
    part = httpx.get(page_url, headers={**bearer, "Range": "bytes=100-299"})
    assert part.status_code == 206 and part.content == original.getvalue()[100:300]
    for method in ("stream", "download"):
        assert rest(method).content == original.getvalue()

    # a wrong password: the other server's refusal, as a 502 naming it (not a 500)
    monkeypatch.setenv("SONGSPACE_REMOTE_PASSWORD", "not it")
    refused = httpx.get(page_url, headers=bearer)
    assert refused.status_code == 502 and address in refused.json()["detail"] and "not it" not in refused.text
    assert rest("stream").json()["subsonic-response"]["error"]["code"] == 0


def test_what_needs_the_files_says_where_the_songs_are(supysonic, companion, tmp_path):
    address, songs = supysonic
    base, root, tracks = companion
    t = tracks[sorted(songs)[0]]

    # fit has no files to read again and again; an M3U8 lists files: both say so, nothing written
    fit = cli(root, "fit", "--minutes", "0.05")
    assert fit.exit_code == 2 and address in fit.stderr and "companion mode" in fit.stderr
    out = tmp_path / "list.m3u8"
    m3u8 = cli(root, "similar", t.id, "-k", 2, "--m3u8", out)
    assert m3u8.exit_code == 2 and address in m3u8.stderr and "--to-playlist" in m3u8.stderr
    assert not out.exists()

    # what reads only the stored vectors and segments works as for local files
    song_id = t.remote_id
    found = cli_json(root, "identify", songs[song_id]["file"])  # an excerpt of a local copy: which song it is
    assert found[0]["id"] == t.id
    other = tracks[sorted(songs)[1]]
    assert cli(root, "explain", t.id, other.id).exit_code == 0
    assert cli(root, "duplicates").exit_code == 0

    status = cli(root, "status", "--json")
    assert json.loads(status.stdout)["servers"] == [address] and PASSWORD not in status.stdout
    assert f"servers:    {address}" in cli(root, "status").stdout


def test_update_library_covers_the_server_when_a_password_is_set(companion, supysonic, monkeypatch):
    address, songs = supysonic
    base, root, tracks = companion
    asked = songs[sorted(songs)[0]]["artistId"]
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def update() -> dict:
        started = httpx.post(f"{base}/api/index", headers=headers)
        assert started.status_code == 202, started.text  # no folders, one server: there is something to update
        while (progress := httpx.get(f"{base}/api/index", headers=headers).json())["running"]:
            time.sleep(0.1)
        assert progress["error"] is None, progress
        return progress["report"]

    monkeypatch.delenv("SONGSPACE_REMOTE_API_KEY", raising=False)
    monkeypatch.delenv("SONGSPACE_REMOTE_PASSWORD", raising=False)
    unsigned = update()
    assert unsigned["unchanged"] == 0 and len(unsigned["notes"]) == 1
    assert address in unsigned["notes"][0] and "SONGSPACE_REMOTE_PASSWORD" in unsigned["notes"][0]
    assert "its 4 tracks stay" in unsigned["notes"][0]

    # a library indexed before the artist ids were kept gets them from the next update, with no download
    with Library.open(root) as lib, lib.catalog._transaction():
        lib.catalog.db.execute("DELETE FROM remote_songs")
        lib.catalog._bump()  # as a change does: the searcher's snapshot is taken again
    assert plugin.replay(base, plugin.similar_artists(asked, False), TOKEN).status_code == 404
    monkeypatch.setenv("SONGSPACE_REMOTE_PASSWORD", PASSWORD)
    signed = update()
    assert (signed["unchanged"], signed["added"], signed["removed"], signed["failed"]) == (4, 0, 0, 0)
    assert signed["notes"] == []
    signed_at = httpx.get(f"{base}/api/index", headers=headers).json()["started"]
    with Library.open(root, readonly=True) as lib:
        kept = lib.catalog.remote_ids([t.id for t in tracks.values()])
    assert {song_id: kept[t.id] for song_id, t in tracks.items()} == \
        {i: (s["artistId"], s["albumId"]) for i, s in songs.items()}
    assert plugin.replay(base, plugin.similar_artists(asked, False), TOKEN).status_code == 200

    # Subsonic's startScan starts the same update
    query = urllib.parse.urlencode({"u": USER, "p": PASSWORD, "v": "1.16.1", "c": "test", "f": "json"})
    scan = httpx.get(f"{base}/rest/startScan?{query}").json()["subsonic-response"]
    assert scan["status"] == "ok", scan
    while (progress := httpx.get(f"{base}/api/index", headers=headers).json())["running"]:
        time.sleep(0.1)
    assert progress["report"]["unchanged"] == 4 and progress["started"] > signed_at

    monkeypatch.setenv("SONGSPACE_REMOTE_PASSWORD", "not it")
    refused = update()
    assert "refused" in refused["notes"][0] and "not it" not in refused["notes"][0]


def test_song_entries_say_the_format_the_server_gave(supysonic, companion):
    """A remote track's path has no suffix: its entry carries the one its server said, so an app
    picks a decoder and names its cached file by it (was: suffix "", application/octet-stream)."""
    _, songs = supysonic
    base, _, tracks = companion
    query = urllib.parse.urlencode({"u": USER, "p": PASSWORD, "v": "1.16.1", "c": "test", "f": "json", "query": ""})
    found = httpx.get(f"{base}/rest/search3?{query}&songCount=50").json()["subsonic-response"]["searchResult3"]["song"]
    by_id = {str(t.id): remote for remote, t in tracks.items()}
    assert len(found) == len(songs)
    for entry in found:
        theirs = songs[by_id[entry["id"]]]
        assert (entry["suffix"], entry["contentType"]) == (theirs["suffix"], theirs["contentType"])


def test_covers_and_lyrics_are_the_servers(supysonic, companion, monkeypatch):
    """A song of another server has no file here: getCoverArt (at the size asked), the page's
    album cover, getLyricsBySongId and getLyrics relay what that server has (supysonic has no
    getLyricsBySongId: its getLyrics then). Without the password, or with a wrong one: a drawn
    cover and no lyrics, as for a song without them (never a 500)."""
    from PIL import Image

    from songspace.server.coverart import placeholder_png

    _, songs = supysonic
    base, _, tracks = companion
    decorated = [i for i, s in songs.items() if s.get("coverArt")]
    assert len(decorated) == 1  # the server names a cover for the one song with a picture
    t = tracks[decorated[0]]
    plain = next(tracks[i] for i in songs if i != decorated[0])

    def rest(method: str, **params) -> httpx.Response:
        query = urllib.parse.urlencode({"u": USER, "p": PASSWORD, "v": "1.16.1", "c": "test", "f": "json", **params})
        answer = httpx.get(f"{base}/rest/{method}?{query}")
        assert answer.status_code == 200, answer.text
        return answer

    def pixels(body: bytes) -> tuple[tuple[int, int], tuple]:
        with Image.open(io.BytesIO(body)) as im:
            return im.size, im.convert("RGB").getpixel((im.width // 2, im.height // 2))

    album = rest("getSong", id=t.id).json()["subsonic-response"]["song"]["albumId"]
    page_cover = f"{base}/api/albums/{album}/cover"
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    monkeypatch.delenv("SONGSPACE_REMOTE_API_KEY", raising=False)
    monkeypatch.setenv("SONGSPACE_REMOTE_PASSWORD", PASSWORD)
    whole = rest("getCoverArt", id=t.id)
    assert (whole.headers["content-type"], whole.content) == ("image/png", PICTURE)
    assert pixels(rest("getCoverArt", id=t.id, size=16).content) == ((16, 16), (30, 160, 90))
    page = httpx.get(page_cover, params={"size": 16}, headers=bearer)
    assert page.status_code == 200 and pixels(page.content) == ((16, 16), (30, 160, 90))
    assert rest("getCoverArt", id=plain.id).content == placeholder_png(str(plain.id), 300)  # none there
    by_id = rest("getLyricsBySongId", id=t.id).json()["subsonic-response"]["lyricsList"]["structuredLyrics"]
    assert [(x["synced"], x["line"]) for x in by_id] == \
        [(True, [{"start": 1000, "value": "first line"}, {"start": 2500, "value": "second line"}])]
    by_name = rest("getLyrics", artist=t.artist, title=t.title).json()["subsonic-response"]["lyrics"]
    assert by_name["value"] == "first line\nsecond line"

    for secret in (None, "not it"):
        if secret is None:
            monkeypatch.delenv("SONGSPACE_REMOTE_PASSWORD")
        else:
            monkeypatch.setenv("SONGSPACE_REMOTE_PASSWORD", secret)
        assert rest("getCoverArt", id=t.id).content == placeholder_png(str(t.id), 300)
        page = httpx.get(page_cover, params={"size": 16}, headers=bearer)
        assert page.status_code == 200 and page.content == placeholder_png(album, 16)
        answer = rest("getLyricsBySongId", id=t.id).json()["subsonic-response"]
        assert answer["status"] == "ok" and not answer["lyricsList"].get("structuredLyrics")
        assert rest("getLyrics", artist=t.artist, title=t.title).json()["subsonic-response"]["lyrics"]["value"] == ""
