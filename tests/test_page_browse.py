"""Browsing like a player: the albums, artists and track list of the page, through the real API
(a real uvicorn server) and in Debian's Chromium at 390×844 and 1440×900 (Playwright; the
system binary, nothing downloaded): albums grouped as the Subsonic view groups them, covers
from the files, tracks in disc and track order, one click from an album to play it; search
over every word; the track list virtualised (only the rows in view are in the page); and the
page over libraries of 0, 1 and 2 tracks, a track removed while it plays, a server restarted.

The library: tests/tagged_library.py's (an album over two discs with an embedded picture and a
cover.jpg, a compilation, an untagged file) plus one track tagged with accents.
Screenshots go to test-screenshots/ (git-ignored).
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from helpers import serving
from tagged_library import GREAT, png_bytes, write_tags

from songspace import Library

GREAT_ORDER = ["Opening", "Second", "Third", "Disc Two Opens", "Closing"]  # disc 1 then 2, not the file names' order
ACCENTED = {"title": "Géosphère", "artist": "Hoffmann Ensemble", "album": "Café Sessions", "genre": ["Électronique"],
            "tracknumber": "1"}


def get(url: str):
    """(status, JSON or bytes, content type) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            body, kind, status = r.read(), r.headers.get("Content-Type", ""), r.status
    except urllib.error.HTTPError as e:
        body, kind, status = e.read(), e.headers.get("Content-Type", ""), e.code
    return status, (json.loads(body) if kind.startswith("application/json") else body), kind


@pytest.fixture(scope="module")
def music(tagged_music, tmp_path_factory) -> Path:
    """The tagged library, plus "Loose/cafe.mp3" tagged with accents (a copy of the untagged file)."""
    folder = Path(shutil.copytree(tagged_music, tmp_path_factory.mktemp("browse") / "music"))
    shutil.copy(folder / "Loose" / "untagged.mp3", folder / "Loose" / "cafe.mp3")
    write_tags(folder / "Loose" / "cafe.mp3", ACCENTED)
    return folder


@pytest.fixture(scope="module")
def library(music) -> Path:
    root = music.parent / "library"
    with Library.open(root) as lib:
        lib.index([music], workers=0)
    return root


@pytest.fixture(scope="module")
def server(library):
    with serving(library, index_workers=0) as url:
        yield url


# ---------------------------------------------------------------------------------------------
# The API
# ---------------------------------------------------------------------------------------------


def albums_by_name(server) -> dict:
    status, found, _ = get(f"{server}/api/albums?limit=500")
    assert status == 200
    assert found["total"] == len(found["items"])
    return {a["name"]: a for a in found["items"]}


def test_albums_are_grouped_as_a_player_groups_them(server):
    found = albums_by_name(server)
    assert sorted(found) == ["Café Sessions", "Great Album", "Loose", "Summer Hits"]
    great, hits = found["Great Album"], found["Summer Hits"]
    assert (great["artist"], great["song_count"], great["year"], great["picture"]) == ("The Ensemble", 5, 2004, True)
    assert (hits["artist"], hits["compilation"], hits["song_count"], hits["picture"]) == ("Various Artists", True, 3, False)
    # Sorted by album artist, by their sort name when tagged ("Ensemble, The").
    status, page, _ = get(f"{server}/api/albums?limit=500")
    assert [a["artist"] for a in page["items"]] == ["The Ensemble", "Hoffmann Ensemble", "Unknown artist", "Various Artists"]
    # An album: its tracks in disc and track order, each with its disc and number.
    status, album, _ = get(f"{server}/api/albums/{great['id']}")
    assert status == 200
    assert [t["title"] for t in album["tracks"]] == GREAT_ORDER
    assert [(t["disc"], t["number"]) for t in album["tracks"]] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2)]
    # Paged: two at a time, the same albums in the same order.
    status, first, _ = get(f"{server}/api/albums?offset=0&limit=2")
    status, second, _ = get(f"{server}/api/albums?offset=2&limit=2")
    assert [a["id"] for a in first["items"] + second["items"]] == [a["id"] for a in page["items"]]


def test_covers_come_from_the_files_else_a_placeholder(server):
    found = albums_by_name(server)
    status, picture, kind = get(f"{server}{found['Great Album']['cover']}")
    assert status == 200 and kind == "image/png" and picture == png_bytes()  # the picture embedded in track 1
    status, drawn, kind = get(f"{server}{found['Summer Hits']['cover']}?size=32")
    assert status == 200 and kind == "image/png" and drawn.startswith(b"\x89PNG") and drawn != picture
    status, again, _ = get(f"{server}{found['Summer Hits']['cover']}?size=32")
    assert again == drawn  # the album keeps its colours


def test_artists_list_their_albums(server):
    status, found, _ = get(f"{server}/api/artists?limit=500")
    assert status == 200
    names = [a["name"] for a in found["items"]]
    assert names.index("The Ensemble") < names.index("Hoffmann Ensemble")  # "Ensemble, The"
    artists = {a["name"]: a for a in found["items"]}
    assert {"The Ensemble", "Various Artists", "Composer A", "Band One", "Hoffmann Ensemble"} <= set(artists)
    status, ensemble, _ = get(f"{server}/api/artists/{artists['The Ensemble']['id']}")
    assert [a["name"] for a in ensemble["albums"]] == ["Great Album"] and ensemble["albums"][0]["song_count"] == 5
    assert (ensemble["album_count"], ensemble["song_count"]) == (1, 5)  # no track credits them: their album's
    status, band, _ = get(f"{server}/api/artists/{artists['Band One']['id']}")  # a compilation's artist
    assert [a["name"] for a in band["albums"]] == ["Summer Hits"] and band["song_count"] == 1


def test_unknown_ids_and_bad_paging_are_4xx(server):
    for url in ("/api/albums/al-0000000000000000", "/api/albums/nonsense/cover", "/api/artists/ar-nope"):
        status, body, _ = get(server + url)
        assert status == 404, url
        assert "no album with id" in body["detail"] or "no artist with id" in body["detail"]
    assert get(server + "/api/albums/%2e%2e%2f%2e%2e%2fetc%2fpasswd/cover")[0] == 404  # an id, never a path
    for url in ("/api/albums?limit=0", "/api/albums?offset=-1", "/api/tracks?limit=501", "/api/artists?limit=x",
                "/api/albums/x/cover?size=5000"):
        status, body, _ = get(server + url)
        assert status == 422 and body["detail"], url


def test_the_track_list_pages_and_searches_through_the_catalog(server, library):
    status, everything, _ = get(f"{server}/api/tracks?limit=500")
    with Library.open(library) as lib:
        ok = [t.id for t in lib.catalog.ok_tracks()]
        expected = [t.id for t in lib.catalog.search_text("hits") if t.status == "ok"]
    assert [t["id"] for t in everything["items"]] == ok and everything["total"] == len(ok)
    status, part, _ = get(f"{server}/api/tracks?offset=3&limit=4")
    assert [t["id"] for t in part["items"]] == ok[3:7] and part["total"] == len(ok)
    status, found, _ = get(f"{server}/api/tracks?q=hits")
    assert [t["id"] for t in found["items"]] == sorted(expected) and found["total"] == len(expected)
