"""The OpenSubsonic API against real client libraries from PyPI that no one here wrote:
py-opensonic (token auth: t = md5(password + s)) and py-sonic (legacy auth: p = enc:HEX),
talking HTTP to a real uvicorn server over the demo library."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

libopensonic = pytest.importorskip("libopensonic")
libsonic = pytest.importorskip("libsonic")

import uvicorn  # noqa: E402

from songspace import Library  # noqa: E402
from songspace.server import create_app  # noqa: E402
from helpers import free_port  # noqa: E402

USER, PASSWORD = "alice", "s3same & spaces"


@pytest.fixture(scope="module")
def server(_indexed_demo, tmp_path_factory):
    """(base url, port, library dir) of a real server over a private copy of the demo library."""
    root = Path(shutil.copytree(_indexed_demo, tmp_path_factory.mktemp("subsonic") / "library"))
    with Library.open(root) as lib:
        lib.catalog.add_user(USER, PASSWORD)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(root), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield "http://127.0.0.1", port, root
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def opensonic(server):
    base, port, _ = server
    conn = libopensonic.Connection(base, USER, PASSWORD, port=port)
    yield conn
    conn.cleanup()


@pytest.fixture(scope="module")
def pysonic(server):
    base, port, _ = server
    return libsonic.Connection(base, USER, PASSWORD, port=port, legacyAuth=True)


def test_both_auth_styles_log_in(opensonic, pysonic, server):
    assert opensonic.ping()  # t + s
    assert pysonic.ping()  # p = enc:HEX
    base, port, _ = server
    plain = httpx.get(f"{base}:{port}/rest/ping", params={"u": USER, "p": PASSWORD, "f": "json"}).json()
    assert plain["subsonic-response"]["status"] == "ok"
    wrong = libopensonic.Connection(base, USER, "not it", port=port)
    try:
        with pytest.raises(libopensonic.errors.CredentialError):
            wrong.ping()
    finally:
        wrong.cleanup()


def test_browse_artists_album_song(opensonic):
    artists = {a.name: a for index in opensonic.get_artists().index for a in index.artist}
    # the demo's .wav has no tags: it appears under "Unknown artist", in an album named after its folder
    assert sorted(artists) == ["Unknown artist", "bass_drone synth", "bright_arpeggio synth", "mid_chords synth",
                               "noise_beat synth"]
    untagged = opensonic.get_artist(artists["Unknown artist"].id)
    assert [a.name for a in untagged.album] == ["mid_chords"] and untagged.album[0].song_count == 1
    artist = opensonic.get_artist(artists["bass_drone synth"].id)
    assert artist.name == "bass_drone synth" and len(artist.album) == 1
    album = opensonic.get_album(artist.album[0].id)
    assert album.song_count == 3 == len(album.song)
    song = opensonic.get_song(album.song[0].id)
    assert song.title == album.song[0].title and song.album_id == album.id and song.artist_id == artist.id


def test_search3_with_an_empty_query_pages_through_everything(opensonic):
    seen, offset = [], 0
    while True:
        page = opensonic.search3("", artist_count=0, album_count=0, song_count=5, song_offset=offset)
        if not page.song:
            break
        seen += [s.id for s in page.song]
        offset += 5
    assert len(seen) == len(set(seen)) == 12
    found = opensonic.search3("bass_drone")
    assert len(found.song) == 3 and len(found.album) == 1 and len(found.artist) == 1


def test_stream_gives_the_file_itself(pysonic, server):
    _, _, root = server
    with Library.open(root) as lib:
        track = lib.catalog.tracks()[0]
    body = pysonic.stream(str(track.id)).read()
    assert body == Path(track.path).read_bytes()
    assert pysonic.download(str(track.id)).read() == body
    base, port = server[:2]
    part = httpx.get(f"{base}:{port}/rest/stream.view", params={"u": USER, "p": PASSWORD, "id": track.id, "format": "raw"},
                     headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == body[10:20]


def test_similar_songs_and_the_sonic_similarity_extension(opensonic):
    names = [e.name for e in opensonic.get_open_subsonic_extensions()]
    assert "sonicSimilarity" in names
    album = opensonic.get_album(opensonic.search3("bass_drone").album[0].id)
    seed = album.song[0]
    similar = opensonic.get_similar_songs2(seed.id, count=5)
    assert 0 < len(similar) <= 5 and seed.id not in {s.id for s in similar}
    by_album = opensonic.get_similar_songs(album.id, count=4)  # an album as the seed
    assert by_album and not {s.id for s in by_album} & {s.id for s in album.song}

    matches = opensonic.get_sonic_similar_tracks(seed.id, count=3)
    assert len(matches) == 3 and all(0 <= m.similarity <= 1 for m in matches)
    assert [m.similarity for m in matches] == sorted((m.similarity for m in matches), reverse=True)
    assert matches[0].entry.album == seed.album  # the same synthesized style sounds closest

    end = opensonic.search3("noise_beat").song[0]
    path = opensonic.find_sonic_path(seed.id, end.id, count=5)
    assert path[0].entry.id == seed.id and path[-1].entry.id == end.id and 2 <= len(path) <= 5
    assert path[0].similarity == pytest.approx(1.0, abs=1e-3)


def test_playlists_stars_and_scrobbles(opensonic, pysonic):
    songs = opensonic.search3("", song_count=4).song
    assert opensonic.create_playlist(name="mix", song_ids=[s.id for s in songs[:3]])
    created = next(p for p in opensonic.get_playlists() if p.name == "mix")
    assert created.song_count == 3 and created.owner == USER
    assert [e.id for e in opensonic.get_playlist(created.id).entry] == [s.id for s in songs[:3]]
    opensonic.update_playlist(created.id, name="mix 2", song_ids_to_add=[songs[3].id], song_indices_to_remove=[0])
    got = opensonic.get_playlist(created.id)
    assert got.name == "mix 2" and [e.id for e in got.entry] == [s.id for s in songs[1:4]]
    assert created.id in [p.id for p in opensonic.get_playlists()]
    opensonic.delete_playlist(created.id)
    assert created.id not in [p.id for p in opensonic.get_playlists()]

    album_id = songs[0].album_id
    opensonic.star(sids=[songs[0].id], album_ids=[album_id])
    starred = opensonic.get_starred2()
    assert [s.id for s in starred.song] == [songs[0].id] and [a.id for a in starred.album] == [album_id]
    opensonic.unstar(sids=[songs[0].id], album_ids=[album_id])
    assert not opensonic.get_starred2().song

    assert opensonic.scrobble(songs[1].id)
    assert opensonic.get_song(songs[1].id).play_count == 1
    top = opensonic.get_top_songs(songs[1].artist, count=2)
    assert top[0].id == songs[1].id


def test_cover_art_placeholder(pysonic, opensonic):
    album = opensonic.search3("mid_chords").album[0]
    image = pysonic.getCoverArt(album.id, size=64).read()
    assert image.startswith(b"\x89PNG")
